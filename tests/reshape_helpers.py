"""Tiny KADID-like corpora, pools and embeddings for the reshape tests (built with schema writers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curate.schema import embeddings_table, make_metadata, write_parquet, write_table

ENCODER = {"name": "test-encoder", "weights": {"tag": "none"}}


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def write_embeddings(
    folder: Path, ids: list[str], vectors: np.ndarray, *, encoder: dict | None = None, shards: int = 1
) -> Path:
    """An embeddings folder (``part-*.parquet``) holding ``vectors`` [n, dim] for ``ids``."""
    folder.mkdir(parents=True, exist_ok=True)
    dim = vectors.shape[1]
    meta = make_metadata("embeddings", encoder=encoder or ENCODER, dim=dim, dtype="float32")
    bounds = np.linspace(0, len(ids), shards + 1).astype(int)
    for s in range(shards):
        part = slice(bounds[s], bounds[s + 1])
        write_parquet(embeddings_table(ids[part], vectors[part]), folder / f"part-{s:05d}.parquet", meta)
    return folder


def write_corpus(path: Path, frame: pd.DataFrame, root: Path) -> Path:
    return write_table(frame, path, "corpus", make_metadata("corpus", root=str(root)))


@dataclass
class Dataset:
    corpus: Path
    embeddings: Path
    pool: Path | None
    pool_embeddings: Path | None
    train: pd.DataFrame
    train_vectors: dict[str, np.ndarray]
    pool_frame: pd.DataFrame | None
    pool_vectors: dict[str, np.ndarray]


def corpus_rows(
    prefix: str,
    source: str,
    refs: list[str],
    types: list[int],
    levels: list[int],
    scores: dict[tuple[str, int, int], float] | None,
) -> pd.DataFrame:
    rows = []
    for ref in refs:
        rows.append(
            dict(
                sample_id=f"{prefix}/{ref}",
                path=f"{ref}.png",
                ref_id=ref,
                is_reference=True,
                distortion=None,
                level=None,
                score=None,
                score_raw=None,
                source=source,
                split=None,
            )
        )
        for t in types:
            for lv in levels:
                score = None if scores is None else scores[(ref, t, lv)]
                rows.append(
                    dict(
                        sample_id=f"{prefix}/{ref}_{t:02d}_{lv:02d}",
                        path=f"{ref}_{t:02d}_{lv:02d}.png",
                        ref_id=ref,
                        is_reference=False,
                        distortion=t,
                        level=lv,
                        score=score,
                        score_raw=None if score is None else score / 2,
                        source=source,
                        split=None,
                    )
                )
    return pd.DataFrame(rows)


def make_dataset(
    tmp: Path,
    *,
    n_refs: int = 10,
    types: tuple[int, ...] = (1, 3, 10),
    levels: tuple[int, ...] = (1, 2, 3, 4, 5),
    n_candidates: int = 14,
    pool_levels: tuple[int, ...] = (1, 2, 3, 4, 5),
    dim: int = 12,
    seed: int = 0,
    with_pool: bool = True,
) -> Dataset:
    """A training corpus of refs x types x levels with clustered features and scores, and a pool.

    Distorted features sit near their reference (low levels) and drift toward a per-type direction
    (high levels), so low-level versions of one reference and high-level versions of one type form
    redundant groups. Candidates are mixtures of training references plus noise: some too close to
    one (not novel), some far off (out of distribution), some close to each other (thinned).
    """
    rng = np.random.default_rng(seed)
    ref_names = [f"I{k:02d}" for k in range(1, n_refs + 1)]
    ref_vec = unit(rng.normal(size=(n_refs, dim)))
    type_dir = {t: unit(rng.normal(size=dim)) for t in types}
    vectors: dict[str, np.ndarray] = {}
    scores: dict[tuple[str, int, int], float] = {}
    for r, ref in enumerate(ref_names):
        vectors[f"kadid/{ref}"] = ref_vec[r]
        for t in types:
            for lv in levels:
                mix = 0.15 * lv
                v = unit((1 - mix) * ref_vec[r] + mix * type_dir[t] + 0.02 * rng.normal(size=dim))
                vectors[f"kadid/{ref}_{t:02d}_{lv:02d}"] = v
                scores[(ref, t, lv)] = float(np.clip(9.5 - 1.8 * lv + rng.normal(0, 0.3), 0, 10))
    train = corpus_rows("kadid", "kadid10k", ref_names, list(types), list(levels), scores)
    root = tmp / "train_root"
    root.mkdir(parents=True, exist_ok=True)
    corpus = write_corpus(tmp / "corpus.parquet", train, root)
    ids = sorted(vectors)
    embeddings = write_embeddings(tmp / "emb", ids, np.stack([vectors[i] for i in ids]), shards=2)
    if not with_pool:
        return Dataset(corpus, embeddings, None, None, train, vectors, None, {})
    cand_names = [f"P{k:03d}" for k in range(n_candidates)]
    pool_vectors: dict[str, np.ndarray] = {}
    for c, name in enumerate(cand_names):
        kind = c % 4
        if kind == 0:  # close to one training reference: not novel
            v = ref_vec[c % n_refs] + 0.1 * unit(rng.normal(size=dim))
        elif kind == 1:  # a new direction: novel and (mostly) in distribution
            v = rng.normal(size=dim) + 0.5 * ref_vec.mean(axis=0)
        elif kind == 2:  # near the previous candidate: thinned by the greedy step
            v = pool_vectors[f"pool/{cand_names[c - 1]}"] + 0.5 * unit(rng.normal(size=dim))
        else:  # opposite of the references' mean: out of distribution
            v = -ref_vec.mean(axis=0) * 3 + 0.3 * unit(rng.normal(size=dim))
        pool_vectors[f"pool/{name}"] = unit(v)
    pool_frame = corpus_rows("pool", "pool", cand_names, list(types), list(pool_levels), None)
    pool_root = tmp / "pool_root"
    pool_root.mkdir(parents=True, exist_ok=True)
    pool = write_corpus(tmp / "pool.parquet", pool_frame, pool_root)
    pids = sorted(pool_vectors)
    pool_emb = write_embeddings(tmp / "pool_emb", pids, np.stack([pool_vectors[i] for i in pids]))
    return Dataset(corpus, embeddings, pool, pool_emb, train, vectors, pool_frame, pool_vectors)
