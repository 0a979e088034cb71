"""Tables edited outside curate, made curate tables again: ``curate adopt`` and ``curate exclude``.

A corpus or manifest filtered in pandas or HuggingFace ``datasets`` and saved to Parquet keeps its
rows but loses the ``curate`` metadata (roots, provenance), so no verb reads it.
:func:`adopt` checks such a table against the curate table it came from (``like``) and writes it
back in that table's format, with that table's metadata:

* the columns of the format must be there, with types that cast without loss; other columns
  (``image_path`` from :func:`curate.data.read_manifest`, a saved pandas index, ...) are dropped
  and named in the result;
* every row must be a row of ``like`` (same ``sample_id``), with the same values in every column
  except the ones a user may edit (:data:`EDITABLE_COLUMNS`: ``split``, and a manifest's
  ``weight``); the first row that breaks this is named.

:func:`exclude` writes a table without the rows listed in rejects tables (``curate embed``'s
``rejects.parquet``, ``curate validate --check-files --rejects``, ``curate synthesize``'s).

Both keep the source's metadata (``root``/``roots``, ``params``, ``seed``, ``inputs``, ...; a
relative corpus ``root`` is made absolute) and append one entry to its ``edits`` list: the command,
a one-line ``note``, the files read with their fingerprints, and the row counts, so the file
says what was done to it since the step that made it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import __version__
from curate.errors import TableError
from curate.fsio import command_line, fingerprint
from curate.schema import arrow_schema, conform, corpus_root, read_frame, read_table, write_table

# Columns whose values may differ from the source's row: the rest identify the sample and its label.
EDITABLE_COLUMNS: dict[str, tuple[str, ...]] = {"corpus": ("split",), "manifest": ("split", "weight")}
ADOPTABLE_FORMATS = ("corpus", "manifest")


@dataclass
class EditResult:
    """What :func:`adopt` or :func:`exclude` wrote: ``rows`` of the ``source_rows`` of the source."""

    path: Path
    fmt: str
    rows: int
    source_rows: int
    changed: dict[str, int] = field(default_factory=dict)  # editable column -> rows whose value changed
    dropped_columns: list[str] = field(default_factory=list)
    not_in_table: int = 0  # exclude: listed rejects that were not rows of the table


def adopt(
    edited: str | os.PathLike[str], like: str | os.PathLike[str], output: str | os.PathLike[str]
) -> EditResult:
    """Write ``edited`` (rows of the curate table ``like``, saved by another tool) as a curate table.

    Raises :class:`~curate.errors.TableError` naming the file, the row and the column when a
    column is missing or cannot be cast, or when a row is not a row of ``like``.
    """
    source, meta = read_table(like, ADOPTABLE_FORMATS)
    fmt = meta["format"]
    try:
        table = pq.read_table(edited)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TableError(f"{edited}: not a readable Parquet file ({exc})") from None
    if table.num_rows == 0:
        raise TableError(f"{edited}: has no rows; nothing to adopt")
    names = [f.name for f in arrow_schema(fmt)]
    dropped = [c for c in table.column_names if c not in names]
    table = conform(table, fmt, str(edited))
    rows = _rows_in_source(table, source, str(edited), str(like))
    changed = _check_same_values(table, source.take(rows), fmt, str(edited), str(like))
    note = f"adopted {table.num_rows} of the {source.num_rows} rows of {like} from {edited}"
    if any(changed.values()):
        note += " (" + ", ".join(f"{name} changed in {n} row(s)" for name, n in changed.items() if n) + ")"
    entry = {
        "note": note,
        "source": _file(like),
        "edited": _file(edited),
        "rows": table.num_rows,
        "source_rows": source.num_rows,
        "changed": changed,
        "dropped_columns": dropped,
    }
    path = write_table(table, output, fmt, restamped(meta, like, entry))
    return EditResult(Path(path), fmt, table.num_rows, source.num_rows, changed, dropped)


def exclude(
    table_path: str | os.PathLike[str],
    rejects: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
) -> EditResult:
    """Write the corpus or manifest ``table_path`` without the rows listed in the ``rejects`` tables."""
    if not rejects:
        raise TableError("exclude: name at least one rejects table")
    source, meta = read_table(table_path, ADOPTABLE_FORMATS)
    listed: set[str] = set()
    for path in rejects:
        frame, _ = read_frame(path, "rejects")
        listed.update(frame["sample_id"].astype(str))
    ids = source.column("sample_id")
    drop = pc.is_in(ids, value_set=pa.array(sorted(listed), pa.string()))
    kept = source.filter(pc.invert(drop))
    excluded = source.num_rows - kept.num_rows
    if kept.num_rows == 0:
        raise TableError(f"{table_path}: every row is listed in {', '.join(map(str, rejects))}; nothing would be left")
    entry = {
        "note": f"left out the {excluded} row(s) of {table_path} listed in {', '.join(map(str, rejects))}",
        "source": _file(table_path),
        "rejects": [_file(path) for path in rejects],
        "rows": kept.num_rows,
        "source_rows": source.num_rows,
    }
    path = write_table(kept, output, meta["format"], restamped(meta, table_path, entry))
    return EditResult(
        Path(path), meta["format"], kept.num_rows, source.num_rows, not_in_table=len(listed) - excluded
    )


def restamped(meta: Mapping[str, Any], source: str | os.PathLike[str], entry: Mapping[str, Any]) -> dict[str, Any]:
    """The source table's metadata with ``entry`` (plus this command line) appended to ``edits``."""
    new = dict(meta)
    new["curate_version"] = __version__
    if meta["format"] == "corpus":
        new["root"] = str(corpus_root(meta, source))  # a relative root meant: relative to the source file
    edit = {"command": command_line(), "curate_version": __version__, **entry}
    new["edits"] = [*list(meta.get("edits") or []), edit]
    return new


def _file(path: str | os.PathLike[str]) -> dict[str, Any]:
    return {"path": str(path), **fingerprint(path)}


def _rows_in_source(table: pa.Table, source: pa.Table, where: str, like: str) -> np.ndarray:
    """Positions in ``source`` of each row of ``table`` (by sample_id); refuse rows it does not have."""
    ids = table.column("sample_id")
    positions = pc.index_in(ids, value_set=source.column("sample_id"))
    missing = positions.is_null()
    if pc.any(missing).as_py():
        absent = ids.filter(missing)
        first = int(np.flatnonzero(np.asarray(missing))[0])
        raise TableError(
            f"{where}: {len(absent)} row(s) are not rows of {like}, first row {first} "
            f"({absent[0].as_py()!r}); adopt takes only rows of the table they were taken from"
        )
    return np.asarray(positions.to_numpy(zero_copy_only=False), dtype=np.int64)


def _check_same_values(table: pa.Table, source_rows: pa.Table, fmt: str, where: str, like: str) -> dict[str, int]:
    """Refuse a row whose fixed columns differ from its source row; count changes in editable ones."""
    editable = EDITABLE_COLUMNS[fmt]
    changed: dict[str, int] = {}
    for name in table.column_names:
        ours, theirs = table.column(name), source_rows.column(name)
        if ours.equals(theirs):
            if name in editable:
                changed[name] = 0
            continue
        differ = _differing_rows(ours, theirs)
        if name in editable:
            changed[name] = int(differ.size)
            continue
        row = int(differ[0])
        raise TableError(
            f"{where}: row {row} ({table.column('sample_id')[row].as_py()!r}): {name} is "
            f"{ours[row].as_py()!r} but {theirs[row].as_py()!r} in {like}; only "
            f"{', '.join(editable)} may be edited (re-run the step that makes {name} instead)"
        )
    return changed


def _differing_rows(a: pa.ChunkedArray, b: pa.ChunkedArray) -> np.ndarray:
    """Row positions where two equally long columns differ (a null equals only a null)."""
    if pa.types.is_list(a.type):
        left, right = a.to_pylist(), b.to_pylist()
        return np.asarray([i for i, (x, y) in enumerate(zip(left, right, strict=True)) if x != y], dtype=np.int64)
    same = pc.fill_null(pc.equal(a, b), False)
    both_null = pc.and_(a.is_null(), b.is_null())
    return np.flatnonzero(~np.asarray(pc.or_(same, both_null).to_numpy(zero_copy_only=False), dtype=bool))
