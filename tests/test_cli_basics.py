"""The command line's contract: --help everywhere, --version, exit codes 0/1/2, --debug tracebacks."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from curate import __version__
from curate.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_top_level_help_lists_verbs():
    result = run("--help")
    assert result.exit_code == 0
    assert "ingest" in result.output and "validate" in result.output


@pytest.mark.parametrize("verb", sorted(cli.commands))
def test_every_verb_has_help(verb):
    result = run(verb, "--help")
    assert result.exit_code == 0, result.output
    assert f"Usage: cli {verb}" in result.output or "Usage:" in result.output


def test_ingest_help_lists_every_format():
    from curate.corpus import READERS

    text = run("ingest", "--help").output
    for name in READERS:
        assert f"  {name} " in text


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("args", [
    ["no-such-verb"],
    ["ingest", "kadid10k", "."],  # -o missing
    ["ingest", "not-a-format", ".", "-o", "x.parquet"],
    ["validate"],
    ["validate", "does-not-exist.parquet"],
])
def test_usage_errors_exit_2(args):
    assert run(*args).exit_code == 2


def test_failure_is_one_line_and_debug_shows_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    args = ["ingest", "folder", str(tmp_path / "empty"), "-o", str(tmp_path / "c.parquet")]
    plain = run(*args)
    assert plain.exit_code == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.count("\n") == 1
    debug = run("--debug", *args)
    assert debug.exit_code == 1
    assert "Traceback" in debug.stderr and "IngestError" in debug.stderr
