"""The reference trainer on tiny data: an epoch, resumption, online DRCDown, head-only, weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file
from test_train_support import make_corpus, make_manifest, tiny_image_model

import curate.reshape.downsample as downsample
from curate.cli import cli
from curate.data import ManifestDataset
from curate.errors import CurateError, ImageError
from curate.schema import embeddings_table, make_metadata, write_parquet
from curate.train import train

TINY = {"crop": 32, "test_crops": 2, "batch_size": 4, "workers": 0, "model_factory": tiny_image_model}


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    manifest, _ = make_manifest(tmp_path, n_refs=4, levels=3)
    evalset = make_corpus(tmp_path)
    settings = dict(TINY, val_fraction=0.25, quiet=True, eval_sets={"held": evalset})

    whole = train(manifest, tmp_path / "whole", epochs=2, **settings)
    train(manifest, tmp_path / "parts", epochs=1, **settings)
    assert json.loads((tmp_path / "parts" / "checkpoint.json").read_text())["epoch"] == 1
    resumed = train(manifest, tmp_path / "parts", epochs=2, **settings)

    def results(run):
        lines = [json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k not in ("train_seconds", "train_images_per_s")} for r in lines]

    assert len(results("whole")) == 2
    assert results("whole") == results("parts")
    a = load_file(str(tmp_path / "whole" / "model.safetensors"))
    b = load_file(str(tmp_path / "parts" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert whole["last"] == resumed["last"] and whole["last"]["epoch"] == 2

    # 4 references, a quarter of them (one, 3 images) held out for validation; all 12 trained on otherwise
    first = results("whole")[0]
    assert first["n_train"] == 9 and first["val"]["n"] == 3 and first["eval"]["held"]["n"] == 6
    assert whole["val_best"]["selected_by"].startswith("best validation")
    assert "test_selected" not in whole
    assert (tmp_path / "whole" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "whole" / "model_val_best.safetensors").is_file()


def test_resume_refuses_a_different_run(tmp_path):
    manifest, _ = make_manifest(tmp_path, n_refs=2, levels=2)
    train(manifest, tmp_path / "run", epochs=1, quiet=True, **TINY)
    with pytest.raises(CurateError, match="different run.*lr"):
        train(manifest, tmp_path / "run", epochs=2, lr=1e-3, quiet=True, **TINY)


def centre_crops(manifest, size: int) -> torch.Tensor:
    images = ManifestDataset(manifest)
    out = []
    for k in range(len(images)):
        a = images.load(k)
        top, left = (a.shape[0] - size) // 2, (a.shape[1] - size) // 2
        out.append(torch.from_numpy(a[top : top + size, left : left + size].copy()).permute(2, 0, 1))
    return torch.stack(out)


def test_online_drc_calls_shared_drc_down_with_each_epochs_features(tmp_path, monkeypatch):
    manifest, _ = make_manifest(tmp_path, n_refs=3, levels=2)
    calls = []
    built = []
    real = downsample.drc_down

    def spy(sample_ids, vectors, scores, **kwargs):
        model = built[0]
        with torch.no_grad():
            expected = torch.nn.functional.normalize(model.features(centre_crops(manifest, 32)).float(), dim=1)
        calls.append({"ids": list(sample_ids), "vectors": np.array(vectors), "expected": expected.numpy(), **kwargs})
        result = real(sample_ids, vectors, scores, **kwargs)
        kept = np.array(result.kept)
        kept[0] = False  # drop one sample to see the epoch's training set follow the decision
        return downsample.DRCResult(kept, result.groups)

    monkeypatch.setattr(downsample, "drc_down", spy)

    def factory():
        built.append(tiny_image_model())
        return built[-1]

    settings = dict(TINY, model_factory=factory)
    train(manifest, tmp_path / "run", epochs=2, online_drc=True, seed=5, quiet=True, **settings)
    assert [c["seed"] for c in calls] == [5, 6]
    for call in calls:
        assert call["ids"] == ManifestDataset(manifest).sample_ids
        assert call["vectors"].shape == (6, 16)
        np.testing.assert_allclose(call["vectors"], call["expected"], atol=1e-5)
    assert not np.allclose(calls[0]["vectors"], calls[1]["vectors"])  # features of the model being trained
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["n_train"] for r in records] == [5, 5] and [r["drc_removed"] for r in records] == [1, 1]


def write_embeddings(folder, ids, scores, dim=16, seed=0):
    """Unit vectors whose first coordinate carries the score (plus noise), as curate embed writes them."""
    rng = np.random.default_rng(seed)
    vec = rng.normal(0, 0.3, size=(len(ids), dim))
    vec[:, 0] = np.asarray(scores) - 5.0
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    table = embeddings_table(ids, vec)
    meta = make_metadata("embeddings", encoder={"name": "test-encoder"}, dim=dim, dtype="float32")
    write_parquet(table, folder / "part-00000.parquet", meta)


def test_head_only_cli_learns_from_embeddings(tmp_path):
    manifest, _ = make_manifest(tmp_path, n_refs=6, levels=4)
    evalset = make_corpus(tmp_path, n_refs=3, levels=4)
    train_ds, eval_ds = ManifestDataset(manifest), ManifestDataset(evalset)
    write_embeddings(tmp_path / "emb", train_ds.sample_ids, train_ds.scores)
    write_embeddings(tmp_path / "eval_emb", eval_ds.sample_ids, eval_ds.scores, seed=1)
    run = tmp_path / "run"
    args = ["train", str(manifest), "-o", str(run), "--head-only", "--embeddings", str(tmp_path / "emb"),
            "--eval", f"held={evalset}", "--eval-embeddings", f"held={tmp_path / 'eval_emb'}", "--epochs", "40",
            "--batch-size", "8", "--report-test-best"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["last"]["eval"]["held"]["srcc"] > 0.8
    assert summary["test_selected"]["note"].startswith("selected on the test set")
    assert "test_selected*" in result.output and "held" in result.output


def test_head_only_refuses_embeddings_that_miss_the_eval_set(tmp_path):
    manifest, _ = make_manifest(tmp_path, n_refs=2, levels=2)
    evalset = make_corpus(tmp_path)
    ds = ManifestDataset(manifest)
    write_embeddings(tmp_path / "emb", ds.sample_ids, ds.scores)
    with pytest.raises(CurateError, match="eval-embeddings held"):
        train(manifest, tmp_path / "run", head_only=True, embeddings=tmp_path / "emb", eval_sets={"held": evalset},
              epochs=1, quiet=True)


def test_weights_sources(tmp_path, monkeypatch):
    manifest, _ = make_manifest(tmp_path, n_refs=2, levels=2)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(CurateError, match="not in its cache.*--weights FILE"):
        train(manifest, tmp_path / "a", epochs=1, quiet=True, arch="resnet18", weights="imagenet")
    import torchvision

    net = torchvision.models.resnet18()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "r18.safetensors"))
    from curate.train.model import build_backbone

    backbone, dim = build_backbone("resnet18", str(tmp_path / "r18.safetensors"))
    assert dim == 512 and torch.equal(backbone.conv1.weight, net.conv1.weight)
    with pytest.raises(CurateError, match="does not fit resnet50"):
        build_backbone("resnet50", str(tmp_path / "r18.safetensors"))


def test_cli_train_usage_errors(tmp_path):
    manifest, _ = make_manifest(tmp_path, n_refs=1, levels=2)
    runner = CliRunner()
    bad_eval = runner.invoke(cli, ["train", str(manifest), "-o", str(tmp_path / "r"), "--eval", "noequals"])
    assert bad_eval.exit_code == 2
    no_emb = runner.invoke(cli, ["train", str(manifest), "-o", str(tmp_path / "r"), "--head-only"])
    assert no_emb.exit_code == 2 and "--embeddings" in no_emb.output


def test_cli_trains_a_torchvision_backbone_for_one_epoch(tmp_path):
    manifest, _ = make_manifest(tmp_path, n_refs=2, levels=2)
    run = tmp_path / "run"
    args = ["train", str(manifest), "-o", str(run), "--arch", "resnet18", "--weights", "none", "--crop", "32",
            "--test-crops", "1", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--val-fraction", "0.5"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "val_best" in result.output and "(validation)" in result.output
    weights = load_file(str(run / "model.safetensors"))
    assert "backbone.layer4.1.conv2.weight" in weights and weights["head.weight"].shape == (1, 512)


def test_unreadable_image_in_a_loader_worker_is_one_clear_line(tmp_path):
    manifest, roots = make_manifest(tmp_path, n_refs=2, levels=2)
    bad = roots["synA"] / "imgs/I01_1.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated PNG
    with pytest.raises(ImageError) as info:
        train(manifest, tmp_path / "run", epochs=1, quiet=True, **dict(TINY, workers=1))
    message = str(info.value)
    assert "\n" not in message and "synA/I01_1" in message and str(bad) in message
    assert not (tmp_path / "run" / "checkpoint.json").exists()


def test_manifest_weights_weight_the_loss(tmp_path):
    """Full-batch training with weight 0 on some rows equals training without those rows."""
    import pandas as pd
    from test_train_support import sample_rows

    rows = sample_rows("synA", 4, 3)
    for row in rows:
        if row["level"] == 3:
            row["weight"], row["score"] = 0.0, 9.5  # a wrong label that must not matter
    kept = [r for r in rows if r["level"] != 3]
    emb_ids = [r["sample_id"] for r in rows]
    write_embeddings(tmp_path / "emb", emb_ids, [r["score"] for r in rows])
    meta = make_metadata("manifest", roots={"synA": str(tmp_path)})
    from curate.schema import write_table

    write_table(pd.DataFrame(rows), tmp_path / "weighted.parquet", "manifest", meta)
    write_table(pd.DataFrame(kept), tmp_path / "subset.parquet", "manifest", meta)
    common = dict(head_only=True, embeddings=tmp_path / "emb", epochs=5, batch_size=64, quiet=True)
    train(tmp_path / "weighted.parquet", tmp_path / "a", **common)
    train(tmp_path / "subset.parquet", tmp_path / "b", **common)
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    unweighted = [dict(r, weight=1.0) for r in rows]
    write_table(pd.DataFrame(unweighted), tmp_path / "plain.parquet", "manifest", meta)
    train(tmp_path / "plain.parquet", tmp_path / "c", **common)
    c = load_file(str(tmp_path / "c" / "model.safetensors"))
    assert not torch.allclose(a["head.weight"], c["head.weight"], atol=1e-6)


def test_separate_validation_set_selects_and_predictions_are_written(tmp_path):
    manifest, _ = make_manifest(tmp_path, n_refs=5, levels=4)
    evalset = make_corpus(tmp_path, n_refs=3, levels=4)
    valset = make_corpus(tmp_path, source="valset", n_refs=2, levels=4)
    folders = []
    for name, table in (("emb", manifest), ("val_emb", valset), ("eval_emb", evalset)):
        ds = ManifestDataset(table)
        write_embeddings(tmp_path / name, ds.sample_ids, ds.scores, seed=len(folders))
        folders.append(tmp_path / name)
    common = dict(head_only=True, embeddings=[folders[0], folders[1]], eval_sets={"held": evalset},
                  eval_embeddings={"held": folders[2]}, epochs=6, batch_size=8, quiet=True)
    summary = train(manifest, tmp_path / "run", val_set=valset, **common)
    assert summary["n_val_rows"] == 8 and summary["n_train_rows"] == 20  # every manifest row trains
    best = summary["val_best"]
    assert best["val"]["n"] == 8 and best["selected_by"].startswith("best validation")
    vals = [json.loads(x)["val"]["srcc"] for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert best["val"]["srcc"] == max(vals)

    from curate.train.loop import read_predictions

    last = read_predictions(tmp_path / "run" / "predictions_last.parquet")
    chosen = read_predictions(tmp_path / "run" / "predictions_val_best.parquet")
    assert sorted(set(last["set"])) == ["(validation)", "held"] and len(last) == 8 + 12
    assert set(chosen["epoch"]) == {best["epoch"]} and set(last["epoch"]) == {6}
    from curate.train.metrics import srcc

    held = chosen[chosen["set"] == "held"]
    assert srcc(held["prediction"], held["score"]) == pytest.approx(best["eval"]["held"]["srcc"])
    # a rerun of the finished run leaves the same predictions
    before = (tmp_path / "run" / "predictions_last.parquet").read_bytes()
    train(manifest, tmp_path / "run", val_set=valset, **common)
    assert (tmp_path / "run" / "predictions_last.parquet").read_bytes() == before
    with pytest.raises(CurateError, match="exclude each other"):
        train(manifest, tmp_path / "run2", val_set=valset, val_fraction=0.2, **common)


def test_online_drc_uses_the_thresholds_the_manifest_was_reshaped_with(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from curate.schema import read_metadata

    manifest, _ = make_manifest(tmp_path, n_refs=3, levels=2)
    meta = read_metadata(manifest)
    meta["params"] = {"similarity_threshold": 0.8, "score_gap": 0.5, "types": [1]}  # as reshape records them
    write_parquet(pq.read_table(manifest), manifest, meta)
    seen = []
    real = downsample.drc_down

    def spy(sample_ids, vectors, scores, **kwargs):
        seen.append(kwargs)
        return real(sample_ids, vectors, scores, **kwargs)

    monkeypatch.setattr(downsample, "drc_down", spy)
    settings = dict(TINY, model_factory=tiny_image_model)
    summary = train(
        manifest, tmp_path / "run", epochs=1, online_drc=True, quiet=True, redundancy={"group_cap": 3}, **settings
    )
    assert seen[0]["similarity_threshold"] == 0.8 and seen[0]["score_gap"] == 0.5
    assert seen[0]["group_cap"] == 3 and seen[0]["keep_fraction"] == 0.5
    assert summary["drc_thresholds"] == {"similarity_threshold": 0.8, "score_gap": 0.5, "group_cap": 3, "keep_fraction": 0.5}
    assert summary["thresholds_source"] == {
        "similarity_threshold": "manifest", "score_gap": "manifest", "group_cap": "given", "keep_fraction": "default"
    }
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["thresholds_source"]["similarity_threshold"] == "manifest" and written["params"]["online_drc"]
