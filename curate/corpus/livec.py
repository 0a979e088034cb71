"""LIVE In the Wild Image Quality Challenge (LIVEC / CLIVE): 1,162 authentic images with MOS.

Expected layout (``ChallengeDB_release.zip``, unpacked)::

    ChallengeDB_release/
      Data/AllImages_release.mat   variable ``AllImages_release``: 1169x1 cell of file names
      Data/AllMOS_release.mat      variable ``AllMOS_release``: 1x1169 MOS (0-100, higher = better)
      Images/                      the images (e.g. 10.bmp); the 7 practice images t1.bmp ... t7.bmp
                                   live in Images/trainingImages/

The first 7 entries of both .mat files are the practice images shown to raters before the study;
they are dropped, leaving 1,162 images. Authentic images: each is its own content (``ref_id`` =
``sample_id``, ``is_reference`` false, no distortion or level).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from curate.corpus.base import (
    FileIndex,
    Ingested,
    IngestError,
    dataset_root,
    input_fingerprints,
    load_mat,
    make_rows,
    mat_strings,
    relative_name,
    require_file,
    stem,
)
from curate.corpus.options import ReaderOptions

PRACTICE_IMAGES = 7
NAMES = "Data/AllImages_release.mat"
MOS = "Data/AllMOS_release.mat"


def read(root: Path, options: ReaderOptions) -> Ingested:
    root = dataset_root(root, NAMES, nested=("ChallengeDB_release", "LIVEC", "livec"))
    source = options.source or "livec"
    names_file = require_file(root, NAMES, "label file AllImages_release.mat")
    mos_file = require_file(root, options.label_path(root, MOS), "label file AllMOS_release.mat")
    names = mat_strings(load_mat(names_file, ["AllImages_release"])["AllImages_release"])
    mos = np.asarray(load_mat(mos_file, ["AllMOS_release"])["AllMOS_release"], dtype=np.float64).flatten(order="F")
    if len(names) != len(mos):
        raise IngestError(f"{names_file}: {len(names)} names but {mos_file.name} has {len(mos)} scores")
    if len(names) <= PRACTICE_IMAGES:
        raise IngestError(f"{names_file}: only {len(names)} entries; the first {PRACTICE_IMAGES} are practice images")
    names, mos = names[PRACTICE_IMAGES:], mos[PRACTICE_IMAGES:]
    entries = [f"entry {i + 1 + PRACTICE_IMAGES}" for i in range(len(names))]
    bad = np.flatnonzero(~np.isfinite(mos))
    if len(bad):
        raise IngestError(f"{mos_file}: {entries[int(bad[0])]}: MOS is not a finite number")
    folder = options.images or "Images"
    paths = FileIndex(root, folder).resolve(names, label_file=names_file, row_labels=entries)
    ids = [f"{source}/{stem(n)}" for n in names]
    frame = make_rows(source=source, sample_ids=ids, paths=paths, ref_ids=ids, is_reference=False, score_raw=mos)
    return Ingested(
        rows=frame,
        root=root,
        higher_is_better=True,
        inputs=input_fingerprints(root, [names_file, mos_file]),
        facts={"label_file": relative_name(root, mos_file), "dropped_practice_images": PRACTICE_IMAGES},
    )
