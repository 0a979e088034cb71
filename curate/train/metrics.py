"""IQA agreement metrics between predicted and subjective scores.

SRCC (Spearman), PLCC (Pearson, on raw predictions, as the paper reports it), KRCC (Kendall tau-b)
and PLCC after the usual 4-parameter logistic mapping of predictions onto the subjective scale,
``f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``, fitted by least squares.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize, stats


def _pair(pred: np.ndarray, mos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).ravel()
    m = np.asarray(mos, dtype=np.float64).ravel()
    if p.shape != m.shape:
        raise ValueError(f"predictions ({p.size}) and scores ({m.size}) differ in length")
    return p, m


def _finite(value: float) -> float:
    return float(value) if np.isfinite(value) else float("nan")


def srcc(pred: np.ndarray, mos: np.ndarray) -> float:
    p, m = _pair(pred, mos)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(stats.spearmanr(p, m).statistic)


def plcc(pred: np.ndarray, mos: np.ndarray) -> float:
    p, m = _pair(pred, mos)
    if p.size < 2 or np.ptp(p) == 0 or np.ptp(m) == 0:
        return float("nan")
    return _finite(stats.pearsonr(p, m).statistic)


def krcc(pred: np.ndarray, mos: np.ndarray) -> float:
    p, m = _pair(pred, mos)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _finite(stats.kendalltau(p, m).statistic)


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """4-parameter logistic: ``b2`` at -inf, ``b1`` at +inf, midpoint ``b3``, slope scale ``|b4|``."""
    z = np.clip(-(np.asarray(x, dtype=np.float64) - b3) / np.abs(b4), -500, 500)
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


def fit_logistic4(pred: np.ndarray, mos: np.ndarray) -> np.ndarray:
    """Least-squares parameters (b1, b2, b3, b4) mapping ``pred`` onto ``mos``."""
    p, m = _pair(pred, mos)
    spread = np.std(p) if np.std(p) > 0 else 1.0
    start = [np.max(m), np.min(m), np.mean(p), spread]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params, _ = optimize.curve_fit(logistic4, p, m, p0=start, maxfev=20000)
    return np.asarray(params, dtype=np.float64)


def plcc_logistic(pred: np.ndarray, mos: np.ndarray) -> float:
    """PLCC between the logistic-mapped predictions and ``mos``; raw PLCC if the fit fails."""
    p, m = _pair(pred, mos)
    if p.size < 5:
        return plcc(p, m)
    try:
        params = fit_logistic4(p, m)
    except (RuntimeError, ValueError, optimize.OptimizeWarning):
        return plcc(p, m)
    return plcc(logistic4(p, *params), m)


def iqa_metrics(pred: np.ndarray, mos: np.ndarray) -> dict[str, float]:
    """{"srcc", "plcc", "krcc", "plcc_logistic", "n"} for one evaluation set."""
    p, m = _pair(pred, mos)
    return {
        "srcc": srcc(p, m),
        "plcc": plcc(p, m),
        "krcc": krcc(p, m),
        "plcc_logistic": plcc_logistic(p, m),
        "n": int(p.size),
    }
