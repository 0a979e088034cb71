"""The statistics of a comparison: spread over seeds, paired differences, bootstrap intervals.

Every interval resamples *test references* (all images of a reference content go in or out
together; in an authentic set each image is its own reference), so it states how much the figure
would move on another draw of test content of the same kind. The seed-to-seed spread is reported
beside it. A difference to the baseline is called distinguishable from noise only when both agree:
its 95% interval excludes zero *and* it has the same sign for every seed *and* the interval
resamples at least :data:`MIN_UNITS` independent test units (a bootstrap over fewer has too few
distinct resamples and comes out too narrow). Anything else is reported, in words, as within noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from curate.compare.params import BOOTSTRAP_RESAMPLES, CONFIDENCE

# Fewer independent test units (references, or groups of them) than this: intervals are reported
# but no difference is called better or worse.
MIN_UNITS = 10


def spearman_columns(predictions: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """SRCC of each row of ``predictions`` [k, n] against ``scores`` [n] (NaN where undefined)."""
    pred = np.atleast_2d(np.asarray(predictions, dtype=np.float64))
    y = np.asarray(scores, dtype=np.float64)
    if pred.shape[1] != y.size:
        raise ValueError(f"predictions have {pred.shape[1]} columns but there are {y.size} scores")
    if y.size < 2:
        return np.full(pred.shape[0], np.nan)
    ry = stats.rankdata(y)
    rp = stats.rankdata(pred, axis=1)
    ry = ry - ry.mean()
    rp = rp - rp.mean(axis=1, keepdims=True)
    denominator = np.sqrt((rp * rp).sum(axis=1) * (ry * ry).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rp @ ry) / denominator, np.nan)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval (``low``, ``high``; NaN when undefined)."""

    estimate: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return bool(np.isfinite(self.low) and np.isfinite(self.high) and (self.low > 0 or self.high < 0))


def _cluster_members(clusters: Sequence[str] | np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    labels = np.asarray(clusters, dtype=object).astype(str)
    unique, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(inverse, minlength=unique.size))]
    return unique, [order[bounds[k] : bounds[k + 1]] for k in range(unique.size)]


def srcc_interval(
    predictions: np.ndarray,
    scores: np.ndarray,
    clusters: Sequence[str] | np.ndarray,
    *,
    baseline: np.ndarray | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Interval:
    """Mean SRCC over seeds (or its paired difference to ``baseline``) with a cluster-bootstrap interval.

    ``predictions`` [n_seeds, n_images] and ``baseline`` (same shape, optional) hold each seed's
    predictions of the same test images; ``scores`` [n_images]; ``clusters`` [n_images] the test
    reference of each image. The statistic is ``mean_s SRCC(pred_s)`` or, with a baseline,
    ``mean_s [SRCC(pred_s) - SRCC(baseline_s)]`` (paired: the same resampled images for both).
    The interval is scipy's percentile bootstrap over test references.
    """
    pred = np.atleast_2d(np.asarray(predictions, dtype=np.float64))
    base = None if baseline is None else np.atleast_2d(np.asarray(baseline, dtype=np.float64))
    y = np.asarray(scores, dtype=np.float64)
    _, members = _cluster_members(clusters)

    def statistic(picked: np.ndarray) -> float:
        rows = np.concatenate([members[int(k)] for k in picked])
        value = spearman_columns(pred[:, rows], y[rows])
        if base is not None:
            value = value - spearman_columns(base[:, rows], y[rows])
        return float(np.mean(value))

    estimate = statistic(np.arange(len(members)))
    if len(members) < 2 or not np.isfinite(estimate):
        return Interval(estimate, float("nan"), float("nan"))
    result = stats.bootstrap(
        (np.arange(len(members)),),
        statistic,
        vectorized=False,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return Interval(estimate, float(ci.low), float(ci.high))


def verdict(difference: Interval, per_seed: Sequence[float], units: int | None = None) -> str:
    """``better``, ``worse`` or ``within noise`` for a paired difference whose interval resampled
    ``units`` independent test units (see the module docstring)."""
    signs = {int(np.sign(v)) for v in per_seed if np.isfinite(v)}
    enough = units is None or units >= MIN_UNITS
    if enough and difference.excludes_zero() and len(signs) == 1 and 0 not in signs:
        return "better" if difference.estimate > 0 else "worse"
    return "within noise"
