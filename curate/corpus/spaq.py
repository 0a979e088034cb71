"""SPAQ (Smartphone Photography Attribute and Quality): 11,125 smartphone photos with MOS.

Expected layout (the SPAQ release, unpacked)::

    SPAQ/
      Annotations/MOS and Image attribute scores.xlsx   columns ``Image name``, ``MOS`` (0-100),
                                                        Brightness, Colorfulness, ... (first sheet)
      TestImage/                                        00001.jpg ... 11125.jpg

Most users shrink the large originals first; ``--images`` names such a folder instead of
``TestImage`` (file names must be kept). MOS is higher = better. Authentic images: each is its own
content (``ref_id`` = ``sample_id``, ``is_reference`` false, no distortion or level).
"""

from __future__ import annotations

from pathlib import Path

from curate.corpus.base import (
    FileIndex,
    Ingested,
    IngestError,
    dataset_root,
    header_table,
    input_fingerprints,
    make_rows,
    read_spreadsheet,
    relative_name,
    require_file,
    stem,
    to_float,
)
from curate.corpus.options import ReaderOptions

LABELS = "Annotations/MOS and Image attribute scores.xlsx"


def read(root: Path, options: ReaderOptions) -> Ingested:
    root = dataset_root(root, LABELS, nested=("SPAQ", "spaq"))
    source = options.source or "spaq"
    labels = require_file(root, options.label_path(root, LABELS), "label file 'MOS and Image attribute scores.xlsx'")
    sheet_name, raw = next(iter(read_spreadsheet(labels).items()))
    where = f"{labels} (sheet {sheet_name!r})" if labels.suffix.lower() != ".csv" else str(labels)
    table, header_row = header_table(raw, ["image name", "mos"], where)
    if table.empty:
        raise IngestError(f"{where}: has no rows")
    rows = [f"row {int(i) + 1}" for i in table.index]
    names = [str(v).strip() for v in table["image name"]]
    scores = to_float(table["mos"].reset_index(drop=True), where, "MOS", rows)
    folder = options.images or "TestImage"
    paths = FileIndex(root, folder).resolve(names, label_file=labels, row_labels=rows)
    ids = [f"{source}/{stem(n)}" for n in names]
    frame = make_rows(source=source, sample_ids=ids, paths=paths, ref_ids=ids, is_reference=False, score_raw=scores)
    return Ingested(
        rows=frame,
        root=root,
        higher_is_better=True,
        inputs=input_fingerprints(root, [labels]),
        facts={"label_file": relative_name(root, labels), "image_folder": folder},
    )
