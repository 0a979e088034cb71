"""``curate analyze``: read a corpus (and optionally a pool and a reshaped manifest), measure its
content distribution and density structure, and write a report folder.

The steps live in their own modules: :mod:`~curate.analyze.inputs` reads (only the rows the
analysis uses), :mod:`~curate.analyze.measure` measures (pure functions),
:mod:`~curate.analyze.examples` chooses the samples shown as pictures,
:mod:`~curate.analyze.comparison` reads a ``curate compare`` folder,
:mod:`~curate.analyze.report_figures` draws the figures and :mod:`~curate.analyze.html` renders
the page; :func:`analyze` ties them and writes the folder.

The report folder holds ``summary.json`` (every number, with inputs and parameters), PNG figures,
``index.html`` and, with a comparison, ``compare/`` (its summary, table and figures, copied so the
folder stands alone). It is built in a hidden temporary folder beside the target and renamed into
place, so a killed run never leaves a report that looks complete.

What is exact and what is sampled: the content thresholds, pool placement and redundancy groups use
every sample (blocked kNN and sparse graphs). PCA, HDBSCAN and the 2-D maps use at most
``sample_cap`` samples per set (default 20,000), chosen by a seeded hash of ``sample_id``.

With a manifest, DRCDown's thresholds default to those the manifest recorded (the ones it was
reshaped with); thresholds given explicitly win. ``summary.json`` records where each came from.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from curate.analyze.comparison import comparison_numbers, copy_comparison, read_comparison
from curate.analyze.examples import ThumbnailReader, choose_examples, examples_numbers
from curate.analyze.figures import save_png
from curate.analyze.html import render_index
from curate.analyze.inputs import read_analysis_inputs
from curate.analyze.measure import measure, summary_numbers
from curate.analyze.params import AnalyzeParams
from curate.analyze.report_figures import POOL_TABLE, report_figures
from curate.errors import CurateError
from curate.fsio import atomic_folder, atomic_write_text, fingerprint
from curate.jsonio import json_text, plain
from curate.progress import Progress
from curate.provenance import provenance
from curate.reshape.params import resolve_drc

REPORT_FORMAT = "analyze_report"
REPORT_FORMAT_VERSION = 1


@dataclass
class Report:
    """What :func:`analyze` wrote: the folder, its ``summary`` and the figure files."""

    out_dir: Path
    summary: dict[str, Any]
    figures: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A short terminal summary of the key numbers."""
        s = self.summary
        out = [f"report: {self.out_dir / 'index.html'} ({len(self.figures)} figures, summary.json)"]
        out += [f"WARNING: {w['message']} {w['note'][:160]}" for w in s.get("encoder_warnings", [])]
        content = s["content"]
        if "r" in content:
            text = (
                f"content: {content['references']} references, r = {content['r']:.4f}, "
                f"maxT_all = {content['maxT_all']:.4f}"
            )
            pool = content.get("pool")
            if pool:
                text += (
                    f"; pool {pool['candidates']}: novel {pool['novel']}, in distribution "
                    f"{pool['in_distribution']}, eligible {pool['eligible']}"
                )
            out.append(text)
        else:
            out.append(f"content: {content['note']}")
        p, source = s["params"], s["thresholds_source"]
        out.append(
            f"redundancy thresholds: cos > {p['similarity_threshold']} ({source['similarity_threshold']}), "
            f"score gap < {p['score_gap']} ({source['score_gap']}), cap {p['group_cap']} ({source['group_cap']}), "
            f"keep {p['keep_fraction']} ({source['keep_fraction']})"
        )
        for name in ("before", "after"):
            if name not in s:
                continue
            part = s[name]
            c = part["clusters"]
            text = (
                f"{name}: {part['samples']:,} samples; {c['found']} clusters on {c['sampled']:,} sampled "
                f"(noise {c['noise_share']:.0%})"
            )
            r = part["redundancy"]
            if "groups" in r:
                text += (
                    f"; {r['groups']:,} redundancy groups, largest {r['largest_group']:,}, "
                    f"{r['share_above_cap']:.1%} of samples above the cap"
                )
            out.append(text)
        types = s["corpus"]["types_analysed"]
        out.append(
            f"types analysed: {', '.join(map(str, types)) or 'none'} ({s['before']['samples']:,} of the corpus's "
            f"{s['corpus']['distorted']:,} distorted samples)"
        )
        sized = (s.get("reshape") or {}).get("target_size")
        if sized and sized["groups_over_quota"]:
            out.append(
                f"target size {sized['target_size']:,}: {sized['groups_over_quota']:,} redundancy group(s) keep more "
                f"members than DRCDown allows ({sized['rows_over_quota']:,} rows over it)"
            )
        missing = s.get("examples", {}).get("missing_images", [])
        if missing:
            out.append(f"images: {len(missing):,} shown as labelled blanks (not readable; listed in summary.json)")
        if "compare" in s:
            out.append(f"comparison: {', '.join(s['compare']['targets'])} (from {s['input_paths']['compare']})")
        return out


def analyze(
    corpus: str | os.PathLike[str],
    embeddings: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    pool: str | os.PathLike[str] | None = None,
    pool_embeddings: str | os.PathLike[str] | None = None,
    manifest: str | os.PathLike[str] | None = None,
    compare: str | os.PathLike[str] | None = None,
    params: AnalyzeParams | None = None,
    quiet: bool = False,
) -> Report:
    """Analyse a corpus (and pool / manifest) and write the report folder ``out_dir``.

    ``params.types``: restrict the corpus samples to these distortion types (as ``curate reshape
    --types``); ``None`` keeps every non-reference sample. The manifest, when given, is analysed
    whole, and the decisions table beside it gives the pictures of kept and refused samples.
    ``compare``: a finished ``curate compare`` folder whose comparison the page shows. Same
    inputs + seed give byte-identical ``summary.json``, figures and ``index.html``.
    """
    params = params or AnalyzeParams()
    out = Path(out_dir)
    check_output_dir(out)
    comparison = read_comparison(compare) if compare is not None else None
    with Progress(6, "analyze", "step", quiet=quiet) as steps:
        data = read_analysis_inputs(
            corpus, embeddings, pool=pool, pool_embeddings=pool_embeddings, manifest=manifest, types=params.types
        )
        thresholds = resolve_drc(params.redundancy, data.manifest_params)
        steps.update()
        measures = measure(data, params, thresholds.params, str(corpus))
        examples = choose_examples(data, params.seed, params.device)
        steps.update(3)
        inputs = dict(data.fingerprints)
        paths = {name: path for name, path in data.paths.items() if path is not None}
        if comparison is not None:
            inputs["compare"] = fingerprint(comparison.folder / "summary.json")
            paths["compare"] = compare
        summary: dict[str, Any] = {
            "format": REPORT_FORMAT,
            "format_version": REPORT_FORMAT_VERSION,
            **provenance(params=params.as_dict(thresholds.params), seed=params.seed, inputs=inputs),
            "thresholds_source": thresholds.source,
            "input_paths": paths,
            **summary_numbers(data, measures, params),
            "examples": examples_numbers(examples),
        }
        if comparison is not None:
            summary["compare"] = comparison_numbers(comparison, data.fingerprints.get("corpus"))
        summary = plain(summary)
        with atomic_folder(out, check=check_output_dir) as tmp:
            if measures.content is not None and measures.content.pool is not None and data.candidates is not None:
                _write_pool_table(tmp / POOL_TABLE, measures.content, data.candidates)
            figures = []
            reader = ThumbnailReader()
            for drawn, caption in report_figures(data, measures, summary, params.seed, examples, reader):
                save_png(drawn, tmp / caption.file)
                figures.append(caption)
            summary["examples"]["missing_images"] = reader.missing_list()
            if comparison is not None:
                copy_comparison(comparison, tmp)
            atomic_write_text(tmp / "summary.json", json_text(summary))
            page = render_index(summary, figures, comparison.summary if comparison is not None else None)
            atomic_write_text(tmp / "index.html", page)
        steps.update()
    return Report(out, summary, [f.file for f in figures])


def _write_pool_table(path: Path, content: Any, candidates: pd.DataFrame) -> None:
    """One row per pool candidate: its distances to the training references and the two tests."""
    p = content.pool
    table = pd.DataFrame(
        {
            "sample_id": content.candidate_ids,
            "ref_id": candidates["ref_id"].to_numpy(dtype=object),
            "min_distance": p.nearest_distance,
            "max_distance": p.farthest_distance,
            "novel": p.novel,
            "in_distribution": p.in_distribution,
            "eligible": p.eligible,
        }
    )
    atomic_write_text(path, table.to_csv(index=False, float_format="%.8f", lineterminator="\n"))


def check_output_dir(out: Path) -> None:
    """Refuse to replace anything but an earlier report (or an empty folder)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise CurateError(f"-o {out}: exists and is not a folder")
    if not any(out.iterdir()):
        return
    summary = out / "summary.json"
    try:
        previous = json.loads(summary.read_text())
    except (OSError, ValueError):
        previous = None
    if not isinstance(previous, dict) or previous.get("format") != REPORT_FORMAT:
        raise CurateError(f"-o {out}: folder is not empty and holds no curate analyze report; choose another")
