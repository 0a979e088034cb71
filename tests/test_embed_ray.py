"""--engine ray on a local Ray instance gives the local engine's embeddings and rejects."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from curate.embed import embed_corpus
from curate.schema import EmbeddingsFolder, read_table
from tests.embed_helpers import build_corpus, build_tiny_weights

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    repo = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1"}},
    )
    yield
    ray.shutdown()


def test_ray_engine_matches_local_engine(local_ray: None, tmp_path: Path) -> None:
    weights = build_tiny_weights(tmp_path / "weights")
    corpus = build_corpus(tmp_path / "corpus", 12, bad=True)
    options = {"pretrained": f"local-dir:{weights['local_dir']}", "shard_size": 4, "batch_size": 3, "quiet": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        on_ray = embed_corpus(corpus, tmp_path / "ray", engine="ray", **options)
        local = embed_corpus(corpus, tmp_path / "local", engine="local", workers=0, **options)
    assert on_ray.device["engine"] == "ray" and on_ray.shards_written == local.shards_written == 5
    a, b = EmbeddingsFolder(tmp_path / "ray").load(), EmbeddingsFolder(tmp_path / "local").load()
    assert a.ids.tolist() == b.ids.tolist() and len(a.ids) == 14
    np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-5)
    assert a.meta["encoder"] == b.meta["encoder"]
    ray_rejects, _ = read_table(tmp_path / "ray" / "rejects.parquet", "rejects")
    local_rejects, _ = read_table(tmp_path / "local" / "rejects.parquet", "rejects")
    assert ray_rejects.select(["sample_id", "reason"]).equals(local_rejects.select(["sample_id", "reason"]))
    assert ray_rejects.num_rows == 5
    # A rerun on Ray finds every shard finished.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        again = embed_corpus(corpus, tmp_path / "ray", engine="ray", **options)
    assert (again.shards_written, again.shards_skipped) == (0, 5)
