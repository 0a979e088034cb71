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


@cli.command("synthesize")
@click.argument("refs", type=click.Path(exists=True, path_type=str))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=str),
              help="Folder for the images, corpus.parquet and rejects.parquet.")
@click.option("--types", "types_spec", default=None, metavar="PRESET|1,3,10",
              help="A target preset (livec, koniq, bid, pipal1-6, kadid, all, ...) or KADID type numbers. Default: all 25.")
@click.option("--levels", "levels_spec", default=None, metavar="1,3,5", help="Levels 1-5. Default: all five.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Worker processes.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of every random distortion.")
@click.option("--max-rejects", default=None, type=click.IntRange(min=0),
              help="Fail when more references or outputs than this are rejected. Default: never.")
@click.option("--max-pixels", default=None, type=click.IntRange(min=1),
              help="Refuse references above this many pixels. Default: 16,000,000.")
@click.option("--gallery", default=None, type=click.Path(dir_okay=False, path_type=str),
              help="Also draw the first reference under every type and level into this PNG.")
def synthesize_command(
    refs: str,
    out_dir: str,
    types_spec: str | None,
    levels_spec: str | None,
    workers: int,
    seed: int,
    max_rejects: int | None,
    max_pixels: int | None,
    gallery: str | None,
) -> None:
    """Render KADID distortions of REFS (a corpus parquet or a folder of images) into OUTPUT."""
    from curate.distort import MAX_PIXELS
    from curate.distort.synthesize import synthesize
    from curate.reshape.presets import parse_levels, parse_types

    try:
        types = parse_types(types_spec)
        levels = parse_levels(levels_spec)
    except CurateError as exc:
        raise click.BadParameter(str(exc)) from None
    summary = synthesize(
        refs, out_dir, types=types, levels=levels, workers=workers, seed=seed, max_rejects=max_rejects,
        max_pixels=max_pixels or MAX_PIXELS, gallery=gallery,
    )
    click.echo(
        f"{summary.references} references, {summary.distorted} distorted images "
        f"({summary.written} written, {summary.kept} kept from an earlier run), {summary.rejected} rejected"
    )
    click.echo(f"corpus: {summary.corpus_path}")
    if summary.rejected:
        click.echo(f"rejects: {summary.rejects_path}")
    if summary.gallery_path is not None:
        click.echo(f"gallery: {summary.gallery_path}")


@cli.command("demo-corpus")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Folder for train/, pool/, test/ and demo_corpus.json.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the crops and distortions.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1), help="Worker processes.")
def demo_corpus_command(out_dir: str, seed: int, workers: int) -> None:
    """Build the small offline demo corpus (KADID layout) from photos shipped in installed packages."""
    from curate.demo.corpus import build_demo_corpus

    demo = build_demo_corpus(out_dir, seed=seed, workers=workers)
    click.echo(f"train: {demo.train_dir} ({demo.train_references} references, {demo.train_distorted} distorted)")
    click.echo(f"pool:  {demo.pool_dir} ({demo.pool_candidates} candidate references)")
    click.echo(f"test:  {demo.test_dir} ({demo.test_references} references, {demo.test_distorted} distorted)")


# ---- embed -------------------------------------------------------------------------------------


# ---- reshape -----------------------------------------------------------------------------------


# ---- analyze -----------------------------------------------------------------------------------


# ---- export / train ----------------------------------------------------------------------------


# ---- demo --------------------------------------------------------------------------------------
