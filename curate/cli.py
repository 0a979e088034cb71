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


# ---- export / train ----------------------------------------------------------------------------


# ---- demo --------------------------------------------------------------------------------------
