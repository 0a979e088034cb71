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


@cli.command("embed")
@click.argument("corpus", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Embeddings folder (Parquet shards); rerun the same command to resume.")
@click.option("--encoder", default="clip", show_default=True,
              type=click.Choice(["clip", "resnet50", "imagestats"]),
              help="clip (open_clip), resnet50 (torchvision ImageNet) or imagestats (weight-free).")
@click.option("--model", default=None, help="open_clip model name (clip only)  [default: ViT-B-32]")
@click.option("--pretrained", default=None,
              help="Weights: a pretrained tag, a weights FILE, local-dir:DIR, or 'random' (benchmarks only) "
                   "[default: laion2b_s34b_b79k for clip, IMAGENET1K_V1 for resnet50].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="[default: 256 on GPU, 32 on CPU]")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Decoding processes (local engine)  [default: cores-1 beside a GPU, 1 beside a CPU model]")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
              help="auto: bf16 (or fp16) autocast on a GPU, fp32 on the CPU.")
@click.option("--engine", default="local", show_default=True, type=click.Choice(["local", "ray"]))
@click.option("--actors", type=click.IntRange(min=1), default=None,
              help="Model actors for --engine ray  [default: one per GPU, or 1 on CPU]")
@click.option("--shard-size", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Samples per output shard (sorted by sample_id).")
@click.option("--max-rejects", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Fail once more images than this cannot be read.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def embed_command(
    corpus: str, out_dir: str, encoder: str, model: str | None, pretrained: str | None,
    batch_size: int | None, workers: int | None, device: str, precision: str, engine: str,
    actors: int | None, shard_size: int, max_rejects: int, quiet: bool,
) -> None:
    """Embed every image of CORPUS into Parquet shards in OUTPUT."""
    import warnings

    from curate.embed import embed_corpus

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = lambda message, *args, **kwargs: click.echo(f"warning: {message}", err=True)
        result = embed_corpus(
            corpus, out_dir, encoder=encoder, model=model, pretrained=pretrained, batch_size=batch_size,
            workers=workers, device=device, precision=precision, engine=engine, actors=actors,
            shard_size=shard_size, max_rejects=max_rejects, quiet=quiet,
        )
    click.echo(result.summary())


# ---- reshape -----------------------------------------------------------------------------------


# ---- analyze -----------------------------------------------------------------------------------


# ---- export / train ----------------------------------------------------------------------------


# ---- demo --------------------------------------------------------------------------------------
