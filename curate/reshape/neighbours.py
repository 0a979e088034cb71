"""Neighbour search over L2-normalised vectors: the one place every reshape/analyze step gets its
pairs, nearest and farthest neighbours from.

Exact by default, whatever runs underneath. Blocked matrix products (numpy float32 on the CPU,
torch on CUDA, torch bfloat16 on CPUs with bfloat16 matrix units), memory bounded by the block
sizes, never an n x n dense matrix. Every product is a *screen* with a proven error bound
(:func:`float32_product_error`, :func:`bfloat16_product_error`): whatever lies within that bound of a
decision is recomputed, finally in float64, so the results match a float64 brute-force statement of
the rule on every path.

Which products run is a *plan*. ``threshold_pairs`` visits rows in label order and compares each
block only with the columns whose labels can be within the gap (the band); on large inputs it can
also partition the vectors into clusters and skip every (row, cluster) that cannot hold a pair by
the angle bound of :func:`_cluster_plan`. A plan decides speed, never the result.

Where the work runs (``device``, ``screen``):

* CUDA when present (``device="auto"``), screened in bfloat16 on tensor cores;
* on the CPU, numpy float32 (no torch import: it costs seconds and hundreds of MB), unless the work
  is large enough that torch's bfloat16 products pay for that, on a CPU with bfloat16 matrix units
  (:func:`cpu_bfloat16_matmul`; ``CURATE_CPU_BF16=0`` makes any machine take the float32 path).

An optional approximate backend (``faiss``) serves pools of many millions; it is documented as
approximate and never used unless asked for.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from curate.devices import pick_device

log = logging.getLogger(__name__)

# Products within this of a threshold are recomputed in float64 (a float32 dot product of unit
# 512-d vectors errs by at most ~3e-5, typically ~1e-6; see float32_product_error).
EXACT_MARGIN = 1e-4
DEFAULT_BLOCK_ROWS = 1024
DEFAULT_BLOCK_COLS = 8192

# The environment setting that overrides the CPU's bfloat16 detection: auto (default), 0 or 1.
CPU_BF16_ENV = "CURATE_CPU_BF16"
# Products a CPU bfloat16 screen must have before it pays: a few block conversions when torch is
# loaded already. A search never loads torch for itself (COLD is infinite): measured on a 2-core
# AVX512-BF16 CPU, DRCDown at n = 700k took 149 s in bfloat16 against 172 s in numpy float32 (both
# with cluster pruning), but peaked at 2.67 GB against 1.79 GB (torch's import alone is ~640 MB).
CPU_BF16_MIN_FLOPS_COLD = math.inf
CPU_BF16_MIN_FLOPS_WARM = 2e10

# Cluster pruning (see _cluster_plan): clusters of about this many vectors, fitted on this many
# sample vectors per cluster in this many rounds; tried from this n up, used when its estimated
# work is at most PRUNE_PAYS of the band's. Small tiles run slower per product than big blocks.
CLUSTER_SIZE = 96
CLUSTER_FIT_SAMPLE = 3
CLUSTER_FIT_ROUNDS = 3
CLUSTER_MIN_N = 20_000
CLUSTER_CAP_QUANTILE = 0.97  # the cap: vectors farther from their centre than 97% are outliers
CLUSTER_SEED_FRACTION = 0.25  # vectors assigned to the fitted centres before the centres move
CLUSTER_SEED_ROUNDS = 2  # k-means rounds on those seeds
CLUSTER_ESTIMATE_ROWS = 2048  # vectors that set the cap and estimate the held entries
CLUSTER_HELD_BYTES = 160 << 20  # memory the pass may hold (vector, centre) entries in; else a second pass
CLUSTER_ENTRY_BYTES = 10  # a held entry: offset int16, centre int16/int32, value float32
CLUSTER_MAX_RADIUS = math.radians(60.0)
CLUSTER_TILE_COST = 2.0
TILE_BATCH_BYTES = 64 << 20  # memory of one batch of small tiles on torch
PRUNE_PAYS = 0.5
PRUNE_CHOICES = ("auto", "clusters", "none")
SCREENS = ("auto", "float32", "bfloat16")

_U32 = 2.0**-24  # unit roundoff of float32
_U_BF16 = 2.0**-8  # unit roundoff of bfloat16 (8 significant bits)


# --------------------------------------------------------------------------------------------
# Error bounds and where the products run


def float32_product_error(norm_product: float, dim: int) -> float:
    """Largest possible |float32 dot product - exact| of two dim-vectors with ``|x| |y| <= norm_product``.

    Inputs are exact in float32 (float32 or float16 values); a float32 accumulation of ``dim``
    products in any order errs by at most ``gamma_dim * sum|x_i y_i| <= gamma_dim |x| |y|`` with
    ``gamma_dim = dim u / (1 - dim u)``, u = 2^-24 (Cauchy-Schwarz bounds the sum).
    """
    gamma = dim * _U32 / (1.0 - dim * _U32)
    return gamma * norm_product


def bfloat16_product_error(norm_product: float, dim: int) -> float:
    """Largest possible |bfloat16 screen - exact| of a dot product, ``|x| |y| <= norm_product``.

    The screen rounds each input to bfloat16 (relative error <= u = 2^-8), multiplies exactly and
    accumulates in float32 (oneDNN / cuBLAS with reduced-precision reductions off), and rounds the
    output to bfloat16. With S = sum|x_i y_i| <= |x| |y|:

    * inputs: |sum x~_i y~_i - sum x_i y_i| <= (2u + u^2) S;
    * accumulation: <= gamma_dim (1 + u)^2 S (gamma as in :func:`float32_product_error`);
    * output: <= u (1 + u)^2 (1 + gamma_dim) S.

    About 0.0118 for unit vectors in 512-d. Subnormals flushed to zero change a product by less
    than 1e-37, far below it.
    """
    u = _U_BF16
    gamma = dim * _U32 / (1.0 - dim * _U32)
    return ((2 * u + u * u) + gamma * (1 + u) ** 2 + u * (1 + u) ** 2 * (1 + gamma)) * norm_product


def _screen_margin(bfloat16: bool, norm_product: float, dim: int) -> float:
    """The margin a screen keeps below a threshold: its proven error, with room to spare."""
    if bfloat16:
        return 1.25 * bfloat16_product_error(norm_product, dim) + 1e-6
    return max(EXACT_MARGIN, 2.0 * float32_product_error(norm_product, dim))


def cpu_bfloat16_matmul() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX-BF16 or AVX512-BF16), as torch reports it.

    ``CURATE_CPU_BF16=0`` answers no and ``=1`` yes whatever the CPU (``auto``, the default, asks
    torch). Without such units torch emulates bfloat16 more slowly than float32, so the automatic
    choice of screen takes float32 there.
    """
    setting = os.environ.get(CPU_BF16_ENV, "auto").strip().lower()
    if setting in ("0", "off", "no", "false"):
        return False
    if setting in ("1", "on", "yes", "true"):
        return True
    if setting not in ("", "auto"):
        from curate.errors import CurateError

        raise CurateError(f"{CPU_BF16_ENV}={setting}: use auto, 0 or 1")
    return _torch_reports_bf16_units()


def _torch_reports_bf16_units() -> bool:
    import torch

    if not torch.backends.mkldnn.is_available():
        return False
    capability = getattr(getattr(torch._C, "_cpu", None), "_get_cpu_capability", None)
    if capability is None:  # torch without the CPU feature report: assume no units
        return False
    features = capability()
    return bool(features.get("amx_bf16") or features.get("avx512_bf16"))


@contextlib.contextmanager
def _full_float32() -> Iterator[None]:
    """Matrix products with float32 accumulation, as the screening bounds assume."""
    import torch

    matmul = torch.backends.cuda.matmul
    saved = (matmul.allow_tf32, matmul.allow_bf16_reduced_precision_reduction)
    # TF32 would break the float32 bound; reduced-precision reductions the bfloat16 one. On the
    # CPU, torch.set_float32_matmul_precision("medium"|"high") lets oneDNN run float32 products
    # in bfloat16 (or TF32): held at IEEE float32 here.
    cpu = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    cpu_saved = getattr(cpu, "fp32_precision", None)
    matmul.allow_tf32 = False
    matmul.allow_bf16_reduced_precision_reduction = False
    if cpu_saved is not None:
        cpu.fp32_precision = "ieee"
    try:
        yield
    finally:
        matmul.allow_tf32, matmul.allow_bf16_reduced_precision_reduction = saved
        if cpu_saved is not None:
            cpu.fp32_precision = cpu_saved


def _nvidia_present() -> bool:
    """Whether this machine has an NVIDIA driver loaded (checked without importing torch)."""
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")


def compute_device(device: str = "auto") -> "torch.device | None":  # noqa: F821
    """Where the blocked products run: a torch CUDA device, or None for the CPU.

    ``auto`` only imports torch when an NVIDIA driver is present; on the CPU the float32 path is
    numpy (see :func:`_choose_engine` for when torch's bfloat16 takes over).
    """
    if device == "cpu" or (device == "auto" and not _nvidia_present()):
        return None
    dev = pick_device(device)
    return dev if dev.type != "cpu" else None


def _choose_engine(device: str, screen: str, flops: float, *, cuda_auto_bfloat16: bool = True) -> tuple[Any, bool]:
    """(torch device or None for numpy, bfloat16?) for ``flops`` of products with ``screen``."""
    if screen not in SCREENS:
        raise ValueError(f"screen {screen!r}: expected one of {', '.join(SCREENS)}")
    dev = compute_device(device)
    if dev is not None:  # CUDA: bfloat16 on tensor cores unless float32 is asked for
        return dev, screen == "bfloat16" or (screen == "auto" and cuda_auto_bfloat16)
    if screen == "float32":
        return None, False
    if screen == "auto":
        warm = "torch" in sys.modules
        if flops < (CPU_BF16_MIN_FLOPS_WARM if warm else CPU_BF16_MIN_FLOPS_COLD):
            return None, False
        if not cpu_bfloat16_matmul():
            return None, False
    return pick_device("cpu"), True


def _round_down_float32(value: float) -> np.float32:
    f = np.float32(value)
    return np.nextafter(f, np.float32(-np.inf)) if float(f) > value else f


def _round_down_float32_array(values: np.ndarray) -> np.ndarray:
    f = values.astype(np.float32)
    up = f.astype(np.float64) > values
    f[up] = np.nextafter(f[up], np.float32(-np.inf))
    return f


def _round_down_bfloat16_bits(value: float) -> int:
    """The int16 bit pattern of the largest bfloat16 <= ``value`` (bfloat16 = top half of float32)."""
    f = np.array([_round_down_float32(value)], dtype=np.float32)
    bits = int(f.view(np.uint32)[0])
    upper, lower = bits >> 16, bits & 0xFFFF
    if lower and bits >> 31:  # negative: truncation moved it up; one step down in magnitude order
        upper += 1
    return int(np.array([upper], dtype=np.uint16).view(np.int16)[0])


def _bfloat16_value(bits: int) -> float:
    """The value of a bfloat16 given as its int16 bit pattern."""
    upper = np.array([bits], dtype=np.int16).view(np.uint16).astype(np.uint32)
    return float((upper << np.uint32(16)).view(np.float32)[0])


class _Engine:
    """Blocked products of rows of ``x``: numpy float32, or torch on ``dev`` in float32 or bfloat16.

    ``margin`` is what a screen keeps below a threshold: at least the proven error of any product
    of two vectors whose norms multiply to at most ``norm_product``.
    """

    def __init__(self, x: np.ndarray, dev: Any, bfloat16: bool, norm_product: float) -> None:
        self.x = x
        self.dev = dev
        self.bfloat16 = bfloat16
        self.margin = _screen_margin(bfloat16, norm_product, x.shape[1])
        self.margin32 = _screen_margin(False, norm_product, x.shape[1])
        if dev is not None:
            import torch

            self.torch = torch
            self.dtype = torch.bfloat16 if bfloat16 else torch.float32
            self.xt = torch.from_numpy(np.ascontiguousarray(x)).to(dev)

    def describe(self) -> str:
        if self.dev is None:
            return "float32 (numpy, cpu)"
        return f"{'bfloat16' if self.bfloat16 else 'float32'} (torch, {self.dev.type})"

    def context(self) -> contextlib.AbstractContextManager[None]:
        if self.dev is None:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        stack.enter_context(self.torch.inference_mode())
        stack.enter_context(_full_float32())
        return stack

    def take(self, idx: np.ndarray | slice) -> tuple[Any, Any]:
        """Rows of x: (as stored, as screened)."""
        if self.dev is None:
            rows = self.x[idx].astype(np.float32, copy=False)
            return rows, rows
        if isinstance(idx, slice):
            src = self.xt[idx]
        else:
            src = self.xt[self.torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(self.dev)]
        return src, src.to(self.dtype)

    def load(self, block: np.ndarray) -> Any:
        """Any float block (e.g. centroids, queries) in the screen's form."""
        block = np.ascontiguousarray(block, dtype=np.float32)
        if self.dev is None:
            return block
        return self.torch.from_numpy(block).to(self.dev).to(self.dtype)

    def product(self, a: Any, b: Any) -> Any:
        return a @ b.T

    def above(self, sim: Any, cut: float) -> tuple[np.ndarray, np.ndarray]:
        """(i, j) of the entries of ``sim`` above ``cut`` (every one above it, perhaps a few more)."""
        if self.dev is None:
            flat = np.flatnonzero(sim > _round_down_float32(cut))
            return np.divmod(flat, sim.shape[1])
        if self.bfloat16 and self.dev.type == "cpu" and cut > 0:
            # compare bit patterns: positive bfloat16 values order as int16, negatives fall below
            bits = sim.view(self.torch.int16).numpy()
            flat = np.flatnonzero(bits > _round_down_bfloat16_bits(cut))
            return np.divmod(flat, sim.shape[1])
        # the largest value at or below cut that the screen's dtype holds exactly: no rounding up
        limit = _bfloat16_value(_round_down_bfloat16_bits(cut)) if self.bfloat16 else float(_round_down_float32(cut))
        hit = (sim > limit).nonzero().cpu().numpy()
        return hit[:, 0], hit[:, 1]

    def values(self, sim: Any, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """float32 values of the screened entries (i, j)."""
        if self.dev is None:
            return sim[i, j]
        it = self.torch.from_numpy(i).to(self.dev)
        jt = self.torch.from_numpy(j).to(self.dev)
        return sim[it, jt].float().cpu().numpy()

    def recheck(self, a: Any, b: Any, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """float32 products ``a[i] . b[j]`` of the rows as stored (after a bfloat16 screen)."""
        it = self.torch.from_numpy(i).to(self.dev)
        jt = self.torch.from_numpy(j).to(self.dev)
        return (a[it].float() * b[jt].float()).sum(dim=1).cpu().numpy()

    def best(self, dots: Any) -> tuple[np.ndarray, np.ndarray]:
        """Each row's largest entry: (column, value as float64)."""
        if self.dev is None:
            best = np.argmax(dots, axis=1)
            return best, dots[np.arange(dots.shape[0]), best].astype(np.float64)
        best_t = self.torch.argmax(dots, dim=1)
        value = dots.gather(1, best_t[:, None])[:, 0].float().cpu().numpy().astype(np.float64)
        return best_t.cpu().numpy(), value

    def above_columns(self, dots: Any, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(i, j, value as float64) of the entries above their column's ``limit`` (or a hair less)."""
        bound = _round_down_float32_array(np.minimum(np.asarray(limit, dtype=np.float64), 3e38))
        if self.dev is None:
            flat = np.flatnonzero(dots > bound[None, :])  # 1-D: several times faster than 2-D nonzero
            i, j = np.divmod(flat, dots.shape[1])
            return i, j, dots.ravel()[flat].astype(np.float64)
        bound_t = self.torch.from_numpy(bound).to(self.dev)
        hit = (dots > bound_t[None, :]).nonzero()  # a bfloat16 entry compares exactly in float32
        value = dots[hit[:, 0], hit[:, 1]].float().cpu().numpy().astype(np.float64)
        hit = hit.cpu().numpy()
        return hit[:, 0], hit[:, 1], value

    def top(self, score: Any, take: int) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the ``take`` largest entries (any order): (values float32, column indices)."""
        if self.dev is None:
            if score.shape[1] > take:
                pos = np.argpartition(-score, take - 1, axis=1)[:, :take]
                return np.take_along_axis(score, pos, axis=1), pos
            return score, np.broadcast_to(np.arange(score.shape[1]), score.shape)
        val, idx = self.torch.topk(score, min(take, score.shape[1]), dim=1)
        return val.float().cpu().numpy(), idx.cpu().numpy()


# --------------------------------------------------------------------------------------------
# Pairs above a threshold


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
    """float64 cosine similarity of rows ``a[ia]`` and ``b[ib]`` (vectors assumed unit length).

    Each value depends only on the two vectors (one fixed summation per pair), never on the path
    that asked for it, so every screen ends in the same numbers.
    """
    out = np.empty(ia.size, dtype=np.float64)
    step = 4096  # small chunks stay in cache
    for s in range(0, ia.size, step):
        x = a[ia[s : s + step]].astype(np.float64)
        y = b[ib[s : s + step]].astype(np.float64)
        out[s : s + step] = np.einsum("ij,ij->i", x, y)
    return out


def _row_norms(x: np.ndarray) -> np.ndarray:
    out = np.empty(x.shape[0], dtype=np.float64)
    step = 4096
    for s in range(0, x.shape[0], step):
        block = x[s : s + step].astype(np.float64)
        out[s : s + step] = np.sqrt(np.einsum("ij,ij->i", block, block))
    return out


@dataclass
class _Plan:
    """Which products a search computes: ``tiles`` of positions into ``order`` (caller indices).

    A tile ``(rows, c0, c1)`` compares the rows at positions ``rows`` (a slice or an int array)
    with the columns at positions ``[c0, c1)``; only position pairs p < q count, so a pair is
    computed in at most one tile. ``products`` counts the similarities the tiles compute and
    ``overhead`` those spent planning.
    """

    order: np.ndarray
    tiles: Iterable[tuple[Any, int, int]]
    products: int
    kind: str
    overhead: int = 0
    note: str = ""


def _conservative_band_end(y_sorted: np.ndarray, upper: float, gap: float) -> int:
    """First position whose label cannot be within ``gap`` above ``upper`` (a hair generous)."""
    slack = 4 * np.finfo(np.float64).eps * (abs(upper) + abs(gap) + 1.0)
    return int(np.searchsorted(y_sorted, upper + gap + slack, side="right"))


def _conservative_band_start(y_sorted: np.ndarray, lower: float, gap: float) -> int:
    slack = 4 * np.finfo(np.float64).eps * (abs(lower) + abs(gap) + 1.0)
    return int(np.searchsorted(y_sorted, lower - gap - slack, side="left"))


def _band_tiles(
    y_sorted: np.ndarray | None, start: int, stop: int, gap: float | None, block_rows: int, block_cols: int
) -> tuple[list[tuple[Any, int, int]], int]:
    """Tiles over positions [start, stop) sorted by label: each row block against the columns from
    itself up to where labels leave the gap (upper triangle only). Returns (tiles, products)."""
    tiles: list[tuple[Any, int, int]] = []
    products = 0
    for r0 in range(start, stop, block_rows):
        r1 = min(stop, r0 + block_rows)
        c_end = stop
        if y_sorted is not None and gap is not None:
            band_end = start + _conservative_band_end(y_sorted[start:stop], float(y_sorted[r1 - 1]), gap)
            c_end = min(stop, max(band_end, r1))
        rows = slice(r0, r1)
        for c0 in range(r0, c_end, block_cols):
            c1 = min(c_end, c0 + block_cols)
            tiles.append((rows, c0, c1))
            products += (r1 - r0) * (c1 - c0)
    return tiles, products


def _fit_centres(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Spherical k-means on a sample: unit centres, float32 [k, dim].

    Only speed depends on how good the clusters are; the bounds are computed from them exactly.
    """
    n = x.shape[0]
    sample = np.sort(rng.choice(n, size=min(n, CLUSTER_FIT_SAMPLE * k), replace=False))
    xs = x[sample].astype(np.float32)
    xs /= np.maximum(np.linalg.norm(xs, axis=1, keepdims=True), 1e-30)
    centres = xs[rng.choice(xs.shape[0], size=k, replace=False)].copy()
    for _ in range(CLUSTER_FIT_ROUNDS):
        assign = np.empty(xs.shape[0], dtype=np.int64)
        for s in range(0, xs.shape[0], 2048):
            assign[s : s + 2048] = np.argmax(xs[s : s + 2048] @ centres.T, axis=1)
        centres = _move_centres(xs, assign, centres)
    return centres


def _move_centres(
    x: np.ndarray, cluster: np.ndarray, centres: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """Centres moved to the mean direction of their members (float32; an empty one stays put).

    ``cluster[i]`` is the centre of vector ``rows[i]`` (of ``x[i]`` when ``rows`` is None). Speed
    depends on the centres, never correctness: the bounds are measured from whatever they are.
    """
    k, dim = centres.shape
    count = cluster.size
    sums = np.zeros((k, dim), dtype=np.float32)
    step = 1 << 14
    for s in range(0, count, step):
        stop = min(count, s + step)
        block = x[s:stop] if rows is None else x[rows[s:stop]]
        members = sp.csr_matrix(
            (np.ones(stop - s, np.float32), (cluster[s:stop], np.arange(stop - s))), shape=(k, stop - s)
        )
        sums += members @ block.astype(np.float32, copy=False)
    lengths = np.linalg.norm(sums, axis=1)
    return np.where(lengths[:, None] > 0, sums / np.maximum(lengths, 1e-30)[:, None], centres).astype(np.float32)


def _cluster_plan(
    x: np.ndarray,
    y: np.ndarray | None,
    gap: float | None,
    threshold: float,
    band_products: int,
    block_rows: int,
    block_cols: int,
    *,
    force: bool,
    engine: _Engine,
    norms: np.ndarray | None = None,
) -> _Plan | None:
    """Tiles that skip every (row, cluster) that cannot hold a pair; None when that does not pay.

    The bound. Cluster B has a centre c_B and a radius theta_B >= angle(b, c_B) for each member b
    (vectors farther than a cap from their centre are *outliers*, in no cluster). For a row a,
    phi = angle(a, c_B) and b in B, the triangle inequality on the sphere gives
    angle(a, b) >= phi - theta_B, so ``a.b <= |a| max|b| cos(max(0, phi - theta_B))``. When that is
    at most the threshold (or the labels of B all lie at least the gap from a's), no member of B
    pairs with a. theta_B and phi both come from screened products widened by their proven error
    (theta_B rounded up, phi down), so the bound holds on the exact values.

    The clusters (they decide speed only). Spherical k-means fitted on a sample; two rounds on a
    quarter of the vectors (the seeds) move the centres to their seeds' mean. The cap (the 97th
    percentile of a probe's angles to their nearest centre) bounds every radius, so before any
    radius is known the loosest reach of any cluster is known too. One pass over all (vector,
    centre) products assigns every vector to its nearest centre and measures its angle; when the
    entries within that loosest reach fit in ``CLUSTER_HELD_BYTES`` (estimated on the probe: a few
    dozen per vector on clustered data at 100k vectors, more as the clusters multiply), the pass
    holds them, else a second pass recomputes the products once the radii are known. The bound is
    then applied entry by entry: every entry it could keep was held or recomputed. Unless
    ``force``, the plan is dropped when its work is not well below the band's.

    The tiles. Positions: outliers first (in label order), then each cluster (members in label
    order). A pair of positions p < q is computed with row p in the tile of q's cluster, and that
    tile holds p whenever the bound lets p meet that cluster; outliers meet each other in a band.
    So every pair that can pass is computed exactly once. Memory: the held entries (8-10 bytes
    each, at most ``CLUSTER_HELD_BYTES``), then the (row, cluster) pairs the bound keeps.
    """
    n, dim = x.shape
    if threshold <= 0 or n < max(4 * CLUSTER_SIZE, 8):
        return None
    norms = _row_norms(x) if norms is None else norms
    max_norm = float(norms.max())
    if max_norm * max_norm <= threshold:
        return None  # no pair can pass at all; the band plan finds none quickly
    k = max(2, n // CLUSTER_SIZE)
    rng = np.random.default_rng(0)
    centres = _fit_centres(x, k, rng)
    step = max(256, min(4096, (1 << 23) // max(k, 1)))
    err = engine.margin  # >= the proven error of each screened product x . c
    every_block = [slice(s, min(n, s + step)) for s in range(0, n, step)]

    def screened(blocks: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
        """Each block of vectors (a range or an index array) with its screened products against
        every centre (as the centres are when the loop starts)."""
        with engine.context():
            screen = engine.load(centres)
            for rows in blocks:
                yield rows, engine.product(engine.take(rows)[1], screen)

    # Seed: a quarter of the vectors to their nearest fitted centre; centres to their seeds' mean.
    seed_count = min(n, max(k, int(CLUSTER_SEED_FRACTION * n)))
    seeds = np.sort(rng.choice(n, size=seed_count, replace=False))
    for _ in range(CLUSTER_SEED_ROUNDS):
        seed_blocks = [seeds[s : s + step] for s in range(0, seeds.size, step)]
        seed_cluster = np.concatenate([engine.best(dots)[0] for _, dots in screened(seed_blocks)])
        centres = _move_centres(x, seed_cluster, centres, seeds)
    centre_norms = np.linalg.norm(centres.astype(np.float64), axis=1)
    del seeds, seed_cluster

    def angles(value: np.ndarray, rows: Any, best: np.ndarray) -> np.ndarray:
        """Upper bounds on the angles of vectors ``rows`` to their centres, from screened products."""
        cos = (value - err) / (np.maximum(norms[rows], 1e-300) * centre_norms[best])
        return np.arccos(np.clip(cos, -1.0, 1.0)) + 1e-7

    # The cap (97th percentile of a probe's angles to their nearest centre), and with it the loosest
    # reach any cluster can have: a cluster's radius is at most the cap (farther vectors are
    # outliers) and its members' norms at most max|x|.
    probe = np.sort(rng.choice(n, size=min(n, CLUSTER_ESTIMATE_ROWS), replace=False))
    beta_any = math.acos(min(1.0, (threshold - 1e-9) / (max_norm * max_norm)))

    def loose(rows: Any, reach_cos: Any) -> np.ndarray:
        """Per centre, a value every screened product of ``rows`` that the bound may keep exceeds
        (``reach_cos``: per centre or one for all; the row factor at its loosest among them)."""
        row_norm = np.maximum(norms[rows], 1e-30)
        return np.where(np.asarray(reach_cos) >= 0, row_norm.min(), row_norm.max()) * reach_cos * centre_norms - err

    for _, probe_dots in screened([probe]):
        best, value = engine.best(probe_dots)
        cap = float(min(CLUSTER_MAX_RADIUS, np.quantile(angles(value, probe, best), CLUSTER_CAP_QUANTILE)))
        reach_any_cos = math.cos(min(cap + beta_any, math.pi))
        entries = engine.above_columns(probe_dots, loose(probe, reach_any_cos))[0].size / probe.size
        del probe_dots
    # Hold the entries within that reach during the pass if they fit (estimated on the probe); else
    # a second pass recomputes the products once the radii are known.
    hold = entries * n * CLUSTER_ENTRY_BYTES <= CLUSTER_HELD_BYTES
    passes = 1 if hold else 2  # over all (vector, centre) products

    # The pass over all (vector, centre) products: each vector's nearest centre and its angle to it,
    # and the held entries (vector offset in its block, centre, screened value; 8-10 bytes each).
    cluster = np.empty(n, dtype=np.int64)
    psi = np.empty(n, dtype=np.float64)
    centre_type = np.int16 if k < 2**15 else np.int32
    held: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    for rows, dots in screened(every_block):
        best, value = engine.best(dots)
        cluster[rows] = best
        psi[rows] = angles(value, rows, best)
        if hold:
            ai, bi, dot = engine.above_columns(dots, loose(rows, reach_any_cos))
            held.append((rows.start, ai.astype(np.int16), bi.astype(centre_type), dot.astype(np.float32)))
        del dots

    # The clusters: radii measured exactly (upper bounds), the cap's outliers in none.
    outlier = (psi > cap) | (norms == 0)  # no direction: an outlier (it passes no positive threshold)
    member = ~outlier
    theta = np.zeros(k)
    np.maximum.at(theta, cluster[member], psi[member])
    nmax = np.zeros(k)
    np.maximum.at(nmax, cluster[member], norms[member])
    counts = np.bincount(cluster[member], minlength=k)
    ylo = np.full(k, np.inf)
    yhi = np.full(k, -np.inf)
    use_labels = y is not None and gap is not None
    if use_labels:
        assert y is not None
        np.minimum.at(ylo, cluster[member], y[member])
        np.maximum.at(yhi, cluster[member], y[member])
    del psi

    # Positions: outliers (in label order), then each cluster, members in label order.
    label = y if y is not None else np.zeros(n)
    out_idx = np.flatnonzero(outlier)
    out_idx = out_idx[np.lexsort((out_idx, label[out_idx]))]
    mem_idx = np.flatnonzero(member)
    mem_idx = mem_idx[np.lexsort((mem_idx, label[mem_idx], cluster[mem_idx]))]
    order = np.concatenate([out_idx, mem_idx])
    del out_idx, mem_idx, outlier, member, cluster
    position_type = np.int32 if n < 2**31 else np.int64
    position = np.empty(n, dtype=position_type)
    position[order] = np.arange(n, dtype=position_type)
    n_out = n - int(counts.sum())
    starts = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    starts += n_out
    y_pos = label[order] if use_labels else None

    # a.b can exceed the threshold only if angle(a, c_B) < theta_B + beta_B, where
    # cos(beta_B) = threshold / (max|a| max|b|)
    ratio = np.where(nmax > 0, (threshold - 1e-9) / np.maximum(max_norm * nmax, 1e-300), np.inf)
    reach_angle = theta + np.arccos(np.clip(ratio, -1.0, 1.0))
    reach_cos = np.where((counts > 0) & (ratio <= 1.0), np.cos(np.minimum(reach_angle, math.pi)), np.inf)

    def recomputed() -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """The entries within each cluster's own reach, from a second pass over the products."""
        for rows, dots in screened(every_block):
            yield (rows.start, *engine.above_columns(dots, loose(rows, reach_cos)))

    # The bound on each entry: (position, cluster) pairs that cannot be ruled out and whose
    # cluster ends after the vector's position (the tile of that cluster computes the pair).
    def entries_in_order() -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        held.reverse()  # each block is let go as soon as it is used
        while held:
            yield held.pop()

    parts_p, parts_b = [np.zeros(0, position_type)], [np.zeros(0, np.int64)]
    for s, ai, bi16, dot in entries_in_order() if hold else recomputed():
        index = s + ai.astype(np.int64)
        bi = bi16.astype(np.int64)
        row_norm = np.maximum(norms[index], 1e-30)
        # float64 from here: a held value is float32 (exact: the screen's own value)
        phi = np.arccos(np.clip((dot.astype(np.float64) + err) / (row_norm * centre_norms[bi]), -1.0, 1.0)) - 1e-7
        lower = np.clip(phi - theta[bi], 0.0, math.pi)
        pos = position[index]
        keep = (norms[index] * nmax[bi] * np.cos(lower) > threshold - 1e-9) & (pos < starts[bi + 1])
        if use_labels:
            ya = label[index]
            keep &= (ya - yhi[bi] < gap) & (ylo[bi] - ya < gap)
        parts_p.append(pos[keep])
        parts_b.append(bi[keep])
    p_all, b_all = np.concatenate(parts_p), np.concatenate(parts_b)
    del parts_p, parts_b

    # The tiles: each cluster against its rows (in label order, each block of them against the
    # members its labels can reach); outliers against each other in a band.
    cluster_tiles: list[tuple[Any, int, int]] = []
    tile_products = 0
    if b_all.size:
        by_cluster = np.lexsort((y_pos[p_all], b_all)) if y_pos is not None else np.argsort(b_all, kind="stable")
        p_all, b_all = p_all[by_cluster], b_all[by_cluster]
        edges = np.flatnonzero(np.r_[True, b_all[1:] != b_all[:-1], True])
        for lo_edge, hi_edge in zip(edges[:-1], edges[1:], strict=True):
            rows = p_all[lo_edge:hi_edge].astype(np.int64)
            c0, c1 = int(starts[b_all[lo_edge]]), int(starts[b_all[lo_edge] + 1])
            for r0 in range(0, rows.size, block_rows):
                chunk = rows[r0 : r0 + block_rows]
                lo, hi = c0, c1
                if y_pos is not None and gap is not None:
                    lo = c0 + _conservative_band_start(y_pos[c0:c1], float(y_pos[chunk[0]]), gap)
                    hi = c0 + _conservative_band_end(y_pos[c0:c1], float(y_pos[chunk[-1]]), gap)
                for cc in range(lo, hi, block_cols):
                    cluster_tiles.append((chunk, cc, min(hi, cc + block_cols)))
                    tile_products += chunk.size * (min(hi, cc + block_cols) - cc)
    del p_all, b_all
    outlier_tiles, outlier_products = _band_tiles(y_pos, 0, n_out, gap, block_rows, block_cols)
    estimate = passes * n * k + CLUSTER_TILE_COST * tile_products + outlier_products
    note = (
        f"{int(counts.astype(bool).sum())} clusters (cap {math.degrees(cap):.1f} deg), {n_out} outliers, "
        f"{(tile_products + outlier_products) / max(band_products, 1):.4f} of the band's products"
    )
    if not force and estimate > PRUNE_PAYS * band_products:
        log.info("cluster pruning not used: %s, ~%.3g products against the band's %.3g", note, estimate, band_products)
        return None
    return _Plan(
        order, [*outlier_tiles, *cluster_tiles], int(tile_products + outlier_products), "clusters",
        overhead=(passes * n + CLUSTER_SEED_ROUNDS * seed_count) * k, note=note,
    )


def _band_plan(
    n: int, y: np.ndarray | None, gap: float | None, block_rows: int, block_cols: int
) -> _Plan:
    if y is not None and gap is not None:
        order = np.argsort(y, kind="stable")
        tiles, products = _band_tiles(y[order], 0, n, gap, block_rows, block_cols)
    else:
        order = np.arange(n)
        tiles, products = _band_tiles(None, 0, n, None, block_rows, block_cols)
    return _Plan(order, tiles, products, "band")


def _run_tiles(
    engine: _Engine, plan: _Plan, threshold: float
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per tile: positions (p, q), p < q, whose screened product is within the screen's margin of
    ``threshold`` or above, with a float32 value (rechecked from the stored rows after bfloat16).

    Tiles with gathered rows (a cluster plan's) are small; on torch they run batched, collected
    from the stream until a batch's worth is waiting."""
    with engine.context():
        if engine.dev is None:
            yield from _run_one_by_one(engine, plan.order, plan.tiles, threshold)
            return
        waiting: list[tuple[Any, int, int]] = []
        volume = 0
        for tile in plan.tiles:
            if isinstance(tile[0], slice):
                yield from _run_one_by_one(engine, plan.order, [tile], threshold)
                continue
            waiting.append(tile)
            volume += (tile[0].size + tile[2] - tile[1]) * engine.x.shape[1] * 6
            if volume > 4 * TILE_BATCH_BYTES:
                yield from _run_batched(engine, plan.order, waiting, threshold)
                waiting, volume = [], 0
        if waiting:
            yield from _run_batched(engine, plan.order, waiting, threshold)


def _run_one_by_one(
    engine: _Engine, order: np.ndarray, tiles: Iterable[tuple[Any, int, int]], threshold: float
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    cut = threshold - engine.margin
    last_rows: Any = None
    rows_src = rows_screen = None
    row_pos = np.zeros(0, dtype=np.int64)
    for rows, c0, c1 in tiles:
        if rows is not last_rows:
            rows_src, rows_screen = engine.take(order[rows])
            row_pos = np.arange(rows.start, rows.stop) if isinstance(rows, slice) else rows
            last_rows = rows
        cols_src, cols_screen = engine.take(order[c0:c1])
        sim = engine.product(rows_screen, cols_screen)
        i, j = engine.above(sim, cut)
        if i.size == 0:
            continue
        p, q = row_pos[i], j + c0
        upper = q > p
        if not upper.all():
            i, j, p, q = i[upper], j[upper], p[upper], q[upper]
            if i.size == 0:
                continue
        if engine.bfloat16:
            values = engine.recheck(rows_src, cols_src, i, j)
            close = values > _round_down_float32(threshold - engine.margin32)
            p, q, values = p[close], q[close], values[close]
        else:
            values = engine.values(sim, i, j)
        if p.size:
            yield p, q, values


def _bucket(size: int) -> int:
    """``size`` rounded up to a batch shape: multiples of 16, at most 1/8 more."""
    step = max(16, 1 << max(0, size.bit_length() - 4))
    return -(-size // step) * step


def _run_batched(
    engine: _Engine, order: np.ndarray, tiles: list[tuple[Any, int, int]], threshold: float
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Small tiles as batched float32 products, padded with zero rows to power-of-two shapes (a zero
    row's products are 0, below any positive threshold, and are dropped by position anyway).

    float32 even after a bfloat16 screen elsewhere: inside a cluster most pairs are near the
    threshold, so a screen would send nearly all of them to the recheck."""
    torch = engine.torch
    cut = threshold - engine.margin32
    dim = engine.x.shape[1]
    shapes: dict[tuple[int, int], list[int]] = {}
    for t, (rows, c0, c1) in enumerate(tiles):
        shapes.setdefault((_bucket(rows.size), _bucket(c1 - c0)), []).append(t)
    for (rp, cp), members in sorted(shapes.items()):
        per_tile = (rp + cp) * dim * 6 + rp * cp * 4
        step = max(1, TILE_BATCH_BYTES // per_tile)
        for s in range(0, len(members), step):
            batch = [tiles[t] for t in members[s : s + step]]
            count = len(batch)
            row_pos = np.full((count, rp), -1, dtype=np.int64)
            col_pos = np.full((count, cp), -1, dtype=np.int64)
            for t, (rows, c0, c1) in enumerate(batch):
                row_pos[t, : rows.size] = rows
                col_pos[t, : c1 - c0] = np.arange(c0, c1)
            rows_screen = engine.take(order[np.maximum(row_pos, 0)].ravel())[0].float()
            cols_screen = engine.take(order[np.maximum(col_pos, 0)].ravel())[0].float()
            rows_screen[torch.from_numpy((row_pos < 0).ravel()).to(engine.dev)] = 0
            cols_screen[torch.from_numpy((col_pos < 0).ravel()).to(engine.dev)] = 0
            sim = torch.bmm(rows_screen.view(count, rp, dim), cols_screen.view(count, cp, dim).transpose(1, 2))
            flat = sim.view(count * rp, cp)
            hit = (flat > float(_round_down_float32(cut))).nonzero().cpu().numpy()
            i, j = hit[:, 0], hit[:, 1]
            if i.size == 0:
                continue
            p, q = row_pos.ravel()[i], col_pos[i // rp, j]
            keep = (p >= 0) & (q > p)
            i, j, p, q = i[keep], j[keep], p[keep], q[keep]
            if p.size:
                it = torch.from_numpy(i).to(engine.dev)
                jt = torch.from_numpy(j).to(engine.dev)
                yield p, q, flat[it, jt].cpu().numpy()


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
    prune: str = "auto",
) -> Pairs:
    """All pairs ``i < j`` with ``cos(v_i, v_j) > threshold`` (and ``|labels_i - labels_j| < max_label_gap``).

    ``vectors``: [n, dim] L2-normalised (float32 or float16; never copied whole on the CPU).
    With labels, rows are visited in label order and each block is compared only with the band of
    columns whose labels can be within the gap: the same result with a fraction of the products.
    Memory: the input, one ``block_rows x block_cols`` block and the pairs found (int32 indices +
    float64 similarity, 16 bytes a pair); cluster pruning adds ~40 bytes per vector, at most
    ``CLUSTER_HELD_BYTES`` (160 MB) of entries during its pass, and 8-24 bytes per (vector, cluster
    it may meet), a few per vector on clustered data.

    Membership is always exact: every screen keeps all pairs within its proven error of the
    threshold, and those within ``EXACT_MARGIN`` are rechecked in float64. ``exact_values=False``
    keeps the float32 similarity of the other pairs (within ~1e-6, last bits depending on the path)
    instead of recomputing each in float64, which is what makes millions of pairs cheap.
    ``max_pairs``: raise :class:`TooManyPairs` as soon as more candidate pairs than this are found.

    ``screen``: the precision of the blocked products: ``float32``, ``bfloat16`` (proven margin
    :func:`bfloat16_product_error`, survivors recomputed in float32 then float64 as above) or
    ``auto`` (bfloat16 on CUDA, and on CPUs with bfloat16 matrix units when the work pays for torch;
    else float32). ``prune``: ``auto`` partitions large inputs into clusters and skips what the angle
    bound rules out when its estimate says it pays (see :func:`_cluster_plan`); ``clusters`` always
    does; ``none`` never. Neither changes the result.
    """
    if prune not in PRUNE_CHOICES:
        raise ValueError(f"prune {prune!r}: expected one of {', '.join(PRUNE_CHOICES)}")
    x = np.asarray(vectors)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {x.shape}")
    if x.dtype not in (np.float32, np.float16):
        x = np.ascontiguousarray(x, dtype=np.float32)
    n, dim = x.shape
    use_labels = labels is not None and max_label_gap is not None
    y: np.ndarray | None = None
    if use_labels:
        y = np.asarray(labels, dtype=np.float64)
        if y.shape != (n,):
            raise ValueError(f"labels has shape {y.shape}, expected ({n},)")
    gap = float(max_label_gap) if use_labels else None
    index_type = np.int32 if n < 2**31 else np.int64
    plan = _band_plan(n, y, gap, block_rows, block_cols)
    norms = _row_norms(x)
    max_norm = max(1.0, float(norms.max())) if n else 1.0
    # the band's work decides the engine: pruning, where it pays, only makes it smaller
    dev, bf16 = _choose_engine(device, screen, 2.0 * dim * plan.products)
    engine = _Engine(x, dev, bf16, max_norm * max_norm)
    if prune == "clusters" or (prune == "auto" and n >= CLUSTER_MIN_N):
        pruned = _cluster_plan(
            x, y, gap, threshold, plan.products, block_rows, block_cols, force=prune == "clusters", engine=engine,
            norms=norms,
        )
        plan = pruned if pruned is not None else plan
    log.info(
        "threshold_pairs: n=%d, %s plan (%.3g products%s), %s screen",
        n, plan.kind, plan.products, f"; {plan.note}" if plan.note else "", engine.describe(),
    )
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    found_s: list[np.ndarray] = []
    found = 0
    for p, q, values in _run_tiles(engine, plan, threshold):
        # back to the caller's indices right away (int32: 8 bytes a candidate pair)
        found_i.append(plan.order[p].astype(index_type))
        found_j.append(plan.order[q].astype(index_type))
        found_s.append(values)
        found += p.size
        if max_pairs is not None and found > max_pairs:
            raise TooManyPairs(f"more than {max_pairs} pairs above similarity {threshold}")
    gi = np.concatenate(found_i) if found_i else np.zeros(0, index_type)
    gj = np.concatenate(found_j) if found_j else np.zeros(0, index_type)
    sim64 = np.concatenate(found_s).astype(np.float64) if found_s else np.zeros(0, np.float64)
    del found_i, found_j, found_s
    if y is not None and gap is not None:  # tiles are cut at block edges: the gap, pair by pair
        close = np.abs(y[gi] - y[gj]) < gap
        gi, gj, sim64 = gi[close], gj[close], sim64[close]
    # exact values in float64: all of them, or those near the threshold where membership is at stake
    margin = engine.margin32
    near = slice(None) if exact_values else np.flatnonzero(np.abs(sim64 - threshold) <= margin)
    sim64[near] = _exact_similarity(x, x, gi[near], gj[near])
    keep = sim64 > threshold
    gi, gj, sim64 = gi[keep], gj[keep], sim64[keep]
    lo, hi_ = np.minimum(gi, gj), np.maximum(gi, gj)
    del gi, gj
    srt = np.lexsort((hi_, lo))
    return Pairs(n, lo[srt], hi_[srt], sim64[srt])


# --------------------------------------------------------------------------------------------
# k nearest (or farthest) neighbours

# Screened candidates kept per query beyond k, so that ties and screening error are settled exactly.
KNN_EXTRA = 8
KNN_EXTRA_BF16 = 32


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
    screen: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest (or farthest) rows of ``data`` for each query, by cosine distance.

    Returns ``(indices [nq, k], distances [nq, k])`` sorted by distance (ascending for nearest,
    descending for farthest), ties broken by the lower data index; distances are ``1 - cos`` in
    float64. ``exclude_self`` drops ``data[i]`` for query ``i`` (queries and data are the same set).

    Exact on every path. The screen (float32, or bfloat16 where ``screen`` and the machine call for
    it, as in :func:`threshold_pairs`) errs by at most delta per product. With s~ the screened and
    tau~ the k-th best screened score of a query, every row among the exact k best has
    s~ >= tau~ - 2 delta; all of those are rescored in float64 and ranked. A query whose short list
    (k + a few) might have cut such a row off is redone over all the data in float32.
    """
    q = _as_float32(queries)
    d = _as_float32(data)
    nq, nd = q.shape[0], d.shape[0]
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"queries have dim {q.shape[1]} but data has dim {d.shape[1]}")
    available = nd - (1 if exclude_self else 0)
    if k < 1 or k > available:
        raise ValueError(f"k={k} but only {available} neighbour(s) are available")
    sign = -1.0 if farthest else 1.0
    # On CUDA float32 products are cheap next to the rescoring a wider bfloat16 margin brings.
    dev, bf16 = _choose_engine(device, screen, 2.0 * nq * nd * q.shape[1], cuda_auto_bfloat16=False)
    norm_product = max(1.0, float(_row_norms(q).max(initial=0.0) * _row_norms(d).max(initial=0.0)))
    engine = _Engine(d, dev, bf16, norm_product)
    take = min(k + (KNN_EXTRA_BF16 if bf16 else KNN_EXTRA), available)
    out_idx = np.empty((nq, k), dtype=np.int64)
    out_dist = np.empty((nq, k), dtype=np.float64)
    unresolved: list[np.ndarray] = []
    with engine.context():
        for r0 in range(0, nq, block_rows):
            r1 = min(nq, r0 + block_rows)
            best_val, best_idx = _knn_screen(engine, q[r0:r1], r0, take, sign, exclude_self, block_cols)
            order = np.argsort(-best_val, axis=1, kind="stable")
            best_val = np.take_along_axis(best_val, order, axis=1)
            best_idx = np.take_along_axis(best_idx, order, axis=1)
            floor = best_val[:, k - 1].astype(np.float64) - 2.0 * engine.margin
            if take == available:
                resolved = np.ones(r1 - r0, dtype=bool)
            else:
                resolved = best_val[:, take - 1].astype(np.float64) < floor
            rows = np.flatnonzero(resolved)
            if rows.size:
                inside = best_val[rows] >= floor[rows, None]
                cand_rows = np.repeat(rows + r0, inside.sum(axis=1))
                cand_cols = best_idx[rows][inside]
                idx, dist = _rank_exact(q, d, cand_rows, cand_cols, rows + r0, k, sign)
                out_idx[rows + r0], out_dist[rows + r0] = idx, dist
            unresolved.append(np.flatnonzero(~resolved) + r0)
    redo = np.concatenate(unresolved) if unresolved else np.zeros(0, np.int64)
    if redo.size:
        margin = _screen_margin(False, norm_product, q.shape[1])
        idx, dist = _knn_exhaustive(q, d, redo, k, sign, exclude_self, margin, block_cols)
        out_idx[redo], out_dist[redo] = idx, dist
    log.info("knn: %d queries x %d rows, %s screen, %d redone in full", nq, nd, engine.describe(), redo.size)
    return out_idx, out_dist


def _knn_screen(
    engine: _Engine, queries: np.ndarray, r0: int, take: int, sign: float, exclude_self: bool, block_cols: int
) -> tuple[np.ndarray, np.ndarray]:
    """For a block of queries: the ``take`` best data rows by screened score ``sign * q.d`` (any
    order), as (scores float32 [b, take], data indices [b, take])."""
    nd = engine.x.shape[0]
    rows = queries.shape[0]
    screen_q = engine.load(queries)
    best_val = np.zeros((rows, 0), np.float32)
    best_idx = np.zeros((rows, 0), np.int64)
    for c0 in range(0, nd, block_cols):
        c1 = min(nd, c0 + block_cols)
        _, cols = engine.take(slice(c0, c1))
        score = engine.product(screen_q, cols)
        if sign < 0:
            score = -score
        if exclude_self:
            own = np.arange(max(r0, c0), min(r0 + rows, c1))
            if own.size:
                if engine.dev is None:
                    score[own - r0, own - c0] = -np.inf
                else:
                    ot = engine.torch.from_numpy(own).to(engine.dev)
                    score[ot - r0, ot - c0] = -float("inf")
        val, pos = engine.top(score, take)
        val = np.concatenate([best_val, val.astype(np.float32)], axis=1)
        idx = np.concatenate([best_idx, pos + c0], axis=1)
        if val.shape[1] > take:
            keep = np.argpartition(-val, take - 1, axis=1)[:, :take]
            val = np.take_along_axis(val, keep, axis=1)
            idx = np.take_along_axis(idx, keep, axis=1)
        best_val, best_idx = val, idx
    return best_val, best_idx


def _rank_exact(
    q: np.ndarray,
    d: np.ndarray,
    cand_rows: np.ndarray,
    cand_cols: np.ndarray,
    rows: np.ndarray,
    k: int,
    sign: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Rescore candidate (query, data) pairs in float64 and keep each query's k best, ties to the
    lower data index. ``rows``: the queries, ascending; each has at least k candidates."""
    sim = _exact_similarity(q, d, cand_rows, cand_cols)
    key = -sign * sim
    order = np.lexsort((cand_cols, key, cand_rows))
    cand_rows, cand_cols, sim = cand_rows[order], cand_cols[order], sim[order]
    first = np.searchsorted(cand_rows, rows)
    pick = first[:, None] + np.arange(k)[None, :]
    return cand_cols[pick], 1.0 - sim[pick]


def _knn_exhaustive(
    q: np.ndarray,
    d: np.ndarray,
    rows: np.ndarray,
    k: int,
    sign: float,
    exclude_self: bool,
    margin: float,
    block_cols: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The exact k best for the queries ``rows`` over all the data: the k-th best float32 score,
    then every row within 2 * margin of it (any number: duplicates), rescored in float64."""
    nd = d.shape[0]
    out_idx = np.empty((rows.size, k), dtype=np.int64)
    out_dist = np.empty((rows.size, k), dtype=np.float64)
    chunk = max(1, min(1024, (1 << 22) // max(nd, 1)))
    for s in range(0, rows.size, chunk):
        part = rows[s : s + chunk]
        block = q[part]
        scores = []
        for c0 in range(0, nd, block_cols):
            c1 = min(nd, c0 + block_cols)
            score = sign * (block @ d[c0:c1].T)
            if exclude_self:
                own = (part >= c0) & (part < c1)
                score[np.flatnonzero(own), part[own] - c0] = -np.inf
            scores.append(score)
        full = np.concatenate(scores, axis=1)  # [chunk, nd], small by the chunk size
        kth = -np.partition(-full, k - 1, axis=1)[:, k - 1].astype(np.float64)
        inside = full >= (kth - 2.0 * margin)[:, None]
        cand_rows = np.repeat(part, inside.sum(axis=1))
        cand_cols = np.nonzero(inside)[1]
        idx, dist = _rank_exact(q, d, cand_rows, cand_cols, part, k, sign)
        out_idx[s : s + part.size], out_dist[s : s + part.size] = idx, dist
    return out_idx, out_dist


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
