"""The ``curate`` command line: one small function per verb; each calls one library function.

Exit codes: 0 success, 1 failure (one line naming the file/row/option; a traceback with
``--debug``), 2 usage error.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from curate import __version__
from curate.errors import CurateError
from curate.fsio import set_command_line


class CurateGroup(click.Group):
    """Records the command line for output metadata and turns failures into one-line errors."""

    def main(self, args: Any = None, *pargs: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        set_command_line(argv)
        return super().main(argv, *pargs, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except CurateError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(1)
        except Exception as exc:  # an unexpected failure: still one line unless --debug
            if debug:
                traceback.print_exc()
            else:
                click.echo(f"error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)", err=True)
            ctx.exit(1)


@click.group(cls=CurateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="curate")
@click.option("--debug", is_flag=True, help="Show a full traceback on failure.")
def cli(debug: bool) -> None:
    """Reshape synthetic image-quality datasets (SynDR-IQA) into training manifests."""


def main() -> None:
    cli.main(prog_name="curate")


# ---- ingest / validate -----------------------------------------------------------------------


# ---- synthesize / demo corpus ------------------------------------------------------------------


# ---- embed -------------------------------------------------------------------------------------


# ---- reshape -----------------------------------------------------------------------------------


@cli.command("reshape")
@click.option("--corpus", "corpus", required=True, type=click.Path(dir_okay=False), help="Training corpus.parquet.")
@click.option("--embeddings", required=True, type=click.Path(file_okay=False), help="Its embeddings folder.")
@click.option("--pool", type=click.Path(dir_okay=False), help="Candidate pool corpus (from 'curate synthesize').")
@click.option("--pool-embeddings", type=click.Path(file_okay=False), help="Embeddings of the pool references.")
@click.option("--types", default=None, help="Distortion types: a preset (livec, koniq, bid, ...) or a list like 1,3,10.")
@click.option("--levels", default="1,3,5", show_default=True, help="Levels of the DDCUp samples.")
@click.option(
    "--weighting",
    type=click.Choice(["official", "similarity", "uniform"]),
    default="official",
    show_default=True,
    help="Pseudo-label weights: softmax(+d) as released, softmax(-d), or uniform.",
)
@click.option("--target-size", type=click.IntRange(min=1), default=None, help="Exact number of manifest rows.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--similarity-threshold", type=click.FloatRange(-1.0, 1.0), default=0.9, show_default=True)
@click.option("--score-gap", type=click.FloatRange(min=0.0, min_open=True), default=1.0, show_default=True)
@click.option("--group-cap", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N] for the neighbour search.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="manifest.parquet to write.")
def reshape_command(
    corpus: str,
    embeddings: str,
    pool: str | None,
    pool_embeddings: str | None,
    types: str | None,
    levels: str,
    weighting: str,
    target_size: int | None,
    seed: int,
    similarity_threshold: float,
    score_gap: float,
    group_cap: int,
    device: str,
    output: str,
) -> None:
    """Reshape a corpus (DRCDown, DDCUp with --pool) into a training manifest + decisions table."""
    from curate.reshape.pipeline import format_summary, reshape
    from curate.reshape.presets import parse_levels, parse_types

    if (pool is None) != (pool_embeddings is None):
        raise click.UsageError("--pool and --pool-embeddings go together")
    try:
        if types:
            parse_types(types)
        parse_levels(levels)
    except CurateError as exc:
        raise click.BadParameter(str(exc)) from None
    result = reshape(
        corpus,
        embeddings,
        output,
        pool=pool,
        pool_embeddings=pool_embeddings,
        types=types,
        levels=levels,
        weighting=weighting,
        target_size=target_size,
        seed=seed,
        similarity_threshold=similarity_threshold,
        score_gap=score_gap,
        group_cap=group_cap,
        device=device,
    )
    for line in format_summary(result.summary):
        click.echo(line)
    click.echo(f"wrote {result.manifest_path} and {result.decisions_path}")


# ---- analyze -----------------------------------------------------------------------------------


# ---- export / train ----------------------------------------------------------------------------


# ---- demo --------------------------------------------------------------------------------------
