"""DDCUp's greedy thinning under a given candidate order, against a literal statement of the release's loop.

The release computes a dense distance matrix of the eligible candidates in its file order, fills the
diagonal with 1.0 and, while its smallest entry is below r, deletes the row and column of
``np.argmin``'s hit: the first in row-major order, so of the closest pair the member that comes
first in file order goes, and among equal distances the pair whose first member comes earliest.
``release_selection`` below says exactly that on a dense float64 matrix; ``select_candidates`` with
``order`` must give the same kept set and the same drop sequence.
"""

import numpy as np
import pytest

from curate.reshape.upsample import select_candidates


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def cross_distance(a, b):
    return 1.0 - a.astype(np.float64) @ b.astype(np.float64).T


def pair_distance(a):
    """Dense symmetric distance matrix; each pair computed once, as scipy's pdist + squareform does."""
    d = cross_distance(a, a)
    upper = np.triu(d, 1)
    return upper + upper.T


def release_selection(a_file, t):
    """The release's DDCUp selection with the candidates ``a_file`` [m, dim] in file order.

    Returns (eligible [m] bool, kept file positions ascending, dropped file positions in drop order, r).
    """
    d_tt = pair_distance(t)
    max_spread = d_tt.max()
    np.fill_diagonal(d_tt, 1.0)
    nearest_t = d_tt.min(axis=1)
    r = float(np.median(nearest_t))
    # with these the release's 1.0 diagonal is never a row's or the thinning's minimum
    off_diagonal = pair_distance(t) + np.diag(np.full(len(t), np.inf))
    assert (off_diagonal.min(axis=1) <= 1.0).all() and r < 1.0
    d_at = cross_distance(a_file, t)
    eligible = (d_at.min(axis=1) > r) & (d_at.max(axis=1) < max_spread)
    matrix = pair_distance(a_file[eligible])
    np.fill_diagonal(matrix, 1.0)
    positions = np.flatnonzero(eligible)
    dropped = []
    while matrix.shape[0] > 1 and matrix.min() < r:
        row, _ = np.unravel_index(np.argmin(matrix), matrix.shape)
        dropped.append(int(positions[row]))
        matrix = np.delete(np.delete(matrix, row, axis=0), row, axis=1)
        positions = np.delete(positions, row)
    return eligible, positions.tolist(), dropped, r


def check_against_release(a, t, order):
    """select_candidates(a, t, order=order) == the release's loop on a[order] (file order)."""
    order = np.asarray(order)
    eligible, kept_pos, dropped_pos, r = release_selection(a[order], t)
    sel = select_candidates(a, t, order=order, device="cpu")
    assert sel.thresholds.novelty_threshold == r
    np.testing.assert_array_equal(sel.eligible, eligible[np.argsort(order)])
    assert sorted(np.flatnonzero(sel.kept).tolist()) == sorted(order[kept_pos].tolist())
    assert sel.drop_order.tolist() == order[dropped_pos].tolist()
    return sel


def sign_vectors(rng, n, dim=16):
    """Unit vectors with coordinates +-1/4: every dot product is a multiple of 1/8, exact in floats."""
    return (rng.choice([-0.25, 0.25], size=(n, dim))).astype(np.float32)


def exact_tie_set(seed):
    rng = np.random.default_rng(seed)
    t = sign_vectors(rng, 24)
    a = sign_vectors(rng, 70)
    a[60:] = a[rng.choice(60, 10, replace=False)]  # exact duplicates: distance 0, tied with each other
    return a, t


def near_tie_set(seed, dim=10):
    """Chains of candidates on great circles, steps equal up to ~1e-7 rad: distances tie to ~1e-8."""
    rng = np.random.default_rng(seed)
    centre = unit(rng.normal(size=dim))
    t = unit(centre + 0.7 * rng.normal(size=(30, dim)))
    chains = []
    for _ in range(20):
        u = unit(centre + 0.7 * rng.normal(size=dim))
        w = unit(rng.normal(size=dim) - (rng.normal(size=dim) @ u) * u)
        w = unit(w - (w @ u) * u)
        step = rng.uniform(0.25, 0.5)
        angles = np.cumsum(np.r_[0.0, step + 1e-7 * rng.normal(size=rng.integers(2, 5))])
        chains.append(np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * w)
    a = np.concatenate(chains).astype(np.float32)
    return a, t.astype(np.float32)


def random_set(seed, m=60, n_refs=20, dim=10):
    rng = np.random.default_rng(seed)
    t = unit(rng.normal(size=(n_refs, dim)) + 0.8)
    a = unit(rng.normal(size=(m, dim)) + 0.8 + 0.3 * rng.normal(size=(m, 1)))
    return a.astype(np.float32), t.astype(np.float32)


def orders(m, seed):
    rng = np.random.default_rng(seed)
    return [np.arange(m), np.arange(m)[::-1].copy(), *(rng.permutation(m) for _ in range(4))]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_sets_follow_the_release_loop_in_any_order(seed):
    a, t = random_set(seed)
    kept_sets = set()
    for order in orders(len(a), seed):
        sel = check_against_release(a, t, order)
        kept_sets.add(tuple(np.flatnonzero(sel.kept)))
        assert len(sel.drop_order) >= 2
    assert len(kept_sets) > 1  # the order decides something here


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_ties_are_resolved_like_the_release_argmin(seed):
    a, t = exact_tie_set(seed)
    sel = check_against_release(a, t, np.arange(len(a)))
    elig = np.flatnonzero(sel.eligible)
    d = pair_distance(a[elig])[np.triu_indices(elig.size, 1)]
    r = sel.thresholds.novelty_threshold
    _, counts = np.unique(d[d < r], return_counts=True)
    assert (counts > 1).any() and len(sel.drop_order) >= 3  # tied distances below r are decided
    for order in orders(len(a), seed)[1:]:
        check_against_release(a, t, order)


@pytest.mark.parametrize("seed", [0, 1, 3, 5])
def test_near_ties_are_decided_exactly(seed):
    a, t = near_tie_set(seed)
    sel = check_against_release(a, t, np.arange(len(a)))
    elig = np.flatnonzero(sel.eligible)
    d = pair_distance(a[elig])[np.triu_indices(elig.size, 1)]
    below = np.sort(d[d < sel.thresholds.novelty_threshold])
    gaps = np.diff(below)
    # the premise: distinct close pairs a float32 computation could not tell apart (below its ~6e-8
    # resolution), yet far apart for float64 (so both statements decide them the same way)
    assert (gaps < 1e-7).sum() >= 3 and gaps.min() > 1e-13
    assert len(sel.drop_order) >= 3
    for order in orders(len(a), seed)[1:]:
        check_against_release(a, t, order)


def test_order_flips_a_chain_as_the_release_rule_says():
    # p - q - s on a circle: d(p, q) < d(q, s) < r <= d(p, s). In order p, q, s the closest pair
    # drops p, then (q, s) drops q: s survives alone. In order q, p, s the first pair drops q, and
    # p and s are then far enough apart: both survive.
    azimuths = np.arange(8) * np.pi / 4  # training references: an octagon on the equator
    t = np.stack([np.cos(azimuths), np.sin(azimuths), np.zeros(8)], axis=1).astype(np.float32)
    polar = np.array([0.0, 0.6, 1.3]) - 0.65  # candidates on a meridian, around the pole: novel
    chain = np.stack([np.sin(polar), np.zeros(3), np.cos(polar)], axis=1).astype(np.float32)
    d = pair_distance(chain)
    thresholds = select_candidates(chain, t, device="cpu").thresholds
    r = thresholds.novelty_threshold
    assert d[0, 1] < d[1, 2] < r <= d[0, 2]
    as_listed = select_candidates(chain, t, thresholds=thresholds, order=np.array([0, 1, 2]), device="cpu")
    assert as_listed.kept.tolist() == [False, False, True] and as_listed.drop_order.tolist() == [0, 1]
    assert as_listed.dropped_for.tolist() == [1, 2, -1]
    q_first = select_candidates(chain, t, thresholds=thresholds, order=np.array([1, 0, 2]), device="cpu")
    assert q_first.kept.tolist() == [True, False, True] and q_first.drop_order.tolist() == [1]
    assert q_first.reason.tolist() == ["ddc_selected", "ddc_too_close_to_kept", "ddc_selected"]
    assert q_first.dropped_for.tolist() == [-1, 0, -1]


def test_default_order_is_index_order():
    a, t = random_set(4)
    default = select_candidates(a, t, device="cpu")
    listed = select_candidates(a, t, order=np.arange(len(a)), device="cpu")
    for name in ("kept", "reason", "dropped_for", "drop_order", "eligible"):
        np.testing.assert_array_equal(getattr(default, name), getattr(listed, name))


@pytest.mark.parametrize("order", [[0, 1, 1], [0, 1], [0, 1, 3], [2.0, 1.0, 0.0]])
def test_an_order_that_is_not_a_permutation_is_refused(order):
    a, t = random_set(5, m=3)
    with pytest.raises(ValueError, match="exactly once"):
        select_candidates(a, t, order=np.asarray(order), device="cpu")
