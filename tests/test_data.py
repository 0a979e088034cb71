"""Loading manifests: pandas reader, ManifestDataset, HuggingFace feature metadata."""

from __future__ import annotations

import json
import shutil

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


def test_dataset_returns_image_score_and_id(tmp_path):
    path, roots = make_manifest(tmp_path, n_refs=2, levels=2)
    ds = ManifestDataset(path)
    assert len(ds) == 4
    image, score, sid = ds[1]
    assert sid == "synA/I00_2"
    assert score == pytest.approx(6.0)
    np.testing.assert_array_equal(image, load_rgb(roots["synA"] / "imgs/I00_2.png"))
    assert image.dtype == np.uint8 and image.shape == (40, 48, 3)


def test_dataset_applies_transform(tmp_path):
    path, _ = make_manifest(tmp_path, n_refs=1, levels=2)
    ds = ManifestDataset(path, transform=lambda a: a[:10, :20].mean())
    value, _, _ = ds[0]
    assert isinstance(value, float | np.floating)


def test_root_override_string_and_mapping(tmp_path):
    path, roots = make_manifest(tmp_path, sources=("synA", "synB"), n_refs=1, levels=2)
    moved = tmp_path / "moved"
    shutil.copytree(roots["synB"], moved)
    shutil.rmtree(roots["synB"])
    with pytest.raises(ImageError, match=r"synB/I00_1.*missing"):
        ManifestDataset(path)[2]
    ds = ManifestDataset(path, root={"synB": moved})
    image, _, sid = ds[2]
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
