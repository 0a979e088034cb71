"""Neighbour search over L2-normalised vectors: the one place every reshape/analyze step gets its
pairs, nearest and farthest neighbours from.

Exact by default: blocked matrix products (torch, on CUDA when present), memory bounded by the
block sizes, never an n x n dense matrix. Similarities are computed in float32 on the device; every
pair or neighbour within ``EXACT_MARGIN`` of a decision boundary is recomputed in float64, so the
results match a float64 brute-force statement of the rule.

An optional approximate backend (``faiss``) serves pools of many millions; it is documented as
approximate and never used unless asked for.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from curate.devices import pick_device

# float32 dot products of unit vectors err by ~1e-6; anything this close to a threshold is rechecked.
EXACT_MARGIN = 1e-4
# A bfloat16 screen errs by at most ~0.006 on unit vectors: each input rounded with relative error
# 2^-9 (|x~.y~ - x.y| <= (2u + u^2) sum|x_i y_i| <= 0.004 by Cauchy-Schwarz), float32 accumulation,
# the output rounded by at most 2^-9. Pairs within this margin of the threshold go on to float32.
SCREEN_MARGIN_BF16 = 0.02
DEFAULT_BLOCK_ROWS = 1024
DEFAULT_BLOCK_COLS = 8192


@contextlib.contextmanager
def _full_float32() -> Iterator[None]:
    """Matrix products with float32 accumulation, as the screening margins assume."""
    import torch

    matmul = torch.backends.cuda.matmul
    saved = (matmul.allow_tf32, matmul.allow_bf16_reduced_precision_reduction)
    # TF32 would break the float32 margin; reduced-precision reductions the bfloat16 one
    matmul.allow_tf32 = False
    matmul.allow_bf16_reduced_precision_reduction = False
    try:
        yield
    finally:
        matmul.allow_tf32, matmul.allow_bf16_reduced_precision_reduction = saved


def _screen_dtype(screen: str, dev: "torch.device") -> "torch.dtype":  # noqa: F821
    import torch

    if screen == "float32":
        return torch.float32
    if screen == "bfloat16":
        return torch.bfloat16
    if screen != "auto":
        raise ValueError(f"screen {screen!r}: expected auto, float32 or bfloat16")
    # On CUDA the bfloat16 screen runs on tensor cores, several times faster than float32. On the
    # CPU it measured no faster here (the conversions and the float32 recomputation eat the gain).
    return torch.bfloat16 if dev.type == "cuda" else torch.float32


def _nvidia_present() -> bool:
    """Whether this machine has an NVIDIA driver loaded (checked without importing torch)."""
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")


def compute_device(device: str = "auto") -> "torch.device | None":  # noqa: F821
    """Where the blocked products run: a torch CUDA device, or None for numpy on the CPU.

    The CPU path uses numpy's BLAS and never imports torch, which saves its import time and
    ~700 MB of resident memory; ``auto`` only imports torch when an NVIDIA driver is present.
    """
    if device == "cpu" or (device == "auto" and not _nvidia_present()):
        return None
    dev = pick_device(device)
    return dev if dev.type != "cpu" else None


class TooManyPairs(RuntimeError):
    """``threshold_pairs`` found more pairs than its ``max_pairs`` budget (it stops early)."""


@dataclass(frozen=True)
class Pairs:
    """Undirected pairs ``(i[k], j[k])`` with ``i < j`` and their cosine similarity (float64)."""

    n: int
    i: np.ndarray
    j: np.ndarray
    similarity: np.ndarray

    def __len__(self) -> int:
        return int(self.i.size)

    @property
    def distance(self) -> np.ndarray:
        return 1.0 - self.similarity

    def adjacency(self) -> sp.csr_matrix:
        """Symmetric sparse adjacency (n x n, boolean-valued, O(pairs) memory)."""
        ones = np.ones(2 * len(self), dtype=np.int8)
        rows = np.concatenate([self.i, self.j])
        cols = np.concatenate([self.j, self.i])
        return sp.csr_matrix((ones, (rows, cols)), shape=(self.n, self.n))

    def degrees(self) -> np.ndarray:
        return np.bincount(self.i, minlength=self.n) + np.bincount(self.j, minlength=self.n)


def components(pairs: Pairs) -> np.ndarray:
    """Connected-component label per item (``scipy.sparse.csgraph``); isolated items get their own."""
    _, labels = connected_components(pairs.adjacency(), directed=False)
    return labels.astype(np.int64)


def _as_float32(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _exact_similarity(a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """float64 cosine similarity of rows ``a[ia]`` and ``b[ib]`` (vectors assumed unit length)."""
    out = np.empty(ia.size, dtype=np.float64)
    step = 4096  # small chunks stay in cache
    for s in range(0, ia.size, step):
        x = a[ia[s : s + step]].astype(np.float64)
        y = b[ib[s : s + step]].astype(np.float64)
        out[s : s + step] = np.einsum("ij,ij->i", x, y)
    return out


def _blocks_numpy(
    x: np.ndarray, order: np.ndarray, spans: list[tuple[int, int, int, int]], threshold: float
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per block: sorted positions (i, j), i < j, with float32 similarity above threshold - margin."""
    cut = threshold - EXACT_MARGIN
    cached_r0 = -1
    rows = np.zeros((0, x.shape[1]), np.float32)
    for r0, r1, c0, c1 in spans:
        if r0 != cached_r0:
            rows = x[order[r0:r1]].astype(np.float32)
            cached_r0 = r0
        sim = rows @ x[order[c0:c1]].astype(np.float32).T
        flat = np.flatnonzero(sim > cut)
        if flat.size == 0:
            continue
        width = c1 - c0
        hi, hj = flat // width + r0, flat % width + c0
        upper = hj > hi
        yield hi[upper], hj[upper], sim.ravel()[flat[upper]]


def _blocks_torch(
    x: np.ndarray,
    order: np.ndarray,
    spans: list[tuple[int, int, int, int]],
    threshold: float,
    dev: "torch.device",  # noqa: F821
    screen: str,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The same blocks on a torch device, optionally screened in bfloat16 (see ``threshold_pairs``)."""
    import torch

    screen_dtype = _screen_dtype(screen, dev)
    margin = SCREEN_MARGIN_BF16 if screen_dtype == torch.bfloat16 else EXACT_MARGIN
    # the whole matrix is moved to the device once; blocks are gathered there in label order
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(dev)
    order_t = torch.from_numpy(order).to(dev)
    cached_r0 = -1
    with torch.inference_mode(), _full_float32():
        for r0, r1, c0, c1 in spans:
            if r0 != cached_r0:
                rows = xt[order_t[r0:r1]]
                rows_screen = rows.to(screen_dtype)
                cached_r0 = r0
            cols = xt[order_t[c0:c1]]
            sim = rows_screen @ cols.to(screen_dtype).T
            hit = (sim > threshold - margin).nonzero()
            hit = hit[hit[:, 1] + c0 > hit[:, 0] + r0]
            if hit.numel() == 0:
                continue
            if screen_dtype == torch.float32:
                values = sim[hit[:, 0], hit[:, 1]]
            else:  # the screen's survivors, recomputed in float32
                values = (rows[hit[:, 0]].float() * cols[hit[:, 1]].float()).sum(dim=1)
                close = values > threshold - EXACT_MARGIN
                hit, values = hit[close], values[close]
            if hit.numel() == 0:
                continue
            hit = hit.cpu().numpy()
            yield hit[:, 0] + r0, hit[:, 1] + c0, values.float().cpu().numpy()


def threshold_pairs(
    vectors: np.ndarray,
    threshold: float,
    *,
    labels: np.ndarray | None = None,
    max_label_gap: float | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    block_cols: int = DEFAULT_BLOCK_COLS,
    exact_values: bool = True,
    max_pairs: int | None = None,
    screen: str = "auto",
    device: str = "auto",
) -> Pairs:
    """All pairs ``i < j`` with ``cos(v_i, v_j) > threshold`` (and ``|labels_i - labels_j| < max_label_gap``).

    ``vectors``: [n, dim] L2-normalised (float32 or float16; never copied whole on the CPU).
    With labels, rows are visited in label order and each block is compared only with the band of
    columns whose labels can be within the gap: the same result with a fraction of the products.
    Memory: the input, one ``block_rows x block_cols`` float32 block and the pairs found
    (int32 indices + float64 similarity, 16 bytes a pair).

    Membership is always exact (pairs within ``EXACT_MARGIN`` of the threshold are rechecked in
    float64). ``exact_values=False`` keeps the float32 similarity of the other pairs (error ~1e-6)
    instead of recomputing each in float64, which is what makes millions of pairs cheap.
    ``max_pairs``: raise :class:`TooManyPairs` as soon as more candidate pairs than this are found.

    ``screen``: the precision of the blocked products. ``bfloat16`` (``auto`` picks it on CUDA)
    screens with a proven error margin, then recomputes the surviving pairs in float32 (and near
    the threshold in float64), so the result is the same as with ``float32``.
    """
    x = np.asarray(vectors)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {x.shape}")
    if x.dtype not in (np.float32, np.float16):
        x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    use_labels = labels is not None and max_label_gap is not None
    if use_labels:
        y = np.asarray(labels, dtype=np.float64)
        if y.shape != (n,):
            raise ValueError(f"labels has shape {y.shape}, expected ({n},)")
        order = np.argsort(y, kind="stable")
        y_sorted = y[order]
    else:
        order = np.arange(n)
        y_sorted = None
    index_type = np.int32 if n < 2**31 else np.int64
    # row block [r0, r1) meets the columns [r0, c_end): its label band, upper triangle only
    spans = []
    for r0 in range(0, n, block_rows):
        r1 = min(n, r0 + block_rows)
        c_end = n
        if use_labels:
            assert y_sorted is not None
            c_end = max(int(np.searchsorted(y_sorted, y_sorted[r1 - 1] + max_label_gap, side="left")), r1)
        spans.extend((r0, r1, c0, min(c_end, c0 + block_cols)) for c0 in range(r0, c_end, block_cols))
    dev = compute_device(device)
    if dev is None and screen == "bfloat16":  # asked for explicitly: torch on the CPU
        dev = pick_device("cpu")
    if dev is None:
        blocks = _blocks_numpy(x, order, spans, threshold)
    else:
        blocks = _blocks_torch(x, order, spans, threshold, dev, screen)
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    found_s: list[np.ndarray] = []
    found = 0
    for hi, hj, values in blocks:
        # back to the caller's indices right away (int32: 8 bytes a candidate pair)
        found_i.append(order[hi].astype(index_type))
        found_j.append(order[hj].astype(index_type))
        found_s.append(values)
        found += hi.size
        if max_pairs is not None and found > max_pairs:
            raise TooManyPairs(f"more than {max_pairs} pairs above similarity {threshold}")
    gi = np.concatenate(found_i) if found_i else np.zeros(0, index_type)
    gj = np.concatenate(found_j) if found_j else np.zeros(0, index_type)
    sim64 = np.concatenate(found_s).astype(np.float64) if found_s else np.zeros(0, np.float64)
    del found_i, found_j, found_s
    # exact values in float64: all of them, or those near the threshold where membership is at stake
    near = slice(None) if exact_values else np.flatnonzero(np.abs(sim64 - threshold) <= EXACT_MARGIN)
    sim64[near] = _exact_similarity(x, x, gi[near], gj[near])
    keep = sim64 > threshold
    if use_labels:
        keep &= np.abs(y[gi] - y[gj]) < max_label_gap
    gi, gj, sim64 = gi[keep], gj[keep], sim64[keep]
    lo, hi_ = np.minimum(gi, gj), np.maximum(gi, gj)
    del gi, gj
    srt = np.lexsort((hi_, lo))
    return Pairs(n, lo[srt], hi_[srt], sim64[srt])


def knn(
    queries: np.ndarray,
    data: np.ndarray,
    k: int,
    *,
    exclude_self: bool = False,
    farthest: bool = False,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    block_cols: int = DEFAULT_BLOCK_COLS,
    device: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest (or farthest) rows of ``data`` for each query, by cosine distance.

    Returns ``(indices [nq, k], distances [nq, k])`` sorted by distance (ascending for nearest,
    descending for farthest), ties broken by the lower data index; distances are ``1 - cos`` in
    float64. ``exclude_self`` drops ``data[i]`` for query ``i`` (queries and data are the same set).
    """
    q = _as_float32(queries)
    d = _as_float32(data)
    nq, nd = q.shape[0], d.shape[0]
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"queries have dim {q.shape[1]} but data has dim {d.shape[1]}")
    available = nd - (1 if exclude_self else 0)
    if k < 1 or k > available:
        raise ValueError(f"k={k} but only {available} neighbour(s) are available")
    # Take a few extra per block so float32 ties at the cut are settled exactly in float64.
    take = min(k + 8, available)
    sign = -1.0 if farthest else 1.0
    dev = compute_device(device)
    if dev is None:
        candidates = _knn_candidates_numpy(q, d, take, sign, exclude_self, block_rows, block_cols)
    else:
        candidates = _knn_candidates_torch(q, d, take, sign, exclude_self, block_rows, block_cols, dev)
    out_idx = np.empty((nq, k), dtype=np.int64)
    out_dist = np.empty((nq, k), dtype=np.float64)
    for r0, r1, cand in candidates:
        rows = np.repeat(np.arange(r0, r1), cand.shape[1])
        sim = _exact_similarity(q, d, rows, cand.ravel()).reshape(cand.shape)
        if exclude_self:
            sim[cand == np.arange(r0, r1)[:, None]] = np.nan
        key = -sign * sim
        key = np.where(np.isnan(key), np.inf, key)
        order = np.lexsort((cand, key), axis=1)[:, :k]
        out_idx[r0:r1] = np.take_along_axis(cand, order, axis=1)
        out_dist[r0:r1] = 1.0 - np.take_along_axis(sim, order, axis=1)
    return out_idx, out_dist


def _knn_candidates_numpy(
    q: np.ndarray, d: np.ndarray, take: int, sign: float, exclude_self: bool, block_rows: int, block_cols: int
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Per query block: the ``take`` best data indices by float32 score (any order)."""
    nq, nd = q.shape[0], d.shape[0]
    for r0 in range(0, nq, block_rows):
        r1 = min(nq, r0 + block_rows)
        best_val = np.zeros((r1 - r0, 0), np.float32)
        best_idx = np.zeros((r1 - r0, 0), np.int64)
        for c0 in range(0, nd, block_cols):
            c1 = min(nd, c0 + block_cols)
            score = sign * (q[r0:r1] @ d[c0:c1].T)
            if exclude_self:
                own = np.arange(max(r0, c0), min(r1, c1))
                score[own - r0, own - c0] = -np.inf
            if score.shape[1] > take:  # this block's best first, then merge the small lists
                pos = np.argpartition(-score, take - 1, axis=1)[:, :take]
                val = np.take_along_axis(score, pos, axis=1)
                idx = pos + c0
            else:
                val = score
                idx = np.broadcast_to(np.arange(c0, c1), score.shape)
            val = np.concatenate([best_val, val], axis=1)
            idx = np.concatenate([best_idx, idx], axis=1)
            if val.shape[1] > take:
                pos = np.argpartition(-val, take - 1, axis=1)[:, :take]
                val = np.take_along_axis(val, pos, axis=1)
                idx = np.take_along_axis(idx, pos, axis=1)
            best_val, best_idx = val, idx
        yield r0, r1, best_idx


def _knn_candidates_torch(
    q: np.ndarray,
    d: np.ndarray,
    take: int,
    sign: float,
    exclude_self: bool,
    block_rows: int,
    block_cols: int,
    dev: "torch.device",  # noqa: F821
) -> Iterator[tuple[int, int, np.ndarray]]:
    import torch

    nq, nd = q.shape[0], d.shape[0]
    qt = torch.from_numpy(q).to(dev)
    dt = torch.from_numpy(d).to(dev)
    with torch.inference_mode(), _full_float32():
        for r0 in range(0, nq, block_rows):
            r1 = min(nq, r0 + block_rows)
            best_val = None
            best_idx = None
            for c0 in range(0, nd, block_cols):
                c1 = min(nd, c0 + block_cols)
                score = sign * (qt[r0:r1] @ dt[c0:c1].T)
                if exclude_self:
                    own = torch.arange(max(r0, c0), min(r1, c1), device=dev)
                    score[own - r0, own - c0] = -torch.inf
                kk = min(take, c1 - c0)
                val, idx = torch.topk(score, kk, dim=1)
                idx = idx + c0
                if best_val is None:
                    best_val, best_idx = val, idx
                else:
                    val = torch.cat([best_val, val], dim=1)
                    idx = torch.cat([best_idx, idx], dim=1)
                    kk = min(take, val.shape[1])
                    best_val, pos = torch.topk(val, kk, dim=1)
                    best_idx = torch.gather(idx, 1, pos)
            assert best_idx is not None
            yield r0, r1, best_idx.cpu().numpy()


def knn_faiss(queries: np.ndarray, data: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Approximate-at-scale k nearest neighbours with faiss (inner product on unit vectors).

    ``IndexFlatIP`` itself is exact; this backend exists for pools of millions where faiss's
    optimised kernels and optional IVF indexes pay off. Results are float32-exact only: ties and
    near-threshold decisions are not rechecked in float64, so treat them as approximate.
    """
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - optional dependency
        from curate.errors import CurateError

        raise CurateError("the faiss backend needs faiss-cpu: pip install 'curate[faiss]'") from exc
    index = faiss.IndexFlatIP(data.shape[1])
    index.add(_as_float32(data))
    sim, idx = index.search(_as_float32(queries), k)
    return idx.astype(np.int64), 1.0 - sim.astype(np.float64)
