"""Readers that turn native IQA dataset layouts into the corpus table (one module per format).

``READERS`` maps a format name to its :class:`Reader`; :func:`ingest` runs one and writes the
corpus. Each reader module's docstring states the exact layout it expects; ``manifests/FORMATS.md``
collects them for users.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curate import schema
from curate.corpus import (
    bid,
    csiq,
    image_folder,
    kadid10k,
    kadis700k,
    koniq10k,
    live,
    livec,
    pipal,
    spaq,
    tid2013,
    user_csv,
)
from curate.corpus.base import Ingested, IngestError, merged_params, normalise_scores, source_name
from curate.corpus.options import ReaderOptions


@dataclass(frozen=True)
class Reader:
    """One native format: its reader function, a one-line summary, and the options it takes."""

    name: str
    read: Callable[[Path, ReaderOptions], Ingested]
    summary: str
    accepts: frozenset[str] = frozenset({"source", "labels"})


_CSV_OPTIONS = frozenset(
    {"source", "labels", "path_column", "score_column", "ref_column", "distortion_column", "level_column",
     "split_column", "lower_is_better"}
)

READERS: dict[str, Reader] = {
    r.name: r
    for r in [
        Reader("kadid10k", kadid10k.read, "KADID-10k: dmos.csv + images/ (synthetic, 25 types x 5 levels)"),
        Reader("kadis700k", kadis700k.read, "KADIS-700k: kadis700k_ref_imgs.csv + ref_imgs/ [+ dist_imgs/], no scores"),
        Reader("tid2013", tid2013.read, "TID2013: mos_with_names.txt + distorted_images/ + reference_images/"),
        Reader("live", live.read, "LIVE release 2: dmos[_realigned].mat + refnames_all.mat + 5 type folders"),
        Reader("csiq", csiq.read, "CSIQ: csiq.DMOS.xlsx + src_imgs/ + dst_imgs/"),
        Reader("pipal", pipal.read, "PIPAL: Train_Label/*.txt (Elo) + Train_Ref/ + distorted folders"),
        Reader("koniq10k", koniq10k.read, "KonIQ-10k: scores CSV + 512x384/ or 1024x768/ (authentic)",
               frozenset({"source", "labels", "images"})),
        Reader("livec", livec.read, "LIVE Challenge: Data/*.mat + Images/ (authentic)",
               frozenset({"source", "labels", "images"})),
        Reader("bid", bid.read, "BID: DatabaseGrades.xls/.xlsx/.csv + images (authentic)"),
        Reader("spaq", spaq.read, "SPAQ: Annotations/MOS ...xlsx + TestImage/ (authentic)",
               frozenset({"source", "labels", "images"})),
        Reader("csv", user_csv.read, "your CSV: image paths under ROOT, columns chosen by options", _CSV_OPTIONS),
        Reader("folder", image_folder.read, "a folder of images, each its own reference, no scores",
               frozenset({"source"})),
    ]
}


@dataclass(frozen=True)
class IngestResult:
    """What :func:`ingest` wrote: the output path, the rows, and the metadata stored with them."""

    path: Path
    frame: pd.DataFrame
    meta: dict[str, Any]


def build_corpus(fmt: str, root: str | os.PathLike[str], options: ReaderOptions | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read dataset ``root`` in native format ``fmt``; return (corpus rows, corpus metadata).

    Rows carry every corpus column; ``score`` is ``score_raw`` min-max normalised over the whole
    corpus to 0-10, higher = better (flipped where lower raw = better).
    """
    options = options or ReaderOptions()
    reader = READERS.get(fmt)
    if reader is None:
        raise IngestError(f"unknown format {fmt!r}; known: {', '.join(READERS)}")
    unused = sorted(set(options.given()) - reader.accepts)
    if unused:
        names = ", ".join("--" + u.replace("_", "-") for u in unused)
        raise IngestError(f"format {fmt} does not take {names}")
    if options.source is not None and source_name(options.source) != options.source:
        raise IngestError(f"--source {options.source!r}: use letters, digits, '.', '_' or '-' only")
    result = reader.read(Path(root), options)
    rows = result.rows
    if rows.empty:
        raise IngestError(f"{result.root}: no images found for format {fmt}")
    dup = rows["sample_id"].duplicated(keep=False)
    if dup.any():
        first = rows.loc[dup, "sample_id"].iloc[0]
        paths = rows.loc[rows["sample_id"] == first, "path"].tolist()
        raise IngestError(
            f"{result.root}: sample id {first!r} is given to {len(paths)} rows ({', '.join(map(repr, paths[:3]))}); "
            "does the label file list an image twice?"
        )
    scores, normalization = normalise_scores(rows["score_raw"].to_numpy(dtype=np.float64), result.higher_is_better)
    rows = rows.assign(score=scores)
    sources = sorted(set(rows["source"]))
    meta = schema.make_metadata(
        "corpus",
        params={"format": fmt, **merged_params(options.given())},
        inputs=result.inputs,
        root=str(result.root),
        source=sources[0] if len(sources) == 1 else sources,
        score_normalization=normalization,
        reader=dict(sorted(result.facts.items())),
    )
    return rows, meta


def ingest(
    fmt: str,
    root: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: ReaderOptions | None = None,
) -> IngestResult:
    """Read dataset ``root`` in native format ``fmt`` and write the corpus table to ``output``.

    The file is validated and written atomically (nothing is left under ``output`` on failure);
    the same inputs give byte-identical files.
    """
    frame, meta = build_corpus(fmt, root, options)
    path = schema.write_table(frame, output, "corpus", meta)
    return IngestResult(path=Path(path), frame=frame, meta=meta)


__all__ = ["READERS", "IngestError", "IngestResult", "Reader", "ReaderOptions", "build_corpus", "ingest"]
