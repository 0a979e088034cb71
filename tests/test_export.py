"""`curate export`: pyiqa meta-info CSV + options YAML, and the plain CSV."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from test_train_support import make_manifest

from curate.cli import cli
from curate.data import read_manifest
from curate.export import export_manifest


def load_like_pyiqa(options: dict, phase: str | None = None) -> list[tuple[str, float]]:
    """What pyiqa's GeneralNRDataset does with these options: columns by position, split by name."""
    meta = pd.read_csv(options["meta_info_file"])
    rows = meta.values.tolist()
    if phase is not None:
        column = options["split_index"]
        rows = [r for r, s in zip(rows, meta[column], strict=True) if s == phase]
    return [(os.path.join(options["dataroot_target"], r[0]), float(r[1])) for r in rows]


def test_pyiqa_csv_columns_values_and_yaml_over_two_roots(tmp_path):
    path, roots = make_manifest(tmp_path, sources=("synA", "synB"), n_refs=2, levels=2)
    written = export_manifest(path, tmp_path / "out" / "meta.csv", "pyiqa")
    table = pd.read_csv(written["csv"])
    assert table.columns.tolist()[:2] == ["name", "mos"]
    assert "split" not in "".join(table.columns)
    manifest = read_manifest(path)
    assert table["sample_id"].tolist() == manifest["sample_id"].tolist()
    assert table["mos"].tolist() == pytest.approx(manifest["score"].tolist(), abs=1e-5)
    assert table["name"].iloc[0] == "synA/imgs/I00_1.png"

    options = yaml.safe_load(open(written["yaml"]))["datasets"]["train"]
    assert options["type"] == "GeneralNRDataset"
    assert options["dataroot_target"] == str(tmp_path / "data")
    loaded = load_like_pyiqa(options)
    assert [p for p, _ in loaded] == manifest["image_path"].tolist()
    assert all(os.path.isfile(p) for p, _ in loaded)


def test_pyiqa_split_column_keeps_references_together(tmp_path):
    path, _ = make_manifest(tmp_path, n_refs=5, levels=3)
    written = export_manifest(path, tmp_path / "meta.csv", "pyiqa", val_fraction=0.4, seed=7)
    table = pd.read_csv(written["csv"])
    assert set(table["split_by_ref"]) == {"train", "val"}
    per_ref = table.groupby("ref_id")["split_by_ref"].nunique()
    assert (per_ref == 1).all()
    assert (table.groupby("ref_id")["split_by_ref"].first() == "val").sum() == 2
    datasets = yaml.safe_load(open(written["yaml"]))["datasets"]
    assert datasets["val"]["split_index"] == "split_by_ref" and datasets["val"]["phase"] == "val"
    val = load_like_pyiqa(datasets["val"], "val")
    train = load_like_pyiqa(datasets["train"], "train")
    assert len(val) == 6 and len(train) == 9


def test_plain_csv_has_every_manifest_column_and_absolute_paths(tmp_path):
    path, roots = make_manifest(tmp_path, n_refs=1, levels=2)
    out = tmp_path / "plain.csv"
    result = CliRunner().invoke(cli, ["export", str(path), "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    manifest = read_manifest(path)
    assert table.columns.tolist() == manifest.columns.tolist()
    assert table["image_path"].tolist() == [str(roots["synA"] / p) for p in manifest["path"]]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_cli_export_refuses_unknown_format(tmp_path):
    path, _ = make_manifest(tmp_path, n_refs=1, levels=1)
    result = CliRunner().invoke(cli, ["export", str(path), "--format", "xls", "-o", str(tmp_path / "x")])
    assert result.exit_code == 2
