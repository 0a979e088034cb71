"""An output that cannot be written is named in one line, never its temporary name."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.errors import OutputError
from curate.fsio import atomic_write_text

EXAMPLES = Path(__file__).resolve().parents[1] / "manifests" / "examples"


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder nobody may create files in: /sys (a kernel filesystem) or a read-only folder."""
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    for folder in (Path("/sys"), read_only):
        if not folder.is_dir():
            continue
        try:
            (folder / "probe").write_bytes(b"")
        except OSError:
            return folder
        (folder / "probe").unlink()
    pytest.skip("no unwritable folder here (running as root without /sys)")


def test_unwritable_outputs_are_named(tmp_path: Path) -> None:
    folder = _unwritable_folder(tmp_path)
    out = folder / "curate-test.csv"
    result = CliRunner().invoke(cli, ["export", str(EXAMPLES / "manifest.parquet"), "--format", "csv", "-o", str(out)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {out}: cannot write it (Permission denied)"

    synthesized = CliRunner().invoke(cli, ["synthesize", str(EXAMPLES / "corpus.parquet"), "-o", str(folder / "syn"),
                                           "--types", "1", "--levels", "1"])
    assert synthesized.exit_code == 1
    line = synthesized.stderr.strip()
    assert line.startswith(f"error: {folder / 'syn'}: cannot ") and "\n" not in line and ".tmp-" not in line


def test_a_full_disk_names_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(args[0]))

    monkeypatch.setattr("curate.fsio.os.replace", full)
    with pytest.raises(OutputError, match=r"out\.txt: cannot write it \(No space left on device\)"):
        atomic_write_text(tmp_path / "out.txt", "x")
    assert list(tmp_path.iterdir()) == []  # the temporary is gone too
