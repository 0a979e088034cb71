"""DDCUp: distribution-aware diverse content upsampling (METHOD.md, "DDCUp").

The pure steps on arrays (thresholds, candidate selection, label neighbours), then
:func:`upsample_stage`, the DDCUp stage of a reshape on tables: the candidates' verdicts, their
distorted versions and their pseudo-labels from the training references' scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from curate.errors import CurateError
from curate.reshape.decisions import decision_frame
from curate.reshape.neighbours import TooManyPairs, knn, threshold_pairs
from curate.reshape.params import CANDIDATE_MODES, PSEUDO_MARGIN, PSEUDO_NEIGHBOURS, WEIGHTINGS
from curate.sampling import sample_keys
from curate.schema import sorted_by_id


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
CANDIDATE_SELECTED = "ddc_selected"

# Greedy thinning takes all pairs closer than r at once when they fit this budget (16 bytes a
# pair); otherwise it goes band by band, from r/4**k upward, among the survivors of earlier bands.
THINNING_PAIR_BUDGET = 20_000_000
THINNING_BAND_FRACTIONS = (1.0, 1 / 4, 1 / 16, 1 / 64, 1 / 256)


@dataclass(frozen=True)
class CandidateSelection:
    """DDCUp's verdict on m candidate references, in the caller's candidate order.

    ``nearest_distance`` / ``farthest_distance`` [m]: cosine distance to the nearest / farthest
    training reference; ``eligible`` and ``kept`` [m] bool; ``reason`` [m] str (``ddc_selected``,
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


@dataclass(frozen=True)
class CandidatePlacement:
    """Where m candidates lie relative to the training references (DDCUp step 2).

    ``nearest_distance`` / ``farthest_distance`` [m]: cosine distance to the nearest / farthest
    training reference; ``novel``: nearest farther than r; ``in_distribution``: farthest nearer
    than maxT_all; ``eligible``: both.
    """

    nearest_distance: np.ndarray
    farthest_distance: np.ndarray
    novel: np.ndarray
    in_distribution: np.ndarray

    @property
    def eligible(self) -> np.ndarray:
        return self.novel & self.in_distribution


def place_candidates(
    candidate_vectors: np.ndarray,
    reference_vectors: np.ndarray,
    thresholds: ContentThresholds,
    *,
    device: str = "auto",
) -> CandidatePlacement:
    """DDCUp's eligibility test of candidates [m, dim] against training references [n_refs, dim]."""
    _, nearest = knn(candidate_vectors, reference_vectors, 1, device=device)
    _, farthest = knn(candidate_vectors, reference_vectors, 1, farthest=True, device=device)
    nearest, farthest = nearest[:, 0], farthest[:, 0]
    return CandidatePlacement(
        nearest, farthest, nearest > thresholds.novelty_threshold, farthest < thresholds.max_spread
    )


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
    reason = np.full(m, CANDIDATE_SELECTED, dtype=object)
    if m == 0:
        empty_f = np.zeros(0, np.float64)
        empty_i = np.zeros(0, np.int64)
        return CandidateSelection(
            thresholds, empty_f, empty_f, np.zeros(0, bool), np.zeros(0, bool), reason, empty_i, empty_i
        )
    placement = place_candidates(cand, refs, thresholds, device=device)
    nearest, farthest = placement.nearest_distance, placement.farthest_distance
    novel, eligible = placement.novel, placement.eligible
    reason[~novel] = NOT_NOVEL
    reason[novel & ~placement.in_distribution] = OUT_OF_DISTRIBUTION
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


# --------------------------------------------------------------------------------------------
# The DDCUp stage of a reshape, on tables

DDC_ADDED = "ddc_added"
DDC_LEVEL_NOT_SELECTED = "ddc_level_not_selected"
DDC_NO_LABEL = "ddc_no_label"
SELECT_STAGE = "ddc_select"
ADD_STAGE = "ddc_add"


@dataclass(frozen=True)
class DDCStage:
    """What the DDCUp stage decided.

    ``decisions``: one row per pool candidate reference (stage ``ddc_select``; never a manifest row,
    so ``kept`` is false) and per distorted version of a chosen candidate at a selected type, any
    level (stage ``ddc_add``; ``kept`` at the selected levels). ``versions``: those versions' pool
    rows (sorted by ``sample_id``, the order of ``required``) with ``score`` (the pseudo-label, NaN
    where none can be made), ``pseudo_refs`` and ``pseudo_weights``. ``required`` [versions]: at a
    selected level (the paper's samples). ``extra_order``: the other labelled versions, in the order
    a target size adds them. ``thresholds``: ``{"r", "maxT_all"}`` (None when every candidate is
    taken); ``counts``: candidates in, eligible, chosen.
    """

    decisions: pd.DataFrame
    versions: pd.DataFrame
    required: np.ndarray
    extra_order: np.ndarray
    thresholds: dict[str, float] | None
    counts: dict[str, Any]



def pool_candidates(pool: pd.DataFrame, where: str) -> pd.DataFrame:
    """The pool's candidate references (``is_reference`` rows, sorted by ``sample_id``), checked."""
    candidates = sorted_by_id(pool[pool["is_reference"].to_numpy(dtype=bool)])
    if candidates.empty:
        raise CurateError(
            f"{where}: the pool has no reference images (is_reference); "
            "a pool is candidate references plus their distorted versions from 'curate synthesize'"
        )
    dup_ref = candidates["ref_id"].duplicated()
    if dup_ref.any():
        raise CurateError(f"{where}: ref_id {candidates['ref_id'][dup_ref].iloc[0]!r} has two reference images")
    return candidates


def training_references(training: pd.DataFrame, where: str) -> pd.DataFrame:
    """The training corpus's references (sorted by ``sample_id``); DDCUp needs at least 2."""
    refs = sorted_by_id(training[training["is_reference"].to_numpy(dtype=bool)])
    if len(refs) < 2:
        raise CurateError(
            f"{where}: DDCUp needs the training corpus's reference images (at least 2, is_reference), "
            f"found {len(refs)}"
        )
    return refs


def upsample_stage(
    training: pd.DataFrame,
    references: pd.DataFrame,
    reference_vectors: np.ndarray,
    pool: pd.DataFrame,
    candidate_refs: pd.DataFrame,
    candidate_vectors: np.ndarray,
    *,
    types: tuple[int, ...],
    levels: tuple[int, ...],
    weighting: str = "official",
    candidates: str = "ddcup",
    order: np.ndarray | None = None,
    seed: int = 0,
    device: str = "auto",
    where: str = "corpus",
    pool_where: str = "pool",
) -> DDCStage:
    """DDCUp on tables: choose candidates, then pseudo-label their distorted versions.

    ``training``: the training corpus (references, and distorted rows with ``score``);
    ``references``: its references (:func:`training_references`) and ``reference_vectors``
    [n_refs, dim] their features in that order. ``pool``: the pool corpus (candidate references
    and their distorted versions); ``candidate_refs``: its candidate references
    (:func:`pool_candidates`) and ``candidate_vectors`` [m, dim] their features in that order.
    ``candidates``: ``ddcup`` (DDCUp's selection) or ``all`` (every candidate, the ablation without
    the selection). ``order``: the candidates (indices into ``candidate_refs``) first to last, whose
    earlier member of a close pair the thinning drops (:func:`select_candidates`); the decisions'
    detail then gives each candidate's place (``order=K``, from 1). A version is labelled from the scores of the same type and level of the chosen
    candidate's label neighbours (:func:`label_neighbours`).
    """
    if candidates not in CANDIDATE_MODES:
        raise ValueError(f"candidates {candidates!r} is not one of {CANDIDATE_MODES}")
    frame = sorted_by_id(pool)
    cands, train_refs = candidate_refs, references
    cand_ids = cands["sample_id"].to_numpy(dtype=object)
    cand_vectors = np.asarray(candidate_vectors)
    if candidates == "ddcup":
        selection = select_candidates(cand_vectors, reference_vectors, order=order, device=device)
        place = None
        if order is not None:
            place = np.empty(len(cands), dtype=np.int64)
            place[np.asarray(order, dtype=np.int64)] = np.arange(1, len(cands) + 1)
        chosen = selection.kept
        reason = selection.reason
        details = []
        for c in range(len(cands)):
            text = f"nearest={selection.nearest_distance[c]:.6f};farthest={selection.farthest_distance[c]:.6f}"
            if selection.dropped_for[c] >= 0:
                text += f";too_close_to={cand_ids[selection.dropped_for[c]]}"
            if place is not None:
                text += f";order={place[c]}"
            details.append(text)
        detail: Any = np.asarray(details, dtype=object)
        thresholds = {"r": selection.thresholds.novelty_threshold, "maxT_all": selection.thresholds.max_spread}
        eligible: int | None = int(selection.eligible.sum())
    else:
        chosen = np.ones(len(cands), dtype=bool)
        reason, detail, thresholds, eligible = CANDIDATE_SELECTED, None, None, None
    candidate_decisions = decision_frame(
        cand_ids, cands["ref_id"], "upsampled", SELECT_STAGE, False, reason, detail=detail
    )
    chosen_idx = np.flatnonzero(chosen)
    neighbours = label_neighbours(
        cand_vectors[chosen_idx], reference_vectors, weighting=weighting, device=device
    )
    versions = _chosen_versions(frame, cands, chosen_idx, types, levels, pool_where)
    required = np.isin(versions["level"].astype("Int64").fillna(-1).to_numpy().astype(int), levels)
    labels = _pseudo_labels(versions, required, cands, chosen_idx, neighbours, training, train_refs, where)
    versions = versions.assign(score=labels.score, pseudo_refs=labels.refs, pseudo_weights=labels.weights)
    reason_add = np.where(required, DDC_ADDED, DDC_LEVEL_NOT_SELECTED).astype(object)
    reason_add[~required & np.isnan(labels.score)] = DDC_NO_LABEL
    # extra levels for a target size: labelled rows at other levels, lowest level first, then seed hash
    extra = np.flatnonzero(~required & ~np.isnan(labels.score))
    row_level = versions["level"].astype("Int64").fillna(-1).to_numpy().astype(int)
    keys = sample_keys(versions["sample_id"].to_numpy(dtype=object)[extra], seed)
    extra_order = extra[np.lexsort((extra, keys, row_level[extra]))]
    version_decisions = decision_frame(
        versions["sample_id"], versions["ref_id"], "upsampled", ADD_STAGE, required, reason_add
    )
    counts = {"candidates_in": len(cands), "candidates_eligible": eligible, "candidates_kept": int(chosen_idx.size)}
    return DDCStage(
        pd.concat([candidate_decisions, version_decisions], ignore_index=True),
        versions,
        required,
        extra_order,
        thresholds,
        counts,
    )


def _chosen_versions(
    pool: pd.DataFrame,
    cands: pd.DataFrame,
    chosen_idx: np.ndarray,
    types: tuple[int, ...],
    levels: tuple[int, ...],
    pool_where: str,
) -> pd.DataFrame:
    """Pool rows of the chosen candidates at the selected types, every level; each selected level present."""
    chosen_refs = cands["ref_id"].to_numpy(dtype=object)[chosen_idx].astype(str)
    distorted = pool[~pool["is_reference"].to_numpy(dtype=bool)]
    dist_type = distorted["distortion"].astype("Float64").to_numpy(na_value=np.nan)
    take = distorted["ref_id"].astype(str).isin(set(chosen_refs)).to_numpy() & np.isin(dist_type, types)
    rows = distorted[take].reset_index(drop=True)
    row_ref = rows["ref_id"].astype(str).to_numpy()
    row_type = rows["distortion"].astype("Int64").to_numpy().astype(int)
    row_level = rows["level"].astype("Int64").fillna(-1).to_numpy().astype(int)
    present: dict[tuple[str, int, int], int] = {}
    for k, key in enumerate(zip(row_ref, row_type, row_level, strict=True)):
        if key in present:
            raise CurateError(
                f"{pool_where}: {rows['sample_id'][present[key]]!r} and {rows['sample_id'][k]!r} are both "
                f"type {key[1]} level {key[2]} of ref {key[0]!r}"
            )
        present[key] = k
    cand_ids = cands["sample_id"].to_numpy(dtype=object)
    for c, ref in zip(chosen_idx, chosen_refs, strict=True):
        for t in types:
            for lv in levels:
                if (ref, t, lv) not in present:
                    raise CurateError(
                        f"{pool_where}: kept candidate {cand_ids[c]!r} (ref_id {str(ref)!r}) has no "
                        f"distorted image of type {t} level {lv}; run 'curate synthesize' on the pool "
                        f"references with --types {','.join(map(str, types))} "
                        f"--levels {','.join(map(str, levels))}"
                    )
    return rows


@dataclass(frozen=True)
class _Labels:
    score: np.ndarray  # [versions] float64, NaN where no label can be made
    refs: list[list[str] | None]
    weights: list[list[float] | None]


def _pseudo_labels(
    versions: pd.DataFrame,
    required: np.ndarray,
    cands: pd.DataFrame,
    chosen_idx: np.ndarray,
    neighbours: LabelNeighbours,
    training: pd.DataFrame,
    train_refs: pd.DataFrame,
    where: str,
) -> _Labels:
    """Each version's label: the weighted sum of its candidate's label neighbours' scores at its type
    and level. A required version without a label is an error; another one is left unlabelled."""
    ref_ref_ids = train_refs["ref_id"].astype(str).to_numpy()
    # only the versions of references that label some chosen candidate are looked up
    used_refs = {str(ref_ref_ids[k]) for idx in neighbours.index for k in idx}
    train_dist = training[
        ~training["is_reference"].to_numpy(dtype=bool)
        & training["ref_id"].astype(str).isin(used_refs).to_numpy()
    ]
    train_key = zip(
        train_dist["ref_id"].astype(str),
        train_dist["distortion"].astype("Int64").fillna(-1).astype(int),
        train_dist["level"].astype("Int64").fillna(-1).astype(int),
        strict=True,
    )
    lookup: dict[tuple[str, int, int], tuple[str, float]] = {}
    ambiguous: set[tuple[str, int, int]] = set()
    for key, sid, score in zip(
        train_key,
        train_dist["sample_id"],
        train_dist["score"].astype("Float64").to_numpy(na_value=np.nan),
        strict=True,
    ):
        if key in lookup:
            ambiguous.add(key)
        lookup[key] = (str(sid), float(score))

    chosen_refs = cands["ref_id"].to_numpy(dtype=object)[chosen_idx].astype(str)
    position = {r: k for k, r in enumerate(chosen_refs)}
    cand_ids = cands["sample_id"].to_numpy(dtype=object)
    row_ref = versions["ref_id"].astype(str).to_numpy()
    row_type = versions["distortion"].astype("Int64").to_numpy().astype(int)
    row_level = versions["level"].astype("Int64").fillna(-1).to_numpy().astype(int)
    score = np.full(len(versions), np.nan)
    refs: list[list[str] | None] = [None] * len(versions)
    weights: list[list[float] | None] = [None] * len(versions)
    for k in range(len(versions)):
        c = position[row_ref[k]]
        used: list[str] = []
        value = 0.0
        for ref_row, w in zip(neighbours.index[c], neighbours.weight[c], strict=True):
            key = (str(ref_ref_ids[ref_row]), int(row_type[k]), int(row_level[k]))
            if key not in lookup or np.isnan(lookup[key][1]) or key in ambiguous:
                used = []
                if required[k]:
                    problem = "two" if key in ambiguous else "no scored"
                    raise CurateError(
                        f"{where}: training reference {key[0]!r} (a label neighbour of candidate "
                        f"{cand_ids[chosen_idx[c]]!r}) has {problem} version of type {key[1]} level {key[2]}; "
                        "its pseudo-label cannot be made"
                    )
                break
            sid, value_k = lookup[key]
            used.append(sid)
            value += float(w) * value_k
        if used:
            score[k] = value
            refs[k] = used
            weights[k] = [float(w) for w in neighbours.weight[c]]
    return _Labels(score, refs, weights)
