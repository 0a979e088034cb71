"""A ``curate train`` that fails leaves no run folder behind."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from test_train_support import make_manifest

from curate.cli import cli
from curate.errors import CurateError
from curate.train import train

FAST = ["--arch", "resnet18", "--crop", "32", "--test-crops", "1", "--epochs", "1", "--batch-size", "4",
        "--workers", "0"]


def _train(*args: str):
    return CliRunner().invoke(cli, ["train", *map(str, args)])


def test_failed_runs_leave_no_run_folder(tmp_path):
    manifest, roots = make_manifest(tmp_path, n_refs=2, levels=2)
    run = tmp_path / "runs" / "r1"

    bad_weights = _train(manifest, "-o", run, *FAST, "--weights", tmp_path / "nowhere.safetensors")
    assert bad_weights.exit_code == 1 and "nowhere.safetensors" in bad_weights.output

    not_a_manifest = tmp_path / "not.parquet"
    not_a_manifest.write_bytes(b"PAR1 nonsense")
    bad_input = _train(not_a_manifest, "-o", run, *FAST, "--weights", "none")
    assert bad_input.exit_code == 1 and str(not_a_manifest) in bad_input.output

    if not torch.cuda.is_available():
        no_cuda = _train(manifest, "-o", run, *FAST, "--weights", "none", "--device", "cuda")
        assert no_cuda.exit_code == 1 and "CUDA is not available" in no_cuda.output

    (roots["synA"] / "imgs" / "I01_2.png").write_bytes(b"broken")  # fails inside the first epoch
    bad_image = _train(manifest, "-o", run, *FAST, "--weights", "none")
    assert bad_image.exit_code == 1 and "synA/I01_2" in bad_image.output

    assert not (tmp_path / "runs").exists()


def test_a_file_in_the_way_of_the_run_folder_is_refused_before_training(tmp_path):
    manifest, _ = make_manifest(tmp_path, n_refs=2, levels=2)
    (tmp_path / "run").write_text("a file")
    with pytest.raises(CurateError, match="run: exists and is not a folder"):
        train(manifest, tmp_path / "run", epochs=1, quiet=True, weights="none", arch="resnet18", workers=0)


def test_a_run_that_wrote_checkpoints_keeps_its_folder(tmp_path):
    manifest, _ = make_manifest(tmp_path, n_refs=2, levels=2)
    run = tmp_path / "run"
    assert _train(manifest, "-o", run, *FAST, "--weights", "none").exit_code == 0
    again = _train(manifest, "-o", run, *FAST, "--weights", "none", "--epochs", "2", "--lr", "1e-3")
    assert again.exit_code == 1 and "different run" in again.output
    assert (run / "checkpoint.json").is_file() and (run / "summary.json").is_file()
