"""TID2013: 25 references x 24 distortion types x 5 levels = 3,000 distorted images.

Expected layout (the ``tid2013`` archive, unpacked)::

    tid2013/
      mos_with_names.txt   one line per distorted image: ``MOS name``, e.g. ``5.51429 i01_01_1.bmp``
      distorted_images/    i01_01_1.bmp ... i25_24_5.bmp
      reference_images/    I01.BMP ... I24.BMP, i25.bmp

Names are matched case-insensitively (the archive mixes ``I01.BMP`` and ``i25.bmp``).
Distorted image ``iXX_TT_L`` has TID2013 distortion type ``TT`` (1-24, TID2013's own numbering) and
level ``L`` (1-5). MOS (0-9) is higher = better. References get rows of their own, unscored.
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
    make_rows,
    reference_rows,
    relative_name,
    require_file,
    stem,
)
from curate.corpus.options import ReaderOptions

NAME_RE = re.compile(r"^i(\d+)_(\d+)_(\d+)$", re.IGNORECASE)


def read(root: Path, options: ReaderOptions) -> Ingested:
    root = dataset_root(root, "mos_with_names.txt", nested=("tid2013", "TID2013"))
    source = options.source or "tid2013"
    labels = require_file(root, options.label_path(root, "mos_with_names.txt"), "label file mos_with_names.txt")
    scores: list[float] = []
    names: list[str] = []
    rows: list[str] = []
    for number, line in enumerate(labels.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise IngestError(f"{labels}: line {number}: expected 'MOS name', got {line.strip()!r}")
        try:
            value = float(parts[0])
        except ValueError:
            raise IngestError(f"{labels}: line {number}: MOS {parts[0]!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise IngestError(f"{labels}: line {number}: MOS {parts[0]!r} is not a finite number")
        scores.append(value)
        names.append(parts[1])
        rows.append(f"line {number}")
    if not names:
        raise IngestError(f"{labels}: has no rows")
    parsed = [NAME_RE.match(stem(n)) for n in names]
    for i, m in enumerate(parsed):
        if m is None:
            raise IngestError(f"{labels}: {rows[i]}: image {names[i]!r} is not named iXX_TT_L")
    dist_paths = FileIndex(root, "distorted_images").resolve(names, label_file=labels, row_labels=rows)
    ref_index = FileIndex(root, "reference_images")
    ref_numbers = sorted({int(m.group(1)) for m in parsed})
    ref_names = [f"I{n:02d}.bmp" for n in ref_numbers]
    ref_paths = ref_index.resolve(ref_names, label_file=labels, row_labels=[f"reference {n}" for n in ref_names])
    # Ids from the label text and the canonical reference names (I01 ... I25), whatever the case on disk.
    ref_id_of = {n: f"{source}/I{n:02d}" for n in ref_numbers}
    distorted = make_rows(
        source=source,
        sample_ids=[f"{source}/{stem(n)}" for n in names],
        paths=dist_paths,
        ref_ids=[ref_id_of[int(m.group(1))] for m in parsed],
        is_reference=False,
        distortion=[int(m.group(2)) for m in parsed],
        level=[int(m.group(3)) for m in parsed],
        score_raw=scores,
    )
    references = reference_rows(source, list(ref_id_of.values()), ref_paths)
    return Ingested(
        rows=concat_rows([references, distorted]),
        root=root,
        higher_is_better=True,
        inputs=input_fingerprints(root, [labels]),
        facts={"label_file": relative_name(root, labels)},
    )
