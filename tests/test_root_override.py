"""``--root SOURCE=DIR`` naming a source the tables do not have is a usage error, never ignored."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner
from test_train_support import make_corpus, make_manifest

from curate.cli import cli
from curate.data import read_manifest
from curate.errors import UsageError

TINY_TRAIN = ["--arch", "resnet18", "--weights", "none", "--crop", "32", "--test-crops", "1", "--epochs", "1",
              "--batch-size", "4", "--workers", "0"]


def test_export_refuses_an_unknown_source(tmp_path):
    manifest, roots = make_manifest(tmp_path, sources=("synA", "synB"), n_refs=1, levels=2)
    result = CliRunner().invoke(cli, ["export", str(manifest), "--format", "csv", "-o", str(tmp_path / "x.csv"),
                                      "--root", f"synC={roots['synA']}"])
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and "no source 'synC'" in line and "its sources: synA, synB" in line
    assert not (tmp_path / "x.csv").exists()
    with pytest.raises(UsageError, match="no source 'sync'"):
        read_manifest(manifest, root={"sync": roots["synA"]})


def test_train_takes_sources_of_the_eval_sets_and_refuses_others(tmp_path):
    manifest, roots = make_manifest(tmp_path, n_refs=2, levels=2)
    evalset = make_corpus(tmp_path, source="held")
    moved = tmp_path / "moved_held"
    shutil.move(tmp_path / "data" / "held", moved)

    args = ["train", str(manifest), "--eval", f"held={evalset}", *TINY_TRAIN]
    typo = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "r1"), "--root", f"hled={moved}"])
    assert typo.exit_code == 2
    assert "no source 'hled'" in typo.output and "its sources: held, synA" in typo.output
    assert not (tmp_path / "r1").exists()

    moved_eval = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "r2"), "--root", f"held={moved}"])
    assert moved_eval.exit_code == 0, moved_eval.output
