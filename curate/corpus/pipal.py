"""PIPAL (public training set): 200 references, 23,200 images from image-restoration outputs.

Expected layout (the NTIRE training release, unpacked)::

    PIPAL/
      Train_Label/   A0001.txt ... A0200.txt, one line per distorted image: ``A0001_00_00.bmp,1510.3``
                     (file name, Elo score)
      Train_Ref/     A0001.bmp ... (the references)
      Train_Dis/     A0001_00_00.bmp ... (the distorted images; any folder name or several folders,
                     e.g. Distortion_1 ... Distortion_4, is accepted: images are found by name)

``--labels`` may name another folder of label files (e.g. ``Val_Label``). A distorted image
``Axxxx_TT_NN`` belongs to reference ``Axxxx``; ``distortion`` is PIPAL's distortion-type index
``TT`` as written in the name (0-based, PIPAL's own numbering); ``NN`` is a variant index within the
type, not an ordered level, so ``level`` is null. Elo scores are higher = better.
References get rows of their own, unscored.
"""

from __future__ import annotations

import re
from pathlib import Path

from curate.corpus.base import (
    FileIndex,
    Ingested,
    IngestError,
    concat_rows,
    dataset_root,
    input_fingerprints,
    listing_fingerprint,
    make_rows,
    reference_rows,
    relative_name,
    require_dir,
    stem,
)
from curate.corpus.options import ReaderOptions

NAME_RE = re.compile(r"^([A-Za-z]\d+)_(\d+)_(\d+)$")


def read(root: Path, options: ReaderOptions) -> Ingested:
    root = dataset_root(root, "Train_Label", nested=("PIPAL", "pipal"))
    source = options.source or "pipal"
    label_dir = require_dir(root / (options.labels or "Train_Label"), "label")
    label_files = sorted(label_dir.glob("*.txt"))
    if not label_files:
        raise IngestError(f"{label_dir}: no label files (*.txt)")
    names: list[str] = []
    scores: list[float] = []
    rows: list[str] = []
    for f in label_files:
        for number, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            where = f"{f.name} line {number}"
            if len(parts) != 2:
                raise IngestError(f"{f}: line {number}: expected 'image,score', got {line.strip()!r}")
            try:
                value = float(parts[1])
            except ValueError:
                raise IngestError(f"{f}: line {number}: score {parts[1]!r} is not a number") from None
            if value != value or abs(value) == float("inf"):
                raise IngestError(f"{f}: line {number}: score {parts[1]!r} is not a finite number")
            names.append(parts[0])
            scores.append(value)
            rows.append(where)
    if not names:
        raise IngestError(f"{label_dir}: label files hold no rows")
    parsed = [NAME_RE.match(stem(n)) for n in names]
    for i, m in enumerate(parsed):
        if m is None:
            raise IngestError(f"{label_dir}: {rows[i]}: image {names[i]!r} is not named Axxxx_TT_NN")
    index = FileIndex(root, recursive=True)
    dist_paths = index.resolve(names, label_file=label_dir, row_labels=rows)
    ref_keys = sorted({m.group(1) for m in parsed})
    ref_paths = index.resolve(
        [f"{k}.bmp" for k in ref_keys], label_file=label_dir, row_labels=[f"reference of {k}_*" for k in ref_keys]
    )
    ref_id_of = {k: f"{source}/{k}" for k in ref_keys}
    distorted = make_rows(
        source=source,
        sample_ids=[f"{source}/{stem(n)}" for n in names],
        paths=dist_paths,
        ref_ids=[ref_id_of[m.group(1)] for m in parsed],
        is_reference=False,
        distortion=[int(m.group(2)) for m in parsed],
        score_raw=scores,
    )
    references = reference_rows(source, list(ref_id_of.values()), ref_paths)
    inputs = input_fingerprints(root, label_files)
    inputs[relative_name(root, label_dir) + "/"] = listing_fingerprint([f.name for f in label_files])
    return Ingested(
        rows=concat_rows([references, distorted]),
        root=root,
        higher_is_better=True,
        inputs=inputs,
        facts={"label_file": relative_name(root, label_dir)},
    )
