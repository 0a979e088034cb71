"""Reading an analysis's inputs: the rows analyze uses, with their vectors, and nothing else.

The corpus samples (of the selected types), the corpus references, the manifest's rows and the
pool's candidate references; of the pool's distorted rows only those a manifest upsampled are
read, so a pool of millions of rows costs only the rows it contributes. Beside them: the image
roots of the corpus and the pool (the report shows a few images), the decisions table written
with the manifest, and the notes the embeddings recorded about their encoder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curate.analyze.density import NO_DISTORTION
from curate.errors import CurateError, TableError
from curate.inputs import load_inputs
from curate.schema import Embeddings, EmbeddingsFolder, corpus_root, read_frame, sorted_by_id

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class SampleSet:
    """The samples of one side of the comparison (``before``: corpus, ``after``: manifest).

    Rows are sorted by ``sample_id``. ``vectors`` [n, dim] L2-normalised; ``distortion`` int
    (:data:`NO_DISTORTION` when none); ``level`` int (0 when none); ``score`` float (NaN when none);
    ``origin`` ``original`` | ``upsampled``.
    """

    name: str
    ids: np.ndarray
    vectors: np.ndarray
    reference: np.ndarray
    distortion: np.ndarray
    level: np.ndarray
    score: np.ndarray
    origin: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.size)


@dataclass
class AnalysisInputs:
    """What an analysis reads, rows sorted by sample_id.

    ``references`` / ``reference_vectors``: the corpus references (vectors only when there are
    at least 2, the content measures' minimum); ``candidates`` / ``candidate_vectors``: the
    pool's candidate references (None without a pool); ``manifest`` and ``after``: the manifest's
    rows (None without one); ``manifest_params``: the params it recorded; ``pool_vectors``: the
    pool rows read (candidates and upsampled rows); ``paths`` / ``fingerprints``: the inputs as
    given and their fingerprints.
    """

    corpus: pd.DataFrame
    references: pd.DataFrame
    reference_vectors: np.ndarray
    before: SampleSet
    encoder: dict[str, Any]
    dim: int
    candidates: pd.DataFrame | None
    candidate_vectors: np.ndarray | None
    manifest: pd.DataFrame | None
    manifest_params: dict[str, Any] | None
    after: SampleSet | None
    pool_vectors: Embeddings | None = None
    paths: dict[str, Any] = field(default_factory=dict)
    fingerprints: dict[str, Any] = field(default_factory=dict)
    corpus_root: Path | None = None
    pool_root: Path | None = None
    decisions: pd.DataFrame | None = None
    decisions_note: str | None = None
    encoder_notes: list[str] = field(default_factory=list)


def _ids(frame: pd.DataFrame) -> np.ndarray:
    return frame["sample_id"].to_numpy(dtype=object)


def sample_set(name: str, frame: pd.DataFrame, vectors: np.ndarray, origin: Any) -> SampleSet:
    """A :class:`SampleSet` of ``frame``'s rows with their ``vectors`` [len(frame), dim]."""
    n = len(frame)
    origins = (
        np.asarray(origin, dtype=object) if not isinstance(origin, str) else np.full(n, origin, dtype=object)
    )
    return SampleSet(
        name=name,
        ids=_ids(frame),
        vectors=vectors,
        reference=frame["ref_id"].to_numpy(dtype=object).astype(str),
        distortion=frame["distortion"].astype("Int64").fillna(NO_DISTORTION).to_numpy(np.int64),
        level=frame["level"].astype("Int64").fillna(0).to_numpy(np.int64),
        score=frame["score"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan),
        origin=origins,
    )


def _union(*parts: np.ndarray) -> np.ndarray:
    ids = np.concatenate([np.asarray(p, dtype=object) for p in parts]) if parts else np.zeros(0, dtype=object)
    _, first = np.unique(ids.astype(str), return_index=True)
    return ids[np.sort(first)]


def read_analysis_inputs(
    corpus: PathLike,
    embeddings: PathLike,
    *,
    pool: PathLike | None = None,
    pool_embeddings: PathLike | None = None,
    manifest: PathLike | None = None,
    types: Sequence[int] | None = None,
) -> AnalysisInputs:
    """Read and check the tables, then the vectors of the rows the analysis uses; refuse mixed
    encoders and uncovered samples."""
    if pool is not None and pool_embeddings is None:
        raise CurateError("--pool needs --pool-embeddings (the pool candidates' embeddings)")
    paths = {"corpus": corpus, "embeddings": embeddings, "pool": pool, "pool_embeddings": pool_embeddings}
    data = load_inputs(**paths, manifest=manifest, pool_references_only=True)
    assert data.corpus is not None and data.embeddings is not None
    corpus_df = data.corpus
    is_ref = corpus_df["is_reference"].to_numpy(dtype=bool)
    selected = ~is_ref
    if types is not None:
        dist = corpus_df["distortion"].astype("Int64").fillna(NO_DISTORTION).to_numpy(np.int64)
        selected &= np.isin(dist, np.asarray(list(types), dtype=np.int64))
    if not selected.any():
        what = f" of types {','.join(map(str, types))}" if types is not None else ""
        raise CurateError(f"{corpus}: no non-reference samples{what} to analyse")
    before_df = corpus_df[selected]
    refs_df = corpus_df[is_ref]

    candidates = None
    if data.pool is not None:
        candidates = data.pool  # read as references only
        if candidates.empty:
            raise CurateError(f"{pool}: the pool has no reference images (is_reference); nothing to place")

    manifest_df = data.manifest
    original_rows = upsampled_rows = np.zeros(0, dtype=object)
    if manifest_df is not None:
        upsampled = manifest_df["origin"].to_numpy(dtype=object) == "upsampled"
        original_rows, upsampled_rows = _ids(manifest_df[~upsampled]), _ids(manifest_df[upsampled])
        if upsampled.any() and data.pool_embeddings is None:
            raise CurateError(
                f"{manifest}: {int(upsampled.sum())} upsampled row(s) need --pool-embeddings "
                "(their embeddings come from the pool)"
            )

    # the content measures need 2 references at least; with fewer, none is read
    ref_ids = _ids(refs_df) if len(refs_df) >= 2 else np.zeros(0, dtype=object)
    corpus_vectors = data.embeddings.load(
        _union(_ids(before_df), ref_ids, original_rows),
        needs=[
            (_ids(before_df), "corpus"),
            (original_rows, f"manifest {manifest} (original rows)"),
            (ref_ids, "corpus references"),
        ],
    )
    pool_vectors = None
    if data.pool_embeddings is not None:
        pool_vectors = data.pool_embeddings.load(
            _union(upsampled_rows, _ids(candidates) if candidates is not None else np.zeros(0, dtype=object)),
            needs=[
                (upsampled_rows, f"manifest {manifest} (upsampled rows)"),
                (_ids(candidates) if candidates is not None else [], "pool references"),
            ],
        )
    before = sample_set("before", before_df, corpus_vectors.take(_ids(before_df)), "original")
    after = None
    if manifest_df is not None:
        upsampled = manifest_df["origin"].to_numpy(dtype=object) == "upsampled"
        vectors = np.empty((len(manifest_df), data.embeddings.dim), dtype=corpus_vectors.vectors.dtype)
        vectors[~upsampled] = corpus_vectors.take(original_rows)
        if upsampled.any():
            assert pool_vectors is not None
            vectors[upsampled] = pool_vectors.take(upsampled_rows)
        after = sample_set("after", manifest_df, vectors, manifest_df["origin"].to_numpy(dtype=object))
    decisions, decisions_note = (None, None) if manifest is None else read_decisions(manifest, data.manifest_meta)
    return AnalysisInputs(
        corpus=corpus_df,
        references=refs_df,
        reference_vectors=corpus_vectors.take(ref_ids),
        before=before,
        encoder=data.embeddings.encoder,
        dim=data.embeddings.dim,
        candidates=candidates,
        candidate_vectors=None if candidates is None or pool_vectors is None else pool_vectors.take(_ids(candidates)),
        manifest=manifest_df,
        manifest_params=dict(data.manifest_meta.get("params") or {}) if manifest_df is not None else None,
        after=after,
        pool_vectors=pool_vectors,
        paths=data.paths,
        fingerprints=data.fingerprints(),
        corpus_root=_root(data.corpus_meta, corpus),
        pool_root=None if pool is None else _root(data.pool_meta, pool),
        decisions=decisions,
        decisions_note=decisions_note,
        encoder_notes=encoder_notes(data.embeddings, data.pool_embeddings),
    )


def _root(meta: dict[str, Any], where: PathLike) -> Path | None:
    """The image root a corpus records, or None (its images are then shown as missing)."""
    try:
        return corpus_root(meta, where)
    except TableError:
        return None


# What a manifest and its decisions table share when one reshape wrote both.
SHARED_METADATA = ("params", "seed", "inputs")


def read_decisions(manifest: PathLike, manifest_meta: dict[str, Any]) -> tuple[pd.DataFrame | None, str | None]:
    """The decisions table written beside ``manifest`` by the same reshape, or None and why not."""
    from curate.reshape.pipeline import decisions_path_for

    path = decisions_path_for(manifest)
    if not path.is_file():
        return None, f"no decisions table beside the manifest ({path.name}); no thumbnails of its decisions"
    frame, meta = read_frame(path, "decisions")
    differing = [key for key in SHARED_METADATA if meta.get(key) != manifest_meta.get(key)]
    if differing:
        return None, (
            f"{path}: written by another reshape than {manifest} (its {', '.join(differing)} differ); "
            "its decisions are not shown"
        )
    return sorted_by_id(frame), None


def encoder_notes(*folders: EmbeddingsFolder | None) -> list[str]:
    """The ``notes`` the embeddings folders recorded (why a fallback encoder was used, random
    weights, ...), each once, in order."""
    notes: list[str] = []
    for folder in folders:
        if folder is None:
            continue
        for note in folder.meta.get("notes") or []:
            if str(note) not in notes:
                notes.append(str(note))
    return notes
