"""The table formats: refusal of each kind of bad table, exact round trips, deterministic bytes."""

from __future__ import annotations

import json

import iqa_fakes as fakes
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from curate import schema
from curate.cli import cli
from curate.errors import TableError


def corpus_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": ["d/r1", "d/r1_01_01", "d/r1_02_03"],
            "path": ["images/r1.png", "images/r1_01_01.png", "images/r1_02_03.png"],
            "ref_id": ["d/r1"] * 3,
            "is_reference": [True, False, False],
            "distortion": pd.array([None, 1, 2], dtype="Int16"),
            "level": pd.array([None, 1, 3], dtype="Int8"),
            "score": [None, 10.0, 0.0],
            "score_raw": [None, 4.5, 1.5],
            "source": ["d"] * 3,
            "split": [None, "train", "test"],
        }
    )


def meta(**extra):
    return schema.make_metadata("corpus", params={"format": "test"}, root="/data/d", **extra)


def write_raw(path, table: pa.Table, metadata: dict | None) -> None:
    """Write without any validation, to build bad files."""
    kv = {} if metadata is None else {b"curate": json.dumps(metadata).encode()}
    pq.write_table(table.replace_schema_metadata(kv), path)


def good_table() -> pa.Table:
    return schema.to_table(corpus_frame(), "corpus")


def validate_fails(path) -> str:
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message
    assert str(path) in message
    return message


def replace(table: pa.Table, name: str, values, typ=None) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, name, pa.array(values, type=typ or table.schema.field(name).type))


def test_round_trip_exact_with_metadata(tmp_path):
    m = meta(score_normalization={"method": "min-max", "raw_min": 1.5, "raw_max": 4.5, "higher_is_better": True})
    first = schema.write_table(corpus_frame(), tmp_path / "a.parquet", "corpus", m)
    frame, back = schema.read_corpus(first)
    assert back == json.loads(json.dumps(m))
    expected = corpus_frame().sort_values("sample_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(
        frame.astype({"score": "float64", "score_raw": "float64"}),
        expected.astype({"score": "float64", "score_raw": "float64", "is_reference": "boolean"}),
        check_dtype=False,
    )
    assert frame["distortion"].dtype == "Int16" and frame["level"].dtype == "Int8"
    second = schema.write_table(frame, tmp_path / "b.parquet", "corpus", back)
    assert first.read_bytes() == second.read_bytes()


def test_rows_sorted_by_sample_id(tmp_path):
    shuffled = corpus_frame().iloc[[2, 0, 1]]
    path = schema.write_table(shuffled, tmp_path / "c.parquet", "corpus", meta())
    assert schema.read_corpus(path)[0]["sample_id"].tolist() == sorted(shuffled["sample_id"])


def test_ingest_round_trip_and_identical_bytes(tmp_path):
    root = fakes.kadid10k(tmp_path)
    out = tmp_path / "corpus.parquet"
    args = ["ingest", "kadid10k", str(root), "-o", str(out)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    first = out.read_bytes()
    out.unlink()
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert out.read_bytes() == first
    frame, m = schema.read_corpus(out)
    again = schema.write_table(frame, tmp_path / "again.parquet", "corpus", m)
    assert again.read_bytes() == first
    assert m["command"] == ["curate", *args]


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda t: t.drop_columns(["ref_id"]), "missing column(s) 'ref_id'"),
        (lambda t: replace(t, "is_reference", ["yes", "no", "no"], pa.string()), "column 'is_reference' has type string"),
        (lambda t: replace(t, "sample_id", ["d/r1", "d/r1", "d/x"]), "duplicate sample_id 'd/r1'"),
        (lambda t: replace(t, "score", [None, float("nan"), 0.0]), "score is nan"),
        (lambda t: replace(t, "score_raw", [None, float("inf"), 1.0]), "score_raw is inf"),
        (lambda t: replace(t, "score", [None, 11.0, 0.0]), "outside 0-10"),
        (lambda t: replace(t, "path", ["/abs/r1.png", "a.png", "b.png"]), "is absolute"),
        (lambda t: replace(t, "path", ["../r1.png", "a.png", "b.png"]), "escapes the root"),
        (lambda t: replace(t, "path", ["images/./r1.png", "a.png", "b.png"]), "not normalised"),
        (lambda t: replace(t, "ref_id", [None, "d/r1", "d/r1"]), "column 'ref_id' is null"),
        (lambda t: replace(t, "level", [None, 0, 1]), "level 0 must be >= 1"),
    ],
    ids=["missing-col", "mistyped-col", "dup-id", "nan-score", "inf-raw", "range", "abs-path", "escape",
         "unnormalised", "null-required", "level"],
)
def test_bad_table_refused(tmp_path, mutate, expected):
    path = tmp_path / "bad.parquet"
    write_raw(path, mutate(good_table()), meta())
    assert expected in validate_fails(path)
    with pytest.raises(TableError):
        schema.read_corpus(path)


@pytest.mark.parametrize(
    "metadata,expected",
    [
        ({**meta(), "format_version": 99}, "format version 99 is not supported"),
        ({**meta(), "format": "spreadsheet"}, "unknown table format 'spreadsheet'"),
        (None, "no 'curate' metadata"),
    ],
    ids=["version", "format", "no-metadata"],
)
def test_bad_metadata_refused(tmp_path, metadata, expected):
    path = tmp_path / "bad.parquet"
    write_raw(path, good_table(), metadata)
    assert expected in validate_fails(path)


def test_not_parquet(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_text("hello")
    assert "not a readable Parquet file" in validate_fails(path)


def test_write_refuses_bad_rows_and_leaves_nothing(tmp_path):
    bad = corpus_frame()
    bad.loc[1, "sample_id"] = "d/r1"
    with pytest.raises(TableError, match="duplicate sample_id"):
        schema.write_table(bad, tmp_path / "out.parquet", "corpus", meta())
    assert list(tmp_path.iterdir()) == []


def test_wrong_table_kind(tmp_path):
    path = schema.write_table(corpus_frame(), tmp_path / "c.parquet", "corpus", meta())
    with pytest.raises(TableError, match="is a corpus table, expected manifest"):
        schema.read_frame(path, "manifest")


def test_nullable_integers_survive(tmp_path):
    path = schema.write_table(corpus_frame(), tmp_path / "c.parquet", "corpus", meta())
    table = pq.read_table(path)
    assert table.schema.field("distortion").type == pa.int16() and table.column("distortion").null_count == 1
    assert np.isnan(schema.read_corpus(path)[0]["score"].astype("float64").iloc[0])


@pytest.mark.parametrize("dtype", ["float64", "Int16", "object"])
def test_integer_columns_store_the_same_from_every_pandas_form(tmp_path, dtype):
    """Floats with NaN, pandas' nullable integers and Python objects give one stored table."""
    frame = corpus_frame()
    levels = frame["level"].astype("float64")
    frame["level"] = levels.astype(dtype) if dtype != "object" else [None if np.isnan(v) else int(v) for v in levels]
    path = schema.write_table(frame, tmp_path / "c.parquet", "corpus", meta())
    reference = schema.write_table(corpus_frame(), tmp_path / "r.parquet", "corpus", meta())
    assert pq.read_table(path).equals(pq.read_table(reference))


def test_a_fractional_level_is_refused(tmp_path):
    frame = corpus_frame()
    frame["level"] = frame["level"].astype("float64")
    frame.loc[frame["level"].notna().idxmax(), "level"] = 2.5
    with pytest.raises(TableError, match="column 'level': cannot store as int"):
        schema.write_table(frame, tmp_path / "c.parquet", "corpus", meta())


def test_embeddings_load_in_any_order_across_shards(tmp_path):
    """Rows wanted in stored order are copied in runs; any other order or subset gives the same vectors."""
    rng = np.random.default_rng(0)
    ids = [f"s/{k:03d}" for k in range(40)]
    vectors = rng.normal(size=(40, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    folder = tmp_path / "emb"
    folder.mkdir()
    m = schema.make_metadata("embeddings", encoder={"name": "t"}, dim=8, dtype="float32")
    for part, sl in enumerate((slice(0, 25), slice(25, 40))):
        schema.write_parquet(schema.embeddings_table(ids[sl], vectors[sl]), folder / f"part-{part:05d}.parquet", m)
    store = schema.EmbeddingsFolder(folder)
    store.BATCH_ROWS = 10
    for wanted in (ids, ids[:30], ids[5:], ids[::-1], ids[::3], [ids[39], *ids[:39]]):
        got = store.load(wanted)
        expected = vectors[[ids.index(s) for s in wanted]]
        assert list(got.ids) == list(wanted) and np.array_equal(got.vectors, expected)
    with pytest.raises(TableError, match="missing"):
        store.load([*ids, "s/999"])
    with pytest.raises(TableError, match="asked for twice"):
        store.load([ids[3], ids[7], ids[3]])


def test_a_duplicate_id_is_found_in_unsorted_and_sorted_tables(tmp_path):
    """Sorted ids are checked by order; a table that is not sorted by sample_id still gets the full check."""
    frame = schema.sorted_by_id(corpus_frame())
    path = schema.write_table(frame, tmp_path / "c.parquet", "corpus", meta())
    table = pq.read_table(path)
    schema.validate_table(table, "corpus", "c")
    ids = table.column("sample_id").to_pylist()
    for order in (ids[:1] + ids[:-1], list(reversed(ids[:1] + ids[:-1]))):
        bad = table.set_column(table.schema.get_field_index("sample_id"), "sample_id", pa.array(order))
        with pytest.raises(TableError, match=f"duplicate sample_id {ids[0]!r}"):
            schema.validate_table(bad, "corpus", "c")
