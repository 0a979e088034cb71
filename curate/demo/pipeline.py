"""``curate demo``: the whole pipeline on the bundled demo corpus, end to end, offline.

Steps (every one is the same library function its CLI verb calls; every output lands under DIR):

1. ``data/``: the demo corpus (train in KADID layout, a candidate pool, a held-out test set).
2. ``corpus.parquet``, ``pool_refs.parquet``, ``test_corpus.parquet``: ``ingest``.
3. ``pool/``: ``synthesize`` of the pool references (the preset's types, all five levels).
4. ``embeddings/{train,pool,test}``: ``embed`` with CLIP when its weights are available here, else
   the packaged ImageNet EfficientNet-Lite0 (timm, installed from the package index, offline), with
   a note that is also recorded in the embeddings' metadata; ``--encoder imagestats`` is the
   weight-free choice.
5. ``manifest_original.parquet`` (the preset's types, nothing reshaped),
   ``manifest_paper.parquet`` (the paper's rule) and ``manifest_reshaped.parquet`` (reshaped to the
   size of the original set, so the comparison is at equal size): ``reshape``.
6. ``report/``: ``analyze`` of the corpus, pool and reshaped manifest.
7. ``export/``: the reshaped manifest as a pyiqa meta-info CSV + options YAML.
8. ``runs/{original,paper,reshaped}``: ``train --head-only`` on each manifest (a quarter of the
   training references held out for model selection), evaluated on the held-out test set; the
   comparison is written to ``comparison.json`` and printed by the CLI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from curate.errors import CurateError, WeightsUnavailable
from curate.fsio import atomic_write_text
from curate.jsonio import json_text

DEFAULT_PRESET = "livec"
ENCODER_FALLBACK = "timm"  # its default: the packaged ImageNet EfficientNet-Lite0, pretrained and offline
TRAIN_SEED = 123
VAL_FRACTION = 0.25  # of the training references, held out for model selection


@dataclass
class DemoResult:
    """Paths the demo wrote and the comparison of the two head-only runs."""

    out_dir: Path
    encoder: str
    manifests: dict[str, Path]
    report: Path
    export: Path
    runs: dict[str, Path]
    comparison: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        click.echo(message, err=True)


def _embed_all(
    corpora: dict[str, Path], out: Path, encoder: str, workers: int, quiet: bool
) -> tuple[dict[str, Path], str, list[str]]:
    """Embed each corpus with one encoder; ``auto``: CLIP if its weights are here, else EfficientNet-Lite0.

    The choice, and the reason for a fallback, are recorded in the embeddings' metadata (``notes``).
    """
    from curate.embed.runner import embed_corpus

    warnings: list[str] = []
    chosen = "clip" if encoder == "auto" else encoder
    dirs = {name: out / "embeddings" / name for name in corpora}
    notes: list[str] = ["demo: --encoder auto chose clip (its weights are available)"] if encoder == "auto" else []
    first = next(iter(corpora))
    done: set[str] = set()
    try:
        # Weights are resolved before any shard is written, so a fallback starts from nothing.
        embed_corpus(corpora[first], dirs[first], encoder=chosen, workers=workers, notes=notes, quiet=quiet)
        done.add(first)
    except WeightsUnavailable as exc:
        if encoder != "auto":
            raise
        reason = str(exc).splitlines()[0]
        message = (
            f"CLIP weights are not available on this machine ({reason}). The demo uses the packaged "
            "ImageNet EfficientNet-Lite0 (timm, offline) instead. Supply CLIP weights with "
            "'curate embed --pretrained FILE|local-dir:DIR' to use CLIP."
        )
        click.secho(message, err=True, fg="yellow", bold=True)
        warnings.append(message)
        chosen = ENCODER_FALLBACK
        notes = [f"demo fallback: CLIP unavailable ({reason}); used the packaged EfficientNet-Lite0"]
        try:
            embed_corpus(corpora[first], dirs[first], encoder=chosen, workers=workers, notes=notes, quiet=quiet)
        except WeightsUnavailable as fallback:
            raise CurateError(
                f"--encoder auto: neither CLIP weights ({reason}) nor the packaged EfficientNet-Lite0 "
                f"({str(fallback).splitlines()[0]}) are available; install it or use --encoder imagestats "
                "(weight-free)"
            ) from None
        done.add(first)
    for name, corpus in corpora.items():
        if name not in done:
            embed_corpus(corpus, dirs[name], encoder=chosen, workers=workers, notes=notes, quiet=quiet)
    return dirs, chosen, warnings


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    workers: int = 2,
    encoder: str = "auto",
    preset: str = DEFAULT_PRESET,
    all_types: bool = True,
    quiet: bool = False,
) -> DemoResult:
    """Run every step of the pipeline on the demo corpus under ``out_dir`` and compare manifests.

    ``all_types=False`` renders the demo corpus with the preset's types only (a quicker run with
    the same steps, used by the tests). ``encoder="auto"`` uses CLIP when its weights are available
    and otherwise the packaged ImageNet EfficientNet-Lite0 (timm), saying so.
    """
    from curate.analyze.params import AnalyzeParams
    from curate.analyze.report import analyze
    from curate.corpus import ingest
    from curate.corpus.options import ReaderOptions
    from curate.demo.corpus import build_demo_corpus
    from curate.distort.presets import parse_types
    from curate.distort.synthesize import synthesize
    from curate.export import export_manifest
    from curate.reshape.params import ReshapeParams
    from curate.reshape.pipeline import reshape
    from curate.train import train

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    types = parse_types(preset)

    _say(f"[1/8] demo corpus -> {out / 'data'}", quiet)
    corpus_types = tuple(range(1, 26)) if all_types else types
    demo = build_demo_corpus(
        out / "data", seed=seed, workers=workers, types=corpus_types, target_types=types, quiet=quiet
    )

    _say("[2/8] ingest train, pool and test", quiet)
    corpus = out / "corpus.parquet"
    pool_refs = out / "pool_refs.parquet"
    test_corpus = out / "test_corpus.parquet"
    ingest("kadid10k", demo.train_dir, corpus, ReaderOptions(source="demo-train"))
    ingest("folder", demo.pool_dir, pool_refs, ReaderOptions(source="demo-pool"))
    ingest("kadid10k", demo.test_dir, test_corpus, ReaderOptions(source="demo-test"))

    _say(f"[3/8] synthesize the pool's distorted versions (preset {preset}: types {list(types)})", quiet)
    pool_summary = synthesize(pool_refs, out / "pool", types=types, workers=workers, seed=seed, quiet=quiet)
    pool_corpus = Path(pool_summary.corpus_path)

    _say("[4/8] embed", quiet)
    emb, chosen, warnings = _embed_all(
        {"train": corpus, "pool": pool_corpus, "test": test_corpus}, out, encoder, workers, quiet
    )

    _say("[5/8] reshape", quiet)
    manifests = {
        "original": out / "manifest_original.parquet",
        "paper": out / "manifest_paper.parquet",
        "reshaped": out / "manifest_reshaped.parquet",
    }
    # The original training set: the selected types, DRCDown off, no pool.
    original = reshape(corpus, emb["train"], manifests["original"], params=ReshapeParams(types=preset, seed=seed, drc=False))
    paper = reshape(
        corpus, emb["train"], manifests["paper"], pool=pool_corpus, pool_embeddings=emb["pool"],
        params=ReshapeParams(types=preset, seed=seed),
    )
    # Reshaped to the original set's size, so the two training runs compare at equal size.
    reshaped = reshape(
        corpus, emb["train"], manifests["reshaped"], pool=pool_corpus, pool_embeddings=emb["pool"],
        params=ReshapeParams(types=preset, seed=seed, target_size=len(original.manifest)),
    )
    rows = {"original": len(original.manifest), "paper": len(paper.manifest), "reshaped": len(reshaped.manifest)}
    upsampled = {
        name: int((result.manifest["origin"] == "upsampled").sum())
        for name, result in (("original", original), ("paper", paper), ("reshaped", reshaped))
    }

    _say(f"[6/8] analyze -> {out / 'report'}", quiet)
    analyze(
        corpus, emb["train"], out / "report", pool=pool_corpus, pool_embeddings=emb["pool"],
        manifest=manifests["reshaped"], params=AnalyzeParams(types=types, seed=seed), quiet=True,
    )

    _say("[7/8] export the reshaped manifest for pyiqa", quiet)
    export_dir = out / "export"
    export_manifest(manifests["reshaped"], export_dir / "manifest_reshaped.csv", fmt="pyiqa")

    _say("[8/8] train --head-only on each manifest, test on the held-out demo set", quiet)
    runs = {name: out / "runs" / name for name in manifests}
    comparison: dict[str, dict[str, Any]] = {}
    for name, run_dir in runs.items():
        summary = train(
            manifests[name], run_dir, head_only=True, embeddings=[emb["train"], emb["pool"]],
            eval_sets={"demo-test": test_corpus}, eval_embeddings={"demo-test": emb["test"]},
            quiet=True, seed=TRAIN_SEED, val_fraction=VAL_FRACTION,
        )
        comparison[name] = {"rows": rows[name], "upsampled": upsampled[name], "summary": summary}
    atomic_write_text(out / "comparison.json", json_text(comparison, sort_keys=True))
    return DemoResult(out, chosen, manifests, out / "report" / "index.html", export_dir, runs, comparison, warnings)


def comparison_table(result: DemoResult) -> str:
    """One line per manifest: rows, upsampled rows, and test SRCC/PLCC at the last and val-best epoch."""
    header = f"{'manifest':<10} {'rows':>6} {'upsampled':>9}  {'SRCC last':>9} {'PLCC last':>9}  {'SRCC val-best':>13} {'PLCC val-best':>13}"
    lines = [header, "-" * len(header)]
    for name, entry in result.comparison.items():
        summary = entry["summary"]
        cells = []
        for key in ("last", "val_best"):
            metrics = ((summary.get(key) or {}).get("eval") or {}).get("demo-test") or {}
            cells += [metrics.get("srcc"), metrics.get("plcc")]
        text = ["-" if v is None else f"{v:.4f}" for v in cells]
        lines.append(
            f"{name:<10} {entry['rows']:>6} {entry['upsampled']:>9}  {text[0]:>9} {text[1]:>9}  {text[2]:>13} {text[3]:>13}"
        )
    return "\n".join(lines)
