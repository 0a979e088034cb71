"""A folder of images (format ``folder``), e.g. a pool of candidate reference contents.

Every image file under ROOT (``.bmp .jpg .jpeg .png .tif .tiff .webp .gif``, any case, sub-folders
included, hidden files and folders skipped) becomes one row: its own reference (``is_reference``
true, ``ref_id`` = ``sample_id``), unscored, no distortion or level. Sample ids are
``{source}/{path without extension}``; source defaults to ROOT's folder name. Two files that differ
only in extension (``a.jpg``, ``a.png``) would share an id and are refused.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from curate.corpus.base import (
    IMAGE_EXTENSIONS,
    Ingested,
    IngestError,
    listing_fingerprint,
    reference_rows,
    require_dir,
    source_name,
    walk_files,
    without_extension,
)
from curate.corpus.options import ReaderOptions


def read(root: Path, options: ReaderOptions) -> Ingested:
    root = require_dir(Path(root), "image").resolve()
    source = source_name(options.source or root.name)
    paths = [p for p in walk_files(root, recursive=True) if Path(p).suffix.lower() in IMAGE_EXTENSIONS]
    if not paths:
        exts = " ".join(sorted(IMAGE_EXTENSIONS))
        raise IngestError(f"{root}: no images ({exts}) in this folder or below")
    ids = pd.Series([f"{source}/{without_extension(p)}" for p in paths])
    dup = ids.duplicated(keep=False)
    if dup.any():
        first = ids[dup].iloc[0]
        clash = [p for p, i in zip(paths, ids, strict=True) if i == first]
        raise IngestError(f"{root}: images {', '.join(map(repr, clash))} would share the id {first!r}")
    frame = reference_rows(source, ids.tolist(), paths)
    return Ingested(
        rows=frame, root=root, higher_is_better=None, inputs={"./": listing_fingerprint(paths)}, facts={}
    )
