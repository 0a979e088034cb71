"""The public table formats: corpus, embeddings, manifest, decisions, rejects.

Each table is Parquet written with pyarrow. File-level key-value metadata under the key ``curate``
holds one JSON object (keys sorted): ``format``, ``format_version``, ``curate_version``,
``command``, ``params``, ``seed``, ``inputs`` (fingerprints of the files read) and format-specific
keys (``root`` for a corpus, ``roots`` for a manifest, ``encoder`` for embeddings, ...).

Readers validate and refuse a bad table with a :class:`~curate.errors.TableError` whose message
names the file, the column and the first offending row. Writers are atomic. The user-facing
description of these formats is ``manifests/FORMATS.md``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import __version__
from curate.errors import TableError
from curate.fsio import atomic_path, safe_relative_path
from curate.jsonio import json_text
from curate.provenance import provenance

METADATA_KEY = b"curate"
SCORE_MIN, SCORE_MAX = 0.0, 10.0

# --------------------------------------------------------------------------------------------
# Column definitions. Order here is the column order on disk.

CORPUS_FIELDS: list[pa.Field] = [
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("path", pa.string(), nullable=False),
    pa.field("ref_id", pa.string(), nullable=False),
    pa.field("is_reference", pa.bool_(), nullable=False),
    pa.field("distortion", pa.int16()),
    pa.field("level", pa.int8()),
    pa.field("score", pa.float32()),
    pa.field("score_raw", pa.float32()),
    pa.field("source", pa.string(), nullable=False),
    pa.field("split", pa.string()),
]

MANIFEST_EXTRA_FIELDS: list[pa.Field] = [
    pa.field("origin", pa.string(), nullable=False),
    pa.field("label_kind", pa.string(), nullable=False),
    pa.field("pseudo_refs", pa.list_(pa.string())),
    pa.field("pseudo_weights", pa.list_(pa.float32())),
    pa.field("group_id", pa.int64(), nullable=False),
    pa.field("group_size", pa.int32(), nullable=False),
    pa.field("weight", pa.float32(), nullable=False),
]
MANIFEST_FIELDS = CORPUS_FIELDS + MANIFEST_EXTRA_FIELDS

DECISION_FIELDS: list[pa.Field] = [
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("ref_id", pa.string(), nullable=False),
    pa.field("origin", pa.string(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("kept", pa.bool_(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("group_id", pa.int64(), nullable=False),
    pa.field("group_size", pa.int32(), nullable=False),
    pa.field("detail", pa.string()),
]

REJECT_FIELDS: list[pa.Field] = [
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("path", pa.string(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
]

ORIGINS = ("original", "upsampled")
LABEL_KINDS = ("human", "pseudo")

# Known format versions per format name. A reader refuses any other version.
FORMAT_VERSIONS: dict[str, int] = {
    "corpus": 1,
    "embeddings": 1,
    "manifest": 1,
    "decisions": 1,
    "rejects": 1,
}

FIELDS_BY_FORMAT: dict[str, list[pa.Field]] = {
    "corpus": CORPUS_FIELDS,
    "manifest": MANIFEST_FIELDS,
    "decisions": DECISION_FIELDS,
    "rejects": REJECT_FIELDS,
}


def arrow_schema(fmt: str) -> pa.Schema:
    return pa.schema(FIELDS_BY_FORMAT[fmt])


def embeddings_schema(dim: int, dtype: str = "float32") -> pa.Schema:
    value = {"float32": pa.float32(), "float16": pa.float16()}[dtype]
    return pa.schema(
        [
            pa.field("sample_id", pa.string(), nullable=False),
            pa.field("embedding", pa.list_(value, dim), nullable=False),
        ]
    )


def embeddings_table(
    sample_ids: Sequence[str] | np.ndarray, vectors: np.ndarray, dtype: str = "float32"
) -> pa.Table:
    """One embeddings shard as an Arrow table, rows in the order given.

    ``sample_ids`` [n]; ``vectors`` [n, dim] (L2-normalised), stored as ``dtype`` (``float32`` or
    ``float16``). Write it with :func:`write_parquet` and ``make_metadata("embeddings", ...)``.
    """
    ids = np.asarray(sample_ids, dtype=object)
    matrix = np.asarray(vectors)
    if matrix.ndim != 2 or matrix.shape[0] != ids.size:
        raise ValueError(f"expected vectors of shape [{ids.size}, dim], got {matrix.shape}")
    dim = int(matrix.shape[1])
    values = np.ascontiguousarray(matrix, dtype=np.float16 if dtype == "float16" else np.float32).reshape(-1)
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(values), dim)
    return pa.Table.from_arrays([pa.array(ids, pa.string()), embedding], schema=embeddings_schema(dim, dtype))


# --------------------------------------------------------------------------------------------
# Metadata


def make_metadata(
    fmt: str,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    inputs: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``curate`` metadata object for a new table of format ``fmt``: its format and version,
    the :func:`~curate.provenance.provenance` of the step, and format-specific ``extra`` keys."""
    meta: dict[str, Any] = {
        "format": fmt,
        "format_version": FORMAT_VERSIONS[fmt],
        **provenance(params=params, seed=seed, inputs=inputs),
    }
    meta.update(extra)
    return meta


def _encode_metadata(meta: Mapping[str, Any]) -> bytes:
    return json_text(meta, sort_keys=True, style="compact").encode()


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``curate`` metadata of a Parquet file, checked for a known format version."""
    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        raise TableError(f"{path}: no such file") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise TableError(f"{path}: not a readable Parquet file ({exc})") from None
    return _metadata_from_schema(schema, path)


def _metadata_from_schema(schema: pa.Schema, path: Any) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise TableError(f"{path}: no '{METADATA_KEY.decode()}' metadata; not written by curate")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TableError(f"{path}: '{METADATA_KEY.decode()}' metadata is not JSON ({exc})") from None
    fmt = meta.get("format")
    if fmt not in FORMAT_VERSIONS:
        raise TableError(f"{path}: unknown table format {fmt!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSIONS[fmt]:
        raise TableError(
            f"{path}: {fmt} format version {version!r} is not supported "
            f"(this curate {__version__} reads version {FORMAT_VERSIONS[fmt]})"
        )
    return meta


# --------------------------------------------------------------------------------------------
# Writing


def write_parquet(
    table: pa.Table,
    path: str | os.PathLike[str],
    meta: Mapping[str, Any],
    *,
    extra_metadata: Mapping[bytes, bytes] | None = None,
) -> Path:
    """Write ``table`` atomically with ``meta`` under the ``curate`` key. Deterministic bytes."""
    kv = {METADATA_KEY: _encode_metadata(meta)}
    kv.update(extra_metadata or {})
    table = table.replace_schema_metadata(kv)
    final = Path(path)
    with atomic_path(final) as tmp:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            row_group_size=65536,
            use_dictionary=True,
            write_statistics=True,
        )
    return final


def to_table(df: pd.DataFrame, fmt: str) -> pa.Table:
    """Convert a DataFrame to the exact Arrow schema of ``fmt``; missing nullable columns -> null."""
    schema = arrow_schema(fmt)
    columns = []
    n = len(df)
    for field in schema:
        if field.name in df.columns:
            values = df[field.name]
            try:
                arr = pa.array(_plain_values(values, field.type), type=field.type, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                raise TableError(f"column {field.name!r}: cannot store as {field.type} ({exc})") from None
        elif field.nullable:
            arr = pa.nulls(n, type=field.type)
        else:
            raise TableError(f"{fmt} table is missing required column {field.name!r}")
        columns.append(arr)
    return pa.Table.from_arrays(columns, schema=schema)


def _plain_values(values: pd.Series, typ: pa.DataType) -> Any:
    if pa.types.is_list(typ):
        return [None if v is None or (isinstance(v, float) and math.isnan(v)) else list(v) for v in values]
    if pa.types.is_integer(typ) or pa.types.is_boolean(typ):
        if values.dtype != object:
            # numpy integers and booleans, pandas' nullable ones, or floats with NaN for missing
            # values: Arrow converts each exactly (NaN -> null) and refuses a fractional float.
            return values.array if isinstance(values.dtype, pd.api.extensions.ExtensionDtype) else values.to_numpy()
        return [None if pd.isna(v) else v for v in values]
    return values


def write_table(
    df: pd.DataFrame | pa.Table,
    path: str | os.PathLike[str],
    fmt: str,
    meta: Mapping[str, Any],
    *,
    sort: bool = True,
    extra_metadata: Mapping[bytes, bytes] | None = None,
) -> Path:
    """Validate and write a corpus / manifest / decisions / rejects table.

    Rows are sorted by ``sample_id`` (``sort=True``) so that row order never depends on directory
    listing or worker order.
    """
    table = df if isinstance(df, pa.Table) else to_table(df, fmt)
    table = table.select([f.name for f in arrow_schema(fmt)]).cast(arrow_schema(fmt))
    if sort and table.num_rows:
        table = table.sort_by([("sample_id", "ascending")])
    validate_table(table, fmt, str(path), meta)
    if fmt in ("corpus", "manifest"):
        extra_metadata = {HF_METADATA_KEY: huggingface_metadata(fmt), **(extra_metadata or {})}
    return write_parquet(table, path, meta, extra_metadata=extra_metadata)


REJECTS_NAME = "rejects.parquet"


def write_rejects(
    rejects: Iterable[Mapping[str, str]], path: str | os.PathLike[str], stage: str, meta: Mapping[str, Any]
) -> Path:
    """Write a rejects table: one row per image a step could not use (each mapping gives
    ``sample_id``, ``path``, ``reason`` and ``message``), tagged with the step's ``stage``."""
    columns = [f.name for f in REJECT_FIELDS]
    frame = pd.DataFrame(
        [{**{k: r[k] for k in ("sample_id", "path", "reason", "message")}, "stage": stage} for r in rejects],
        columns=columns,
        dtype=object,
    )
    return write_table(frame, path, "rejects", meta)


# --------------------------------------------------------------------------------------------
# HuggingFace ``datasets`` feature metadata, so ``load_dataset("parquet", ...)`` gets exact types.

HF_METADATA_KEY = b"huggingface"


def _hf_feature(typ: pa.DataType) -> dict[str, Any]:
    if pa.types.is_list(typ):
        return {"_type": "Sequence", "feature": _hf_feature(typ.value_type)}
    names = {
        pa.string(): "string",
        pa.bool_(): "bool",
        pa.int8(): "int8",
        pa.int16(): "int16",
        pa.int32(): "int32",
        pa.int64(): "int64",
        pa.float16(): "float16",
        pa.float32(): "float32",
        pa.float64(): "float64",
    }
    return {"_type": "Value", "dtype": names[typ]}


def huggingface_metadata(fmt: str) -> bytes:
    """The ``huggingface`` schema metadata (``{"info": {"features": ...}}``) for a table format."""
    features = {field.name: _hf_feature(field.type) for field in arrow_schema(fmt)}
    return json.dumps({"info": {"features": features}}, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------
# Reading and validation


def read_table(
    path: str | os.PathLike[str], fmt: str | Sequence[str], *, references_only: bool = False
) -> tuple[pa.Table, dict[str, Any]]:
    """Read and validate a table of format ``fmt`` (or one of several). Returns (table, metadata).

    ``references_only``: read only the rows with ``is_reference`` (a pool's candidates, without
    reading its distorted rows); the checks apply to the rows read.
    """
    wanted = (fmt,) if isinstance(fmt, str) else tuple(fmt)
    meta = read_metadata(path)
    if meta["format"] not in wanted:
        raise TableError(f"{path}: is a {meta['format']} table, expected {' or '.join(wanted)}")
    try:
        table = pq.read_table(path, filters=[("is_reference", "==", True)] if references_only else None)
    except (pa.ArrowInvalid, OSError) as exc:
        raise TableError(f"{path}: cannot read ({exc})") from None
    table = conform(table, meta["format"], str(path))
    validate_table(table, meta["format"], str(path), meta)
    return table, meta


def read_frame(
    path: str | os.PathLike[str], fmt: str | Sequence[str], *, references_only: bool = False
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Like :func:`read_table`, as a pandas DataFrame with nullable dtypes."""
    table, meta = read_table(path, fmt, references_only=references_only)
    return table_to_frame(table), meta


def _arrow_ascending(values: pa.Array | pa.ChunkedArray, *, strict: bool) -> bool:
    """Whether ``values`` (no nulls) ascend, strictly or not: compared by Arrow, not one by one."""
    if len(values) < 2:
        return True
    before = pc.less if strict else pc.less_equal
    return bool(pc.all(before(values[:-1], values[1:])).as_py())


def _ascending(ids: pd.Series) -> bool:
    """Whether ``ids`` never decrease."""
    if isinstance(ids.dtype, pd.StringDtype) and ids.dtype.storage == "pyarrow" and not ids.hasnans:
        return _arrow_ascending(pa.chunked_array(pa.array(ids)), strict=False)
    return bool(ids.is_monotonic_increasing)


def sorted_by_id(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its rows in ``sample_id`` order and a fresh index (as every table is stored,
    so a table read from disk comes back as is)."""
    ids = frame["sample_id"]
    if _ascending(ids) and frame.index.equals(pd.RangeIndex(len(frame))):
        return frame
    return frame.sort_values("sample_id", kind="stable").reset_index(drop=True)


def read_corpus(path: str | os.PathLike[str], *, references_only: bool = False) -> tuple[pd.DataFrame, dict[str, Any]]:
    return read_frame(path, "corpus", references_only=references_only)


def corpus_root(meta: Mapping[str, Any], where: str | os.PathLike[str]) -> Path:
    """The absolute folder a corpus's ``path`` column is relative to (metadata ``root``).

    ``where`` is the corpus file; a relative ``root`` (only a hand-written corpus has one) is taken
    relative to that file's folder, so it means the same from any working directory.
    """
    value = meta.get("root")
    if not isinstance(value, str) or not value:
        raise TableError(f"{where}: corpus metadata has no 'root' (the folder its paths are relative to)")
    root = Path(value).expanduser()
    if not root.is_absolute():
        root = (Path(where).resolve().parent / root).resolve()
    return root


def table_to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow -> pandas keeping integer columns with nulls as nullable integers."""
    return table.to_pandas(types_mapper=_nullable_types, maps_as_pydicts="strict")


def _nullable_types(typ: pa.DataType) -> Any:
    mapping = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    return mapping.get(typ)


def conform(table: pa.Table, fmt: str, where: str) -> pa.Table:
    """Check columns exist and cast them to the format's types when that loses nothing."""
    schema = arrow_schema(fmt)
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise TableError(f"{where}: missing column(s) {', '.join(repr(m) for m in missing)} for a {fmt} table")
    columns = []
    for field in schema:
        col = table.column(field.name)
        if not col.type.equals(field.type):
            try:
                col = col.cast(field.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise TableError(
                    f"{where}: column {field.name!r} has type {table.column(field.name).type}, "
                    f"expected {field.type} ({exc})"
                ) from None
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=schema)


def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def validate_table(table: pa.Table, fmt: str, where: str, meta: Mapping[str, Any] | None = None) -> None:
    """Refuse a table that breaks the format's rules; the message names the first bad row."""
    for field in arrow_schema(fmt):
        if not field.nullable and table.column(field.name).null_count:
            row = _first_row(np.asarray(table.column(field.name).is_null()))
            raise TableError(f"{where}: row {row}: column {field.name!r} is null but is required")
    ids = table.column("sample_id").to_numpy(zero_copy_only=False)
    # Tables are stored sorted by sample_id: strictly ascending ids are unique without a sort.
    if fmt != "rejects" and not _arrow_ascending(table.column("sample_id"), strict=True):
        _check_unique(ids, where)
    if fmt in ("corpus", "manifest"):
        _validate_corpus_columns(table, ids, where)
    if fmt == "manifest":
        _validate_manifest_columns(table, ids, where, meta)
    if fmt == "decisions":
        origins = np.asarray(table.column("origin").to_numpy(zero_copy_only=False), dtype=object)
        bad = ~np.isin(origins, ORIGINS)
        if bad.any():
            row = _first_row(bad)
            raise TableError(f"{where}: row {row} ({ids[row]}): origin {origins[row]!r} is not one of {ORIGINS}")


def _check_unique(ids: np.ndarray, where: str) -> None:
    uniq, first, counts = np.unique(ids.astype(str), return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = str(uniq[counts > 1][0])  # a plain str, so the message reads 'x' not np.str_('x')
        rows = np.flatnonzero(ids.astype(str) == dup)[:3].tolist()
        raise TableError(f"{where}: duplicate sample_id {dup!r} (rows {rows})")


def _validate_corpus_columns(table: pa.Table, ids: np.ndarray, where: str) -> None:
    paths = table.column("path")
    # Only paths that could be absolute, escaping or unnormalised need the full check.
    suspect = pc.or_(
        pc.match_substring_regex(paths, r"(^/|^\.|^[A-Za-z]:|\\|//|/\.|/$|^$)"),
        pc.is_null(paths),
    )
    rows = np.flatnonzero(np.asarray(suspect.to_numpy(zero_copy_only=False), dtype=bool))
    for row in rows.tolist():
        path = paths[row].as_py()
        try:
            normal = safe_relative_path(path)
        except ValueError as exc:
            raise TableError(f"{where}: row {row} ({ids[row]}): {exc}") from None
        if normal != path:
            raise TableError(
                f"{where}: row {row} ({ids[row]}): path {path!r} is not normalised (expected {normal!r})"
            )
    for name in ("score", "score_raw"):
        values = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        present = ~np.isnan(values) & ~np.asarray(table.column(name).is_null())
        # nulls come through as NaN; a NaN that is not null is stored as a value and is bad.
        stored_nan = np.isnan(values) & ~np.asarray(table.column(name).is_null())
        if stored_nan.any() or np.isinf(values).any():
            row = _first_row(stored_nan | np.isinf(values))
            raise TableError(f"{where}: row {row} ({ids[row]}): {name} is {values[row]} (NaN/inf not allowed)")
        if name == "score" and present.any():
            out = present & ((values < SCORE_MIN - 1e-4) | (values > SCORE_MAX + 1e-4))
            if out.any():
                row = _first_row(out)
                raise TableError(
                    f"{where}: row {row} ({ids[row]}): score {values[row]} is outside 0-10 "
                    "(scores are normalised to 0-10, higher = better)"
                )
    level = table.column("level").to_numpy(zero_copy_only=False)
    level_f = np.asarray(pd.array(level, dtype="Float64").to_numpy(na_value=np.nan), dtype=float)
    bad = ~np.isnan(level_f) & (level_f < 1)
    if bad.any():
        row = _first_row(bad)
        raise TableError(f"{where}: row {row} ({ids[row]}): level {int(level_f[row])} must be >= 1")


def _validate_manifest_columns(table: pa.Table, ids: np.ndarray, where: str, meta: Mapping[str, Any] | None) -> None:
    origins = np.asarray(table.column("origin").to_numpy(zero_copy_only=False), dtype=object)
    kinds = np.asarray(table.column("label_kind").to_numpy(zero_copy_only=False), dtype=object)
    for name, values, allowed in (("origin", origins, ORIGINS), ("label_kind", kinds, LABEL_KINDS)):
        bad = ~np.isin(values, allowed)
        if bad.any():
            row = _first_row(bad)
            raise TableError(f"{where}: row {row} ({ids[row]}): {name} {values[row]!r} is not one of {allowed}")
    refs = table.column("pseudo_refs").to_pylist()
    weights = table.column("pseudo_weights").to_pylist()
    for row, (kind, r, w) in enumerate(zip(kinds, refs, weights)):
        if kind == "pseudo":
            if not r or w is None or len(r) != len(w):
                raise TableError(
                    f"{where}: row {row} ({ids[row]}): a pseudo label needs pseudo_refs and "
                    "pseudo_weights of equal, non-zero length"
                )
    scores = table.column("score")
    if scores.null_count:
        row = _first_row(np.asarray(scores.is_null()))
        raise TableError(f"{where}: row {row} ({ids[row]}): a manifest row has no score")
    if meta is not None:
        roots = meta.get("roots")
        if not isinstance(roots, Mapping):
            raise TableError(f"{where}: manifest metadata has no 'roots' mapping (source -> image root)")
        sources = set(table.column("source").to_pylist())
        missing = sorted(sources - set(roots))
        if missing:
            raise TableError(f"{where}: manifest metadata 'roots' has no root for source(s) {missing}")


# --------------------------------------------------------------------------------------------
# Embeddings: a folder of Parquet shards, joined to tables by sample_id.

EMBEDDING_SHARD_GLOB = "part-*.parquet"


class Embeddings:
    """Embeddings in memory: ``ids`` [n] (str), ``vectors`` [n, dim] (float32 or float16,
    L2-normalised) and the folder's ``meta``; :meth:`EmbeddingsFolder.load` makes them, or build
    one from arrays. ``folders``: the folder or folders read (to explain samples they lack)."""

    def __init__(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        meta: dict[str, Any] | None = None,
        where: str = "embeddings",
        folders: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        self.ids = np.asarray(ids, dtype=object)
        self.vectors = vectors
        self.meta = meta or {}
        self.where = where
        self.folders = [Path(f) for f in folders]
        self._index: dict[str, int] | None = None

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def encoder(self) -> dict[str, Any]:
        return dict(self.meta.get("encoder", {}))

    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {sid: i for i, sid in enumerate(self.ids.tolist())}
        return self._index

    def take(self, sample_ids: Sequence[str] | np.ndarray, *, what: str = "corpus") -> np.ndarray:
        """Vectors for ``sample_ids`` in that order; refuse if any is missing.

        A view when the ids are a run of the held rows in the same order (as a reader fills them),
        else a copy.
        """
        index = self.index()
        wanted = np.asarray(sample_ids, dtype=object)
        start = index.get(wanted[0], -1) if wanted.size else -1
        if start >= 0 and np.array_equal(self.ids[start : start + wanted.size], wanted):
            return self.vectors[start : start + wanted.size]
        rows = np.fromiter((index.get(s, -1) for s in sample_ids), dtype=np.int64, count=len(sample_ids))
        if (rows < 0).any():
            missing = [s for s, r in zip(sample_ids, rows) if r < 0]
            raise TableError(not_covered_message(self.where, self.folders, missing, what))
        return self.vectors[rows]


def embedding_shards(directory: str | os.PathLike[str]) -> list[Path]:
    return sorted(Path(directory).glob(EMBEDDING_SHARD_GLOB))


def _check_shard(shard: Path, first_meta: dict[str, Any] | None, first_name: str) -> tuple[dict[str, Any], int]:
    """Metadata and dim of one embeddings shard, checked against the folder's first shard."""
    meta = read_metadata(shard)  # a clear error for an unreadable or foreign file comes first
    schema = pq.read_schema(shard)
    if meta["format"] != "embeddings":
        raise TableError(f"{shard}: is a {meta['format']} table, expected embeddings")
    if first_meta is not None and (
        meta.get("encoder") != first_meta.get("encoder") or meta.get("dim") != first_meta.get("dim")
    ):
        raise TableError(
            f"{shard}: encoder or dim differs from {first_name} "
            f"({meta.get('encoder', {}).get('name')}/{meta.get('dim')} vs "
            f"{first_meta.get('encoder', {}).get('name')}/{first_meta.get('dim')}); "
            "one folder holds one encoder's embeddings"
        )
    if "sample_id" not in schema.names or "embedding" not in schema.names:
        raise TableError(f"{shard}: embeddings need columns 'sample_id' and 'embedding'")
    typ = schema.field("embedding").type
    if not pa.types.is_fixed_size_list(typ):
        raise TableError(f"{shard}: column 'embedding' must be fixed_size_list, got {typ}")
    expected = (first_meta or meta).get("dim")
    if expected is not None and typ.list_size != expected:
        raise TableError(f"{shard}: embedding dim {typ.list_size} but metadata says {expected}")
    return meta, typ.list_size


class EmbeddingsFolder:
    """An embeddings folder opened for reading (or several folders read as one set).

    Opening checks every shard's metadata: one encoder and dim per folder (and across the folders
    of a set), fixed-size list vectors of that dim. Vectors are read on demand:
    :meth:`load` streams the shards batch by batch and keeps only the rows asked for, in the stored
    dtype (float16 stays float16), so memory is the result plus one batch. Every loaded vector is
    checked finite and L2-normalised; :meth:`verify` checks them all without keeping them.
    ``sample_id`` is unique across the set.
    """

    BATCH_ROWS = 2048  # 4 MB of 512-d float32 a batch: decoding holds little beside the caller's array

    def __init__(self, directory: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> None:
        folders = list(directory) if isinstance(directory, (list, tuple)) else [directory]
        if not folders:
            raise TableError("no embeddings folder given")
        self.where = " + ".join(str(d) for d in folders)
        self.folders = [Path(f) for f in folders]
        self.shards: list[Path] = []
        self.meta: dict[str, Any] = {}
        self._dim = 0
        for folder in folders:
            meta, dim, shards = self._open_folder(folder)
            if self.shards and (dim != self._dim or meta.get("encoder") != self.meta.get("encoder")):
                raise TableError(
                    f"{folder}: embeddings were made by a different encoder or dim than {folders[0]} "
                    f"({meta.get('encoder', {}).get('name')}/{dim} vs {self.encoder.get('name')}/{self._dim}); "
                    "embed both with one encoder"
                )
            if not self.shards:
                self.meta, self._dim = meta, dim
            self.shards += shards
        self._ids: np.ndarray | None = None

    @staticmethod
    def _open_folder(folder: str | os.PathLike[str]) -> tuple[dict[str, Any], int, list[Path]]:
        if not Path(folder).is_dir():
            raise TableError(f"{folder}: embeddings folder does not exist")
        shards = embedding_shards(folder)
        if not shards:
            raise TableError(f"{folder}: no embedding shards ({EMBEDDING_SHARD_GLOB}) in this folder")
        first: dict[str, Any] | None = None
        dim = 0
        for shard in shards:
            meta, dim = _check_shard(shard, first, shards[0].name)
            first = first or meta
        assert first is not None
        return first, dim, shards

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def encoder(self) -> dict[str, Any]:
        return dict(self.meta.get("encoder", {}))

    @property
    def dtype(self) -> str:
        return str(self.meta.get("dtype", "float32"))

    def ids(self) -> np.ndarray:
        """Every ``sample_id`` the set holds, in stored order (reads the id column only)."""
        if self._ids is None:
            parts = [
                np.asarray(pq.read_table(shard, columns=["sample_id"]).column(0).to_numpy(zero_copy_only=False), dtype=object)
                for shard in self.shards
            ]
            ids = np.concatenate(parts) if parts else np.zeros(0, dtype=object)
            _check_unique(ids, self.where)
            self._ids = ids
        return self._ids

    def _batches(self, with_ids: bool = True) -> Iterator[tuple[np.ndarray | None, np.ndarray]]:
        """(ids or None, vectors) a batch at a time, in stored order. Pages are read as they are
        decoded (no whole column chunk held), so memory holds about one batch beside the caller's."""
        columns = ["sample_id", "embedding"] if with_ids else ["embedding"]
        for shard in self.shards:
            parquet = pq.ParquetFile(shard, pre_buffer=False, buffer_size=1 << 22)
            for batch in parquet.iter_batches(batch_size=self.BATCH_ROWS, columns=columns):
                ids = np.asarray(batch.column(0).to_numpy(zero_copy_only=False), dtype=object) if with_ids else None
                yield ids, batch.column(len(columns) - 1).flatten().to_numpy(zero_copy_only=False).reshape(-1, self._dim)

    def _stored_dtype(self) -> Any:
        typ = pq.ParquetFile(self.shards[0]).schema_arrow.field("embedding").type
        return np.float16 if pa.types.is_float16(typ.value_type) else np.float32

    def load(
        self,
        sample_ids: Sequence[str] | np.ndarray | None = None,
        *,
        what: str = "corpus",
        needs: Sequence[tuple[Sequence[str] | np.ndarray, str]] = (),
    ) -> Embeddings:
        """The vectors of ``sample_ids`` (every row, in stored order, when None), in that order.

        An id the set does not hold is refused, naming who needs it: the first of ``needs``
        (``(ids, what)`` pairs, e.g. one per reshape stage) that holds it, else ``what``.
        """
        stored = self.ids()  # read once, checked unique
        wanted = stored if sample_ids is None else np.asarray(sample_ids, dtype=object)
        if wanted is stored or np.array_equal(wanted, stored):
            rows = np.arange(stored.size)
        else:
            asked = pd.Index(wanted)
            if not asked.is_unique:
                raise TableError(f"{self.where}: the same sample_id was asked for twice")
            rows = pd.Index(stored).get_indexer(asked)
            if (rows < 0).any():
                missing = set(wanted[rows < 0].tolist())
                for ids, need in [*needs, (wanted, what)]:
                    lacking = [s for s in np.asarray(ids, dtype=object).tolist() if s in missing]
                    if lacking:
                        raise TableError(not_covered_message(self.where, self.folders, lacking, need))
        # The vectors alone are read, in stored order; each batch fills the wanted rows it holds.
        vectors = np.empty((wanted.size, self._dim), dtype=self._stored_dtype())
        by_row = np.argsort(rows, kind="stable")
        sorted_rows = rows[by_row]
        first = done = 0  # stored rows read so far; wanted rows filled so far (in stored order)
        for _, flat in self._batches(with_ids=False):
            last = first + flat.shape[0]
            upto = int(np.searchsorted(sorted_rows, last, side="left"))
            if upto > done:
                dest, src = by_row[done:upto], sorted_rows[done:upto] - first
                if src[-1] - src[0] == upto - done - 1 and (np.diff(dest) == 1).all():  # one run: a plain copy
                    vectors[dest[0] : dest[-1] + 1] = flat[src[0] : src[-1] + 1]
                else:
                    vectors[dest] = flat[src]
            first, done = last, upto
        self._check_vectors(vectors, wanted)
        return Embeddings(wanted, vectors, self.meta, self.where, self.folders)

    def verify(self) -> int:
        """Check every stored vector (finite, L2-normalised) and that ids are unique, without keeping
        the vectors; returns the row count."""
        rows = 0
        for ids, flat in self._batches():
            assert ids is not None
            self._check_vectors(flat, ids)
            rows += ids.size
        self.ids()
        return rows

    def _check_vectors(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        tol = 1e-2 if vectors.dtype == np.float16 or self.dtype == "float16" else 1e-3
        step = 1 << 16
        for s in range(0, len(vectors), step):
            block = vectors[s : s + step].astype(np.float32, copy=False)
            norms = np.sqrt(np.einsum("ij,ij->i", block, block))  # NaN or inf anywhere makes its norm so
            if not np.isfinite(norms).all() and not np.isfinite(block).all():
                raise TableError(f"{self.where}: embeddings contain NaN or inf")
            if np.abs(norms - 1).max(initial=0) > tol:
                row = int(np.argmax(np.abs(norms - 1)))
                raise TableError(
                    f"{self.where}: embedding of {ids[s + row]!r} has norm {norms[row]:.4f}; expected L2-normalised"
                )


def same_encoder(a: Embeddings | EmbeddingsFolder, b: Embeddings | EmbeddingsFolder) -> None:
    """Refuse to compare embeddings from different encoders or dims."""
    if a.dim != b.dim or a.encoder != b.encoder:
        raise TableError(
            f"{b.where}: embeddings were made by a different encoder or dim than {a.where} "
            f"({b.encoder.get('name')}/{b.dim} vs {a.encoder.get('name')}/{a.dim}); embed both with one encoder"
        )


@dataclass(frozen=True)
class FolderCoverage:
    """What an embeddings folder holds against what its run was given (from the shards' metadata).

    ``samples``: the samples of the corpus the run embedded (None when the shards do not record
    it: a folder not written by ``curate embed``); ``covered``: samples of the finished shards,
    embedded or rejected; ``rejected``: the rejected sample ids; ``shards``/``shards_expected``:
    finished shards and how many the run plans.
    """

    folder: Path
    samples: int | None
    covered: int
    rejected: frozenset[str]
    shards: int
    shards_expected: int | None

    @property
    def missing(self) -> int:
        """Samples of the run's corpus in no finished shard (0 when unknown)."""
        return 0 if self.samples is None else max(0, self.samples - self.covered)


def embeddings_coverage(directory: str | os.PathLike[str]) -> FolderCoverage:
    """How complete an embeddings folder is, from its shards' ``corpus``, ``shard_size`` and ``shard`` metadata."""
    folder = Path(directory)
    samples: int | None = None
    shard_size: int | None = None
    covered = 0
    rejected: set[str] = set()
    shards = embedding_shards(folder)
    recorded = bool(shards)
    for shard in shards:
        meta = read_metadata(shard)
        corpus, info = meta.get("corpus"), meta.get("shard")
        if not isinstance(corpus, Mapping) or not isinstance(info, Mapping) or "count" not in info:
            recorded = False
            continue
        samples, shard_size = int(corpus["samples"]), meta.get("shard_size")
        covered += int(info["count"])
        rejected.update(str(r["sample_id"]) for r in info.get("rejects") or [])
    if not recorded:
        samples = None
    expected = -(-samples // int(shard_size)) if samples is not None and shard_size else None
    return FolderCoverage(folder, samples, covered, frozenset(rejected), len(shards), expected)


def not_covered_message(
    where: str, folders: Sequence[str | os.PathLike[str]], missing: Sequence[str], what: str
) -> str:
    """Why embeddings lack ``missing`` samples of a ``what`` table, and what to do about each kind.

    Samples the embed run rejected point at its rejects table and at ``curate exclude``, which
    writes the table without them; samples of an unfinished folder at rerunning ``curate embed``.
    """
    head = f"{where}: embeddings do not cover the {what}: {len(missing)} sample(s) missing, e.g. {list(missing[:3])}"
    coverages = []
    for folder in folders:
        try:
            coverages.append(embeddings_coverage(folder))
        except TableError:
            continue
    wanted = set(missing)
    rejected_in = [c for c in coverages if c.rejected & wanted]
    n_rejected = len(wanted & frozenset().union(*[c.rejected for c in rejected_in]))
    parts = []
    if rejected_in:
        tables = " and ".join(str(c.folder / REJECTS_NAME) for c in rejected_in)
        options = " ".join(f"--rejects {c.folder / REJECTS_NAME}" for c in rejected_in)
        parts.append(
            f"{n_rejected} of them were rejected by 'curate embed' (see {tables}); write the table without them "
            f"with 'curate exclude TABLE {options} -o NEW_TABLE' and use NEW_TABLE"
        )
    if n_rejected < len(wanted):
        unfinished = [c for c in coverages if c.missing]
        if unfinished:
            c = unfinished[0]
            parts.append(
                f"{c.folder} is incomplete ({c.missing} of its {c.samples} samples not embedded yet): "
                "rerun the 'curate embed' command that made it to finish it"
            )
        else:
            parts.append("run 'curate embed' on this table")
    return head + "; " + "; ".join(parts)
