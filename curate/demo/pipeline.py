"""``curate demo``: the whole pipeline on the bundled demo corpus, end to end, offline.

Steps (every one is the same library function its CLI verb calls; every output lands under DIR):

1. ``data/``: the demo corpus (train in KADID layout, a candidate pool, a held-out test set of
   photos found nowhere else; :mod:`curate.demo.corpus`).
2. ``corpus.parquet``, ``pool_refs.parquet``, ``test_corpus.parquet``: ``ingest``.
3. ``pool/``: ``synthesize`` of the pool references (the preset's types, all five levels).
4. ``embeddings/{train,pool,test}``: ``embed`` with CLIP when its weights are available here, else
   the packaged ImageNet EfficientNet-Lite0 (timm, installed from the package index, offline), with
   a note that is also recorded in the embeddings' metadata; ``--encoder imagestats`` is the
   weight-free choice.
5. ``manifest_paper.parquet`` (+ ``decisions_paper.parquet``): ``reshape`` by the paper's rule,
   the manifest a user would train on.
6. ``compare/``: ``compare``, the method's ablation (original, DRCDown only, DDCUp only, the paper's
   rule, every candidate, the paper's rule at the original's size) with the head-only regressor over
   several seeds, each seed holding out its own validation references before reshaping, tested on
   the held-out demo set; mean, spread, bootstrap interval and a verdict per variant. The test
   references are crops of a few photos, so the bootstrap resamples photos
   (``test_photos.csv``, ``--resample-groups``).
7. ``report/``: ``analyze`` of the corpus, pool and paper manifest, with the comparison.
8. ``export/``: the paper manifest as a pyiqa meta-info CSV + options YAML.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from curate.embed.config import FALLBACK_NOTE
from curate.errors import CurateError, WeightsUnavailable
from curate.fsio import atomic_write_text

if TYPE_CHECKING:
    from curate.compare.runner import CompareResult

DEFAULT_PRESET = "livec"
ENCODER_FALLBACK = "timm"  # its default: the packaged ImageNet EfficientNet-Lite0, pretrained and offline
DEFAULT_SEEDS = 3
# The head-only regressor's weight decay on the demo: chosen on a validation split of the training
# photos (tools/demo_design.py, step 3: 1e-2 ranked held-out photos better than the trainer's
# default and varied less over splits), never on the test set.
HEAD_WEIGHT_DECAY = 1e-2
TEST_SET = "demo-test"


@dataclass
class DemoResult:
    """Paths the demo wrote and its comparison of the ablation's variants."""

    out_dir: Path
    encoder: str
    manifest: Path
    report: Path
    export: Path
    comparison: CompareResult
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The comparison's table and verdicts, as ``curate compare`` prints them."""
        return self.comparison.lines()


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
        notes = [f"{FALLBACK_NOTE} CLIP unavailable ({reason}); used the packaged EfficientNet-Lite0"]
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
    seeds: int = DEFAULT_SEEDS,
    all_types: bool = True,
    quiet: bool = False,
) -> DemoResult:
    """Run every step of the pipeline on the demo corpus under ``out_dir``, and the ablation.

    ``seeds``: training seeds per variant of the comparison (each with its own validation split).
    ``all_types=False`` renders the demo corpus's KADID-like grid with the preset's types only (a
    quicker run with the same steps, used by the tests). ``encoder="auto"`` uses CLIP when its
    weights are available and otherwise the packaged ImageNet EfficientNet-Lite0 (timm), saying so.
    A rerun into the same folder reuses what is done (images, embeddings, the comparison's runs).
    """
    from curate.analyze.params import AnalyzeParams
    from curate.analyze.report import analyze
    from curate.compare import CompareParams, compare
    from curate.corpus import ingest
    from curate.corpus.options import ReaderOptions
    from curate.demo.corpus import build_demo_corpus
    from curate.distort.presets import parse_types
    from curate.distort.synthesize import synthesize
    from curate.export import export_manifest
    from curate.reshape.params import ReshapeParams
    from curate.reshape.pipeline import reshape

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

    _say("[5/8] reshape by the paper's rule", quiet)
    manifest = out / "manifest_paper.parquet"
    reshape(
        corpus, emb["train"], manifest, pool=pool_corpus, pool_embeddings=emb["pool"],
        params=ReshapeParams(types=preset, seed=seed),
    )

    _say(f"[6/8] compare the ablation's variants ({seeds} seeds, head-only) -> {out / 'compare'}", quiet)
    # The test references are crops of a few photos: the bootstrap resamples whole photos.
    photos = out / "test_photos.csv"
    references = json.loads(demo.info_path.read_text(encoding="utf-8"))["test"]["references"]
    atomic_write_text(photos, "ref_id,group\n" + "".join(f"{r['name']},{r['photo']}\n" for r in references))
    comparison = compare(
        corpus, emb["train"], out / "compare", eval_sets={TEST_SET: test_corpus},
        eval_embeddings={TEST_SET: emb["test"]}, pool=pool_corpus, pool_embeddings=emb["pool"],
        params=CompareParams(types=types, seeds=seeds, resample_groups=str(photos),
                             train={"weight_decay": HEAD_WEIGHT_DECAY}),
        quiet=quiet,
    )

    _say(f"[7/8] analyze -> {out / 'report'}", quiet)
    analyze(
        corpus, emb["train"], out / "report", pool=pool_corpus, pool_embeddings=emb["pool"],
        manifest=manifest, compare=out / "compare", params=AnalyzeParams(types=types, seed=seed), quiet=True,
    )

    _say("[8/8] export the paper manifest for pyiqa", quiet)
    export_dir = out / "export"
    export_manifest(manifest, export_dir / "manifest_paper.csv", fmt="pyiqa")
    return DemoResult(out, chosen, manifest, out / "report" / "index.html", export_dir, comparison, warnings)
