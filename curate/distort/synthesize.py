"""``curate synthesize``: render KADID-style distorted versions of reference images.

Input: a corpus table (its reference rows, paths resolved against its ``root``; a relative root is
taken from the table's folder) or a folder of images (each top-level image a reference; for nested
folders run ``curate ingest folder`` first and pass its corpus). References above ``max_pixels``
(default 16 megapixels, :data:`~curate.distort.registry.MAX_PIXELS`) are rejected unread. Output
folder ``DIR`` (not the folder of the references):

* ``{ref}_{tt:02d}_{ll:02d}.png`` for every reference, type and level (KADID naming; ``{ref}`` is the
  reference file's stem) and ``{ref}.png``, the reference as it was distorted (8-bit RGB);
* ``corpus.parquet``: the references and their unscored distorted versions in the corpus format
  (``root`` = DIR; a distorted row shares ``ref_id`` with the source reference, so DDCUp can join
  pool images to pool references by ref_id, distortion and level);
* ``rejects.parquet``: every reference or output that could not be made, with its reason.

Each output's randomness comes from :func:`~curate.distort.registry.distortion_rng` (seed,
reference stem, type, level), so the images are the same whatever ``workers`` is. Work is spread
over worker processes in (reference, type) tasks; the workers exit when the run is killed. Reruns
keep outputs that already exist (all writes are atomic, so an existing file is complete). A run
holds the folder's lock (``.curate.lock``) from start to end: a second run into the same folder is
refused, whatever its seed, and the hidden temporary files a killed run left there are removed
when the next run starts.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from PIL import Image

from curate.distort.names import output_name, reference_name
from curate.distort.presets import ALL_TYPES
from curate.distort.registry import DISTORTIONS, LEVELS, MAX_PIXELS, distortion_rng
from curate.errors import CurateError, ImageError
from curate.fsio import atomic_path, atomic_write_text, fingerprint, folder_lock, remove_stale_temporaries
from curate.images import load_rgb, reject_reason
from curate.progress import Progress
from curate.schema import corpus_root, make_metadata, read_corpus, write_table

SOURCE = "synthesized"
_OUTPUT_PATTERN = re.compile(r"^(.+)_(\d\d)_(\d\d)$")
CORPUS_NAME = "corpus.parquet"
REJECTS_NAME = "rejects.parquet"
# What made the images in a folder: the seed, the generator version and each reference's content.
# A rerun into the same folder must match it, so existing images are never reused under another seed.
IDENTITY_NAME = "synthesis.json"
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"})
# PNG zlib level: 3 writes about 2.5x faster than the default 6 for files about 7% larger.
PNG_COMPRESS_LEVEL = 3

# Worker start: fork where the platform has it, so workers start at once instead of re-importing
# numpy/scipy/scikit-image (seconds each). The parent holds no locks at that point (only idle
# library thread pools), and the workers need nothing from it but the task. Elsewhere: spawn.
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"

# A scorer maps (reference, distorted) uint8 arrays to (score, variance); used by the demo corpus.
Scorer = Callable[[np.ndarray, np.ndarray], tuple[float, float]]
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Reference:
    """One reference image to distort. ``key`` is its file stem: it names the outputs and seeds them."""

    key: str
    path: Path
    sample_id: str
    ref_id: str
    split: str | None = None


@dataclass(frozen=True)
class RenderTask:
    """Make ``types`` x ``levels`` of one reference in ``out_dir`` (and its 8-bit copy if asked)."""

    reference: Reference
    out_dir: Path
    types: tuple[int, ...]
    levels: tuple[int, ...]
    seed: int
    max_pixels: int = MAX_PIXELS
    write_reference: bool = False
    scorer: Scorer | None = None


@dataclass
class RenderedImage:
    distortion: int
    level: int
    status: str  # "written" or "kept"
    score: float | None = None
    variance: float | None = None


@dataclass
class RenderResult:
    """What one task made; ``load_error`` = (reason, message) when the reference could not be read."""

    key: str
    images: list[RenderedImage] = field(default_factory=list)
    failures: list[tuple[int, int, str, str]] = field(default_factory=list)
    load_error: tuple[str, str] | None = None
    reference_status: str | None = None


@dataclass
class SynthesisSummary:
    out_dir: Path
    corpus_path: Path
    rejects_path: Path
    references: int
    distorted: int
    written: int  # distorted images made by this run
    kept: int  # distorted images found complete from an earlier run
    rejected: int
    gallery_path: Path | None = None


def write_png(path: Path, image: np.ndarray) -> None:
    """Write a uint8 H x W x 3 array as PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(image, mode="RGB").save(tmp, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def _complete(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def render_task(task: RenderTask) -> RenderResult:
    """Make (or keep) every output of one task. Runs in a worker process; never raises for one image."""
    ref = task.reference
    result = RenderResult(key=ref.key)
    out_dir = task.out_dir
    wanted = [(t, lv) for t in task.types for lv in task.levels]
    missing = [(t, lv) for t, lv in wanted if not _complete(out_dir / output_name(ref.key, t, lv))]
    ref_copy = out_dir / reference_name(ref.key)
    need_copy = task.write_reference and not _complete(ref_copy)
    if not missing and not need_copy and task.scorer is None:
        result.images = [RenderedImage(t, lv, "kept") for t, lv in wanted]
        if task.write_reference:
            result.reference_status = "kept"
        return result
    try:
        image = load_rgb(ref.path, max_pixels=task.max_pixels)
    except ImageError as exc:
        result.load_error = (reject_reason(exc), str(exc))
        return result
    if task.write_reference:
        try:
            if need_copy:
                write_png(ref_copy, image)
            result.reference_status = "written" if need_copy else "kept"
        except OSError as exc:
            result.load_error = ("write_failed", f"{ref_copy}: {exc}")
            return result
    missing_set = set(missing)
    for t, lv in wanted:
        path = out_dir / output_name(ref.key, t, lv)
        try:
            if (t, lv) in missing_set:
                distorted = DISTORTIONS[t](image, lv, distortion_rng(task.seed, ref.key, t, lv))
                write_png(path, distorted)
                status = "written"
            else:
                distorted = load_rgb(path) if task.scorer is not None else None
                status = "kept"
        except ImageError as exc:
            result.failures.append((t, lv, reject_reason(exc), str(exc)))
            continue
        except OSError as exc:
            result.failures.append((t, lv, "write_failed", f"{path}: {exc}"))
            continue
        except Exception as exc:  # one bad output must not stop the others; it is recorded
            result.failures.append((t, lv, "distort_failed", f"{type(exc).__name__}: {exc}"))
            continue
        rendered = RenderedImage(t, lv, status)
        if task.scorer is not None and distorted is not None:
            rendered.score, rendered.variance = task.scorer(image, distorted)
        result.images.append(rendered)
    return result


class _Tasks:
    """``func(items[i])`` as a map-style dataset, so a DataLoader's workers run the tasks."""

    def __init__(self, func: Callable[[Any], Any], items: Sequence[Any]) -> None:
        self.func = func
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.func(self.items[index])


def _as_is(result: Any) -> Any:
    return result


def run_parallel(
    func: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    *,
    desc: str,
    unit: str,
    weights: Sequence[int] | None = None,
    quiet: bool = False,
) -> list[R]:
    """``[func(item) for item in items]`` on ``workers`` processes, results in input order.

    The processes are the workers of a torch DataLoader, the pool ``curate embed`` decodes with:
    each worker watches its parent and exits when the parent is gone, so a killed run leaves no
    worker behind (a worker finishes at most the task in hand, then exits within about 5 s), and
    a worker that dies fails the run instead of hanging it. At most ``4 * workers`` tasks are
    queued at once, so millions of tasks never sit in memory. ``weights`` (units of progress per
    item) defaults to one per item. ``workers <= 1`` runs here.
    """
    weights = list(weights) if weights is not None else [1] * len(items)
    results: list[Any] = [None] * len(items)
    with Progress(sum(weights), desc, unit, quiet=quiet) as bar:
        if workers <= 1 or len(items) <= 1:
            for i, item in enumerate(items):
                results[i] = func(item)
                bar.update(weights[i])
            return results
        from torch.utils.data import DataLoader

        loader = DataLoader(
            _Tasks(func, items),
            batch_size=None,
            collate_fn=_as_is,
            num_workers=min(workers, len(items)),
            multiprocessing_context=START_METHOD,
            prefetch_factor=4,
        )
        for i, result in enumerate(loader):
            results[i] = result
            bar.update(weights[i])
    return results


# --------------------------------------------------------------------------------------------
# Inputs


def collect_references(refs: str | os.PathLike[str], *, source: str = SOURCE) -> tuple[list[Reference], dict[str, Any]]:
    """The references of a corpus table or a folder of images, sorted by key, and an input fingerprint."""
    refs_path = Path(refs)
    if refs_path.is_dir():
        files = sorted(p for p in refs_path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise CurateError(f"{refs_path}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in this folder")
        references = [
            Reference(key=p.stem, path=p, sample_id=f"{source}/{p.stem}", ref_id=f"{source}/{p.stem}") for p in files
        ]
    elif refs_path.is_file():
        references = _corpus_references(refs_path, source)
    else:
        raise CurateError(f"{refs_path}: no such corpus file or image folder")
    references.sort(key=lambda r: r.key)
    _check_names(references, refs_path)
    return references, {"refs": {"path": str(refs_path), **fingerprint(refs_path)}}


def _corpus_references(path: Path, source: str) -> list[Reference]:
    frame, meta = read_corpus(path)
    root = corpus_root(meta, path)
    rows = frame[frame["is_reference"].fillna(False).astype(bool)]
    if rows.empty:
        raise CurateError(f"{path}: the corpus has no reference rows (is_reference = true) to distort")
    references = []
    for row in rows.itertuples(index=False):
        key = PurePosixPath(row.path).stem
        split = None if pd.isna(row.split) else str(row.split)
        references.append(
            Reference(key=key, path=root / row.path, sample_id=f"{source}/{key}", ref_id=str(row.ref_id), split=split)
        )
    return references


def _check_names(references: Sequence[Reference], where: Path) -> None:
    seen: dict[str, Reference] = {}
    for ref in references:
        if ref.key in seen:
            raise CurateError(
                f"{where}: references {seen[ref.key].path} and {ref.path} share the file stem {ref.key!r}; "
                "output names would collide"
            )
        seen[ref.key] = ref
    # A reference copy named like another reference's output ('a_01_01' next to 'a') would collide.
    for ref in references:
        match = _OUTPUT_PATTERN.match(ref.key)
        if match and match.group(1) in seen and int(match.group(2)) in DISTORTIONS and int(match.group(3)) in LEVELS:
            raise CurateError(
                f"{where}: reference {ref.key!r} has the name of an output of reference {match.group(1)!r}"
            )


# --------------------------------------------------------------------------------------------
# The pipeline


def synthesize(
    refs: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    types: Iterable[int] = ALL_TYPES,
    levels: Iterable[int] = LEVELS,
    workers: int = 1,
    seed: int = 0,
    max_rejects: int | None = None,
    max_pixels: int = MAX_PIXELS,
    gallery: str | os.PathLike[str] | None = None,
    source: str = SOURCE,
    quiet: bool = False,
) -> SynthesisSummary:
    """Render every (reference, type, level) of ``refs`` into ``out_dir``; write the corpus and rejects.

    ``max_rejects``: fail (CurateError, after writing the rejects table) when more rejects than this
    occur; ``None`` never fails for rejects. References above ``max_pixels`` pixels are rejected
    (``too_large``). ``gallery``: also draw one reference under every type and level into this PNG.
    """
    types = tuple(sorted(set(int(t) for t in types)))
    levels = tuple(sorted(set(int(lv) for lv in levels)))
    bad = [t for t in types if t not in DISTORTIONS] + [lv for lv in levels if lv not in LEVELS]
    if not types or not levels or bad:
        raise CurateError(f"types must be 1-25 and levels 1-5 (got types {types}, levels {levels})")
    if workers < 1:
        raise CurateError(f"workers must be at least 1 (got {workers})")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CurateError(f"{out}: exists and is not a folder")
    if Path(refs).is_dir() and out.resolve() == Path(refs).resolve():
        raise CurateError(f"{out}: write the outputs to another folder than the reference images")
    references, inputs = collect_references(refs, source=source)
    with folder_lock(out, "synthesize"):
        remove_stale_temporaries(out)  # left by a killed run (a single-worker run writes in this process)
        _claim_folder(out, references, seed)
        # The corpus table is written last; an older one must not sit beside a half-finished run.
        (out / CORPUS_NAME).unlink(missing_ok=True)

        tasks = [
            RenderTask(ref, out, (t,), levels, seed, max_pixels=max_pixels, write_reference=(i == 0))
            for ref in references
            for i, t in enumerate(types)
        ]
        results = run_parallel(
            render_task, tasks, workers, desc="synthesize", unit="img", weights=[len(levels)] * len(tasks),
            quiet=quiet,
        )
        rows, rejects, written, kept = _collect(references, tasks, results, source)

        params = {
            "types": list(types),
            "levels": list(levels),
            "generator": "kadid",
            "max_pixels": max_pixels,
            "source": source,
        }
        rejects_path = out / REJECTS_NAME
        reject_frame = pd.DataFrame(rejects, columns=["sample_id", "path", "stage", "reason", "message"])
        reject_meta = make_metadata("rejects", params=params, seed=seed, inputs=inputs)
        write_table(reject_frame, rejects_path, "rejects", reject_meta)
        if max_rejects is not None and len(rejects) > max_rejects:
            raise CurateError(
                f"{len(rejects)} rejects exceed --max-rejects {max_rejects}; see {rejects_path} "
                "(no corpus table was written; rerun to resume)"
            )
        if not any(row["is_reference"] for row in rows):
            raise CurateError(f"no reference could be distorted; see {rejects_path}")
        corpus_path = out / CORPUS_NAME
        frame = pd.DataFrame(rows)
        meta = make_metadata("corpus", params=params, seed=seed, inputs=inputs, root=str(out.resolve()))
        write_table(frame, corpus_path, "corpus", meta)

        gallery_path = None
        if gallery is not None:
            from curate.distort.gallery import gallery_from_folder

            first = next(r for r in references if any(row["sample_id"] == r.sample_id for row in rows))
            gallery_path = gallery_from_folder(out, first.key, types, levels, gallery)
    return SynthesisSummary(
        out_dir=out,
        corpus_path=corpus_path,
        rejects_path=rejects_path,
        references=sum(1 for row in rows if row["is_reference"]),
        distorted=sum(1 for row in rows if not row["is_reference"]),
        written=written,
        kept=kept,
        rejected=len(rejects),
        gallery_path=gallery_path,
    )


def _claim_folder(out: Path, references: Sequence[Reference], seed: int) -> None:
    """Check (or start) the folder's identity file; refuse a folder rendered otherwise.

    Images already in ``out`` are kept only when they were made with the same seed and generator
    version from the same reference content; anything else is refused with what differs.
    """
    import json

    from curate import __version__

    path = out / IDENTITY_NAME
    contents = {ref.key: fingerprint(ref.path) for ref in references if ref.path.is_file()}
    identity: dict[str, Any] = {"seed": int(seed), "generator": f"kadid/curate-{__version__}", "references": {}}
    if path.exists():
        try:
            previous = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CurateError(f"{path}: unreadable ({exc}); remove it to render this folder afresh") from None
        for key in ("seed", "generator"):
            if previous.get(key) != identity[key]:
                raise CurateError(
                    f"{out}: its images were rendered with {key} {previous.get(key)!r}, not {identity[key]!r}; "
                    "render into a new folder (or rerun with the same settings to resume)"
                )
        identity["references"] = dict(previous.get("references", {}))
        for key, content in contents.items():
            before = identity["references"].get(key)
            if before is not None and before != content:
                raise CurateError(
                    f"{out}: reference {key!r} has changed since its images were rendered; "
                    "render into a new folder"
                )
    elif any(out.glob("*.png")):
        raise CurateError(f"{out}: holds images but no {IDENTITY_NAME}; render into a new or empty folder")
    identity["references"].update(contents)
    atomic_write_text(path, json.dumps(identity, indent=1, sort_keys=True) + "\n")


def _collect(
    references: Sequence[Reference], tasks: Sequence[RenderTask], results: Sequence[RenderResult], source: str
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str, str, str]], int, int]:
    """Corpus rows and reject rows from the task results; counts of images written and kept."""
    by_key: dict[str, list[RenderResult]] = {}
    for task, result in zip(tasks, results, strict=True):
        by_key.setdefault(task.reference.key, []).append(result)
    rows: list[dict[str, Any]] = []
    rejects: list[tuple[str, str, str, str, str]] = []
    written = kept = 0
    for ref in references:
        parts = by_key.get(ref.key, [])
        failed = next((p.load_error for p in parts if p.load_error is not None), None)
        if failed is not None:
            rejects.append((ref.sample_id, str(ref.path), "synthesize", failed[0], failed[1]))
            continue
        rows.append(_row(ref, source, reference_name(ref.key), None, None))
        for part in parts:
            for image in part.images:
                rows.append(_row(ref, source, output_name(ref.key, image.distortion, image.level),
                                 image.distortion, image.level))
                written += image.status == "written"
                kept += image.status == "kept"
            for t, lv, reason, message in part.failures:
                name = output_name(ref.key, t, lv)
                rejects.append((f"{source}/{Path(name).stem}", name, "synthesize", reason, message))
    return rows, rejects, written, kept


def _row(ref: Reference, source: str, name: str, distortion: int | None, level: int | None) -> dict[str, Any]:
    return {
        "sample_id": ref.sample_id if distortion is None else f"{source}/{Path(name).stem}",
        "path": name,
        "ref_id": ref.ref_id,
        "is_reference": distortion is None,
        "distortion": distortion,
        "level": level,
        "score": None,
        "score_raw": None,
        "source": source,
        "split": ref.split,
    }
