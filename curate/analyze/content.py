"""Content distribution: how spread the training references are, and where pool candidates fall.

The thresholds are DDCUp's (METHOD.md): ``r`` is the median distance from a training reference to its
nearest other reference, ``maxT_all`` the largest distance between two references. A pool
candidate is *novel* when its nearest training reference is farther than ``r`` and *in
distribution* when its farthest training reference is nearer than ``maxT_all``; it is *eligible*
when both hold (before DDCUp's greedy thinning, which ``curate reshape`` applies). The test is
DDCUp's own (:func:`curate.reshape.upsample.place_candidates`). Distances are cosine distances
``1 - cos``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from curate.reshape.upsample import CandidatePlacement, content_thresholds, place_candidates


@dataclass(frozen=True)
class ContentDistribution:
    """Spread of the training references (``nearest_distance`` [n_refs]) and DDCUp's thresholds;
    with a pool, its candidates' ids and their placement (DDCUp's own eligibility test)."""

    reference_ids: np.ndarray
    nearest_distance: np.ndarray
    novelty_threshold: float
    max_spread: float
    candidate_ids: np.ndarray | None = None
    pool: CandidatePlacement | None = None


def content_distribution(
    reference_ids: np.ndarray,
    reference_vectors: np.ndarray,
    *,
    candidate_ids: np.ndarray | None = None,
    candidate_vectors: np.ndarray | None = None,
    device: str = "auto",
) -> ContentDistribution:
    """Reference nearest-neighbour distances, thresholds r / maxT_all and the pool's placement.

    ``reference_vectors`` [n_refs, dim] and ``candidate_vectors`` [n_candidates, dim] are
    L2-normalised; n_refs >= 2. The work is blocked kNN (never a dense n x n matrix).
    """
    thresholds = content_thresholds(reference_vectors, device=device)
    pool = None
    if candidate_vectors is not None:
        assert candidate_ids is not None
        pool = place_candidates(candidate_vectors, reference_vectors, thresholds, device=device)
    return ContentDistribution(
        reference_ids=np.asarray(reference_ids, dtype=object),
        nearest_distance=thresholds.nearest_distance,
        novelty_threshold=thresholds.novelty_threshold,
        max_spread=thresholds.max_spread,
        candidate_ids=None if candidate_ids is None else np.asarray(candidate_ids, dtype=object),
        pool=pool,
    )


def describe(values: np.ndarray) -> dict[str, Any]:
    """Count, mean, std, min, quartiles and max of a 1-D array (empty -> count 0 only)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"count": 0}
    q = np.quantile(v, [0.0, 0.25, 0.5, 0.75, 1.0])
    return {
        "count": int(v.size),
        "mean": float(v.mean()),
        "std": float(v.std()),
        "min": float(q[0]),
        "q25": float(q[1]),
        "median": float(q[2]),
        "q75": float(q[3]),
        "max": float(q[4]),
    }


def content_summary(content: ContentDistribution) -> dict[str, Any]:
    """The numbers of a :class:`ContentDistribution` as plain JSON-able data."""
    out: dict[str, Any] = {
        "references": int(content.reference_ids.size),
        "r": content.novelty_threshold,
        "maxT_all": content.max_spread,
        "nearest_distance": describe(content.nearest_distance),
    }
    if content.pool is not None:
        p = content.pool
        out["pool"] = {
            "candidates": int(p.novel.size),
            "novel": int(p.novel.sum()),
            "in_distribution": int(p.in_distribution.sum()),
            "eligible": int(p.eligible.sum()),
            "min_distance": describe(p.nearest_distance),
            "max_distance": describe(p.farthest_distance),
        }
    return out
