"""Unreadable weights files: one line naming the file, never torch's advice to unpickle."""

from __future__ import annotations

import fractions
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from curate.cli import cli
from curate.embed import EncoderSpec
from curate.errors import CurateError
from tests.embed_helpers import build_corpus


@pytest.fixture(scope="module")
def bad_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bad-weights")
    corrupt = base / "corrupt.safetensors"
    corrupt.write_bytes(b"\x20\x00\x00\x00\x00\x00\x00\x00{not json at all, sorry} " + bytes(64))
    pickled = base / "pickled.pt"
    torch.save({"weight": torch.zeros(2), "note": fractions.Fraction(1, 3)}, pickled)
    return {"corrupt": corrupt, "pickled": pickled, "corpus": build_corpus(base / "corpus", 2)}


@pytest.mark.parametrize("kind", ["corrupt", "pickled"])
@pytest.mark.parametrize("encoder", [["clip", "--model", "ViT-B-32"], ["resnet50"]])
def test_unreadable_weights_files_fail_in_one_line(bad_weights: dict[str, Path], tmp_path: Path, kind: str,
                                                   encoder: list[str]) -> None:
    path = bad_weights[kind]
    args = ["embed", str(bad_weights["corpus"]), "-o", str(tmp_path / "emb"), "--encoder", *encoder,
            "--pretrained", str(path), "--workers", "0", "--quiet"]
    result = CliRunner().invoke(cli, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert f"{path} is not a readable weights file (" in lines[0]
    assert "weights_only" not in result.output and "Traceback" not in result.output
    if kind == "pickled":
        assert "fractions.Fraction" in lines[0]
    else:
        assert "SafetensorError" in lines[0]


def test_unreadable_weights_in_a_clip_local_dir_are_named(bad_weights: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": {}}))
    shutil.copyfile(bad_weights["pickled"], folder / "open_clip_pytorch_model.bin")
    with pytest.raises(CurateError, match=r"open_clip_pytorch_model.bin is not a readable weights file \(it holds"):
        EncoderSpec("clip", None, f"local-dir:{folder}").load()
