"""Symbolic links under an ingested folder: followed wherever they point; loops and broken links named."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from curate.cli import cli
from curate.images import load_rgb
from curate.schema import read_corpus

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX symbolic links")


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(path)


def test_links_are_followed_and_loops_and_broken_links_are_named(tmp_path: Path) -> None:
    root = tmp_path / "pool"
    _image(root / "a.png", 1)
    _image(root / "sub" / "b.png", 2)
    storage = tmp_path / "storage"  # outside the root, as in a farm of links into shared storage
    _image(storage / "c.png", 3)
    _image(storage / "more" / "d.png", 4)
    os.symlink(storage / "c.png", root / "c.png")
    os.symlink(storage / "more", root / "linked")
    os.symlink(root, root / "sub" / "loop")  # leads back to the root: a loop
    os.symlink(root / "sub" / "gone.png", root / "broken.png")

    result = CliRunner().invoke(cli, ["ingest", "folder", str(root), "-o", str(tmp_path / "c.parquet")])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2
    loop = next(w for w in warnings if "loop" in w)
    assert f"{root / 'sub' / 'loop'}: symbolic link loop" in loop and str(root) in loop and len(loop) < 300
    assert any(f"{root / 'broken.png'}: broken symbolic link" in w for w in warnings)

    frame, meta = read_corpus(tmp_path / "c.parquet")
    assert sorted(frame["path"]) == ["a.png", "c.png", "linked/d.png", "sub/b.png"]
    for rel in frame["path"]:  # every path resolves under the root, through its links
        assert load_rgb(Path(meta["root"]) / rel).shape == (12, 16, 3)


def test_a_link_to_itself_is_named_not_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "pool"
    _image(root / "a.png", 1)
    os.symlink(root / "self.png", root / "self.png")
    result = CliRunner().invoke(cli, ["ingest", "folder", str(root), "-o", str(tmp_path / "c.parquet")])
    assert result.exit_code == 0, result.output
    assert f"warning: {root / 'self.png'}: broken symbolic link" in result.output
    assert read_corpus(tmp_path / "c.parquet")[0]["path"].tolist() == ["a.png"]
