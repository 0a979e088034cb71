"""KonIQ-10k: 10,073 authentic in-the-wild images with MOS.

Expected layout (the KonIQ-10k release, unpacked)::

    koniq10k/
      koniq10k_scores_and_distributions.csv   columns image_name, c1..c5, c_total, MOS, SD, MOS_zscore
      koniq10k_distributions_sets.csv         optional: adds column ``set`` (training/validation/test),
                                              the official split
      512x384/  or  1024x768/                 the images (e.g. 826373.jpg)

The image folder is ``512x384`` when present, else ``1024x768``; ``--images`` picks another. When
the scores CSV is missing, the sets CSV alone is read (it carries MOS too). Scores: ``MOS`` (1-5),
higher = better. The official split (``training``/``validation``/``test``) is stored as
``train``/``val``/``test``. Authentic images: each is its own content (``ref_id`` = ``sample_id``,
``is_reference`` false, no distortion or level).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from curate.corpus.base import (
    FileIndex,
    Ingested,
    IngestError,
    cell_text,
    dataset_root,
    first_existing,
    input_fingerprints,
    line_labels,
    make_rows,
    read_csv_labels,
    relative_name,
    stem,
    to_float,
)
from curate.corpus.options import ReaderOptions

SCORES = "koniq10k_scores_and_distributions.csv"
SETS = "koniq10k_distributions_sets.csv"
IMAGE_FOLDERS = ("512x384", "1024x768")
NESTED = ("koniq10k", "KonIQ-10k")
SPLITS = {"training": "train", "train": "train", "validation": "val", "val": "val", "test": "test"}


def read(root: Path, options: ReaderOptions) -> Ingested:
    root = dataset_root(root, (SCORES, SETS), nested=NESTED)
    source = options.source or "koniq10k"
    labels = first_existing(root, [options.labels] if options.labels else [SCORES, SETS], "score file")
    df = read_csv_labels(labels, ["image_name", "MOS"], dtype={"image_name": str})
    rows = line_labels(len(df))
    files = [labels]
    split = None
    sets_file = root / SETS
    if "set" in df.columns:
        split = df["set"]
    elif sets_file.is_file():
        sets = read_csv_labels(sets_file, ["image_name", "set"], dtype={"image_name": str})
        split = df["image_name"].map(dict(zip(sets["image_name"], sets["set"], strict=True)))
        files.append(sets_file)
    if split is not None:
        norm = split.map(lambda v: SPLITS.get(str(v).strip().lower()) if pd.notna(v) else None)
        bad = split.notna() & norm.isna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise IngestError(f"{labels}: {rows[i]}: set {cell_text(split.iloc[i])} is not training/validation/test")
        split = norm.tolist()
    folder = options.images
    if folder is None:
        folder = next((f for f in IMAGE_FOLDERS if (root / f).is_dir()), None)
        if folder is None:
            raise IngestError(f"{root}: expected image folder 512x384/ or 1024x768/ is missing")
    paths = FileIndex(root, folder).resolve(df["image_name"], label_file=labels, row_labels=rows)
    ids = [f"{source}/{stem(n)}" for n in df["image_name"]]
    frame = make_rows(
        source=source,
        sample_ids=ids,
        paths=paths,
        ref_ids=ids,
        is_reference=False,
        score_raw=to_float(df["MOS"], str(labels), "MOS", rows),
        split=split,
    )
    return Ingested(
        rows=frame,
        root=root,
        higher_is_better=True,
        inputs=input_fingerprints(root, files),
        facts={"label_file": relative_name(root, labels), "image_folder": folder},
    )
