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


# ---- analyze -----------------------------------------------------------------------------------


@cli.command("analyze")
@click.option("--corpus", required=True, type=click.Path(exists=True, dir_okay=False), help="Corpus table.")
@click.option("--embeddings", required=True, type=click.Path(exists=True, file_okay=False), help="Its embeddings.")
@click.option("--pool", type=click.Path(exists=True, dir_okay=False), help="Candidate pool corpus (optional).")
@click.option(
    "--pool-embeddings",
    type=click.Path(exists=True, file_okay=False),
    help="Pool embeddings (for --pool, and for a manifest's upsampled rows).",
)
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False), help="A reshaped manifest: before/after.")
@click.option("--types", default=None, help="Distortion types of the corpus to analyse: a preset or a list (1,3,10).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for sampling, PCA and figures.")
@click.option(
    "--sample-cap",
    default=20_000,
    show_default=True,
    type=click.IntRange(min=2),
    help="At most this many samples per set for PCA, HDBSCAN and the maps (seeded sample).",
)
@click.option("--pca-dims", default=32, show_default=True, type=click.IntRange(min=2), help="PCA dims for HDBSCAN.")
@click.option("--min-cluster-size", default=10, show_default=True, type=click.IntRange(min=2), help="HDBSCAN.")
@click.option(
    "--cluster-selection",
    default="leaf",
    show_default=True,
    type=click.Choice(["leaf", "eom"]),
    help="HDBSCAN cluster selection (leaf: finest clusters, comparable before/after).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda (neighbour search).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Report folder.")
def analyze_command(
    corpus: str,
    embeddings: str,
    pool: str | None,
    pool_embeddings: str | None,
    manifest: str | None,
    types: str | None,
    seed: int,
    sample_cap: int,
    pca_dims: int,
    min_cluster_size: int,
    cluster_selection: str,
    device: str,
    output: str,
) -> None:
    """Content distribution and density structure of a corpus (before/after a reshape) as a report."""
    from curate.analyze import analyze
    from curate.reshape.presets import parse_types

    if pool is not None and pool_embeddings is None:
        raise click.UsageError("--pool needs --pool-embeddings")
    try:
        selected = None if types is None else parse_types(types)
    except CurateError as exc:
        raise click.BadParameter(str(exc), param_hint="--types") from None
    report = analyze(
        corpus,
        embeddings,
        output,
        pool=pool,
        pool_embeddings=pool_embeddings,
        manifest=manifest,
        types=selected,
        seed=seed,
        sample_cap=sample_cap,
        pca_dims=pca_dims,
        min_cluster_size=min_cluster_size,
        cluster_selection=cluster_selection,
        device=device,
    )
    for line in report.lines():
        click.echo(line)


# ---- export / train ----------------------------------------------------------------------------


# ---- demo --------------------------------------------------------------------------------------
