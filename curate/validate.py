"""``curate validate``: check any curate table (or an embeddings folder) and summarise it.

:func:`validate` detects what ``path`` is from its ``curate`` metadata (corpus, manifest,
decisions, rejects) or, for a folder, reads it as embeddings shards; the shared readers in
:mod:`curate.schema` do the checking. An embeddings folder must also be complete: every sample its
run was given (the shards' ``corpus.samples``) is in a finished shard, embedded or rejected. With
``check_files`` every image of a corpus or manifest is opened with :func:`curate.images.open_rgb`
and each failure is reported (optionally written as a rejects table).
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curate import schema
from curate.errors import CurateError, ImageError, TableError
from curate.fsio import fingerprint
from curate.images import open_rgb
from curate.progress import Progress


@dataclass
class FileFailure:
    """One image that could not be opened: ``reason`` is open_rgb's code (missing, truncated, ...)."""

    sample_id: str
    path: str
    reason: str
    message: str


@dataclass
class ValidationReport:
    """What :func:`validate` found. ``summary`` is an ordered mapping of label -> printable value."""

    path: Path
    kind: str
    summary: dict[str, Any]
    failures: list[FileFailure] = field(default_factory=list)
    checked_files: int = 0

    def lines(self) -> list[str]:
        out = [f"{self.path}: valid {self.kind}"]
        width = max((len(k) for k in self.summary), default=0)
        out += [f"  {k:<{width}}  {v}" for k, v in self.summary.items()]
        if self.checked_files:
            out.append(f"  {'files':<{width}}  {self.checked_files - len(self.failures)} of {self.checked_files} open")
        return out


def validate(
    path: str | os.PathLike[str],
    *,
    check_files: bool = False,
    workers: int | None = None,
    rejects: str | os.PathLike[str] | None = None,
    quiet: bool = False,
) -> ValidationReport:
    """Validate ``path`` and summarise it; raises :class:`~curate.errors.TableError` when invalid.

    ``check_files``: open every image of a corpus/manifest (``workers`` threads) and record
    failures in ``report.failures``; ``rejects``: also write them as a rejects table there.
    """
    p = Path(path)
    if not p.exists():
        raise CurateError(f"{p}: no such file or folder")
    if p.is_dir():
        if check_files:
            raise CurateError(f"{p}: --check-files applies to a corpus or manifest table, not embeddings")
        folder = schema.EmbeddingsFolder(p)
        coverage = schema.embeddings_coverage(p)
        if coverage.missing:
            raise TableError(
                f"{p}: incomplete embeddings folder: {coverage.missing} of the {coverage.samples} samples its "
                f"run was given are missing ({coverage.shards} of {coverage.shards_expected} shards written); "
                "rerun the 'curate embed' command that made it to finish it"
            )
        enc = folder.encoder
        rows = folder.verify()
        summary = {
            "rows": rows,
            "shards": len(folder.shards),
            "dim": folder.dim,
            "dtype": folder.dtype,
            "encoder": enc.get("name", "?") + (f" ({enc['model']})" if enc.get("model") else ""),
        }
        if coverage.samples is not None:
            summary["samples"] = f"{coverage.samples} ({rows} embedded, {len(coverage.rejected)} rejected)"
        return ValidationReport(p, "embeddings folder", summary)
    meta = schema.read_metadata(p)
    fmt = meta["format"]
    if fmt == "embeddings":
        raise CurateError(f"{p}: is one embeddings shard; validate its folder {p.parent}")
    frame, meta = schema.read_frame(p, fmt)
    if fmt in ("corpus", "manifest"):
        summary = _corpus_summary(frame)
        if fmt == "manifest":
            summary.update(_manifest_summary(frame))
    elif fmt == "decisions":
        summary = {
            "rows": len(frame),
            "kept": int(frame["kept"].sum()),
            "reasons": _counts(frame["reason"]),
            "stages": _counts(frame["stage"]),
        }
    else:
        summary = {"rows": len(frame), "reasons": _counts(frame["reason"]), "stages": _counts(frame["stage"])}
    report = ValidationReport(p, fmt, summary)
    if check_files:
        if fmt not in ("corpus", "manifest"):
            raise CurateError(f"{p}: --check-files applies to a corpus or manifest table, not {fmt}")
        roots = _roots(meta, fmt, frame, p)
        report.failures = check_images(frame, roots, workers=workers, quiet=quiet)
        report.checked_files = len(frame)
        if rejects is not None:
            write_failures(report.failures, rejects, source_table=p)
    return report


def _corpus_summary(frame: pd.DataFrame) -> dict[str, Any]:
    scores = frame["score"].to_numpy(dtype=np.float64, na_value=np.nan)
    scored = scores[~np.isnan(scores)]
    raw = frame["score_raw"].to_numpy(dtype=np.float64, na_value=np.nan)
    raw = raw[~np.isnan(raw)]
    summary: dict[str, Any] = {
        "rows": len(frame),
        "references": int(frame["is_reference"].sum()),
        "contents": int(frame["ref_id"].nunique()),
        "distortions": _distinct(frame["distortion"]),
        "levels": _distinct(frame["level"]),
        "scored": f"{len(scored)} of {len(frame)}",
        "score range": f"{scored.min():.3f} - {scored.max():.3f}" if len(scored) else "-",
        "raw score range": f"{raw.min():.4g} - {raw.max():.4g}" if len(raw) else "-",
        "sources": _counts(frame["source"]),
    }
    if frame["split"].notna().any():
        summary["splits"] = _counts(frame["split"].fillna("(none)"))
    return summary


def _manifest_summary(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "origins": _counts(frame["origin"]),
        "label kinds": _counts(frame["label_kind"]),
        "redundancy groups": int(frame.loc[frame["group_id"] >= 0, "group_id"].nunique()),
    }


def _distinct(values: pd.Series) -> str:
    present = values.dropna()
    if present.empty:
        return "-"
    uniq = sorted(int(v) for v in present.unique())
    shown = ", ".join(map(str, uniq[:30])) + (" ..." if len(uniq) > 30 else "")
    return f"{len(uniq)} ({shown})"


def _counts(values: pd.Series) -> str:
    counts = Counter(str(v) for v in values)
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))


def _roots(meta: dict[str, Any], fmt: str, frame: pd.DataFrame, where: Path) -> dict[str, Path]:
    if fmt == "corpus":
        root = schema.corpus_root(meta, where)
        return {s: root for s in frame["source"].unique()}
    return {s: Path(meta["roots"][s]) for s in frame["source"].unique()}


def check_images(
    frame: pd.DataFrame, roots: dict[str, Path], *, workers: int | None = None, quiet: bool = False
) -> list[FileFailure]:
    """Open every image (``root of its source / path``); return the failures, in table order."""
    jobs = [
        (sid, path, roots[src] / path)
        for sid, path, src in zip(frame["sample_id"], frame["path"], frame["source"], strict=True)
    ]
    workers = workers or min(8, os.cpu_count() or 1)

    def one(job: tuple[str, str, Path]) -> FileFailure | None:
        sid, rel, full = job
        try:
            open_rgb(full)
        except ImageError as exc:
            message = str(exc)
            return FileFailure(sid, rel, message.split(":", 1)[0], message)
        return None

    failures: list[FileFailure] = []
    with Progress(len(jobs), "checking images", "img", quiet=quiet) as progress, ThreadPoolExecutor(workers) as pool:
        for result in pool.map(one, jobs, chunksize=64):
            progress.update()
            if result is not None:
                failures.append(result)
    return failures


def write_failures(failures: list[FileFailure], path: str | os.PathLike[str], *, source_table: Path) -> Path:
    """Write image failures as a rejects table (stage ``validate``)."""
    meta = schema.make_metadata("rejects", inputs={str(source_table): fingerprint(source_table)})
    return schema.write_rejects([asdict(f) for f in failures], path, "validate", meta)
