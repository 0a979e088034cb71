"""The ``curate`` command line: one small function per verb; each calls one library function.

Exit codes: 0 success, 1 failure (one line naming the file/row/option; a traceback with
``--debug``), 2 usage error (also an option value the inputs show to be wrong, e.g. an unknown
``--root SOURCE=DIR``).
"""

from __future__ import annotations

import sys
import traceback
import warnings
from typing import Any

import click

from curate import __version__
from curate.analyze.params import AnalyzeParams
from curate.compare.params import CompareParams
from curate.embed.config import EmbedConfig, encoder_names
from curate.errors import CurateError, CurateWarning, ParamError, UsageError
from curate.fsio import set_command_line
from curate.params import default_of, option_name, specs
from curate.reshape.params import DRCParams, ReshapeParams
from curate.train.config import TrainConfig


class CurateGroup(click.Group):
    """Records the command line for output metadata and turns failures into one-line errors."""

    def main(self, args: Any = None, *pargs: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        set_command_line(argv)
        return super().main(argv, *pargs, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", CurateWarning)
                warnings.showwarning = _show_curate_warnings(warnings.showwarning)
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except ParamError as exc:  # a parameter object refused an option: a usage error
            raise click.UsageError(str(exc)) from None
        except UsageError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except CurateError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(1)
        except OSError as exc:  # a file or folder the system refused: name it, in one line
            if debug:
                traceback.print_exc()
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(1)
        except Exception as exc:  # an unexpected failure: still one line unless --debug
            if debug:
                traceback.print_exc()
            else:
                click.echo(f"error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)", err=True)
            ctx.exit(1)


def _show_curate_warnings(show_others: Any) -> Any:
    """A ``warnings.showwarning`` printing curate's own warnings as one ``warning: ...`` line."""

    def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, CurateWarning):
            click.echo(f"warning: {message}", err=True)
        else:
            show_others(message, category, *args, **kwargs)

    return show


@click.group(cls=CurateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="curate")
@click.option("--debug", is_flag=True, help="Show a full traceback on failure.")
def cli(debug: bool) -> None:
    """Reshape synthetic image-quality datasets (SynDR-IQA) into training manifests."""


SYNTHESIZE = "curate.distort.synthesize:synthesize"
DEMO_CORPUS = "curate.demo.corpus:build_demo_corpus"
EXPORT = "curate.export:export_manifest"
DEMO = "curate.demo.pipeline:run_demo"


class LibraryDefault(click.Option):
    """An option whose default is a library function's keyword default (``function`` is
    ``module:name``). The function's module is imported only to show ``--help``, not when the command
    line starts; an option not given is left out of the call (:func:`given`), so the function's own
    default applies."""

    def __init__(self, *decls: Any, function: str, **kwargs: Any) -> None:
        super().__init__(*decls, default=None, **kwargs)
        self.function = function

    def library_default(self) -> Any:
        import importlib
        import inspect

        module, name = self.function.split(":")
        target = getattr(importlib.import_module(module), name)
        return inspect.signature(target).parameters[str(self.name)].default

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.default, self.show_default = self.library_default(), True
        try:
            return super().get_help_record(ctx)
        finally:
            self.default, self.show_default = None, False


def given(options: dict[str, Any]) -> dict[str, Any]:
    """The options given on the command line (a :class:`LibraryDefault` not given is None)."""
    return {k: v for k, v in options.items() if v is not None}


def drc_options(unset: str | None = None) -> Any:
    """DRCDown's four threshold options (:class:`DRCParams`); ``unset`` as for :func:`param_option`.
    The command takes them back with :func:`pop_drc`."""

    def apply(command: Any) -> Any:
        for name in reversed(list(specs(DRCParams))):
            command = param_option(DRCParams, name, unset=unset)(command)
        return command

    return apply


def pop_drc(options: dict[str, Any]) -> dict[str, Any]:
    """Take DRCDown's threshold options out of a command's keyword options."""
    return {name: options.pop(name) for name in specs(DRCParams)}


# The help of an option whose default is the manifest's recorded value when there is one.
MANIFEST_ELSE = "with --manifest, the one it was reshaped with; else"
ONLINE_DRC_MANIFEST_ELSE = "for --online-drc: the one MANIFEST was reshaped with; else"


def main() -> None:
    cli.main(prog_name="curate")


def param_option(cls: Any, name: str, *, unset: str | None = None, **overrides: Any) -> Any:
    """A click option for field ``name`` of parameter class ``cls``: its option name, help, choices,
    range and default come from the field's declaration (:mod:`curate.params`), so the command line
    states none of them again. ``unset``: the option defaults to None (not given) and its help says
    what decides then, e.g. "the manifest's, else" (followed by the library default)."""
    spec = specs(cls)[name]
    option = option_name(cls, name)
    value = default_of(cls, name)
    kwargs: dict[str, Any] = {"help": spec.help, "show_default": value is not None}
    if unset is not None:
        kwargs.update(show_default=False, help=f"{spec.help}  [default: {unset} {value}]")
        value = None
    choices = spec.allowed()
    decls = [option]
    if choices is not None:
        kwargs["type"] = click.Choice(list(choices))
    elif spec.kind is bool and value:
        decls = [f"{option}/--no-{option[2:]}"]
    elif spec.kind is bool:
        kwargs.update(is_flag=True, show_default=False)
    elif spec.kind in (int, float):
        bounds = {"min": spec.low, "max": spec.high, "min_open": spec.low_open, "max_open": spec.high_open}
        if spec.low is None and spec.high is None:
            kwargs["type"] = spec.kind
        else:
            kwargs["type"] = (click.IntRange if spec.kind is int else click.FloatRange)(**bounds)
    elif spec.kind == "levels" or spec.kind == "types":
        kwargs["metavar"] = "1,3,5" if spec.kind == "levels" else "PRESET|1,3,10"
        value = None if value is None else ",".join(map(str, value))
        kwargs["type"] = str
    elif spec.kind == "device":
        kwargs["metavar"] = "auto|cpu|cuda[:N]"
    value = overrides.pop("default", value)
    kwargs.update(overrides)
    return click.option(*decls, name, default=value, **kwargs)


# ---- ingest / validate -----------------------------------------------------------------------


def _format_list() -> str:
    from curate.corpus import READERS

    return "\n".join(f"  {name:<10} {reader.summary}" for name, reader in READERS.items())


class _IngestCommand(click.Command):
    """Lists the formats (from the reader registry) at the end of ``--help``."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text("Formats (layouts: manifests/FORMATS.md):")
        with formatter.indentation():
            for line in _format_list().splitlines():
                formatter.write(line.rstrip() + "\n")


def _format_names() -> list[str]:
    from curate.corpus import READERS

    return list(READERS)


@cli.command("ingest", cls=_IngestCommand)
@click.argument("fmt", metavar="FORMAT", type=click.Choice(_format_names()))
@click.argument("root", type=click.Path(file_okay=False, path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Corpus Parquet file to write.")
@click.option("--source", help="Id prefix and source name (default: the format; csv/folder: ROOT's name).")
@click.option("--labels", help="Label file to read instead of the format's default (relative to ROOT or absolute).")
@click.option("--images", help="Image folder under ROOT (koniq10k, livec, spaq).")
@click.option("--path-column", help="csv: column with image paths relative to ROOT (default: path).")
@click.option("--score-column", help="csv: column with the raw score.")
@click.option("--ref-column", help="csv: column naming each row's reference (image path or content name).")
@click.option("--distortion-column", help="csv: column with integer distortion codes.")
@click.option("--level-column", help="csv: column with integer levels (>= 1).")
@click.option("--split-column", help="csv: column with the split (train/val/test).")
@click.option("--lower-is-better", is_flag=True, help="csv: the score is DMOS-like (flipped when normalised).")
def ingest_command(fmt: str, root: str, output: str, **options: Any) -> None:
    """Turn dataset ROOT, laid out in native FORMAT, into a corpus table (scores normalised to 0-10)."""
    from curate.corpus import ReaderOptions, ingest

    if fmt == "csv" and not options.get("labels"):
        raise click.UsageError("format csv needs --labels FILE")
    result = ingest(fmt, root, output, ReaderOptions(**options))
    frame = result.frame
    norm = result.meta["score_normalization"]
    scored = int(frame["score_raw"].notna().sum())
    click.echo(
        f"wrote {result.path}: {len(frame)} images, {int(frame['is_reference'].sum())} references, "
        f"{frame['ref_id'].nunique()} contents, {scored} scored"
    )
    if norm["method"] != "none":
        direction = "higher" if norm["higher_is_better"] else "lower (flipped)"
        click.echo(f"scores: raw {norm['raw_min']:.6g} - {norm['raw_max']:.6g}, {direction} = better -> 0-10")


@cli.command("ingest-refset")
@click.argument("refset", type=click.Path(file_okay=False, path_type=str))
@click.option("--corpus", required=True, type=click.Path(dir_okay=False),
              help="Training corpus: its reference rows get train_ref.pkl's features (matched by file stem).")
@click.option("--pool", required=True, type=click.Path(dir_okay=False),
              help="Pool corpus: its reference rows get additional_ref.pkl's features (matched by file stem).")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for train/ and pool/ (embeddings) and candidate_order.txt.")
def ingest_refset_command(refset: str, corpus: str, pool: str, out_dir: str) -> None:
    """Read the SynDR-IQA release's REFSET folder (train_ref.pkl, additional_ref.pkl) without running pickled code.

    Writes the release's ResNet-50 reference features as two embeddings folders keyed by the
    corpora's sample_ids, and the candidates' order in additional_ref.pkl, which decides which of
    two close candidates the release's DDCUp drops.
    """
    from curate.refset import ingest_refset

    result = ingest_refset(refset, corpus, pool, out_dir)
    click.echo(f"wrote {result.train_embeddings}: {result.train_references} training references ({result.dim}-d)")
    click.echo(f"wrote {result.pool_embeddings}: {result.candidates} candidate references ({result.dim}-d)")
    click.echo(f"wrote {result.candidate_order}: the candidates in the release's file order")


@cli.command("validate")
@click.argument("path", type=click.Path(exists=True, path_type=str))
@click.option("--check-files", is_flag=True, help="Open every image of a corpus/manifest; exit 1 if any fails.")
@click.option("--workers", type=click.IntRange(min=1), help="Threads for --check-files (default: up to 8).")
@click.option("--rejects", type=click.Path(dir_okay=False), help="With --check-files: write failures as a rejects table.")
def validate_command(path: str, check_files: bool, workers: int | None, rejects: str | None) -> None:
    """Check a corpus, manifest, decisions or rejects table, or an embeddings folder, and summarise it."""
    from curate.validate import validate

    if rejects and not check_files:
        raise click.UsageError("--rejects needs --check-files")
    report = validate(path, check_files=check_files, workers=workers, rejects=rejects)
    for line in report.lines():
        click.echo(line)
    if report.failures:
        for failure in report.failures[:20]:
            click.echo(f"  {failure.sample_id}: {failure.message}", err=True)
        more = len(report.failures) - 20
        if more > 0:
            click.echo(f"  ... and {more} more", err=True)
        raise CurateError(f"{path}: {len(report.failures)} of {report.checked_files} images failed to open")


@cli.command("adopt")
@click.argument("edited", type=click.Path(exists=True, dir_okay=False))
@click.option("--like", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The curate corpus or manifest the rows were taken from.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Table to write.")
def adopt_command(edited: str, like: str, output: str) -> None:
    """Make EDITED (rows of --like filtered and saved by pandas, HF datasets, ...) a curate table again.

    Every row must be a row of --like with the same values (only split, and a manifest's weight,
    may differ); the output carries --like's metadata (roots, provenance) and a note of the edit.
    """
    from curate.adopt import adopt

    result = adopt(edited, like, output)
    click.echo(f"wrote {result.path}: {result.fmt}, {result.rows} of the {result.source_rows} rows of {like}")
    for name, count in result.changed.items():
        if count:
            click.echo(f"  {name} edited in {count} row(s)")
    if result.dropped_columns:
        click.echo(f"  dropped columns not in the {result.fmt} format: {', '.join(result.dropped_columns)}")


@cli.command("exclude")
@click.argument("table", type=click.Path(exists=True, dir_okay=False))
@click.option("--rejects", "rejects", required=True, multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A rejects table (embed's EMB_DIR/rejects.parquet, validate --rejects, ...); repeatable.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Table to write.")
def exclude_command(table: str, rejects: tuple[str, ...], output: str) -> None:
    """Write the corpus or manifest TABLE without the rows listed in rejects tables.

    Use the new table (with the same embeddings folder) where TABLE was refused for samples that
    'curate embed' rejected.
    """
    from curate.adopt import exclude

    result = exclude(table, list(rejects), output)
    click.echo(
        f"wrote {result.path}: {result.rows} of the {result.source_rows} rows of {table} "
        f"({result.source_rows - result.rows} left out)"
    )
    if result.not_in_table:
        click.echo(f"  {result.not_in_table} listed reject(s) were not rows of {table}")


# ---- synthesize / demo corpus ------------------------------------------------------------------


@cli.command("synthesize")
@click.argument("refs", type=click.Path(exists=True, path_type=str))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(path_type=str),
              help="Folder for the images, corpus.parquet and rejects.parquet.")
@click.option("--types", "types_spec", default=None, metavar="PRESET|1,3,10",
              help="A target preset (livec, koniq, bid, pipal1-6, kadid, all, ...) or KADID type numbers. Default: all 25.")
@click.option("--levels", "levels_spec", default=None, metavar="1,3,5", help="Levels 1-5. Default: all five.")
@click.option("--workers", cls=LibraryDefault, function=SYNTHESIZE, type=click.IntRange(min=1), help="Worker processes.")
@click.option("--seed", cls=LibraryDefault, function=SYNTHESIZE, type=int, help="Seed of every random distortion.")
@click.option("--max-rejects", default=None, type=click.IntRange(min=0),
              help="Fail when more references or outputs than this are rejected. Default: never.")
@click.option("--max-pixels", cls=LibraryDefault, function=SYNTHESIZE, type=click.IntRange(min=1),
              help="Refuse references above this many pixels.")
@click.option("--gallery", default=None, type=click.Path(dir_okay=False, path_type=str),
              help="Also draw the first reference under every type and level into this PNG.")
def synthesize_command(
    refs: str,
    out_dir: str,
    types_spec: str | None,
    levels_spec: str | None,
    max_rejects: int | None,
    gallery: str | None,
    **options: Any,
) -> None:
    """Render KADID distortions of REFS (a corpus parquet or a folder of images) into OUTPUT."""
    from curate.distort.presets import parse_levels, parse_types
    from curate.distort.synthesize import synthesize

    types, levels = parse_types(types_spec), parse_levels(levels_spec)
    summary = synthesize(
        refs, out_dir, types=types, levels=levels, max_rejects=max_rejects, gallery=gallery, **given(options)
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
@click.option("--seed", cls=LibraryDefault, function=DEMO_CORPUS, type=int, help="Seed of the crops and distortions.")
@click.option("--workers", cls=LibraryDefault, function=DEMO_CORPUS, type=click.IntRange(min=1),
              help="Worker processes.")
def demo_corpus_command(out_dir: str, **options: Any) -> None:
    """Build the small offline demo corpus (KADID layout) from photos shipped in installed packages."""
    from curate.demo.corpus import build_demo_corpus

    demo = build_demo_corpus(out_dir, **given(options))
    click.echo(f"train: {demo.train_dir} ({demo.train_references} references, {demo.train_distorted} distorted)")
    click.echo(f"pool:  {demo.pool_dir} ({demo.pool_candidates} candidate references)")
    click.echo(f"test:  {demo.test_dir} ({demo.test_references} references, {demo.test_distorted} distorted)")


# ---- embed -------------------------------------------------------------------------------------


@cli.command("embed")
@click.argument("corpus", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Embeddings folder (Parquet shards); rerun the same command to resume.")
@param_option(EmbedConfig, "encoder")
@param_option(EmbedConfig, "model")
@param_option(EmbedConfig, "pretrained")
@param_option(EmbedConfig, "batch_size")
@param_option(EmbedConfig, "workers")
@param_option(EmbedConfig, "device")
@param_option(EmbedConfig, "precision")
@param_option(EmbedConfig, "engine")
@param_option(EmbedConfig, "actors")
@param_option(EmbedConfig, "shard_size")
@param_option(EmbedConfig, "max_rejects")
@click.option("--quiet", is_flag=True, help="No progress output.")
def embed_command(corpus: str, out_dir: str, quiet: bool, **settings: Any) -> None:
    """Embed every image of CORPUS into Parquet shards in OUTPUT."""
    from curate.embed import embed_corpus

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = lambda message, *args, **kwargs: click.echo(f"warning: {message}", err=True)
        result = embed_corpus(corpus, out_dir, quiet=quiet, **settings)
    click.echo(result.summary())


# ---- reshape -----------------------------------------------------------------------------------


@cli.command("reshape")
@click.option("--corpus", "corpus", required=True, type=click.Path(dir_okay=False), help="Training corpus.parquet.")
@click.option("--embeddings", required=True, type=click.Path(file_okay=False), help="Its embeddings folder.")
@click.option("--pool", type=click.Path(dir_okay=False), help="Candidate pool corpus (from 'curate synthesize').")
@click.option("--pool-embeddings", type=click.Path(file_okay=False), help="Embeddings of the pool references.")
@param_option(ReshapeParams, "types")
@param_option(ReshapeParams, "levels")
@param_option(ReshapeParams, "weighting")
@param_option(ReshapeParams, "target_size")
@param_option(ReshapeParams, "seed")
@param_option(ReshapeParams, "drc")
@param_option(ReshapeParams, "candidates")
@param_option(ReshapeParams, "candidate_order", metavar="FILE")
@drc_options()
@param_option(ReshapeParams, "device")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="manifest.parquet to write.")
def reshape_command(
    corpus: str,
    embeddings: str,
    pool: str | None,
    pool_embeddings: str | None,
    output: str,
    **settings: Any,
) -> None:
    """Reshape a corpus (DRCDown, DDCUp with --pool) into a training manifest + decisions table."""
    from curate.reshape.pipeline import format_summary, reshape

    if (pool is None) != (pool_embeddings is None):
        raise click.UsageError("--pool and --pool-embeddings go together")
    params = ReshapeParams(redundancy=DRCParams(**pop_drc(settings)), **settings)
    result = reshape(corpus, embeddings, output, pool=pool, pool_embeddings=pool_embeddings, params=params)
    for line in format_summary(result.summary):
        click.echo(line)
    click.echo(f"wrote {result.manifest_path} and {result.decisions_path}")


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
@click.option(
    "--compare",
    "comparison",
    type=click.Path(exists=True, file_okay=False),
    help="A finished 'curate compare' folder: the page shows its table, sentences, figure and training curves.",
)
@param_option(AnalyzeParams, "types")
@param_option(AnalyzeParams, "seed")
@param_option(AnalyzeParams, "sample_cap")
@param_option(AnalyzeParams, "pca_dims")
@param_option(AnalyzeParams, "min_cluster_size")
@param_option(AnalyzeParams, "min_samples")
@param_option(AnalyzeParams, "cluster_selection")
@drc_options(unset=MANIFEST_ELSE)
@param_option(AnalyzeParams, "device")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Report folder.")
def analyze_command(
    corpus: str,
    embeddings: str,
    pool: str | None,
    pool_embeddings: str | None,
    manifest: str | None,
    comparison: str | None,
    output: str,
    **settings: Any,
) -> None:
    """Content distribution and density structure of a corpus (before/after a reshape) as a report."""
    from curate.analyze import analyze

    if pool is not None and pool_embeddings is None:
        raise click.UsageError("--pool needs --pool-embeddings")
    params = AnalyzeParams(redundancy=pop_drc(settings), **settings)
    report = analyze(
        corpus, embeddings, output, pool=pool, pool_embeddings=pool_embeddings, manifest=manifest,
        compare=comparison, params=params,
    )
    for line in report.lines():
        click.echo(line)


# ---- export / train ----------------------------------------------------------------------------


def _name_value_pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """Parse repeated ``NAME=VALUE`` options into a dict (exit 2 on a malformed or repeated name)."""
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE", param_hint=option)
        if name in out:
            raise click.BadParameter(f"name {name!r} given twice", param_hint=option)
        out[name] = value
    return out


def _root_option(values: tuple[str, ...]) -> Any:
    """``--root DIR`` (every source) or ``--root SOURCE=DIR`` (repeatable)."""
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    return _name_value_pairs(values, "--root")


_ROOT_HELP = "Image root override: DIR for every source, or SOURCE=DIR (repeatable; SOURCE must be in the tables)."


@cli.command("export")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["pyiqa", "csv"]), default="pyiqa", show_default=True)
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="CSV to write (pyiqa also writes the options YAML beside it, suffix .yml).")
@click.option("--val-fraction", cls=LibraryDefault, function=EXPORT, type=click.FloatRange(0.0, 1.0, max_open=True),
              help="Add a split_by_ref column (train/val), split by reference content.")
@click.option("--seed", cls=LibraryDefault, function=EXPORT, type=int, help="Seed of the validation split.")
@click.option("--root", "roots", multiple=True, help=_ROOT_HELP)
def export_cmd(manifest: str, fmt: str, out: str, roots: tuple[str, ...], **options: Any) -> None:
    """Export MANIFEST for other trainers: pyiqa meta-info CSV + options YAML, or a plain CSV."""
    from curate.export import export_manifest

    written = export_manifest(manifest, out, fmt, root=_root_option(roots), **given(options))
    for kind, path in written.items():
        click.echo(f"wrote {kind}: {path}")


@cli.command("train")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--eval", "evals", multiple=True, metavar="NAME=CORPUS",
              help="Evaluation set: a scored corpus (or manifest) Parquet file (repeatable).")
@param_option(TrainConfig, "epochs")
@param_option(TrainConfig, "batch_size")
@param_option(TrainConfig, "lr")
@param_option(TrainConfig, "weights")
@param_option(TrainConfig, "arch")
@param_option(TrainConfig, "crop")
@param_option(TrainConfig, "test_crops")
@param_option(TrainConfig, "online_drc")
@drc_options(unset=ONLINE_DRC_MANIFEST_ELSE)
@param_option(TrainConfig, "val_fraction")
@click.option("--val", "val_set", type=click.Path(dir_okay=False), default=None, metavar="CORPUS",
              help="Validation set for model selection: a scored corpus or manifest (instead of --val-fraction).")
@param_option(TrainConfig, "report_test_best")
@param_option(TrainConfig, "head_only")
@click.option("--embeddings", type=click.Path(file_okay=False), multiple=True,
              help="Embeddings of MANIFEST; repeat for a manifest spanning several corpora (e.g. train + pool).")
@click.option("--eval-embeddings", multiple=True, metavar="NAME=DIR", help="Embeddings of an --eval set.")
@param_option(TrainConfig, "device")
@param_option(TrainConfig, "workers")
@param_option(TrainConfig, "seed")
@click.option("--root", "roots", multiple=True, help=_ROOT_HELP)
def train_cmd(
    manifest: str, out: str, evals: tuple[str, ...], head_only: bool, embeddings: tuple[str, ...],
    eval_embeddings: tuple[str, ...], roots: tuple[str, ...], val_set: str | None, **settings: Any,
) -> None:
    """Train the reference model on MANIFEST (the paper's protocol by default) into RUN_DIR (-o)."""
    from curate.train import summary_table, train

    if head_only and not embeddings:
        raise click.UsageError("--head-only needs --embeddings EMB_DIR")
    if eval_embeddings and not head_only:
        raise click.UsageError("--eval-embeddings only applies with --head-only")
    eval_sets = _name_value_pairs(evals, "--eval")
    eval_emb = _name_value_pairs(eval_embeddings, "--eval-embeddings")
    unknown = sorted(set(eval_emb) - set(eval_sets))
    if unknown:
        raise click.BadParameter(f"no --eval set named {unknown[0]!r}", param_hint="--eval-embeddings")
    summary = train(
        manifest, out, eval_sets=eval_sets, head_only=head_only, embeddings=list(embeddings) or None,
        eval_embeddings=eval_emb, val_set=val_set, root=_root_option(roots), redundancy=pop_drc(settings),
        **settings,
    )
    click.echo(summary_table(summary))
    click.echo(f"run folder: {out}")


# ---- compare -----------------------------------------------------------------------------------

_COMPARE_EPILOG = """
Reproducing the paper's protocol (KADID-10k -> LIVEC, KonIQ-10k, BID) on a GPU machine: one compare
per target, each with its preset's types; the bundled trainer (ResNet-50, 24 epochs, batch 32, the
paper's learning rates), DRCDown online each epoch, the seven references the release leaves out of
training as the validation set, and the paper's rule against every ablation row:

\b
  curate compare --corpus kadid.parquet --embeddings emb/kadid \\
      --pool pool/corpus.parquet --pool-embeddings emb/pool \\
      --types livec --eval livec=livec.parquet --eval-embeddings livec=emb/livec \\
      --trainer full --online-drc --val-refs I06,I07,I18,I19,I53,I58,I70 \\
      --seeds 3 --device cuda -o compare-livec
  (then --types koniq with --eval koniq=..., and --types bid with --eval bid=...)

Add --report-test-best to also tabulate the test-selected epoch the paper reports (optimistic).
"""


@cli.command("compare", epilog=_COMPARE_EPILOG)
@click.option("--corpus", required=True, type=click.Path(exists=True, dir_okay=False), help="Training corpus.parquet.")
@click.option("--embeddings", required=True, type=click.Path(exists=True, file_okay=False), help="Its embeddings.")
@click.option("--pool", type=click.Path(exists=True, dir_okay=False), help="Candidate pool corpus (from 'curate synthesize').")
@click.option("--pool-embeddings", type=click.Path(exists=True, file_okay=False), help="The pool's embeddings.")
@param_option(CompareParams, "types")
@click.option("--eval", "evals", multiple=True, required=True, metavar="NAME=CORPUS",
              help="Target (test) set: a scored corpus Parquet file (repeatable).")
@click.option("--eval-embeddings", multiple=True, metavar="NAME=DIR",
              help="Embeddings of a target set (head-only training and the leak check need them).")
@param_option(CompareParams, "variants", metavar="LIST")
@param_option(CompareParams, "seeds")
@param_option(CompareParams, "trainer")
@param_option(CompareParams, "online_drc")
@param_option(CompareParams, "val_fraction")
@param_option(CompareParams, "val_refs", default=None, show_default=False, metavar="LIST|FILE")
@param_option(CompareParams, "leak_check")
@param_option(CompareParams, "leak_threshold")
@param_option(CompareParams, "exclude_leaks")
@param_option(TrainConfig, "epochs", unset="the trainer's,")
@param_option(TrainConfig, "batch_size", unset="the trainer's,")
@param_option(TrainConfig, "lr")
@param_option(TrainConfig, "weights", unset="--trainer full:")
@param_option(TrainConfig, "arch", unset="--trainer full:")
@param_option(CompareParams, "report_test_best")
@param_option(CompareParams, "resamples")
@param_option(CompareParams, "resample_groups")
@param_option(CompareParams, "device")
@param_option(TrainConfig, "workers")
@click.option("--root", "roots", multiple=True, help=_ROOT_HELP)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Comparison folder.")
def compare_command(
    corpus: str, embeddings: str, pool: str | None, pool_embeddings: str | None, evals: tuple[str, ...],
    eval_embeddings: tuple[str, ...], roots: tuple[str, ...], output: str, **options: Any,
) -> None:
    """Run the method's ablation on your data (variants x seeds) and say, with intervals, whether it helps."""
    from pathlib import Path

    from curate.compare import compare

    if (pool is None) != (pool_embeddings is None):
        raise click.UsageError("--pool and --pool-embeddings go together")
    train_settings = {
        key: options.pop(key) for key in ("epochs", "batch_size", "lr", "weights", "arch", "workers")
    }
    params = CompareParams(
        **{k: v for k, v in options.items() if v is not None},
        train={k: v for k, v in train_settings.items() if v is not None},
    )
    result = compare(
        corpus, embeddings, output, eval_sets=_name_value_pairs(evals, "--eval"), params=params, pool=pool,
        pool_embeddings=pool_embeddings, eval_embeddings=_name_value_pairs(eval_embeddings, "--eval-embeddings"),
        root=_root_option(roots),
    )
    for line in result.lines():
        click.echo(line)
    click.echo(f"report: {Path(output) / 'index.html'}")


# ---- demo --------------------------------------------------------------------------------------


@cli.command("demo")
@click.option("-o", "--output", "out_dir", default="demo-out", show_default=True,
              type=click.Path(file_okay=False, path_type=str), help="Folder for everything the demo makes.")
@click.option("--seed", cls=LibraryDefault, function=DEMO, type=int, help="Seed of the corpus, distortions and reshape.")
@click.option("--workers", cls=LibraryDefault, function=DEMO, type=click.IntRange(min=1), help="Worker processes.")
@click.option("--encoder", cls=LibraryDefault, function=DEMO, type=click.Choice(["auto", *encoder_names()]),
              help="auto: CLIP when its weights are available here, else the packaged ImageNet "
                   "EfficientNet-Lite0 (timm, offline); imagestats: weight-free statistics.")
@click.option("--types", "preset", cls=LibraryDefault, function=DEMO, metavar="PRESET",
              help="Target preset whose distortion types are trained on and synthesized.")
@click.option("--seeds", cls=LibraryDefault, function=DEMO, type=click.IntRange(min=1),
              help="Training seeds per variant of the comparison (each with its own validation split).")
@click.option("--quick", is_flag=True,
              help="Render each training photo's first crop under the preset's types instead of all 25 (faster).")
def demo_command(out_dir: str, quick: bool, **options: Any) -> None:
    """Run the whole pipeline on the bundled demo corpus, and the method's ablation on it."""
    from curate.demo.corpus import TEST_CROPS_PER_PHOTO, TEST_PHOTOS
    from curate.demo.pipeline import run_demo
    from curate.distort.presets import parse_types

    if options["preset"] is not None:
        parse_types(options["preset"])
    result = run_demo(out_dir, all_types=not quick, **given(options))
    click.echo(f"\nhead-only regressor on {result.encoder} embeddings, tested on the held-out demo set:")
    for line in result.lines():
        click.echo(line)
    crops, photos = TEST_CROPS_PER_PHOTO, len(TEST_PHOTOS)
    click.echo(f"note: the {crops * photos} test references are {crops} crops of each of {photos} photos, and the "
               f"intervals resample the {photos} photos: a demo, not evidence about your data.")
    click.echo(f"\nreport:     {result.report}")
    click.echo(f"comparison: {result.comparison.out_dir / 'index.html'}")
    click.echo(f"manifest:   {result.manifest}")
    click.echo(f"pyiqa:      {result.export}")
    for warning in result.warnings:
        click.secho(f"note: {warning.splitlines()[0][:160]}...", err=True, fg="yellow")
