"""Loading manifests: pandas reader, ManifestDataset, HuggingFace feature metadata."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_train_support import make_manifest

from curate.data import ManifestDataset, read_manifest
from curate.errors import ImageError
from curate.images import load_rgb
from curate.schema import HF_METADATA_KEY


def test_read_manifest_resolves_each_source_against_its_root(tmp_path):
    path, roots = make_manifest(tmp_path, sources=("synA", "synB"), n_refs=2, levels=2)
    frame = read_manifest(path)
    assert len(frame) == 8
    for source, image_path, rel in zip(frame["source"], frame["image_path"], frame["path"], strict=True):
        assert image_path == str(roots[source] / rel)
    assert frame["sample_id"].tolist() == sorted(frame["sample_id"].tolist())


def test_dataset_returns_image_score_id_and_weight(tmp_path):
    path, roots = make_manifest(tmp_path, n_refs=2, levels=2)
    ds = ManifestDataset(path)
    assert len(ds) == 4
    image, score, sid, weight = ds[1]
    assert sid == "synA/I00_2" and ds[1].sample_id == sid
    assert score == pytest.approx(6.0) and weight == 1.0
    np.testing.assert_array_equal(image, load_rgb(roots["synA"] / "imgs/I00_2.png"))
    assert image.dtype == np.uint8 and image.shape == (40, 48, 3) and image.flags.writeable


def test_dataset_applies_transform(tmp_path):
    path, _ = make_manifest(tmp_path, n_refs=1, levels=2)
    ds = ManifestDataset(path, transform=lambda a: a[:10, :20].mean())
    value = ds[0].image
    assert isinstance(value, float | np.floating)


def test_root_override_string_and_mapping(tmp_path):
    path, roots = make_manifest(tmp_path, sources=("synA", "synB"), n_refs=1, levels=2)
    moved = tmp_path / "moved"
    shutil.copytree(roots["synB"], moved)
    shutil.rmtree(roots["synB"])
    with pytest.raises(ImageError, match=r"synB/I00_1.*missing"):
        ManifestDataset(path)[2]
    ds = ManifestDataset(path, root={"synB": moved})
    image, _, sid, _ = ds[2]
    assert sid == "synB/I00_1" and image.shape == (40, 48, 3)
    assert ds.paths[0] == str(roots["synA"] / "imgs/I00_1.png")
    single = ManifestDataset(path, root=moved)
    assert all(p.startswith(str(moved)) for p in single.paths)


def test_missing_image_names_sample_and_path(tmp_path):
    path, roots = make_manifest(tmp_path, n_refs=1, levels=2)
    (roots["synA"] / "imgs/I00_2.png").unlink()
    ds = ManifestDataset(path)
    with pytest.raises(ImageError) as info:
        ds[1]
    message = str(info.value)
    assert "synA/I00_2" in message and str(roots["synA"] / "imgs/I00_2.png") in message


def test_manifest_carries_huggingface_features(tmp_path):
    path, _ = make_manifest(tmp_path, n_refs=1, levels=1)
    raw = pq.read_schema(path).metadata[HF_METADATA_KEY]
    features = json.loads(raw)["info"]["features"]
    assert features["sample_id"] == {"_type": "Value", "dtype": "string"}
    assert features["level"] == {"_type": "Value", "dtype": "int8"}
    assert features["score"] == {"_type": "Value", "dtype": "float32"}
    assert features["pseudo_refs"] == {"_type": "Sequence", "feature": {"_type": "Value", "dtype": "string"}}
    assert list(features) == pq.read_schema(path).names


def test_huggingface_datasets_round_trip(tmp_path):
    datasets = pytest.importorskip("datasets", reason="HuggingFace datasets is not installed here")
    path, _ = make_manifest(tmp_path, n_refs=2, levels=2)
    loaded = datasets.load_dataset("parquet", data_files=str(path), split="train")
    assert loaded.features["level"].dtype == "int8"
    assert loaded["sample_id"] == read_manifest(path)["sample_id"].tolist()


def _weighted_manifest(tmp_path):
    path, _ = make_manifest(tmp_path, n_refs=2, levels=2)
    frame = read_manifest(path)
    frame["weight"] = [0.5, 1.0, 2.0, 0.25]
    frame.to_parquet(tmp_path / "edited.parquet")
    from curate.adopt import adopt

    return adopt(tmp_path / "edited.parquet", path, tmp_path / "weighted.parquet").path


def test_batches_carry_the_weight_column_without_a_numpy_warning(tmp_path):
    torch = pytest.importorskip("torch")
    ds = ManifestDataset(_weighted_manifest(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on every non-writable array it is given
        batches = list(torch.utils.data.DataLoader(ds, batch_size=2))
        torch.from_numpy(ds[0].image)
    images, scores, ids, weights = batches[0]
    assert images.shape == (2, 40, 48, 3) and images.dtype == torch.uint8
    assert list(ids) == ["synA/I00_1", "synA/I00_2"]
    assert torch.cat([b.weight for b in batches]).tolist() == [0.5, 1.0, 2.0, 0.25]


def test_the_using_md_pytorch_snippet_runs_under_spawn(tmp_path):
    """The loader of manifests/USING.md, with worker processes started by spawn (macOS, Windows)."""
    torch = pytest.importorskip("torch")
    v2 = pytest.importorskip("torchvision.transforms.v2")
    transform = v2.Compose([v2.ToImage(), v2.RandomCrop(32), v2.ToDtype(torch.float32, scale=True)])
    data = ManifestDataset(_weighted_manifest(tmp_path), transform=transform)
    loader = torch.utils.data.DataLoader(data, batch_size=2, num_workers=1, multiprocessing_context="spawn")
    seen = []
    for images, scores, sample_ids, weights in loader:
        assert images.shape == (2, 3, 32, 32) and images.dtype == torch.float32 and scores.shape == (2,)
        seen += list(zip(sample_ids, weights.tolist(), strict=True))
    assert seen == [("synA/I00_1", 0.5), ("synA/I00_2", 1.0), ("synA/I01_1", 2.0), ("synA/I01_2", 0.25)]
