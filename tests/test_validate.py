"""``curate validate``: detection of each table kind, the summary, --check-files, examples in sync."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import iqa_fakes as fakes
import pandas as pd
import pytest
from click.testing import CliRunner

from curate import schema
from curate.cli import cli

REPO = Path(__file__).resolve().parents[1]


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def load_examples_tool():
    spec = importlib.util.spec_from_file_location("make_format_examples", REPO / "tools" / "make_format_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    out = tmp_path_factory.mktemp("formats")
    return load_examples_tool().build(out)


def kadid_corpus(tmp_path) -> tuple[Path, Path]:
    root = fakes.kadid10k(tmp_path)
    out = tmp_path / "corpus.parquet"
    assert run("ingest", "kadid10k", str(root), "-o", str(out)).exit_code == 0
    return root, out


def test_corpus_summary(tmp_path):
    _, out = kadid_corpus(tmp_path)
    result = run("validate", str(out))
    assert result.exit_code == 0, result.output
    text = result.output
    assert "valid corpus" in text
    for line in ("rows             10", "references       2", "distortions      2 (1, 25)", "levels           2 (1, 5)",
                 "score range      0.000 - 10.000", "sources          kadid10k 10"):
        assert line in text, text


def test_check_files_passes_then_reports_broken_images(tmp_path):
    root, out = kadid_corpus(tmp_path)
    ok = run("validate", str(out), "--check-files")
    assert ok.exit_code == 0 and "10 of 10 open" in ok.output
    (root / "images" / "I01_01_05.png").unlink()
    data = (root / "images" / "I02.png").read_bytes()
    (root / "images" / "I02.png").write_bytes(data[: len(data) // 2])
    rejects = tmp_path / "rejects.parquet"
    bad = run("validate", str(out), "--check-files", "--rejects", str(rejects))
    assert bad.exit_code == 1
    assert "kadid10k/I01_01_05: missing" in bad.stderr and "kadid10k/I02: " in bad.stderr
    assert "2 of 10 images failed to open" in bad.stderr
    frame, _ = schema.read_frame(rejects, "rejects")
    assert dict(zip(frame.sample_id, frame.reason, strict=True))["kadid10k/I01_01_05"] == "missing"
    assert set(frame.reason) <= {"missing", "truncated", "unreadable"} and len(frame) == 2


@pytest.mark.parametrize("name,kind,expect", [
    ("corpus", "corpus", "references"),
    ("manifest", "manifest", "label kinds"),
    ("decisions", "decisions", "kept"),
    ("rejects", "rejects", "reasons"),
    ("embeddings", "embeddings folder", "dim      8"),
])
def test_detects_each_kind(examples, name, kind, expect):
    result = run("validate", str(examples[name]))
    assert result.exit_code == 0, result.output
    assert f"valid {kind}" in result.output and expect in result.output


def test_check_files_refused_for_tables_without_images(examples):
    result = run("validate", str(examples["decisions"]), "--check-files")
    assert result.exit_code == 1 and "--check-files applies to a corpus or manifest" in result.stderr


def test_embeddings_not_normalised_refused(tmp_path, examples):
    tool = load_examples_tool()
    corpus = tool.corpus_frame()
    table = tool.embeddings_table(corpus)
    import pyarrow as pa
    import pyarrow.compute as pc

    doubled = pa.FixedSizeListArray.from_arrays(pc.multiply(table.column("embedding").combine_chunks().flatten(), 2.0), 8)
    table = table.set_column(1, "embedding", doubled)
    schema.write_parquet(table, tmp_path / "emb" / "part-00000.parquet", tool.embeddings_meta(8))
    result = run("validate", str(tmp_path / "emb"))
    assert result.exit_code == 1 and "L2-normalised" in result.stderr


def test_committed_examples_match_the_generator(examples):
    for name in ("tables.schema.json", "metadata.schema.json"):
        assert (REPO / "manifests" / name).read_text() == examples[name].read_text(), f"rerun tools/make_format_examples.py ({name})"
    for name in ("corpus", "manifest", "decisions", "rejects"):
        committed, cmeta = schema.read_frame(REPO / "manifests" / "examples" / f"{name}.parquet", name)
        fresh, fmeta = schema.read_frame(examples[name], name)
        pd.testing.assert_frame_equal(committed, fresh)
        assert {k: v for k, v in cmeta.items() if k != "curate_version"} == {
            k: v for k, v in fmeta.items() if k != "curate_version"}
    committed = schema.EmbeddingsFolder(REPO / "manifests" / "examples" / "embeddings").load()
    fresh = schema.EmbeddingsFolder(examples["embeddings"]).load()
    assert committed.ids.tolist() == fresh.ids.tolist() and (committed.vectors == fresh.vectors).all()


def test_examples_obey_the_json_schemas(examples):
    jsonschema = pytest.importorskip("jsonschema")
    tables = json.loads(examples["tables.schema.json"].read_text())
    meta_schema = json.loads(examples["metadata.schema.json"].read_text())
    for name in ("corpus", "manifest", "decisions", "rejects"):
        table, meta = schema.read_table(examples[name], name)
        jsonschema.validate(meta, meta_schema)
        row_schema = {**tables["$defs"][name], "$defs": tables["$defs"]}
        for row in table.to_pylist():
            jsonschema.validate(row, row_schema)
    jsonschema.validate(schema.EmbeddingsFolder(examples["embeddings"]).load().meta, meta_schema)
    bad = schema.read_table(examples["corpus"], "corpus")[0].to_pylist()[0] | {"path": "../x.png"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, tables["$defs"]["corpus"])


def test_check_files_on_a_manifest_uses_the_root_of_each_source(tmp_path):
    tool = load_examples_tool()
    manifest = tool.manifest_frame(tool.corpus_frame())
    roots = {"kadid10k": tmp_path / "kadid", "pool": tmp_path / "pool"}
    for src, rel in zip(manifest.source, manifest.path, strict=True):
        fakes.image(roots[src] / rel)
    meta = schema.make_metadata("manifest", roots={k: str(v) for k, v in roots.items()})
    path = schema.write_table(manifest, tmp_path / "m.parquet", "manifest", meta)
    assert run("validate", str(path), "--check-files").exit_code == 0
    (roots["pool"] / "dist" / "cat_01_03.png").unlink()
    bad = run("validate", str(path), "--check-files")
    assert bad.exit_code == 1 and "pool/cat_01_03: missing" in bad.stderr
