"""CSIQ: 30 references, 866 distorted images, 6 distortion types at 4-5 levels.

Expected layout (``csiq.DMOS.xlsx``, ``src_imgs.zip`` and ``dst_imgs.zip`` unpacked side by side)::

    CSIQ/
      csiq.DMOS.xlsx     sheet ``all_by_image`` with a header row holding ``image``, ``dst_idx``,
                         ``dst_type``, ``dst_lev``, ``dmos`` (and ``dmos_std``); title rows above
                         the header are skipped
      src_imgs/          1600.png, aerial_city.png, ...
      dst_imgs/awgn/ jpeg/ jpeg2000/ fnoise/ blur/ contrast/
                         {image}.{TYPE}.{lev}.png, e.g. awgn/1600.AWGN.1.png, jpeg2000/1600.jpeg2000.1.png

Distortion codes (CSIQ's ``dst_idx``): 1 awgn (additive white noise), 2 jpeg, 3 jpeg2000, 4 fnoise
(pink noise), 5 blur, 6 contrast; ``level`` is ``dst_lev`` (1 = least distorted). DMOS (0-1) is lower
= better, so it is flipped. References get rows of their own, unscored. File names are matched
case-insensitively.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from curate.corpus.base import (
    FileIndex,
    Ingested,
    IngestError,
    concat_rows,
    dataset_root,
    header_table,
    input_fingerprints,
    make_rows,
    read_spreadsheet,
    reference_rows,
    relative_name,
    require_file,
    stem,
    to_float,
)
from curate.corpus.options import ReaderOptions

# dst_idx -> (folder under dst_imgs, the type tag in file names)
TYPES = {1: ("awgn", "AWGN"), 2: ("jpeg", "JPEG"), 3: ("jpeg2000", "jpeg2000"), 4: ("fnoise", "fnoise"),
         5: ("blur", "BLUR"), 6: ("contrast", "contrast")}
SHEET = "all_by_image"
COLUMNS = ("image", "dst_idx", "dst_lev", "dmos")


def read(root: Path, options: ReaderOptions) -> Ingested:
    root = dataset_root(root, "csiq.DMOS.xlsx", nested=("CSIQ", "csiq"))
    source = options.source or "csiq"
    labels = require_file(root, options.label_path(root, "csiq.DMOS.xlsx"), "label file csiq.DMOS.xlsx")
    sheets = read_spreadsheet(labels)
    # The DMOS sheet is 'all_by_image'; a re-saved copy may rename it, so fall back to the first
    # sheet that has the header.
    order = [SHEET] if SHEET in sheets else []
    order += [n for n in sheets if n != SHEET]
    found = None
    for name in order:
        try:
            found = name, *header_table(sheets[name], COLUMNS, f"{labels} (sheet {name!r})")
            break
        except IngestError:
            continue
    if found is None:
        raise IngestError(f"{labels}: no sheet has a header row with {', '.join(COLUMNS)}")
    name, table, header_row = found
    where = f"{labels} (sheet {name!r})"
    rows = [f"row {header_row + 1 + i}" for i in range(len(table))]
    if table.empty:
        raise IngestError(f"{where}: has no rows")
    images = table["image"].map(_image_name)
    codes = to_float(table["dst_idx"], where, "dst_idx", rows).astype(int)
    levels = to_float(table["dst_lev"], where, "dst_lev", rows).astype(int)
    dmos = to_float(table["dmos"], where, "dmos", rows)
    unknown = ~pd.Series(codes).isin(list(TYPES)).to_numpy()
    if unknown.any():
        i = int(unknown.nonzero()[0][0])
        raise IngestError(f"{where}: {rows[i]}: dst_idx {codes[i]} is not a CSIQ type (1-6)")

    paths: list[str | None] = [None] * len(table)
    names_of: list[str | None] = [None] * len(table)
    for code, (folder, tag) in TYPES.items():
        idx = [i for i in range(len(table)) if codes[i] == code]
        if not idx:
            continue
        names = [f"{images.iloc[i]}.{tag}.{levels[i]}.png" for i in idx]
        found = FileIndex(root, f"dst_imgs/{folder}").resolve(names, label_file=labels, row_labels=[rows[i] for i in idx])
        for i, p, n in zip(idx, found, names, strict=True):
            paths[i], names_of[i] = p, n
    ref_names = sorted(set(images))
    ref_paths = FileIndex(root, "src_imgs").resolve(
        [f"{n}.png" for n in ref_names], label_file=labels, row_labels=[f"image {n!r}" for n in ref_names]
    )
    ref_id_of = {n: f"{source}/{n}" for n in ref_names}
    distorted = make_rows(
        source=source,
        sample_ids=[f"{source}/{stem(n)}" for n in names_of],
        paths=paths,
        ref_ids=[ref_id_of[n] for n in images],
        is_reference=False,
        distortion=codes.tolist(),
        level=levels.tolist(),
        score_raw=dmos,
    )
    references = reference_rows(source, list(ref_id_of.values()), ref_paths)
    return Ingested(
        rows=concat_rows([references, distorted]),
        root=root,
        higher_is_better=False,
        inputs=input_fingerprints(root, [labels]),
        facts={"label_file": relative_name(root, labels), "sheet": name},
    )


def _image_name(value: object) -> str:
    # Spreadsheets store the numeric image name 1600 as a number.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
