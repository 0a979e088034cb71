"""DDCUp against dense, literal statements of METHOD.md's rules."""

import numpy as np
import pytest
from reshape_helpers import make_dataset

from curate.reshape.params import ReshapeParams
from curate.reshape.pipeline import reshape
from curate.reshape.upsample import (
    content_thresholds,
    greedy_thinning,
    label_neighbours,
    neighbour_weights,
    select_candidates,
)
from curate.schema import read_frame


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def dense_distance(a, b):
    return 1.0 - a.astype(np.float64) @ b.astype(np.float64).T


def brute_thresholds(t):
    d = dense_distance(t, t)
    np.fill_diagonal(d, np.inf)
    nearest = d.min(axis=1)
    np.fill_diagonal(d, -np.inf)
    return float(np.median(nearest)), float(d.max())


def brute_selection(a, t):
    """Eligibility, then the literal greedy loop: closest surviving pair, drop its earlier member."""
    r, spread = brute_thresholds(t)
    d = dense_distance(a, t)
    novel = d.min(axis=1) > r
    inside = d.max(axis=1) < spread
    alive = set(np.flatnonzero(novel & inside).tolist())
    dd = dense_distance(a, a)
    dropped = []
    while True:
        close = [(dd[i, j], i, j) for i in sorted(alive) for j in sorted(alive) if i < j and dd[i, j] < r]
        if not close:
            break
        _, i, _ = min(close)
        alive.remove(i)
        dropped.append(i)
    return novel, inside, sorted(alive), dropped


def problem(seed, m=60, n_refs=20, dim=10):
    rng = np.random.default_rng(seed)
    t = unit(rng.normal(size=(n_refs, dim)) + 0.8)
    a = unit(rng.normal(size=(m, dim)) + 0.8 + 0.3 * rng.normal(size=(m, 1)))
    return a.astype(np.float32), t.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selection_matches_literal_greedy(seed):
    a, t = problem(seed)
    r, spread = brute_thresholds(t)
    th = content_thresholds(t, device="cpu")
    assert th.novelty_threshold == pytest.approx(r, abs=1e-12)
    assert th.max_spread == pytest.approx(spread, abs=1e-12)
    sel = select_candidates(a, t, device="cpu")
    novel, inside, kept, dropped = brute_selection(a, t)
    np.testing.assert_array_equal(sel.eligible, novel & inside)
    assert np.flatnonzero(sel.kept).tolist() == kept
    assert sel.drop_order.tolist() == dropped
    assert len(dropped) >= 2 and len(kept) >= 2  # the case exercises the greedy loop
    assert set(sel.reason[~novel]) == {"ddc_not_novel"}
    assert set(sel.reason[novel & ~inside]) <= {"ddc_out_of_distribution"}
    assert set(sel.reason[dropped]) == {"ddc_too_close_to_kept"}


def test_greedy_order_matters_and_is_followed():
    # A chain on a circle. The closest pair (p0, p1) drops p0; then (p1, p2) drops p1. Taking
    # (p1, p2) first would instead keep p0: the order of the pairs decides the result.
    angles = np.array([0.0, 0.30, 0.62, 1.30])
    v = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    radius = 1 - np.cos(0.5)
    kept, dropped_for, order = greedy_thinning(v, radius, device="cpu")
    assert order.tolist() == [0, 1]
    assert kept.tolist() == [False, False, True, True]
    assert dropped_for.tolist() == [1, 2, -1, -1]


@pytest.mark.parametrize("budget", [0, 3, 10])
def test_banded_thinning_equals_one_pass(budget):
    a, t = problem(3, m=80)
    r, _ = brute_thresholds(t)
    one_pass = greedy_thinning(a, r, device="cpu")
    banded = greedy_thinning(a, r, pair_budget=budget, device="cpu")
    for x, y in zip(one_pass, banded, strict=True):
        np.testing.assert_array_equal(x, y)
    assert one_pass[2].size >= 3


@pytest.mark.parametrize("weighting", ["official", "similarity", "uniform"])
def test_label_neighbours_match_dense(weighting):
    a, t = problem(5, m=30)
    nb = label_neighbours(a, t, weighting=weighting, device="cpu")
    d = dense_distance(a, t)
    for c in range(len(a)):
        order = np.argsort(d[c], kind="stable")[:5]
        close = order[d[c, order] - d[c, order[0]] < 0.05]
        assert nb.index[c].tolist() == close.tolist()
        dist = d[c, close]
        w = {"official": np.exp(dist), "similarity": np.exp(-dist), "uniform": np.ones_like(dist)}[weighting]
        np.testing.assert_allclose(nb.weight[c], w / w.sum(), atol=1e-12)


def test_official_weights_favour_the_farther_neighbour():
    w = neighbour_weights(np.array([0.30, 0.34]), "official")
    assert w[1] > w[0] and w.sum() == pytest.approx(1.0)
    s = neighbour_weights(np.array([0.30, 0.34]), "similarity")
    assert s[0] > s[1]


@pytest.mark.parametrize("weighting", ["official", "similarity"])
def test_pipeline_pseudo_labels_and_added_samples(tmp_path, weighting):
    ds = make_dataset(tmp_path, seed=1, n_candidates=24)
    out = tmp_path / "out" / "manifest.parquet"
    reshape(
        ds.corpus,
        ds.embeddings,
        out,
        pool=ds.pool,
        pool_embeddings=ds.pool_embeddings,
        params=ReshapeParams(weighting=weighting, device="cpu"),
    )
    manifest, meta = read_frame(out, "manifest")
    decisions, _ = read_frame(out.with_name("decisions.parquet"), "decisions")
    train_refs = sorted(s for s in ds.train_vectors if "_" not in s)
    t = np.stack([ds.train_vectors[s] for s in train_refs]).astype(np.float32)
    cands = sorted(ds.pool_vectors)
    a = np.stack([ds.pool_vectors[s] for s in cands]).astype(np.float32)
    novel, inside, kept, dropped = brute_selection(a, t)
    cand_dec = decisions.set_index("sample_id").loc[cands]
    assert (cand_dec["reason"] == "ddc_selected").to_numpy().nonzero()[0].tolist() == kept
    assert not cand_dec["kept"].any()  # a candidate reference is never a manifest row
    assert len(kept) >= 3 and len(dropped) >= 2
    assert meta["weighting"] == weighting
    r, spread = brute_thresholds(t)
    assert meta["thresholds"]["r"] == pytest.approx(r) and meta["thresholds"]["maxT_all"] == pytest.approx(
        spread
    )

    up = manifest[manifest["origin"] == "upsampled"]
    assert len(up) == len(kept) * 3 * 3  # kept candidates x types (1, 3, 10) x levels (1, 3, 5)
    assert set(up["level"]) == {1, 3, 5} and (up["label_kind"] == "pseudo").all()
    score = {
        (r_.ref_id, r_.distortion, r_.level): r_.score for r_ in ds.train.itertuples() if not r_.is_reference
    }
    d = dense_distance(a, t)
    for row in up.itertuples():
        c = cands.index(f"pool/{row.ref_id}")
        order = np.argsort(d[c], kind="stable")[:5]
        close = order[d[c, order] - d[c, order[0]] < 0.05]
        dist = d[c, close]
        w = np.exp(dist) if weighting == "official" else np.exp(-dist)
        w = w / w.sum()
        neighbours = [train_refs[k].split("/")[1] for k in close]
        want = sum(
            wk * score[(ref, row.distortion, row.level)] for wk, ref in zip(w, neighbours, strict=True)
        )
        assert row.score == pytest.approx(want, abs=1e-5)
        assert list(row.pseudo_refs) == [
            f"kadid/{ref}_{row.distortion:02d}_{row.level:02d}" for ref in neighbours
        ]
        np.testing.assert_allclose(row.pseudo_weights, w, atol=1e-6)
    # the distorted versions joined by ref_id, distortion, level; other levels recorded, not added
    added = decisions[decisions["reason"] == "ddc_added"]
    assert set(added["sample_id"]) == set(up["sample_id"])
    assert (decisions[decisions["reason"] == "ddc_level_not_selected"]["kept"] == False).all()  # noqa: E712
