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


def test_every_default_and_choice_on_the_command_line_is_the_library_s():
    """Each option built from a parameter object shows and uses that object's default; an option
    whose default is a library function's shows that function's default."""
    from curate.analyze.params import AnalyzeParams
    from curate.cli import LibraryDefault
    from curate.embed.config import EmbedConfig
    from curate.embed.encoders import ENCODERS
    from curate.params import default_of, specs
    from curate.reshape.params import DRCParams, ReshapeParams
    from curate.train.config import TrainConfig

    owners = {
        "reshape": (ReshapeParams, DRCParams),
        "analyze": (AnalyzeParams,),
        "train": (TrainConfig,),
        "embed": (EmbedConfig,),
    }
    checked = 0
    for verb, command in cli.commands.items():
        text = " ".join(CliRunner().invoke(cli, [verb, "--help"], terminal_width=300).output.split())
        for option in command.params:
            if isinstance(option, LibraryDefault):
                assert f"default: {option.library_default()}" in text, (verb, option.name)
                checked += 1
            for cls in owners.get(verb, ()):
                if option.name in specs(cls):
                    library = default_of(cls, option.name)
                    shown = ",".join(map(str, library)) if isinstance(library, tuple) else library
                    assert option.default == shown, (verb, option.name)
                    if shown is not None and not isinstance(shown, bool):
                        assert f"default: {shown}" in text, (verb, option.name)
                    checked += 1
    assert checked > 40
    encoders = next(p for p in cli.commands["embed"].params if p.name == "encoder")
    assert list(encoders.type.choices) == list(ENCODERS)  # a new encoder appears by itself


@pytest.mark.parametrize("verb", ["embed", "reshape", "analyze", "train"])
def test_one_device_grammar_everywhere(verb, tmp_path):
    args = {"embed": ["c.parquet", "-o", "e"], "reshape": ["--corpus", "c", "--embeddings", "e", "-o", "m"],
            "analyze": ["--corpus", str(tmp_path / "c.parquet"), "--embeddings", str(tmp_path), "-o", "r"],
            "train": ["m.parquet", "-o", "r"]}[verb]
    (tmp_path / "c.parquet").write_bytes(b"")
    result = run(verb, *args, "--device", "gpu0")
    assert result.exit_code == 2 and "--device gpu0: expected auto, cpu, cuda or cuda:N" in result.output
