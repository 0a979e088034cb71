"""Density structure: PCA + HDBSCAN clusters and their purity, and DRCDown's redundancy groups.

HDBSCAN is run on a PCA reduction of the embeddings (euclidean distance between unit vectors is a
monotone function of cosine distance, and PCA to ~32 dims keeps HDBSCAN fast). At scale it runs on a
subsample of at most ``cap`` samples, chosen by a seeded hash of ``sample_id`` so the choice does
not depend on row order. Redundancy groups are exact on every scored sample (sparse graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from curate.analyze.content import describe
from curate.analyze.params import CLUSTER_SELECTIONS
from curate.reshape.downsample import RedundancyGroups, keep_count
from curate.reshape.params import GROUP_CAP, KEEP_FRACTION

NO_DISTORTION = -1


@dataclass(frozen=True)
class Projection:
    """A linear map to ``dims`` principal components: ``(x - mean) @ components.T``.

    ``components`` [dims, dim]; ``explained_variance_ratio`` [dims]. The first two components are
    the 2-D map.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray

    @property
    def dims(self) -> int:
        return int(self.components.shape[0])

    def transform(self, vectors: np.ndarray, block: int = 65536) -> np.ndarray:
        """Project [n, dim] vectors to [n, dims] (float64), a block of rows at a time."""
        out = np.empty((vectors.shape[0], self.dims), dtype=np.float64)
        for s in range(0, vectors.shape[0], block):
            out[s : s + block] = (vectors[s : s + block].astype(np.float64) - self.mean) @ self.components.T
        return out


def fit_projection(vectors: np.ndarray, dims: int, seed: int) -> Projection:
    """Fit PCA with at most ``dims`` components on [n, dim] vectors (n >= 2), seeded."""
    from sklearn.decomposition import PCA

    n, dim = vectors.shape
    k = max(1, min(dims, dim, n - 1))
    pca = PCA(n_components=k, random_state=seed).fit(np.asarray(vectors, dtype=np.float64))
    return Projection(pca.mean_, pca.components_, pca.explained_variance_ratio_)


def find_clusters(
    points: np.ndarray,
    min_cluster_size: int,
    min_samples: int | None,
    selection: str,
) -> np.ndarray:
    """HDBSCAN labels for [n, d] points: -1 for noise, clusters numbered 0.. by size (largest first).

    ``selection`` is HDBSCAN's cluster selection: ``leaf`` takes the finest clusters of the
    condensed tree, which stay comparable between two sets; ``eom`` (excess of mass) may instead
    pick one cluster near the root when the density hierarchy shifts. Ties in size are ordered by
    the cluster's first member, so the numbering is deterministic.
    """
    if selection not in CLUSTER_SELECTIONS:
        raise ValueError(f"cluster selection {selection!r} is not one of {CLUSTER_SELECTIONS}")
    n = points.shape[0]
    labels = np.full(n, -1, dtype=np.int64)
    if n <= min_cluster_size:
        return labels
    import hdbscan

    raw = hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        cluster_selection_method=selection,
        core_dist_n_jobs=1,
    ).fit_predict(np.ascontiguousarray(points, dtype=np.float64))
    found = np.unique(raw[raw >= 0])
    if found.size == 0:
        return labels
    sizes = np.array([(raw == c).sum() for c in found])
    first = np.array([np.flatnonzero(raw == c)[0] for c in found])
    rank = np.lexsort((first, -sizes))
    renumber = np.full(int(found.max()) + 1, -1, dtype=np.int64)
    renumber[found[rank]] = np.arange(found.size)
    clustered = raw >= 0
    labels[clustered] = renumber[raw[clustered]]
    return labels


def gini(sizes: np.ndarray) -> float:
    """Gini coefficient of non-negative sizes: 0 when all equal, towards 1 when one holds everything."""
    s = np.sort(np.asarray(sizes, dtype=np.float64))
    m = s.size
    if m == 0 or s.sum() == 0:
        return 0.0
    rank = np.arange(1, m + 1)
    return float(2.0 * (rank * s).sum() / (m * s.sum()) - (m + 1) / m)


def _majority(categories: np.ndarray, members: np.ndarray) -> tuple[Any, int]:
    values, counts = np.unique(categories[members], return_counts=True)
    top = int(np.argmax(counts))  # np.unique sorts values, so ties go to the smallest value
    return values[top], int(counts[top])


def cluster_structure(
    labels: np.ndarray,
    reference: np.ndarray,
    distortion: np.ndarray,
    level: np.ndarray,
    score: np.ndarray,
) -> dict[str, Any]:
    """Sizes and purity of HDBSCAN clusters.

    ``labels`` [n] (-1 noise), ``reference`` [n] ref_id strings, ``distortion`` [n] int
    (:data:`NO_DISTORTION` when none), ``level`` [n] int (0 when none), ``score`` [n] float (NaN when
    none). A cluster's purity by reference (by distortion type) is the share of its members that
    share its most common reference (type). Means are weighted by cluster size.
    """
    n = labels.size
    k = int(labels.max()) + 1 if n and labels.max() >= 0 else 0
    reference = np.asarray(reference).astype(str)
    ref_purity = np.zeros(k)
    dist_purity = np.zeros(k)
    table: list[dict[str, Any]] = []
    sizes = np.bincount(labels[labels >= 0], minlength=k) if k else np.zeros(0, np.int64)
    for c in range(k):
        members = np.flatnonzero(labels == c)
        top_ref, ref_count = _majority(reference, members)
        top_dist, dist_count = _majority(distortion, members)
        ref_purity[c] = ref_count / members.size
        dist_purity[c] = dist_count / members.size
        levels = level[members]
        scores = score[members]
        table.append(
            {
                "cluster": c,
                "size": int(members.size),
                "top_reference": str(top_ref),
                "reference_purity": float(ref_purity[c]),
                "top_distortion": None if int(top_dist) == NO_DISTORTION else int(top_dist),
                "distortion_purity": float(dist_purity[c]),
                "references": int(np.unique(reference[members]).size),
                "mean_level": float(levels[levels > 0].mean()) if (levels > 0).any() else None,
                "mean_score": float(np.nanmean(scores)) if np.isfinite(scores).any() else None,
            }
        )
    clustered = labels >= 0
    by_level = []
    for lv in np.unique(level[level > 0]):
        at = level == lv
        inside = at & clustered
        by_level.append(
            {
                "level": int(lv),
                "samples": int(at.sum()),
                "clustered_share": float(inside.sum() / at.sum()),
                "reference_purity": float(ref_purity[labels[inside]].mean()) if inside.any() else None,
                "distortion_purity": float(dist_purity[labels[inside]].mean()) if inside.any() else None,
            }
        )
    return {
        "found": k,
        "clustered": int(clustered.sum()),
        "largest_share": float(sizes.max() / clustered.sum()) if k else None,
        "noise_share": float(1.0 - clustered.mean()) if n else 0.0,
        "size": describe(sizes),
        "size_gini": gini(sizes),
        "reference_purity": float((ref_purity * sizes).sum() / sizes.sum()) if k else None,
        "distortion_purity": float((dist_purity * sizes).sum() / sizes.sum()) if k else None,
        "purity_by_level": by_level,
        "table": table,
    }


@dataclass(frozen=True)
class Redundancy:
    """DRCDown's redundancy groups of a set: ``group_id`` / ``group_size`` per scored sample."""

    group_id: np.ndarray
    group_size: np.ndarray
    pairs: int

    @classmethod
    def of(cls, groups: RedundancyGroups) -> Redundancy:
        """The numbers an analysis keeps of DRCDown's groups (not the pairs themselves)."""
        return cls(groups.group_id, groups.group_size, len(groups.pairs))

    def group_sizes(self) -> np.ndarray:
        """Sizes of the groups (components with >= 2 members), in group-id order."""
        gid = self.group_id[self.group_id >= 0]
        return np.bincount(gid) if gid.size else np.zeros(0, np.int64)

    def component_sizes(self) -> np.ndarray:
        """Sizes of all components, samples in no redundant pair counting as components of 1."""
        singles = int((self.group_id < 0).sum())
        return np.concatenate([self.group_sizes(), np.ones(singles, np.int64)])


def redundancy_summary(
    redundancy: Redundancy, *, group_cap: int = GROUP_CAP, keep_fraction: float = KEEP_FRACTION
) -> dict[str, Any]:
    """Group counts, size distribution and heterogeneity of a set's redundancy groups.

    Heterogeneity: ``size_gini`` (Gini of all component sizes, singletons included),
    ``sample_weighted_group_size`` (the expected size of a random sample's component, sum L^2 / n),
    and the share of samples in groups above ``group_cap``. ``drcdown_would_remove`` is how many
    samples DRCDown's keep rule would drop from these groups.
    """
    n = int(redundancy.group_id.size)
    groups = redundancy.group_sizes()
    components = redundancy.component_sizes()
    above = groups[groups > group_cap]
    sizes, counts = np.unique(groups, return_counts=True)
    in_groups = int(groups.sum())
    return {
        "samples": n,
        "pairs": int(redundancy.pairs),
        "groups": int(groups.size),
        "in_groups": in_groups,
        "in_groups_share": in_groups / n if n else 0.0,
        "largest_group": int(groups.max()) if groups.size else 0,
        "group_size": describe(groups),
        "size_histogram": [[int(s), int(c)] for s, c in zip(sizes, counts, strict=True)],
        "size_gini": gini(components),
        "sample_weighted_group_size": float((components.astype(np.float64) ** 2).sum() / n) if n else 0.0,
        "groups_above_cap": int(above.size),
        "samples_above_cap": int(above.sum()),
        "share_above_cap": float(above.sum() / n) if n else 0.0,
        "drcdown_would_remove": int(
            sum(int(s) - keep_count(int(s), group_cap, keep_fraction) for s in above)
        ),
    }
