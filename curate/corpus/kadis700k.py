"""KADIS-700k: 140,000 pristine references; distorted images are generated locally, not shipped.

Expected layout (the ``kadis700k.zip`` archive, unpacked)::

    kadis700k/
      kadis700k_ref_imgs.csv   first column: reference file name (header ``ref_im``), second column:
                               the KADID distortion type assigned to it (``dist_type``)
      ref_imgs/                the references named in the CSV
      dist_imgs/               optional: images made by the official generation script,
                               ``{ref stem}_{tt}_{ll}.bmp`` (type tt, level ll = 01-05)

Every reference listed in the CSV must be in ``ref_imgs/``. Distorted images are ingested when
present (any ``{stem}_{tt}_{ll}`` image in ``dist_imgs/`` whose stem is a listed reference); a
reference whose five levels are not all there is counted in metadata (``kadis_incomplete_refs``), and
so are images in ``dist_imgs/`` that match no listed reference (``kadis_ignored_files``).
KADIS-700k has no human scores, so ``score`` is null throughout.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from curate.corpus.base import (
    FileIndex,
    Ingested,
    IngestError,
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
)
from curate.corpus.options import ReaderOptions

DIST_RE = re.compile(r"^(?P<ref>.+)_(?P<type>\d{2})_(?P<level>\d{2})$")
LEVELS = 5


def read(root: Path, options: ReaderOptions) -> Ingested:
    root = dataset_root(root, "kadis700k_ref_imgs.csv", nested=("kadis700k",))
    source = options.source or "kadis700k"
    labels = require_file(root, options.label_path(root, "kadis700k_ref_imgs.csv"), "label file kadis700k_ref_imgs.csv")
    df = read_csv_labels(labels, [], dtype=str)
    ref_col = "ref_im" if "ref_im" in df.columns else df.columns[0]
    rows = line_labels(len(df))
    names = df[ref_col].astype(str).str.strip()
    index = FileIndex(root, "ref_imgs")
    ref_paths = index.resolve(names, label_file=labels, row_labels=rows)
    ref_stems = [stem(n) for n in names]  # ids from the label text, not the case on disk
    dup = pd.Series(ref_stems).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise IngestError(f"{labels}: {rows[i]}: reference {names.iloc[i]!r} is listed twice")
    references = reference_rows(source, [f"{source}/{s}" for s in ref_stems], ref_paths)
    inputs = input_fingerprints(root, [labels])
    facts: dict[str, object] = {"label_file": relative_name(root, labels), "kadis_distorted_images": 0}
    frames = [references]
    if (root / "dist_imgs").is_dir():
        dist_index = FileIndex(root, "dist_imgs")
        listed = dist_index.paths()
        dist = _distorted_rows(listed, set(ref_stems), source)
        frames.append(dist)
        facts["kadis_ignored_files"] = len(listed) - len(dist)
        inputs["dist_imgs/"] = dist_index.listing_fingerprint()
        per_ref = dist["ref_id"].value_counts()
        facts["kadis_distorted_images"] = int(len(dist))
        facts["kadis_incomplete_refs"] = int((per_ref < LEVELS).sum())
    return Ingested(rows=concat_rows(frames), root=root, higher_is_better=None, inputs=inputs, facts=facts)


def _distorted_rows(paths: list[str], ref_stems: set[str], source: str) -> pd.DataFrame:
    stems = pd.Series([stem(p) for p in paths], dtype=object)
    parts = stems.str.extract(DIST_RE)
    keep = parts["ref"].isin(ref_stems).to_numpy()
    parts = parts[keep]
    kept_paths = [p for p, k in zip(paths, keep, strict=True) if k]
    return make_rows(
        source=source,
        sample_ids=(source + "/" + stems[keep]).tolist(),
        paths=kept_paths,
        ref_ids=(source + "/" + parts["ref"]).tolist(),
        is_reference=False,
        distortion=parts["type"].astype(int).tolist(),
        level=parts["level"].astype(int).tolist(),
    )
