"""IQA metrics against known values and against scipy on fixed arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from curate.train.metrics import fit_logistic4, iqa_metrics, krcc, logistic4, plcc, plcc_logistic, srcc

PRED = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.95, 0.2, 0.5])
MOS = np.array([1.0, 3.5, 3.0, 8.0, 8.5, 9.0, 2.5, 4.0])


def test_rank_and_linear_correlations_match_scipy():
    assert srcc(PRED, MOS) == pytest.approx(stats.spearmanr(PRED, MOS).statistic, abs=1e-12)
    assert plcc(PRED, MOS) == pytest.approx(stats.pearsonr(PRED, MOS).statistic, abs=1e-12)
    assert krcc(PRED, MOS) == pytest.approx(stats.kendalltau(PRED, MOS).statistic, abs=1e-12)


def test_known_values_by_hand():
    # one swapped neighbour pair among 4: Spearman 1 - 6*2/(4*15) = 0.8, Kendall (5-1)/6
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([1.0, 3.0, 2.0, 4.0])
    assert srcc(a, b) == pytest.approx(0.8)
    assert krcc(a, b) == pytest.approx(4 / 6)
    assert plcc(a, 2 * a + 1) == pytest.approx(1.0)
    assert srcc(a, -a) == pytest.approx(-1.0)


def test_logistic_fit_recovers_known_parameters():
    x = np.linspace(-3, 5, 60)
    truth = (9.0, 1.0, 1.2, 0.8)
    y = logistic4(x, *truth)
    params = fit_logistic4(x, y)
    assert params[:3] == pytest.approx(truth[:3], abs=1e-3)
    assert abs(params[3]) == pytest.approx(truth[3], abs=1e-3)
    # a monotone non-linear relation: logistic PLCC is perfect, raw PLCC is not
    assert plcc_logistic(x, y) == pytest.approx(1.0, abs=1e-6)
    assert plcc(x, y) < 0.99


def test_degenerate_inputs_give_nan_not_errors():
    flat = np.ones(6)
    result = iqa_metrics(flat, MOS[:6])
    assert math.isnan(result["plcc"]) and math.isnan(result["srcc"]) and result["n"] == 6
    with pytest.raises(ValueError, match="differ in length"):
        srcc(PRED, MOS[:3])
