"""DRCDown: density-aware redundant cluster downsampling (METHOD.md, "DRCDown").

Two samples are redundant when their features are nearly identical (cosine similarity above
``similarity_threshold``) and their labels nearly equal (gap below ``score_gap``). Connected
components of that graph are the redundancy groups; a group larger than ``group_cap`` keeps a random
``max(group_cap, floor(L * keep_fraction))`` of its members.

Every decision is keyed by ``sample_id``: the random choice ranks members by a hash of
``(seed, sample_id)``, so shuffling the input rows never changes which samples are kept, and group
ids are numbered by each group's smallest ``sample_id``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from curate.reshape.decisions import decision_frame
from curate.reshape.neighbours import Pairs, components, threshold_pairs
from curate.reshape.params import GROUP_CAP, KEEP_FRACTION, SCORE_GAP, SIMILARITY_THRESHOLD, DRCParams
from curate.sampling import sample_keys

# decision reasons of the drc stage
DRC_NOT_REDUNDANT = "drc_not_redundant"
DRC_GROUP_KEPT = "drc_group_kept"
DRC_SUBSAMPLED = "drc_group_subsampled"
DRC_OFF = "drc_off"
STAGE = "drc"


@dataclass(frozen=True)
class RedundancyGroups:
    """Redundancy groups of n samples.

    ``group_id[i]`` is -1 for a sample in no redundant pair, else the group's number (groups are
    numbered 0.. in order of their smallest sample_id); ``group_size[i]`` is the group's size (1 for
    a sample in no pair); ``pairs`` is the redundancy graph itself.
    """

    group_id: np.ndarray
    group_size: np.ndarray
    pairs: Pairs

    @property
    def n_groups(self) -> int:
        return int(self.group_id.max()) + 1 if self.group_id.size and self.group_id.max() >= 0 else 0


def redundancy_groups(
    sample_ids: np.ndarray | list[str],
    vectors: np.ndarray,
    scores: np.ndarray,
    *,
    similarity_threshold: float = SIMILARITY_THRESHOLD,
    score_gap: float = SCORE_GAP,
    device: str = "auto",
    exact_values: bool = False,
) -> RedundancyGroups:
    """Group samples that are redundant in features and label (sparse graph + components).

    ``vectors`` [n, dim] L2-normalised; ``scores`` [n] on 0-10. Membership of every pair is exact;
    ``exact_values`` also recomputes each pair's similarity in float64 (slow for millions of pairs).
    """
    ids = np.asarray(sample_ids, dtype=object)
    scores = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise ValueError("DRCDown needs a finite score for every sample")
    pairs = threshold_pairs(
        vectors,
        similarity_threshold,
        labels=scores,
        max_label_gap=score_gap,
        exact_values=exact_values,
        device=device,
    )
    n = len(ids)
    labels = components(pairs)
    sizes = np.bincount(labels, minlength=labels.max() + 1 if n else 0)
    in_group = sizes[labels] > 1 if n else np.zeros(0, bool)
    group_id = np.full(n, -1, dtype=np.int64)
    if in_group.any():
        # number groups by their smallest sample_id, independent of row order
        comp = labels[in_group]
        sid = ids[in_group].astype(str)
        order = np.lexsort((sid, comp))
        first_of_comp: dict[int, str] = {}
        for c, s in zip(comp[order], sid[order], strict=True):
            first_of_comp.setdefault(int(c), s)
        ranked = sorted(first_of_comp, key=lambda c: first_of_comp[c])
        number = {c: k for k, c in enumerate(ranked)}
        group_id[in_group] = np.fromiter((number[int(c)] for c in comp), dtype=np.int64, count=comp.size)
    group_size = np.where(in_group, sizes[labels] if n else 0, 1).astype(np.int32)
    return RedundancyGroups(group_id, group_size, pairs)


@dataclass(frozen=True)
class DRCResult:
    """Outcome of DRCDown: ``kept`` mask plus the groups it was decided on."""

    kept: np.ndarray
    groups: RedundancyGroups

    @property
    def group_id(self) -> np.ndarray:
        return self.groups.group_id

    @property
    def group_size(self) -> np.ndarray:
        return self.groups.group_size


def keep_count(group_size: int, group_cap: int = GROUP_CAP, keep_fraction: float = KEEP_FRACTION) -> int:
    """How many members a group of ``group_size`` keeps: all up to the cap, else max(cap, floor(L*f))."""
    if group_size <= group_cap:
        return group_size
    return max(group_cap, int(np.floor(group_size * keep_fraction)))


def drc_down(
    sample_ids: np.ndarray | list[str],
    vectors: np.ndarray,
    scores: np.ndarray,
    *,
    similarity_threshold: float = SIMILARITY_THRESHOLD,
    score_gap: float = SCORE_GAP,
    group_cap: int = GROUP_CAP,
    keep_fraction: float = KEEP_FRACTION,
    seed: int = 0,
    device: str = "auto",
) -> DRCResult:
    """Run DRCDown on samples (features L2-normalised, scores on 0-10). Returns the kept mask.

    The per-epoch variant of the reference trainer calls this with that epoch's features and
    ``seed + epoch``.
    """
    groups = redundancy_groups(
        sample_ids,
        vectors,
        scores,
        similarity_threshold=similarity_threshold,
        score_gap=score_gap,
        device=device,
    )
    return DRCResult(select_in_groups(sample_ids, groups, group_cap, keep_fraction, seed), groups)


def select_in_groups(
    sample_ids: np.ndarray | list[str],
    groups: RedundancyGroups,
    group_cap: int = GROUP_CAP,
    keep_fraction: float = KEEP_FRACTION,
    seed: int = 0,
) -> np.ndarray:
    """Apply the keep rule to each group: members with the smallest (seed, sample_id) hash stay."""
    n = len(sample_ids)
    kept = np.ones(n, dtype=bool)
    big = np.flatnonzero(groups.group_size > group_cap)
    if big.size == 0:
        return kept
    keys = sample_keys(np.asarray(sample_ids, dtype=object)[big], seed)
    gid = groups.group_id[big]
    order = np.lexsort((np.asarray(sample_ids, dtype=object)[big].astype(str), keys, gid))
    sorted_gid = gid[order]
    starts = np.flatnonzero(np.r_[True, sorted_gid[1:] != sorted_gid[:-1]])
    ends = np.r_[starts[1:], sorted_gid.size]
    for s, e in zip(starts, ends, strict=True):
        quota = keep_count(int(e - s), group_cap, keep_fraction)
        kept[big[order[s + quota : e]]] = False
    return kept


# --------------------------------------------------------------------------------------------
# The drc stage of a reshape


@dataclass(frozen=True)
class DRCStage:
    """What the drc stage decided: a decisions frame (one row per original, in the input's order)
    and the redundancy groups it decided on (their ``pairs`` feed the target-size policy)."""

    decisions: pd.DataFrame
    groups: RedundancyGroups

    @property
    def kept(self) -> np.ndarray:
        return self.decisions["kept"].to_numpy(dtype=bool)


def downsample_stage(
    originals: pd.DataFrame,
    vectors: np.ndarray | None,
    params: DRCParams,
    *,
    enabled: bool = True,
    seed: int = 0,
    device: str = "auto",
) -> DRCStage:
    """DRCDown on the original samples of a reshape.

    ``originals``: rows with ``sample_id``, ``ref_id`` and ``score`` (0-10); ``vectors`` [n, dim]
    their L2-normalised features in the same order (unused, may be None, when not ``enabled``).
    Disabled, every original is kept with reason ``drc_off`` and no groups are formed.
    """
    ids = originals["sample_id"].to_numpy(dtype=object)
    n = ids.size
    if not enabled:
        empty = np.zeros(0, np.int64)
        groups = RedundancyGroups(
            np.full(n, -1, np.int64), np.ones(n, np.int32), Pairs(n, empty, empty, np.zeros(0, np.float64))
        )
        decisions = decision_frame(ids, originals["ref_id"], "original", STAGE, True, DRC_OFF)
        return DRCStage(decisions, groups)
    assert vectors is not None
    scores = originals["score"].astype("Float64").to_numpy(na_value=np.nan)
    result = drc_down(ids, vectors, scores, **params.as_dict(), seed=seed, device=device)
    reason = np.where(
        result.group_id < 0, DRC_NOT_REDUNDANT, np.where(result.kept, DRC_GROUP_KEPT, DRC_SUBSAMPLED)
    ).astype(object)
    decisions = decision_frame(
        ids,
        originals["ref_id"],
        "original",
        STAGE,
        result.kept,
        reason,
        group_id=result.group_id,
        group_size=result.group_size,
    )
    return DRCStage(decisions, result.groups)
