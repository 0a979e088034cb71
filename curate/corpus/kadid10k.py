"""KADID-10k: 81 pristine references x 25 distortion types x 5 levels = 10,125 images.

Expected layout (the ``kadid10k.zip`` archive, unpacked)::

    kadid10k/
      dmos.csv          columns dist_img, ref_img, dmos, var (one row per distorted image)
      images/           I01.png ... I81.png (references) and I01_01_01.png ... I81_25_05.png

``dmos`` is the mean of 1-5 degradation ratings: despite its name, higher = better, so it is not
flipped. Distorted image ``Ixx_tt_ll.png`` has KADID distortion type ``tt`` (1-25) and level ``ll``
(1-5). References get rows of their own (``is_reference`` true, no score: KADID does not rate them).
"""

from __future__ import annotations

import re
from pathlib import Path

from curate.corpus.base import (
    FileIndex,
    Ingested,
    IngestError,
    cell_text,
    concat_rows,
    dataset_root,
    input_fingerprints,
    line_labels,
    make_rows,
    read_csv_labels,
    reference_rows,
    relative_name,
    require_file,
    stem,
    to_float,
)
from curate.corpus.options import ReaderOptions

NAME_RE = re.compile(r"^(I\d+)_(\d+)_(\d+)$", re.IGNORECASE)


def read(root: Path, options: ReaderOptions) -> Ingested:
    root = dataset_root(root, "dmos.csv", nested=("kadid10k",))
    source = options.source or "kadid10k"
    labels = require_file(root, options.label_path(root, "dmos.csv"), "label file dmos.csv")
    df = read_csv_labels(labels, ["dist_img", "ref_img", "dmos"], dtype={"dist_img": str, "ref_img": str})
    rows = line_labels(len(df))
    index = FileIndex(root, "images")
    dist_paths = index.resolve(df["dist_img"], label_file=labels, row_labels=rows)
    ref_names = sorted(set(df["ref_img"].astype(str)))
    ref_paths = index.resolve(ref_names, label_file=labels, row_labels=[f"ref_img {n!r}" for n in ref_names])
    scores = to_float(df["dmos"], str(labels), "dmos", rows)

    # Ids come from the label text, not the names on disk, so they do not depend on how the
    # archive was unpacked (case); paths record the names on disk.
    dist_stems = [stem(n) for n in df["dist_img"].astype(str)]
    parsed = [NAME_RE.match(s) for s in dist_stems]
    for i, m in enumerate(parsed):
        if m is None:
            raise IngestError(f"{labels}: {rows[i]}: dist_img {cell_text(df['dist_img'].iloc[i])} is not named Ixx_tt_ll")
    distorted = make_rows(
        source=source,
        sample_ids=[f"{source}/{s}" for s in dist_stems],
        paths=dist_paths,
        ref_ids=[f"{source}/{stem(r)}" for r in df["ref_img"].astype(str)],
        is_reference=False,
        distortion=[int(m.group(2)) for m in parsed],
        level=[int(m.group(3)) for m in parsed],
        score_raw=scores,
    )
    references = reference_rows(source, [f"{source}/{stem(n)}" for n in ref_names], ref_paths)
    return Ingested(
        rows=concat_rows([references, distorted]),
        root=root,
        higher_is_better=True,
        inputs=input_fingerprints(root, [labels]),
        facts={"label_file": relative_name(root, labels)},
    )
