"""LIVE Image Quality Assessment Database, release 2: 29 references, 779 distorted images.

Expected layout (``databaserelease2.zip``, unpacked)::

    databaserelease2/
      dmos.mat             variables ``dmos`` (1x982) and ``orgs`` (1x982, 1 = an undistorted copy)
      dmos_realigned.mat   variables ``dmos_new`` (1x982), ``dmos_std`` and ``orgs`` (optional)
      refnames_all.mat     variable ``refnames_all``: 1x982 cell, the reference of each entry
      refimgs/             the 29 references (e.g. ``parrots.bmp``)
      jp2k/ jpeg/ wn/ gblur/ fastfading/   img1.bmp ... (227, 233, 174, 174, 174 entries)

The 982 entries run through the five folders in that order (``jp2k/img1.bmp`` ... ``jp2k/img227.bmp``,
``jpeg/img1.bmp`` ... ). Entries with ``orgs == 1`` are copies of a reference placed among the
distorted images; they are skipped, the references come from ``refimgs/`` (unscored rows).
Scores: ``dmos_realigned.mat`` (``dmos_new``) when present, else ``dmos.mat`` (``dmos``); pass
``--labels dmos.mat`` to use the original alignment. DMOS is lower = better, so it is flipped.
Distortion codes: 1 jp2k, 2 jpeg, 3 wn (white noise), 4 gblur, 5 fastfading. LIVE has no discrete
levels: ``level`` is null. Sample ids keep the folder: ``live/jp2k/img1``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from curate.corpus.base import (
    FileIndex,
    Ingested,
    IngestError,
    concat_rows,
    dataset_root,
    input_fingerprints,
    load_mat,
    make_rows,
    mat_strings,
    reference_rows,
    relative_name,
    require_file,
    stem,
)
from curate.corpus.options import ReaderOptions

FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
ENTRIES = sum(n for _, n in FOLDERS)


def read(root: Path, options: ReaderOptions) -> Ingested:
    root = dataset_root(root, "refnames_all.mat", nested=("databaserelease2", "LIVE", "live"))
    source = options.source or "live"
    if options.labels is not None:
        labels = require_file(root, options.labels, "DMOS file")
    elif (root / "dmos_realigned.mat").is_file():
        labels = root / "dmos_realigned.mat"
    else:
        labels = require_file(root, "dmos.mat", "DMOS file dmos.mat (or dmos_realigned.mat)")
    score_var = "dmos_new" if "realigned" in labels.name else "dmos"
    scores_mat = load_mat(labels, [score_var])
    dmos = np.asarray(scores_mat[score_var], dtype=np.float64).flatten(order="F")
    orgs_file = labels
    try:
        orgs = load_mat(labels, ["orgs"])["orgs"]
    except IngestError:
        orgs_file = require_file(root, "dmos.mat", "dmos.mat (for the 'orgs' flags)")
        orgs = load_mat(orgs_file, ["orgs"])["orgs"]
    orgs = np.asarray(orgs).flatten(order="F").astype(bool)
    names_file = require_file(root, "refnames_all.mat", "label file refnames_all.mat")
    refnames = mat_strings(load_mat(names_file, ["refnames_all"])["refnames_all"])
    for what, n in ((f"{labels.name} {score_var}", len(dmos)), ("orgs", len(orgs)), ("refnames_all", len(refnames))):
        if n != ENTRIES:
            raise IngestError(f"{root}: {what} has {n} entries; LIVE release 2 has {ENTRIES}")

    folders = [f for f, n in FOLDERS for _ in range(n)]
    numbers = [i for _, n in FOLDERS for i in range(1, n + 1)]
    distortion = [code for code, (_, n) in enumerate(FOLDERS, start=1) for _ in range(n)]
    keep = np.flatnonzero(~orgs)
    bad = keep[~np.isfinite(dmos[keep])]
    if len(bad):
        raise IngestError(f"{labels}: entry {int(bad[0]) + 1}: {score_var} is not a finite number")
    dist_paths: list[str] = []
    for folder, _ in FOLDERS:
        idx = [i for i in keep if folders[i] == folder]
        if not idx:
            continue
        names = [f"img{numbers[i]}.bmp" for i in idx]
        dist_paths += FileIndex(root, folder).resolve(
            names, label_file=labels, row_labels=[f"entry {i + 1}" for i in idx]
        )
    ref_names = sorted(set(refnames))
    ref_paths = FileIndex(root, "refimgs").resolve(
        ref_names, label_file=names_file, row_labels=[f"refnames_all {n!r}" for n in ref_names]
    )
    ref_id_of = {n: f"{source}/{stem(n)}" for n in ref_names}
    distorted = make_rows(
        source=source,
        sample_ids=[f"{source}/{folders[i]}/img{numbers[i]}" for i in keep],
        paths=dist_paths,
        ref_ids=[ref_id_of[refnames[i]] for i in keep],
        is_reference=False,
        distortion=[distortion[i] for i in keep],
        score_raw=dmos[keep],
    )
    references = reference_rows(source, [ref_id_of[n] for n in ref_names], ref_paths)
    files = sorted({labels, orgs_file, names_file})
    return Ingested(
        rows=concat_rows([references, distorted]),
        root=root,
        higher_is_better=False,
        inputs=input_fingerprints(root, files),
        facts={"label_file": relative_name(root, labels), "score_variable": score_var},
    )
