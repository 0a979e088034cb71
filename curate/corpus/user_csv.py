"""A user's own CSV (format ``csv``): one row per image, columns mapped by options.

``curate ingest csv ROOT --labels scores.csv --path-column file --score-column mos [...]``

* ``ROOT``: the folder image paths are relative to. ``--labels``: the CSV (relative to ROOT or
  absolute). The CSV has a header row.
* ``--path-column`` (default ``path``): image path relative to ROOT; absolute paths and paths that
  leave ROOT are refused. Every listed image must exist (ROOT is listed once, not stat-ed per row).
* ``--score-column`` (optional): the raw score (an empty cell = unscored); ``--lower-is-better``
  when it is a DMOS-like value.
* ``--ref-column`` (optional): the reference of each row: rows with the same value share a
  ``ref_id``. A value that is the path of an image under ROOT makes that image the reference: its
  row (if listed) has ``is_reference`` true, and if not listed it is added as an unscored reference
  row. Without this column each image is its own content (authentic-style).
* ``--distortion-column``, ``--level-column`` (optional): integer codes (level >= 1); empty = null.
* ``--split-column`` (optional): text such as train/val/test.

Sample ids are ``{source}/{path without extension}``; source defaults to ROOT's folder name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from curate.corpus.base import (
    IMAGE_EXTENSIONS,
    Ingested,
    IngestError,
    concat_rows,
    input_fingerprints,
    line_labels,
    make_rows,
    read_csv_labels,
    reference_rows,
    relative_name,
    require_dir,
    require_file,
    source_name,
    to_float,
    walk_files,
    without_extension,
)
from curate.corpus.options import ReaderOptions
from curate.fsio import safe_relative_path


def read(root: Path, options: ReaderOptions) -> Ingested:
    root = require_dir(Path(root), "image root").resolve()
    source = source_name(options.source or root.name)
    if not options.labels:
        raise IngestError("format csv needs --labels FILE (the CSV that lists the images)")
    labels = require_file(root, options.labels, "label CSV")
    path_col = options.path_column or "path"
    mapped = {
        "path": path_col,
        "score": options.score_column,
        "ref": options.ref_column,
        "distortion": options.distortion_column,
        "level": options.level_column,
        "split": options.split_column,
    }
    wanted = [c for c in mapped.values() if c]
    df = read_csv_labels(labels, wanted, dtype=str, keep_default_na=False)
    rows = line_labels(len(df))
    paths = [_clean_path(v, labels, rows[i], path_col) for i, v in enumerate(df[path_col])]
    on_disk = set(walk_files(root, recursive=True))
    missing = [i for i, p in enumerate(paths) if p not in on_disk]
    if missing:
        i = missing[0]
        raise IngestError(
            f"{labels}: {rows[i]}: image {paths[i]!r} is not under {root} ({len(missing)} listed image(s) missing in all)"
        )
    ids = [f"{source}/{without_extension(p)}" for p in paths]

    scores = None
    if options.score_column:
        # An empty cell means "unscored" (e.g. references); anything else must be a finite number.
        cells = df[options.score_column].str.strip()
        present = (cells != "").to_numpy()
        scores = np.full(len(df), np.nan)
        if present.any():
            kept = [r for r, p in zip(rows, present, strict=True) if p]
            scores[present] = to_float(cells[present].reset_index(drop=True), str(labels), options.score_column, kept)
    distortion = _integers(df, options.distortion_column, labels, rows)
    level = _integers(df, options.level_column, labels, rows)
    split = None
    if options.split_column:
        split = [v.strip() or None for v in df[options.split_column]]

    extra = []
    if options.ref_column:
        ref_values = [v.strip() for v in df[options.ref_column]]
        for i, v in enumerate(ref_values):
            if not v:
                raise IngestError(f"{labels}: {rows[i]}: {options.ref_column} is empty")
        ref_paths = [_maybe_path(v) for v in ref_values]
        ref_ids = [f"{source}/{without_extension(p or v)}" for p, v in zip(ref_paths, ref_values, strict=True)]
        is_ref = [p is not None and p == path for p, path in zip(ref_paths, paths, strict=True)]
        listed = set(paths)
        unlisted = sorted({p for p in ref_paths if p is not None and p not in listed and p in on_disk})
        if unlisted:
            extra.append(
                reference_rows(source, [f"{source}/{without_extension(p)}" for p in unlisted], unlisted)
            )
    else:
        ref_ids, is_ref = ids, [False] * len(ids)
    frame = make_rows(
        source=source,
        sample_ids=ids,
        paths=paths,
        ref_ids=ref_ids,
        is_reference=is_ref,
        distortion=distortion,
        level=level,
        score_raw=scores,
        split=split,
    )
    return Ingested(
        rows=concat_rows([frame, *extra]),
        root=root,
        higher_is_better=None if scores is None else not options.lower_is_better,
        inputs=input_fingerprints(root, [labels]),
        facts={"label_file": relative_name(root, labels)},
    )


def _clean_path(value: str, labels: Path, row: str, column: str) -> str:
    try:
        return safe_relative_path(value, what=column)
    except ValueError as exc:
        raise IngestError(f"{labels}: {row}: {exc}") from None


def _maybe_path(value: str) -> str | None:
    """``value`` as a normalised relative image path, or None when it does not look like one."""
    if Path(value).suffix.lower() not in IMAGE_EXTENSIONS:
        return None
    try:
        return safe_relative_path(value)
    except ValueError:
        return None


def _integers(df: pd.DataFrame, column: str | None, labels: Path, rows: list[str]) -> list[int | None] | None:
    if not column:
        return None
    out: list[int | None] = []
    for i, v in enumerate(df[column]):
        text = v.strip()
        if not text:
            out.append(None)
            continue
        try:
            number = float(text)
        except ValueError:
            number = float("nan")
        if not number.is_integer():
            raise IngestError(f"{labels}: {rows[i]}: {column} {v!r} is not an integer")
        out.append(int(number))
    return out
