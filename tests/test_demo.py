"""`curate demo` end to end on the quick demo corpus (the preset's types only), offline."""

import json

from click.testing import CliRunner

from curate.cli import cli
from curate.schema import read_frame, read_metadata


def test_demo_runs_end_to_end_and_prints_the_comparison(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "-o", str(out), "--quick", "--workers", "1"])
    assert result.exit_code == 0, result.output
    # offline with no CLIP weights: the loud fallback, recorded in the embeddings' metadata
    assert "WARNING: CLIP weights are not available" in result.output
    shard = next((out / "embeddings" / "train").glob("part-*.parquet"))
    meta = read_metadata(shard)
    assert meta["encoder"]["name"] == "imagestats"
    assert any("demo fallback" in note for note in meta.get("notes", []))

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
