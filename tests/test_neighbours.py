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
