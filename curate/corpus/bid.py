"""BID (Blurred Image Database): 586 authentic photos with blur and other camera distortions.

Expected layout (the BID release, unpacked)::

    BID/
      DatabaseGrades.xls      (or a .xlsx or .csv copy) a header row, then one row per image:
                              an image column (``Image Number`` or any header containing "image";
                              numbers n stand for DatabaseImage{n:04d}.JPG, text is a file name) and
                              a score column (the header containing "average", or "MOS"; with
                              exactly two columns, the second)
      ImageDatabase/          DatabaseImage0001.JPG ... (any sub-folder: images are found by name)

Scores (mean grade, 0-5) are higher = better. Authentic images: each is its own content (``ref_id``
= ``sample_id``, ``is_reference`` false, no distortion or level).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from curate.corpus.base import (
    FileIndex,
    Ingested,
    IngestError,
    dataset_root,
    first_existing,
    input_fingerprints,
    make_rows,
    read_spreadsheet,
    relative_name,
    stem,
    to_float,
)
from curate.corpus.options import ReaderOptions

LABELS = ("DatabaseGrades.xls", "DatabaseGrades.xlsx", "DatabaseGrades.csv")


def read(root: Path, options: ReaderOptions) -> Ingested:
    root = dataset_root(root, LABELS, nested=("BID", "bid"))
    source = options.source or "bid"
    labels = first_existing(root, [options.labels] if options.labels else list(LABELS), "grades file DatabaseGrades")
    sheets = read_spreadsheet(labels)
    sheet_name, raw = next(iter(sheets.items()))
    where = f"{labels} (sheet {sheet_name!r})" if labels.suffix.lower() != ".csv" else str(labels)
    raw = raw.dropna(how="all").dropna(axis=1, how="all")
    if raw.empty:
        raise IngestError(f"{where}: has no rows")
    header = [str(c).strip().lower() for c in raw.iloc[0].tolist()]
    image_col = next((i for i, h in enumerate(header) if "image" in h), None)
    score_col = next((i for i, h in enumerate(header) if "average" in h or h == "mos"), None)
    if score_col is None and len(header) == 2:
        score_col = 1
    if image_col is None or score_col is None:
        raise IngestError(f"{where}: cannot find the image and score columns in header {raw.iloc[0].tolist()}")
    body = raw.iloc[1:]
    if body.empty:
        raise IngestError(f"{where}: has no rows")
    # Report spreadsheet row numbers as users see them (header on the first non-empty row).
    rows = [f"row {int(i) + 1}" for i in body.index]
    names = [_image_name(v) for v in body.iloc[:, image_col]]
    scores = to_float(body.iloc[:, score_col].reset_index(drop=True), where, header[score_col], rows)
    paths = FileIndex(root, recursive=True).resolve(names, label_file=labels, row_labels=rows)
    ids = [f"{source}/{stem(n)}" for n in names]
    frame = make_rows(source=source, sample_ids=ids, paths=paths, ref_ids=ids, is_reference=False, score_raw=scores)
    return Ingested(
        rows=frame,
        root=root,
        higher_is_better=True,
        inputs=input_fingerprints(root, [labels]),
        facts={"label_file": relative_name(root, labels)},
    )


def _image_name(value: object) -> str:
    if isinstance(value, (int, float)) and not pd.isna(value) and float(value).is_integer():
        return f"DatabaseImage{int(value):04d}.JPG"
    text = str(value).strip()
    if text.isdigit():
        return f"DatabaseImage{int(text):04d}.JPG"
    return text
