"""--target-size: exact row counts, the density-first trim against its literal statement, refusals."""

import numpy as np
import pytest
from click.testing import CliRunner
from reshape_helpers import make_dataset

from curate.cli import cli
from curate.reshape import targetsize
from curate.reshape.downsample import redundancy_groups
from curate.reshape.params import DRCParams, ReshapeParams
from curate.reshape.pipeline import reshape
from curate.reshape.targetsize import add_back_order, trim_order
from curate.sampling import sample_keys
from curate.schema import read_frame


def brute_trim(x, scores, alive, count, keys):
    """The rule as written, on dense matrices: most redundant kept neighbours first (ties: closest
    redundant neighbour, then key); with no redundant pair left, the closest pair loses its member
    with the smaller key."""
    x = x.astype(np.float64)
    sim = x @ x.T
    dist = 1.0 - sim
    redundant = (sim > 0.9) & (np.abs(scores[:, None] - scores[None, :]) < 1.0)
    np.fill_diagonal(redundant, False)
    alive = alive.copy()
    removed = []
    while len(removed) < count:
        live = np.flatnonzero(alive)
        sub = redundant[np.ix_(live, live)]
        degree = sub.sum(axis=1)
        if degree.max(initial=0) > 0:
            nearest = np.where(sub, dist[np.ix_(live, live)], np.inf).min(axis=1)
            cands = [(-degree[k], nearest[k], int(keys[v]), v) for k, v in enumerate(live) if degree[k] > 0]
        else:
            d = dist[np.ix_(live, live)].copy()
            np.fill_diagonal(d, np.inf)
            nearest = d.min(axis=1)
            cands = [(nearest[k], int(keys[v]), v) for k, v in enumerate(live)]
        v = min(cands)[-1]
        alive[v] = False
        removed.append(v)
    return removed


def arrays(n=90, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, 8))
    which = rng.integers(0, 5, n)
    x = centres[which] + 0.2 * rng.normal(size=(n, 8))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    scores = np.clip(which * 2.0 + rng.normal(0, 0.5, n), 0, 10)
    ids = np.array([f"s/{k:03d}" for k in range(n)], dtype=object)
    return ids, x, scores


@pytest.mark.parametrize("neighbours", [16, 2])
def test_trim_matches_literal_rule_through_both_phases(monkeypatch, neighbours):
    monkeypatch.setattr(targetsize, "PHASE2_NEIGHBOURS", neighbours)  # 2 forces graph rebuilds
    ids, x, scores = arrays()
    groups = redundancy_groups(ids, x, scores, device="cpu")
    keys = sample_keys(ids, 5)
    alive = np.ones(len(ids), bool)
    alive[::7] = False
    count = int(alive.sum()) - 3  # deep enough to exhaust the redundant pairs
    got = trim_order(x, groups.pairs, alive, count, keys, device="cpu")
    want = brute_trim(x, scores, alive, count, keys)
    assert got.tolist() == want
    # the first phase really ran: the first removals all had redundant neighbours
    assert groups.pairs.degrees()[got[0]] > 0


def test_add_back_least_redundant_first():
    ids, x, scores = arrays()
    groups = redundancy_groups(ids, x, scores, device="cpu")
    keys = sample_keys(ids, 1)
    removed = np.arange(0, 90, 3)
    order = add_back_order(removed, groups.pairs, groups.group_size, keys)
    degree = groups.pairs.degrees()[order]
    assert sorted(order.tolist()) == removed.tolist()
    assert (np.diff(degree) >= 0).all()


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), seed=1, n_candidates=24)


def reshape_to(ds, out, target=None):
    args = [
        "reshape",
        "--corpus",
        str(ds.corpus),
        "--embeddings",
        str(ds.embeddings),
        "--pool",
        str(ds.pool),
        "--pool-embeddings",
        str(ds.pool_embeddings),
        "--group-cap",
        "5",
        "--device",
        "cpu",
        "-o",
        str(out),
    ]
    if target is not None:
        args += ["--target-size", str(target)]
    return CliRunner().invoke(cli, args)


def test_exact_sizes_below_at_and_above_the_paper(ds, tmp_path):
    paper = reshape(
        ds.corpus, ds.embeddings, tmp_path / "paper" / "manifest.parquet", pool=ds.pool,
        pool_embeddings=ds.pool_embeddings, params=ReshapeParams(redundancy=DRCParams(group_cap=5), device="cpu"),
    )
    bounds, decisions = paper.bounds, paper.decisions
    n_up = int((paper.manifest["origin"] == "upsampled").sum())
    labelled = (decisions["stage"] == "ddc_add") & (decisions["reason"] != "ddc_no_label")
    # the bounds, checked against what the paper's run decided
    assert bounds.paper == len(paper.manifest) and bounds.minimum == n_up
    assert bounds.maximum == 150 + int(labelled.sum()) and bounds.originals == 150
    removed_by_drc = 150 - int((paper.manifest["origin"] == "original").sum())
    for target in (
        bounds.minimum + 1,
        bounds.paper - 10,
        bounds.paper,
        bounds.paper + 5,
        bounds.paper + removed_by_drc + 3,
        bounds.maximum,
    ):
        out = tmp_path / str(target) / "manifest.parquet"
        result = reshape_to(ds, out, target)
        assert result.exit_code == 0, result.output
        got, meta = read_frame(out, "manifest")
        assert len(got) == target
        decisions, _ = read_frame(out.with_name("decisions.parquet"), "decisions")
        assert decisions["kept"].astype(bool).sum() == target  # kept: exactly the manifest rows
        if target < bounds.paper:
            assert (got["origin"] == "upsampled").sum() == n_up
            assert decisions["reason"].eq("target_size_trim").sum() == bounds.paper - target
        if target > bounds.paper:
            added = decisions[decisions["reason"] == "target_size_added"]
            assert len(added) == target - bounds.paper
            # removed originals come back before any extra level
            if (added["origin"] == "upsampled").any():
                assert (added["origin"] == "original").sum() == removed_by_drc
            assert set(got["level"][got["origin"] == "upsampled"]) <= {1, 2, 3, 4, 5}
    too_big = reshape_to(ds, tmp_path / "big" / "manifest.parquet", bounds.maximum + 1)
    assert too_big.exit_code == 1
    assert f"above the maximum {bounds.maximum}" in too_big.output
    assert not (tmp_path / "big" / "manifest.parquet").exists()
    too_small = reshape_to(ds, tmp_path / "small" / "manifest.parquet", n_up - 1)
    assert too_small.exit_code == 1 and f"minimum {n_up}" in too_small.output
