"""DRCDown against a dense statement of the rule (n x n similarity and label-gap matrices + union-find)."""

import numpy as np

from curate.reshape.downsample import drc_down, keep_count, redundancy_groups


def dataset(n: int = 160, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, 16))
    which = rng.integers(0, 6, n)
    x = centres[which] + 0.18 * rng.normal(size=(n, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    scores = np.clip(which * 1.5 + rng.normal(0, 0.4, n), 0, 10)
    ids = np.array([f"s/{k:04d}" for k in rng.permutation(n)], dtype=object)
    return ids, x, scores


def dense_groups(x: np.ndarray, scores: np.ndarray) -> list[set[int]]:
    """The release's statement: n x n masks, union-find, groups = components of size > 1."""
    s = x.astype(np.float64) @ x.astype(np.float64).T
    redundant = (s > 0.9) & (np.abs(scores[:, None] - scores[None, :]) < 1.0)
    np.fill_diagonal(redundant, False)
    parent = list(range(len(x)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(*np.nonzero(redundant), strict=True):
        parent[find(int(a))] = find(int(b))
    members: dict[int, set[int]] = {}
    for a in range(len(x)):
        members.setdefault(find(a), set()).add(a)
    return sorted((g for g in members.values() if len(g) > 1), key=min)


def test_keep_count_rule():
    assert [keep_count(L) for L in (1, 20, 21, 40, 41, 42, 100)] == [1, 20, 20, 20, 20, 21, 50]
    assert keep_count(7, group_cap=3) == 3


def test_redundancy_components_match_dense():
    ids, x, scores = dataset()
    groups = redundancy_groups(ids, x, scores, device="cpu")
    want = dense_groups(x, scores)
    assert len(want) >= 3 and max(len(g) for g in want) > 20
    got: dict[int, set[int]] = {}
    for k, g in enumerate(groups.group_id):
        if g >= 0:
            got.setdefault(int(g), set()).add(k)
    assert sorted(got.values(), key=min) == want
    for g in want:
        assert set(groups.group_size[list(g)]) == {len(g)}
    singles = np.setdiff1d(np.arange(len(ids)), np.concatenate([list(g) for g in want]))
    assert (groups.group_id[singles] == -1).all() and (groups.group_size[singles] == 1).all()
    # groups are numbered by their smallest sample_id
    first_ids = [min(ids[list(got[g])]) for g in sorted(got)]
    assert first_ids == sorted(first_ids)


def test_kept_counts_per_group_and_singles_kept():
    ids, x, scores = dataset()
    result = drc_down(ids, x, scores, group_cap=5, seed=3, device="cpu")
    for g in dense_groups(x, scores):
        members = list(g)
        assert result.kept[members].sum() == keep_count(len(g), group_cap=5)
    assert result.kept[result.group_id == -1].all()
    assert (~result.kept).sum() > 0


def test_shuffled_rows_keep_the_same_samples():
    ids, x, scores = dataset()
    base = drc_down(ids, x, scores, group_cap=5, seed=11, device="cpu")
    perm = np.random.default_rng(9).permutation(len(ids))
    shuffled = drc_down(ids[perm], x[perm], scores[perm], group_cap=5, seed=11, device="cpu")
    assert set(ids[base.kept]) == set(ids[perm][shuffled.kept])
    gid = dict(zip(ids, base.group_id, strict=True))
    assert all(gid[s] == g for s, g in zip(ids[perm], shuffled.group_id, strict=True))
    other_seed = drc_down(ids, x, scores, group_cap=5, seed=12, device="cpu")
    assert set(ids[other_seed.kept]) != set(ids[base.kept])
    assert other_seed.kept.sum() == base.kept.sum()
