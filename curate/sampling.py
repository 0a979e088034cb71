"""Seeded choices keyed by ``sample_id``: a sample's fate depends on its own id and the seed only.

Every random choice in curate (DRCDown's subsample of a group, the target-size tie-breaks, the
validation split, the analysis subsample) ranks samples by :func:`sample_keys`, so shuffling the
input rows never changes which samples are chosen.
"""

from __future__ import annotations

import hashlib

import numpy as np


def sample_keys(sample_ids: np.ndarray | list[str], seed: int) -> np.ndarray:
    """A reproducible pseudo-random uint64 per sample [n], from ``(seed, sample_id)`` alone."""
    out = np.empty(len(sample_ids), dtype=np.uint64)
    prefix = f"{int(seed)}\x00".encode()
    for k, sid in enumerate(sample_ids):
        digest = hashlib.blake2b(prefix + str(sid).encode(), digest_size=8).digest()
        out[k] = np.frombuffer(digest, dtype="<u8")[0]
    return out


def subsample(sample_ids: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Indices (ascending) of at most ``cap`` samples: those with the smallest (seed, sample_id) hash.

    A sample's fate depends only on its own id and the seed, so a sample kept in one set (the corpus)
    is also kept in another (the manifest) when both hold it and both are capped.
    """
    n = len(sample_ids)
    if n <= cap:
        return np.arange(n)
    ids = np.asarray(sample_ids, dtype=object)
    keys = sample_keys(ids, seed)
    order = np.lexsort((ids.astype(str), keys))
    return np.sort(order[:cap])
