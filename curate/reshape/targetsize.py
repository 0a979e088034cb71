"""Reaching an exact ``--target-size`` from the paper's reshaped set.

Below the paper's size, originals keep being thinned density-first:

1. while redundant pairs remain among the kept originals (the DRCDown graph restricted to them),
   remove the kept sample with the most redundant kept neighbours; ties go to the one whose nearest
   redundant kept neighbour is closest, then to the smaller seed hash of its ``sample_id``;
2. then, while more must go, remove a member of the closest remaining pair of kept originals (of
   the pair, the one with the smaller seed hash).

Both phases are sparse: phase 1 walks the redundancy graph with a lazy heap (O(pairs log pairs));
phase 2 uses an exact k-nearest-neighbour graph of the kept originals, each node's list read through
a pointer that skips removed neighbours, and rebuilt over the survivors only when some node has lost
all of its k neighbours. The first surviving entry of a list built over a superset of the survivors
is the exact nearest survivor, so the result equals the dense statement of the rule.

Above the paper's size, removed originals come back least redundant first (fewest redundant
neighbours, then smallest group, then seed hash); see :func:`add_back_order`; then labelled DDCUp
versions at the levels not selected, lowest level first.

:func:`size_bounds` states which sizes the inputs allow, and :func:`target_size_stage` is the
target-size stage of a reshape.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import pandas as pd

from curate.errors import CurateError
from curate.reshape.decisions import decision_frame
from curate.reshape.downsample import DRCStage
from curate.reshape.neighbours import Pairs, knn
from curate.reshape.upsample import DDCStage
from curate.sampling import sample_keys

TARGET_TRIM = "target_size_trim"
TARGET_ADDED = "target_size_added"
STAGE = "target_size"

# Neighbours per node in the phase-2 graph: larger means fewer rebuilds, more memory (12 bytes each).
PHASE2_NEIGHBOURS = 16


def _sorted_adjacency(
    n: int, first: np.ndarray, second: np.ndarray, distance: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of an undirected graph, each row's neighbours sorted by (distance, index)."""
    rows = np.concatenate([first, second]).astype(np.int64)
    cols = np.concatenate([second, first]).astype(np.int64)
    dist = np.concatenate([distance, distance])
    order = np.lexsort((cols, dist, rows))
    rows, cols, dist = rows[order], cols[order], dist[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, cols, dist


def trim_order(
    vectors: np.ndarray,
    redundancy: Pairs,
    alive: np.ndarray,
    count: int,
    keys: np.ndarray,
    *,
    device: str = "auto",
) -> np.ndarray:
    """Indices of ``count`` samples to remove from the ``alive`` ones, in removal order
    (``count`` at most the number alive: :meth:`SizeBounds.check`).

    ``vectors`` [n, dim] L2-normalised features of all originals; ``redundancy``: their DRCDown
    pairs (indices into ``vectors``); ``alive`` [n] bool: the samples kept so far; ``keys`` [n]
    uint64 seed hashes (``sample_keys``). Ties beyond the keys fall to the lower index.
    """
    alive = np.asarray(alive, dtype=bool).copy()
    n = alive.size
    removed: list[int] = []
    # lexicographic rank of (key, index): a single int that breaks every tie the same way
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), keys))] = np.arange(n)

    # Phase 1: most redundant first, on the redundancy graph among the survivors.
    both = alive[redundancy.i] & alive[redundancy.j]
    indptr, cols, dist = _sorted_adjacency(
        n, redundancy.i[both], redundancy.j[both], redundancy.distance[both]
    )
    degree = np.diff(indptr)
    pointer = indptr[:-1].copy()
    heap = [(-int(degree[v]), float(dist[pointer[v]]), int(rank[v]), int(v)) for v in np.flatnonzero(degree)]
    heapq.heapify(heap)
    while heap and len(removed) < count:
        neg_degree, nearest, _, v = heapq.heappop(heap)
        if not alive[v] or -neg_degree != degree[v] or degree[v] == 0 or nearest != dist[pointer[v]]:
            continue  # a stale entry; the current one is in the heap
        alive[v] = False
        removed.append(v)
        for w in cols[indptr[v] : indptr[v + 1]]:
            if not alive[w]:
                continue
            degree[w] -= 1
            if degree[w] == 0:
                continue
            while not alive[cols[pointer[w]]]:
                pointer[w] += 1
            heapq.heappush(heap, (-int(degree[w]), float(dist[pointer[w]]), int(rank[w]), int(w)))
    del heap, indptr, cols, dist

    # Phase 2: the closest remaining pair loses its member with the smaller seed hash.
    vectors = np.asarray(vectors)
    while len(removed) < count:
        survivors = np.flatnonzero(alive)
        if survivors.size < 2:  # the last one has no pair; it goes by itself
            removed.extend(int(v) for v in survivors[: count - len(removed)])
            break
        k = min(PHASE2_NEIGHBOURS, survivors.size - 1)
        nbr_sub, nbr_dist = knn(vectors[survivors], vectors[survivors], k, exclude_self=True, device=device)
        neighbours = survivors[nbr_sub]  # [s, k] indices into vectors
        # reverse lists: who has node x among its neighbours
        holders_of = _reverse_lists(n, survivors, neighbours)
        position = np.zeros(n, dtype=np.int64)
        row_of = np.full(n, -1, dtype=np.int64)
        row_of[survivors] = np.arange(survivors.size)
        heap2 = [(float(nbr_dist[r, 0]), int(rank[v]), int(v)) for r, v in enumerate(survivors)]
        heapq.heapify(heap2)
        exhausted = False
        while heap2 and len(removed) < count and not exhausted:
            nearest, _, v = heapq.heappop(heap2)
            r = row_of[v]
            if not alive[v] or nearest != nbr_dist[r, position[v]]:
                continue
            alive[v] = False
            removed.append(v)
            for w in holders_of.get(v, ()):
                if not alive[w]:
                    continue
                rw = row_of[w]
                if neighbours[rw, position[w]] != v:
                    continue  # w's nearest survivor is someone else and does not change
                while position[w] < k and not alive[neighbours[rw, position[w]]]:
                    position[w] += 1
                if position[w] == k:
                    exhausted = True  # w's nearest survivor is unknown: rebuild over the survivors
                    break
                heapq.heappush(heap2, (float(nbr_dist[rw, position[w]]), int(rank[w]), int(w)))
    return np.asarray(removed, dtype=np.int64)


def _reverse_lists(n: int, survivors: np.ndarray, neighbours: np.ndarray) -> dict[int, np.ndarray]:
    holders = np.repeat(survivors, neighbours.shape[1])
    held = neighbours.ravel()
    order = np.argsort(held, kind="stable")
    held, holders = held[order], holders[order]
    starts = np.flatnonzero(np.r_[True, held[1:] != held[:-1]]) if held.size else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], held.size]
    return {int(held[s]): holders[s:e] for s, e in zip(starts, ends, strict=True)}


def add_back_order(
    candidates: np.ndarray, redundancy: Pairs, group_size: np.ndarray, keys: np.ndarray
) -> np.ndarray:
    """Order removed originals (indices ``candidates``) least redundant first.

    Fewest redundant neighbours in the whole DRCDown graph, then smallest group, then seed hash,
    then index.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    degree = redundancy.degrees()[candidates]
    order = np.lexsort((candidates, keys[candidates], group_size[candidates], degree))
    return candidates[order]


# --------------------------------------------------------------------------------------------
# The target-size stage of a reshape


@dataclass(frozen=True)
class SizeBounds:
    """The manifest sizes a reshape's inputs allow.

    ``paper``: the paper's rule (originals kept by DRCDown + the DDCUp samples); ``minimum``: the
    DDCUp samples alone (every original trimmed), at least 1; ``maximum``: every original of the selected types
    plus every labelled DDCUp version, at any level. ``originals``: originals of the selected types;
    ``upsampled``: labelled DDCUp versions.
    """

    minimum: int
    paper: int
    maximum: int
    originals: int
    upsampled: int

    def check(self, target: int) -> None:
        """Refuse a ``--target-size`` the inputs cannot give, saying what they can."""
        if target < self.minimum:
            raise CurateError(
                f"--target-size {target}: below the minimum {self.minimum} (the DDCUp samples alone); "
                "use fewer --levels or types, or no --pool"
            )
        if target > self.maximum:
            raise CurateError(
                f"--target-size {target}: above the maximum {self.maximum} these inputs allow "
                f"({self.originals} originals of the selected types + "
                f"{self.upsampled} labelled DDCUp samples)"
            )


def size_bounds(drc: DRCStage, ddc: DDCStage | None) -> SizeBounds:
    """The sizes the drc and DDCUp stages' results allow (the one statement of the size rule)."""
    originals = len(drc.decisions)
    kept = int(drc.kept.sum())
    required = 0 if ddc is None else int(ddc.required.sum())
    extra = 0 if ddc is None else int(ddc.extra_order.size)
    return SizeBounds(
        minimum=max(required, 1),
        paper=kept + required,
        maximum=originals + required + extra,
        originals=originals,
        upsampled=required + extra,
    )


def target_size_stage(
    target: int,
    drc: DRCStage,
    ddc: DDCStage | None,
    vectors: np.ndarray | None,
    *,
    seed: int = 0,
    device: str = "auto",
) -> pd.DataFrame:
    """The decisions that bring the manifest to exactly ``target`` rows (only the samples they change).

    ``vectors`` [n_originals, dim]: the originals' features in the drc stage's order (needed only
    below the paper's size). Below it, kept originals are trimmed (:func:`trim_order`); above it,
    DRCDown's removed originals come back (:func:`add_back_order`), then labelled DDCUp versions at
    other levels.
    """
    bounds = size_bounds(drc, ddc)
    bounds.check(target)
    originals = drc.decisions
    if target == bounds.paper:
        return decision_frame([], [], "original", STAGE, False, TARGET_TRIM)
    keys = sample_keys(originals["sample_id"].to_numpy(dtype=object), seed)
    if target < bounds.paper:
        assert vectors is not None
        order = trim_order(vectors, drc.groups.pairs, drc.kept, bounds.paper - target, keys, device=device)
        picked = originals.iloc[order]
        return decision_frame(picked["sample_id"], picked["ref_id"], "original", STAGE, False, TARGET_TRIM)
    add = target - bounds.paper
    removed = np.flatnonzero(~drc.kept)
    back = add_back_order(removed, drc.groups.pairs, drc.groups.group_size, keys)[:add]
    frames = [(originals.iloc[back], "original")]
    if ddc is not None and add > back.size:
        frames.append((ddc.versions.iloc[ddc.extra_order[: add - back.size]], "upsampled"))
    return pd.concat(
        [decision_frame(f["sample_id"], f["ref_id"], origin, STAGE, True, TARGET_ADDED) for f, origin in frames],
        ignore_index=True,
    )
