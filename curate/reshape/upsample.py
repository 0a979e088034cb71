"""DDCUp: distribution-aware diverse content upsampling (METHOD.md, "DDCUp")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.reshape.neighbours import TooManyPairs, knn, threshold_pairs


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


# --------------------------------------------------------------------------------------------
# Candidate selection: eligibility, then greedy thinning

NOT_NOVEL = "ddc_not_novel"
OUT_OF_DISTRIBUTION = "ddc_out_of_distribution"
TOO_CLOSE = "ddc_too_close_to_kept"
CANDIDATE_KEPT = "ddc_kept"

# Greedy thinning takes all pairs closer than r at once when they fit this budget (16 bytes a
# pair); otherwise it goes band by band, from r/4**k upward, among the survivors of earlier bands.
THINNING_PAIR_BUDGET = 20_000_000
THINNING_BAND_FRACTIONS = (1.0, 1 / 4, 1 / 16, 1 / 64, 1 / 256)


@dataclass(frozen=True)
class CandidateSelection:
    """DDCUp's verdict on m candidate references, in the caller's candidate order.

    ``nearest_distance`` / ``farthest_distance`` [m]: cosine distance to the nearest / farthest
    training reference; ``eligible`` and ``kept`` [m] bool; ``reason`` [m] str (``ddc_kept``,
    ``ddc_not_novel``, ``ddc_out_of_distribution``, ``ddc_too_close_to_kept``); ``dropped_for`` [m]:
    for a candidate thinned out, the index of the candidate it was too close to, else -1;
    ``drop_order``: indices of the thinned-out candidates in the order they were dropped.
    """

    thresholds: ContentThresholds
    nearest_distance: np.ndarray
    farthest_distance: np.ndarray
    eligible: np.ndarray
    kept: np.ndarray
    reason: np.ndarray
    dropped_for: np.ndarray
    drop_order: np.ndarray


def greedy_thinning(
    vectors: np.ndarray,
    radius: float,
    *,
    pair_budget: int = THINNING_PAIR_BUDGET,
    device: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DDCUp step 3: while two survivors are closer than ``radius``, drop the earlier of the closest pair.

    ``vectors`` [m, dim] L2-normalised, in candidate order (the earlier index is the one dropped;
    equal distances are taken in (first, second) index order). Equivalent to processing every pair
    with distance < radius in ascending order and dropping the earlier member when both are alive,
    which is what this does, in O(pairs log pairs).

    When the pairs closer than ``radius`` exceed ``pair_budget``, they are taken band by band: all
    pairs closer than a smaller limit among the current survivors, then a larger limit among the
    survivors of that, and so on up to ``radius``. After a band every surviving pair is at least
    that band's limit apart, so each band holds exactly the pairs the one-pass order would reach
    next, and the result is the same.

    Returns ``(kept [m] bool, dropped_for [m] int64, drop_order [k] int64)``.
    """
    m = vectors.shape[0]
    alive = np.ones(m, dtype=bool)
    dropped_for = np.full(m, -1, dtype=np.int64)
    drop_order: list[int] = []
    done = 0.0  # every surviving pair is at least this far apart
    while done < radius:
        survivors = np.flatnonzero(alive)
        if survivors.size < 2:
            break
        limits = [radius * f for f in THINNING_BAND_FRACTIONS if radius * f > done]
        pairs = None
        for attempt, limit in enumerate(limits):
            # the smallest band is taken whatever its size (a pile of near-duplicates)
            budget = pair_budget if attempt < len(limits) - 1 else None
            try:
                # a hair looser than the limit, then the limit itself on the float64 distance
                pairs = threshold_pairs(
                    vectors[survivors],
                    1.0 - limit - 1e-12,
                    exact_values=True,
                    max_pairs=budget,
                    device=device,
                )
                break
            except TooManyPairs:
                continue
        assert pairs is not None
        distance = pairs.distance
        inside = distance < limit
        first = survivors[pairs.i[inside]]
        second = survivors[pairs.j[inside]]
        distance = distance[inside]
        order = np.lexsort((second, first, distance))
        # plain Python lists and a bytearray: this loop may see millions of pairs
        live = bytearray(alive.tobytes())
        for a, b in zip(first[order].tolist(), second[order].tolist(), strict=True):
            if live[a] and live[b]:
                live[a] = 0
                dropped_for[a] = b
                drop_order.append(a)
        alive = np.frombuffer(bytes(live), dtype=bool).copy()
        done = limit
    return alive, dropped_for, np.asarray(drop_order, dtype=np.int64)


def _thinning_rank(order: np.ndarray | None, m: int) -> np.ndarray:
    """``rank[c]`` [m] int64: the position of candidate c in ``order`` (candidate indices, first to
    last; a permutation of ``0..m-1``) or, for ``None``, in index order."""
    if order is None:
        return np.arange(m, dtype=np.int64)
    listed = np.asarray(order)
    if (
        listed.shape != (m,)
        or (m and not np.issubdtype(listed.dtype, np.integer))
        or not np.array_equal(np.sort(listed), np.arange(m))
    ):
        raise ValueError(f"candidate order must list each of the {m} candidate indices exactly once")
    rank = np.empty(m, dtype=np.int64)
    rank[listed.astype(np.int64)] = np.arange(m)
    return rank


def select_candidates(
    candidate_vectors: np.ndarray,
    reference_vectors: np.ndarray,
    *,
    thresholds: ContentThresholds | None = None,
    order: np.ndarray | None = None,
    device: str = "auto",
) -> CandidateSelection:
    """DDCUp steps 1-3 on candidate features [m, dim] against training references [n_refs, dim].

    A candidate is eligible iff its nearest training reference is farther than r (novel) and its
    farthest is nearer than the references' largest spread (in distribution); eligible candidates
    are then thinned greedily: of the closest pair, the member that comes first in the candidate
    order is dropped, and equal distances are taken in the order of their members (first, then
    second), as the release's argmin over its distance matrix does.

    ``order`` [m] int: candidate indices in the thinning order (e.g. the release's file order, from
    :func:`curate.reshape.candidate_order.read_candidate_order`); ``None`` keeps the index order,
    which the pipeline makes ascending ``sample_id``. Results stay indexed like the inputs.
    """
    cand = np.asarray(candidate_vectors, dtype=np.float32)
    refs = np.asarray(reference_vectors, dtype=np.float32)
    if thresholds is None:
        thresholds = content_thresholds(refs, device=device)
    m = cand.shape[0]
    rank = _thinning_rank(order, m)
    reason = np.full(m, CANDIDATE_KEPT, dtype=object)
    if m == 0:
        empty_f = np.zeros(0, np.float64)
        empty_i = np.zeros(0, np.int64)
        return CandidateSelection(
            thresholds, empty_f, empty_f, np.zeros(0, bool), np.zeros(0, bool), reason, empty_i, empty_i
        )
    _, nearest = knn(cand, refs, 1, device=device)
    _, farthest = knn(cand, refs, 1, farthest=True, device=device)
    nearest, farthest = nearest[:, 0], farthest[:, 0]
    novel = nearest > thresholds.novelty_threshold
    inside = farthest < thresholds.max_spread
    reason[~novel] = NOT_NOVEL
    reason[novel & ~inside] = OUT_OF_DISTRIBUTION
    eligible = novel & inside
    kept = np.zeros(m, dtype=bool)
    dropped_for = np.full(m, -1, dtype=np.int64)
    # eligible candidates in thinning order: greedy_thinning drops the lower index of a pair
    elig_idx = np.flatnonzero(eligible)
    elig_idx = elig_idx[np.argsort(rank[elig_idx], kind="stable")]
    kept_sub, dropped_sub, order_sub = greedy_thinning(
        cand[elig_idx], thresholds.novelty_threshold, device=device
    )
    kept[elig_idx] = kept_sub
    has_partner = dropped_sub >= 0
    dropped_for[elig_idx[has_partner]] = elig_idx[dropped_sub[has_partner]]
    reason[elig_idx[~kept_sub]] = TOO_CLOSE
    return CandidateSelection(
        thresholds, nearest, farthest, eligible, kept, reason, dropped_for, elig_idx[order_sub]
    )


# --------------------------------------------------------------------------------------------
# Pseudo-labels

WEIGHTINGS = ("official", "similarity", "uniform")
PSEUDO_NEIGHBOURS = 5
PSEUDO_MARGIN = 0.05


def neighbour_weights(distances: np.ndarray, weighting: str = "official") -> np.ndarray:
    """Weights of a kept candidate's label neighbours from their cosine distances [k].

    ``official``: softmax(+d), as the authors' release does (a farther neighbour weighs slightly
    more); ``similarity``: softmax(-d); ``uniform``: 1/k.
    """
    d = np.asarray(distances, dtype=np.float64)
    if weighting == "official":
        logits = d
    elif weighting == "similarity":
        logits = -d
    elif weighting == "uniform":
        return np.full(d.shape, 1.0 / d.size)
    else:
        raise ValueError(f"weighting {weighting!r} is not one of {WEIGHTINGS}")
    e = np.exp(logits - logits.max())
    return e / e.sum()


@dataclass(frozen=True)
class LabelNeighbours:
    """For each kept candidate c: ``index[c]`` (training-reference rows), ``distance[c]`` and
    ``weight[c]`` (arrays of equal length, 1-5, nearest first)."""

    index: list[np.ndarray]
    distance: list[np.ndarray]
    weight: list[np.ndarray]
    weighting: str


def label_neighbours(
    candidate_vectors: np.ndarray,
    reference_vectors: np.ndarray,
    *,
    weighting: str = "official",
    k: int = PSEUDO_NEIGHBOURS,
    margin: float = PSEUDO_MARGIN,
    device: str = "auto",
) -> LabelNeighbours:
    """The k nearest training references of each candidate, those within ``margin`` of the nearest,
    and their weights (``neighbour_weights``). Distances are cosine distances."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting {weighting!r} is not one of {WEIGHTINGS}")
    cand = np.asarray(candidate_vectors, dtype=np.float32)
    refs = np.asarray(reference_vectors, dtype=np.float32)
    index: list[np.ndarray] = []
    distance: list[np.ndarray] = []
    weight: list[np.ndarray] = []
    if cand.shape[0]:
        idx, dist = knn(cand, refs, min(k, refs.shape[0]), device=device)
        for row_idx, row_dist in zip(idx, dist, strict=True):
            close = row_dist - row_dist[0] < margin
            index.append(row_idx[close])
            distance.append(row_dist[close])
            weight.append(neighbour_weights(row_dist[close], weighting))
    return LabelNeighbours(index, distance, weight, weighting)
