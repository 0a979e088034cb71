"""DDCUp: distribution-aware diverse content upsampling (METHOD.md, "DDCUp")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.reshape.neighbours import knn


@dataclass(frozen=True)
class ContentThresholds:
    """Spread of the training references' content.

    ``nearest_distance[j]``: distance from reference j to its nearest other reference;
    ``novelty_threshold`` (r): the median of those; ``max_spread``: the largest distance between
    any two references. Distances are cosine distances ``1 - cos``.
    """

    nearest_distance: np.ndarray
    novelty_threshold: float
    max_spread: float


def content_thresholds(reference_vectors: np.ndarray, *, device: str = "auto") -> ContentThresholds:
    """Thresholds of DDCUp step 1 from L2-normalised reference features [n_refs, dim] (n_refs >= 2)."""
    refs = np.asarray(reference_vectors, dtype=np.float32)
    if refs.shape[0] < 2:
        raise ValueError(f"DDCUp needs at least 2 training references, got {refs.shape[0]}")
    _, nearest = knn(refs, refs, 1, exclude_self=True, device=device)
    _, farthest = knn(refs, refs, 1, farthest=True, device=device)
    return ContentThresholds(
        nearest_distance=nearest[:, 0],
        novelty_threshold=float(np.median(nearest[:, 0])),
        max_spread=float(farthest[:, 0].max()),
    )
