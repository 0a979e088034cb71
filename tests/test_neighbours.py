"""Neighbour search against dense float64 statements of the same rules."""

import numpy as np
import pytest

from curate.reshape import neighbours
from curate.reshape.neighbours import components, knn, threshold_pairs


@pytest.fixture(params=["numpy", "torch"])
def backend(request, monkeypatch):
    """Run a test on the numpy CPU path and on the torch path (torch on the CPU here)."""
    if request.param == "torch":
        import torch

        monkeypatch.setattr(neighbours, "compute_device", lambda device="auto": torch.device("cpu"))
    return request.param


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(2, n // 12), dim))
    x = centres[rng.integers(0, len(centres), n)] + 0.25 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def dense_pairs(x: np.ndarray, threshold: float, labels=None, gap=None) -> set[tuple[int, int]]:
    s = x.astype(np.float64) @ x.astype(np.float64).T
    hit = s > threshold
    if labels is not None:
        hit &= np.abs(labels[:, None] - labels[None, :]) < gap
    i, j = np.nonzero(np.triu(hit, 1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


@pytest.mark.parametrize("screen", ["float32", "bfloat16"])
@pytest.mark.parametrize("blocks", [(7, 11), (2048, 16384)])
def test_threshold_pairs_match_dense(blocks, screen, backend):
    x = clustered(150, 16, 1)
    pairs = threshold_pairs(x, 0.9, block_rows=blocks[0], block_cols=blocks[1], screen=screen, device="cpu")
    assert set(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True)) == dense_pairs(x, 0.9)
    assert len(pairs) > 20
    assert (pairs.i < pairs.j).all()
    np.testing.assert_allclose(pairs.similarity, np.einsum("ij,ij->i", x[pairs.i], x[pairs.j]), atol=1e-6)


@pytest.mark.parametrize("screen", ["float32", "bfloat16"])
@pytest.mark.parametrize("exact_values", [True, False])
def test_threshold_pairs_with_label_band(exact_values, screen, backend):
    x = clustered(180, 16, 2)
    labels = np.random.default_rng(3).uniform(0, 10, size=180)
    pairs = threshold_pairs(
        x,
        0.8,
        labels=labels,
        max_label_gap=1.0,
        block_rows=9,
        block_cols=13,
        exact_values=exact_values,
        screen=screen,
        device="cpu",
    )
    want = dense_pairs(x, 0.8, labels, 1.0)
    assert set(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True)) == want
    assert 0 < len(want) < len(dense_pairs(x, 0.8))


def test_bfloat16_screen_keeps_pairs_right_at_the_threshold():
    # pairs a hair above and below 0.9 in 512-d: the screen's error is far larger than the gap
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 512))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    noise = rng.normal(size=(40, 512))
    noise -= (noise * base).sum(1, keepdims=True) * base
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    target = 0.9 + rng.choice([-1, 1], size=40) * rng.uniform(1e-7, 3e-3, size=40)
    partner = target[:, None] * base + np.sqrt(1 - target[:, None] ** 2) * noise
    x = np.concatenate([base, partner]).astype(np.float32)
    got = threshold_pairs(x, 0.9, screen="bfloat16", device="cpu")
    assert set(zip(got.i.tolist(), got.j.tolist(), strict=True)) == dense_pairs(x, 0.9)
    assert 5 < len(got) < 40


def test_threshold_pairs_float16_input_is_exact_on_its_values(backend):
    x = clustered(90, 8, 4).astype(np.float16)
    pairs = threshold_pairs(x, 0.9, block_rows=10, block_cols=10, device="cpu")
    assert set(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True)) == dense_pairs(x.astype(np.float64), 0.9)


def test_components_match_union_find():
    x = clustered(120, 8, 5)
    pairs = threshold_pairs(x, 0.92, device="cpu")
    labels = components(pairs)
    parent = list(range(120))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in dense_pairs(x, 0.92):
        parent[find(a)] = find(b)
    roots = [find(a) for a in range(120)]
    for a in range(120):
        for b in range(a + 1, 120):
            assert (labels[a] == labels[b]) == (roots[a] == roots[b])


@pytest.mark.parametrize("farthest", [False, True])
def test_knn_matches_dense(farthest, backend):
    q = clustered(40, 16, 6)
    d = clustered(70, 16, 7)
    idx, dist = knn(q, d, 5, farthest=farthest, block_rows=6, block_cols=9, device="cpu")
    full = 1.0 - q.astype(np.float64) @ d.astype(np.float64).T
    key = -full if farthest else full
    want = np.argsort(key, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_allclose(dist, np.take_along_axis(full, want, axis=1), atol=1e-12)


def test_knn_excludes_self(backend):
    x = clustered(30, 8, 8)
    idx, dist = knn(x, x, 3, exclude_self=True, block_cols=7, device="cpu")
    assert not (idx == np.arange(30)[:, None]).any()
    full = 1.0 - x.astype(np.float64) @ x.astype(np.float64).T
    np.fill_diagonal(full, np.inf)
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1, kind="stable")[:, :3])


# --------------------------------------------------------------------------------------------
# Every screen and every plan against brute force, on random, clustered and adversarial data


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def straddling(base: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit partners of ``base`` rows at cosine ``target`` (before float32 storage)."""
    noise = rng.normal(size=base.shape)
    noise -= (noise * base).sum(1, keepdims=True) * base
    noise = unit_rows(noise)
    return target[:, None] * base + np.sqrt(1 - target[:, None] ** 2) * noise


def adversarial(seed: int, dim: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Vectors and scores built to break shortcuts: tight clusters, points midway between clusters
    (on block boundaries), pairs a hair either side of 0.9, exact duplicates within and across
    clusters, scores on a 0.5 grid (equal, and exactly the gap 1.0 apart) plus 0.7 and 0.7+0.1."""
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.normal(size=(10, dim)))
    members = unit_rows(centres[rng.integers(0, 10, 300)] + 0.12 * rng.normal(size=(300, dim)))
    a, b = rng.integers(0, 10, 30), rng.integers(0, 10, 30)
    bridges = unit_rows(centres[a] + centres[b] + 0.05 * rng.normal(size=(30, dim)))
    base = members[rng.choice(300, 60, replace=False)]
    offsets = rng.choice([-1, 1], size=60) * np.logspace(-9, -2, 60)
    partners = straddling(base, 0.9 + offsets, rng)
    x = np.concatenate([members, bridges, partners]).astype(np.float32)
    x = np.concatenate([x, x[rng.choice(len(x), 25, replace=False)], np.repeat(x[:1], 6, axis=0)])
    scores = rng.integers(0, 20, len(x)) * 0.5
    scores[:2] = [0.7, 0.7 + 0.1]  # 0.7999999999999999: 0.7 + gap 0.1 rounds onto it
    perm = rng.permutation(len(x))
    return x[perm], scores[perm]


DATASETS = {
    "random": lambda: (unit_rows(np.random.default_rng(11).normal(size=(500, 8))).astype(np.float32),
                       np.random.default_rng(12).uniform(0, 10, 500)),
    "clustered": lambda: (clustered(600, 24, 13), np.random.default_rng(14).uniform(0, 10, 600)),
    "adversarial": lambda: adversarial(15),
}


@pytest.mark.parametrize("data", sorted(DATASETS))
@pytest.mark.parametrize("prune", ["none", "clusters", "clusters, second pass"])
@pytest.mark.parametrize("screen", ["float32", "bfloat16"])
def test_every_screen_and_plan_finds_exactly_the_brute_force_pairs(data, prune, screen, monkeypatch):
    """Cluster plans hold the (vector, centre) entries of their one pass, or (memory too small)
    recompute them in a second pass: both exact."""
    if prune == "clusters, second pass":
        monkeypatch.setattr(neighbours, "CLUSTER_HELD_BYTES", 0)
        prune = "clusters"
    x, scores = DATASETS[data]()
    kw = dict(prune=prune, screen=screen, device="cpu", block_rows=64, block_cols=96)
    with_labels = threshold_pairs(x, 0.9, labels=scores, max_label_gap=1.0, exact_values=False, **kw)
    assert set(zip(with_labels.i.tolist(), with_labels.j.tolist(), strict=True)) == dense_pairs(x, 0.9, scores, 1.0)
    plain = threshold_pairs(x, 0.9, **kw)
    assert set(zip(plain.i.tolist(), plain.j.tolist(), strict=True)) == dense_pairs(x, 0.9)
    exact = x.astype(np.float64)
    np.testing.assert_array_equal(plain.similarity, np.einsum("ij,ij->i", exact[plain.i], exact[plain.j]))
    assert len(plain) > len(with_labels) > 0


def test_label_band_keeps_pairs_whose_gap_rounds_onto_the_edge():
    # 0.7 + 0.1 == 0.7999999999999999 in float64, yet 0.7999999999999999 - 0.7 < 0.1: a band
    # ending at labels < y + gap would drop the pair
    x = np.repeat(unit_rows(np.ones((1, 4))), 2, axis=0).astype(np.float32)
    pairs = threshold_pairs(x, 0.9, labels=np.array([0.7, 0.7 + 0.1]), max_label_gap=0.1, device="cpu", block_rows=1)
    assert list(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True)) == [(0, 1)]


def test_cluster_plan_skips_most_products_on_clustered_data(monkeypatch):
    rng = np.random.default_rng(3)
    centres = unit_rows(rng.normal(size=(40, 64)))
    x = unit_rows(centres[rng.integers(0, 40, 3000)] + 0.03 * rng.normal(size=(3000, 64))).astype(np.float32)
    band = neighbours._band_plan(len(x), None, None, 256, 256)
    engine = neighbours._Engine(x, None, False, 1.0)
    plan = neighbours._cluster_plan(x, None, None, 0.9, band.products, 256, 256, force=True, engine=engine)
    assert plan is not None and plan.kind == "clusters"
    assert sorted(plan.order.tolist()) == list(range(len(x)))

    def size(rows):
        return rows.stop - rows.start if isinstance(rows, slice) else rows.size

    computed = sum(size(rows) * (c1 - c0) for rows, c0, c1 in plan.tiles)
    assert computed < 0.2 * band.products
    assert plan.products == computed  # what it was chosen on
    pairs = threshold_pairs(x, 0.9, prune="clusters", screen="float32", device="cpu")
    assert set(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True)) == dense_pairs(x, 0.9)


def test_cluster_plan_with_duplicates_and_a_whole_cluster_of_copies():
    rng = np.random.default_rng(4)
    x = unit_rows(rng.normal(size=(400, 16))).astype(np.float32)
    x[100:300] = x[7]  # 200 identical vectors: radius 0, every pair at similarity 1
    pairs = threshold_pairs(x, 0.9, prune="clusters", screen="float32", device="cpu", block_rows=50, block_cols=70)
    assert set(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True)) == dense_pairs(x, 0.9)
    assert len(pairs) >= 200 * 199 // 2


# --------------------------------------------------------------------------------------------
# The bfloat16 bound, and who takes which path


def test_bfloat16_error_bound_holds_for_torch_products():
    import torch

    rng = np.random.default_rng(5)
    dim = 512
    x = unit_rows(rng.normal(size=(300, dim)))
    # adversarial for rounding: every component just above a bfloat16 rounding midpoint, one sign
    grid = np.abs(x).astype(np.float32)
    bits = grid.view(np.uint32)
    worst = ((bits & 0xFFFF0000) | 0x8001).view(np.float32).astype(np.float64)
    worst = unit_rows(worst)
    for v in (x, worst):
        v32 = v.astype(np.float32)
        exact = v32.astype(np.float64) @ v32.astype(np.float64).T
        b = torch.from_numpy(v32).to(torch.bfloat16)
        screened = (b @ b.T).float().numpy().astype(np.float64)
        norms = np.linalg.norm(v32.astype(np.float64), axis=1)
        bound = neighbours.bfloat16_product_error(float(norms.max() ** 2), dim)
        assert np.abs(screened - exact).max() <= bound
        assert np.abs(screened - exact).max() > bound / 20  # the bound is not vacuous
        f32 = (v32 @ v32.T).astype(np.float64)
        assert np.abs(f32 - exact).max() <= neighbours.float32_product_error(float(norms.max() ** 2), dim)


def test_setting_decides_whether_the_cpu_has_bfloat16_units(monkeypatch):
    monkeypatch.setenv(neighbours.CPU_BF16_ENV, "0")
    assert neighbours.cpu_bfloat16_matmul() is False
    monkeypatch.setenv(neighbours.CPU_BF16_ENV, "1")
    assert neighbours.cpu_bfloat16_matmul() is True
    monkeypatch.setenv(neighbours.CPU_BF16_ENV, "sometimes")
    from curate.errors import CurateError

    with pytest.raises(CurateError, match="CURATE_CPU_BF16=sometimes"):
        neighbours.cpu_bfloat16_matmul()


@pytest.mark.parametrize("units", ["0", "1"])
def test_auto_screen_follows_the_bfloat16_units(monkeypatch, caplog, units):
    """Without bfloat16 units (forced by the setting) the work goes to the exact float32 path; with
    them, to torch's bfloat16 screen; the pairs are the same."""
    monkeypatch.setenv(neighbours.CPU_BF16_ENV, units)
    monkeypatch.setattr(neighbours, "CPU_BF16_MIN_FLOPS_COLD", 0)
    monkeypatch.setattr(neighbours, "CPU_BF16_MIN_FLOPS_WARM", 0)
    x, scores = adversarial(21)
    caplog.set_level("INFO", logger="curate.reshape.neighbours")
    pairs = threshold_pairs(x, 0.9, labels=scores, max_label_gap=1.0, screen="auto", device="cpu")
    assert set(zip(pairs.i.tolist(), pairs.j.tolist(), strict=True)) == dense_pairs(x, 0.9, scores, 1.0)
    path = "float32 (numpy, cpu)" if units == "0" else "bfloat16 (torch, cpu)"
    assert any(path in record.getMessage() for record in caplog.records)


def test_auto_screen_stays_on_numpy_for_small_work(monkeypatch, caplog):
    monkeypatch.setenv(neighbours.CPU_BF16_ENV, "1")
    caplog.set_level("INFO", logger="curate.reshape.neighbours")
    threshold_pairs(clustered(200, 16, 1), 0.9, device="cpu")
    assert any("float32 (numpy, cpu)" in record.getMessage() for record in caplog.records)


# --------------------------------------------------------------------------------------------
# kNN: screens against brute force, ties and duplicates included


def exact_scores(q: np.ndarray, d: np.ndarray) -> np.ndarray:
    """float64 q.d, each pair summed the same way (so duplicates tie exactly)."""
    q64, d64 = q.astype(np.float64), d.astype(np.float64)
    return np.einsum("ij,ij->i", np.repeat(q64, len(d64), 0), np.tile(d64, (len(q64), 1))).reshape(len(q64), len(d64))


def brute_knn(q, d, k, farthest=False, exclude_self=False):
    dist = 1.0 - exact_scores(q, d)
    key = -dist if farthest else dist.copy()
    if exclude_self:
        np.fill_diagonal(key, np.inf)
    idx = np.argsort(key, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(dist, idx, axis=1)


@pytest.mark.parametrize("data", sorted(DATASETS))
@pytest.mark.parametrize("screen", ["float32", "bfloat16"])
@pytest.mark.parametrize("farthest", [False, True])
def test_knn_screens_match_brute_force(data, screen, farthest):
    x, _ = DATASETS[data]()
    q = x[::7]
    idx, dist = knn(q, x, 6, farthest=farthest, screen=screen, device="cpu", block_rows=16, block_cols=50)
    want_idx, want_dist = brute_knn(q, x, 6, farthest=farthest)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(dist, want_dist)
    self_idx, _ = knn(x, x, 3, exclude_self=True, screen=screen, device="cpu", block_rows=40, block_cols=64)
    np.testing.assert_array_equal(self_idx, brute_knn(x, x, 3, exclude_self=True)[0])


@pytest.mark.parametrize("screen", ["float32", "bfloat16"])
def test_knn_ties_beyond_the_short_list_go_to_the_lowest_indices(screen):
    # 40 copies of one vector: more exact ties than the screened short list holds
    rng = np.random.default_rng(6)
    x = unit_rows(rng.normal(size=(120, 12))).astype(np.float32)
    copies = rng.choice(120, 40, replace=False)
    x[copies] = x[copies[0]]
    idx, dist = knn(x[copies[:5]], x, 10, screen=screen, device="cpu", block_cols=17)
    np.testing.assert_array_equal(idx, np.tile(np.sort(copies)[:10], (5, 1)))
    self_distance = 1.0 - np.einsum("i,i->", x[copies[0]].astype(np.float64), x[copies[0]].astype(np.float64))
    np.testing.assert_array_equal(dist, np.full((5, 10), self_distance))
    idx, _ = knn(x, x, 4, exclude_self=True, screen=screen, device="cpu", block_rows=33, block_cols=29)
    np.testing.assert_array_equal(idx, brute_knn(x, x, 4, exclude_self=True)[0])


@pytest.mark.parametrize("held_bytes", [None, 0])
@pytest.mark.parametrize("screen", ["float32", "bfloat16"])
def test_a_chunk_that_meets_no_cluster_finds_no_pairs(screen, held_bytes, monkeypatch):
    """Labels that all differ by at least the gap (here a gap of 0) leave every cluster out of reach."""
    if held_bytes is not None:  # the entries recomputed in a second pass
        monkeypatch.setattr(neighbours, "CLUSTER_HELD_BYTES", held_bytes)
    x = clustered(500, 16, 3)
    got = threshold_pairs(x, 0.5, labels=np.zeros(500), max_label_gap=0.0, prune="clusters", screen=screen,
                          device="cpu")
    assert len(got) == 0 and dense_pairs(x, 0.5, np.zeros(500), 0.0) == set()
    # non-unit and zero vectors, thresholds at and above 1: still brute force
    y = x * np.random.default_rng(4).uniform(0.5, 1.5, (500, 1))
    y[::50] = 0.0
    for threshold in (0.8, 1.0, 1.3):
        found = threshold_pairs(y, threshold, prune="clusters", screen=screen, device="cpu")
        assert set(zip(found.i.tolist(), found.j.tolist(), strict=True)) == dense_pairs(y, threshold)


def test_torch_state_is_restored_after_a_search_stopped_early_and_float32_stays_ieee():
    """A search stopped by max_pairs leaves torch as it found it; a float32 matmul precision set by
    the user (which lets oneDNN run float32 products in bfloat16) does not reach the screen's bounds."""
    torch = pytest.importorskip("torch")
    x, _ = DATASETS["clustered"]()
    before = (torch.is_inference_mode_enabled(), torch.is_grad_enabled(), torch.get_float32_matmul_precision())
    try:
        torch.set_float32_matmul_precision("medium")
        found = threshold_pairs(x, 0.9, prune="clusters", screen="bfloat16", device="cpu", block_rows=64)
        assert set(zip(found.i.tolist(), found.j.tolist(), strict=True)) == dense_pairs(x, 0.9)
        assert torch.backends.mkldnn.matmul.fp32_precision == "bf16"  # the user's setting, back

        def stopped() -> bool:  # no traceback kept: the search's generators close as it unwinds
            try:
                threshold_pairs(x, 0.9, prune="clusters", screen="bfloat16", device="cpu", block_rows=64, max_pairs=1)
            except neighbours.TooManyPairs:
                return True
            return False

        assert stopped()
        assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()
    finally:
        torch.set_float32_matmul_precision(before[2])
    assert (torch.is_inference_mode_enabled(), torch.is_grad_enabled()) == before[:2]
