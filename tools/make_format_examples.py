"""Write the example files and JSON Schemas under manifests/ from curate.schema, so they always match.

    python tools/make_format_examples.py [OUT_DIR]      (default: manifests/)

Writes ``examples/corpus.parquet``, ``examples/manifest.parquet``, ``examples/decisions.parquet``,
``examples/rejects.parquet``, ``examples/embeddings/part-00000.parquet`` (a tiny KADID-like corpus
of 2 references) and ``tables.schema.json`` (one row of each table) and ``metadata.schema.json``
(the ``curate`` metadata object). Output is deterministic: rerunning gives identical files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate import schema  # noqa: E402
from curate.fsio import atomic_write_text, set_command_line  # noqa: E402
from curate.reshape.params import ReshapeParams  # noqa: E402

EXAMPLE_ROOT = "/data/iqa/kadid10k"
SHA = "0" * 64  # stands in for real input fingerprints in the examples


def corpus_frame() -> pd.DataFrame:
    rows = []
    for ref in ("I01", "I02"):
        rows.append((f"kadid10k/{ref}", f"images/{ref}.png", f"kadid10k/{ref}", True, None, None, None, None))
        for t, lev, raw in ((1, 1, 4.57), (1, 5, 1.37), (10, 3, 2.9)):
            sid = f"{ref}_{t:02d}_{lev:02d}"
            rows.append((f"kadid10k/{sid}", f"images/{sid}.png", f"kadid10k/{ref}", False, t, lev, None, raw))
    df = pd.DataFrame(rows, columns=["sample_id", "path", "ref_id", "is_reference", "distortion", "level", "score",
                                     "score_raw"])
    raw = df["score_raw"].astype(float)
    df["score"] = 10 * (raw - raw.min()) / (raw.max() - raw.min())
    df["source"] = "kadid10k"
    df["split"] = None
    return df


def corpus_meta(df: pd.DataFrame) -> dict[str, Any]:
    raw = df["score_raw"].astype(float)
    return schema.make_metadata(
        "corpus",
        params={"format": "kadid10k"},
        inputs={"dmos.csv": {"kind": "file", "size": 371424, "sha256": SHA}},
        root=EXAMPLE_ROOT,
        source="kadid10k",
        score_normalization={"method": "min-max", "raw_min": float(raw.min()), "raw_max": float(raw.max()),
                             "higher_is_better": True},
        reader={"label_file": "dmos.csv"},
    )


def manifest_frame(corpus: pd.DataFrame) -> pd.DataFrame:
    kept = corpus[corpus["sample_id"] != "kadid10k/I02_01_01"].copy()
    kept["origin"] = "original"
    kept["label_kind"] = "human"
    kept["pseudo_refs"] = None
    kept["pseudo_weights"] = None
    kept["group_id"] = np.where(kept["sample_id"] == "kadid10k/I01_01_01", 0, -1)
    kept["group_size"] = np.where(kept["group_id"] == 0, 2, 1)
    kept["weight"] = 1.0
    kept = kept[kept["score"].notna()]
    up = {
        "sample_id": "pool/cat_01_03", "path": "dist/cat_01_03.png", "ref_id": "pool/cat", "is_reference": False,
        "distortion": 1, "level": 3, "score": 6.1, "score_raw": None, "source": "pool", "split": None,
        "origin": "upsampled", "label_kind": "pseudo", "pseudo_refs": ["kadid10k/I01", "kadid10k/I02"],
        "pseudo_weights": [0.51, 0.49], "group_id": -1, "group_size": 1, "weight": 1.0,
    }
    return pd.concat([kept, pd.DataFrame([up])], ignore_index=True)


def decisions_frame(corpus: pd.DataFrame) -> pd.DataFrame:
    """Decisions as ``curate reshape`` writes them: distorted originals, pool candidates, DDCUp rows."""
    rows = []
    for sid, ref, is_ref in zip(corpus["sample_id"], corpus["ref_id"], corpus["is_reference"], strict=True):
        if is_ref:  # references are not training samples: reshape records no decision for them
            continue
        if sid.endswith(("I01_01_01", "I02_01_01")):
            kept = sid.endswith("I01_01_01")
            rows.append((sid, ref, "original", "drc", kept, "drc_group_kept" if kept else "drc_group_subsampled",
                         0, 2, None))
        else:
            rows.append((sid, ref, "original", "drc", True, "drc_not_redundant", -1, 1, None))
    rows.append(("pool/cat", "pool/cat", "upsampled", "ddc_select", False, "ddc_selected", -1, 1,
                 "nearest=0.310000;farthest=0.720000"))
    rows.append(("pool/cat_01_03", "pool/cat", "upsampled", "ddc_add", True, "ddc_added", -1, 1, None))
    rows.append(("pool/dog", "pool/dog", "upsampled", "ddc_select", False, "ddc_not_novel", -1, 1,
                 "nearest=0.210000;farthest=0.650000"))
    return pd.DataFrame(rows, columns=[f.name for f in schema.DECISION_FIELDS])


def rejects_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [("pool/broken", "broken.jpg", "embed", "truncated", "truncated: broken.jpg: image file is truncated")],
        columns=[f.name for f in schema.REJECT_FIELDS],
    )


def embeddings_table(corpus: pd.DataFrame, dim: int = 8) -> pa.Table:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(corpus), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return schema.embeddings_table(sorted(corpus["sample_id"]), vectors)


ENCODER = {
    "name": "clip",
    "model": "ViT-B-32",
    "weights": {"tag": "openai", "file": "open_clip_pytorch_model.bin", "sha256": SHA},
    "preprocessing": {"size": 224, "crop": "center", "interpolation": "bicubic",
                      "mean": [0.4815, 0.4578, 0.4082], "std": [0.2686, 0.2613, 0.2758]},
}


def embeddings_meta(dim: int, ids: list[str] | None = None) -> dict[str, Any]:
    """Shard metadata as ``curate embed`` writes it (``ids``: the shard's sorted sample ids)."""
    meta = schema.make_metadata(
        "embeddings",
        params={"encoder": "clip", "model": "ViT-B-32", "pretrained": "openai", "batch_size": 64, "workers": 0,
                "engine": "local", "precision": "fp32", "max_pixels": 16_000_000},
        inputs={"corpus": {"kind": "file", "size": 5120, "sha256": SHA}},
        encoder=ENCODER,
        dim=dim,
        dtype="float32",
        corpus={"samples": 8, "sha256": SHA},
        shard_size=10_000,
        notes=[],
        device={"type": "cpu", "precision": "fp32"},
    )
    if ids:
        meta["shard"] = {"index": 0, "count": len(ids), "first": ids[0], "last": ids[-1], "ids_sha256": SHA,
                         "rejects": []}
    return meta


# --------------------------------------------------------------------------------------------
# JSON Schemas


def _json_type(typ: pa.DataType) -> dict[str, Any]:
    if pa.types.is_string(typ):
        return {"type": "string"}
    if pa.types.is_boolean(typ):
        return {"type": "boolean"}
    if pa.types.is_integer(typ):
        bits = typ.bit_width
        return {"type": "integer", "minimum": -(2 ** (bits - 1)), "maximum": 2 ** (bits - 1) - 1,
                "x-arrow-type": str(typ)}
    if pa.types.is_floating(typ):
        return {"type": "number", "x-arrow-type": str(typ)}
    if pa.types.is_list(typ) or pa.types.is_fixed_size_list(typ):
        out = {"type": "array", "items": _json_type(typ.value_type), "x-arrow-type": str(typ)}
        if pa.types.is_fixed_size_list(typ):
            out["minItems"] = out["maxItems"] = typ.list_size
        return out
    raise TypeError(f"no JSON type for {typ}")


EXTRA_RULES: dict[str, dict[str, Any]] = {
    "score": {"minimum": schema.SCORE_MIN, "maximum": schema.SCORE_MAX},
    "level": {"minimum": 1},
    "origin": {"enum": list(schema.ORIGINS)},
    "label_kind": {"enum": list(schema.LABEL_KINDS)},
    "path": {"not": {"pattern": r"^(/|[A-Za-z]:|\.\./)|(^|/)\.\.?(/|$)|//"}},
}


def row_schema(fields: list[pa.Field], title: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in fields:
        spec = _json_type(f.type)
        spec.update(EXTRA_RULES.get(f.name, {}) if f.name != "origin" or title != "decisions" else {})
        if f.nullable:
            spec = {"anyOf": [spec, {"type": "null"}]}
        props[f.name] = spec
    return {
        "title": f"one row of a {title} table",
        "type": "object",
        "properties": props,
        "required": [f.name for f in fields],
        "additionalProperties": False,
    }


def tables_schema() -> dict[str, Any]:
    emb = [pa.field("sample_id", pa.string(), nullable=False),
           pa.field("embedding", pa.list_(pa.float32()), nullable=False)]
    defs = {name: row_schema(fields, name) for name, fields in schema.FIELDS_BY_FORMAT.items()}
    defs["decisions"]["properties"]["origin"] = {"enum": list(schema.ORIGINS)}
    defs["embeddings"] = row_schema(emb, "embeddings")
    defs["embeddings"]["properties"]["embedding"]["description"] = (
        "fixed_size_list<float32 or float16>[dim], L2-normalised; dim is in the metadata")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "curate/tables.schema.json",
        "title": "curate tables: the columns of one row of each table (Parquet column order = property order)",
        "description": "Table-wide rules not expressible per row: sample_id is unique; rows are sorted by sample_id.",
        "$defs": defs,
    }


def metadata_schema() -> dict[str, Any]:
    by_format = []
    for fmt, version in schema.FORMAT_VERSIONS.items():
        cond: dict[str, Any] = {"if": {"properties": {"format": {"const": fmt}}},
                                "then": {"properties": {"format_version": {"const": version}}}}
        if fmt == "corpus":
            cond["then"]["required"] = ["root"]
        if fmt == "manifest":
            cond["then"]["required"] = ["roots"]
        if fmt == "embeddings":
            cond["then"]["required"] = ["encoder", "dim", "dtype"]
        by_format.append(cond)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "curate/metadata.schema.json",
        "title": "the 'curate' key-value metadata object of every curate Parquet file",
        "type": "object",
        "properties": {
            "format": {"enum": list(schema.FORMAT_VERSIONS)},
            "format_version": {"type": "integer"},
            "curate_version": {"type": "string"},
            "command": {"type": "array", "items": {"type": "string"}},
            "params": {"type": "object"},
            "seed": {"type": ["integer", "null"]},
            "inputs": {"type": "object", "additionalProperties": {"type": "object",
                                                                  "properties": {"kind": {"type": "string"}},
                                                                  "required": ["kind"]}},
            "root": {"type": "string", "description": "corpus: absolute image root; path resolves against it"},
            "roots": {"type": "object", "additionalProperties": {"type": "string"},
                      "description": "manifest: image root per source"},
            "source": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "score_normalization": {
                "type": "object",
                "properties": {
                    "method": {"enum": ["min-max", "constant", "none"]},
                    "raw_min": {"type": ["number", "null"]},
                    "raw_max": {"type": ["number", "null"]},
                    "higher_is_better": {"type": ["boolean", "null"]},
                },
                "required": ["method", "raw_min", "raw_max", "higher_is_better"],
            },
            "reader": {"type": "object", "description": "corpus: facts from the format reader"},
            "encoder": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            "dim": {"type": "integer", "minimum": 1},
            "dtype": {"enum": ["float32", "float16"]},
            "edits": {"type": "array", "description": "edits after the step that made the table, oldest first",
                      "items": {"type": "object",
                                "properties": {"command": {"type": "array", "items": {"type": "string"}},
                                               "curate_version": {"type": "string"},
                                               "note": {"type": "string"},
                                               "source": {"type": "object"},
                                               "rows": {"type": "integer", "minimum": 0},
                                               "source_rows": {"type": "integer", "minimum": 0}},
                                "required": ["command", "curate_version", "note", "source", "rows",
                                             "source_rows"]}},
        },
        "required": ["format", "format_version", "curate_version", "command", "params", "seed", "inputs"],
        "allOf": by_format,
    }


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False) + "\n"


def build(out: Path) -> dict[str, Path]:
    """Write every example under ``out``; return name -> path."""
    examples = out / "examples"
    paths: dict[str, Path] = {}
    corpus = corpus_frame()
    set_command_line(["ingest", "kadid10k", EXAMPLE_ROOT, "-o", "corpus.parquet"])
    paths["corpus"] = schema.write_table(corpus, examples / "corpus.parquet", "corpus", corpus_meta(corpus))
    set_command_line(["reshape", "--corpus", "corpus.parquet", "--embeddings", "embeddings", "--pool", "pool.parquet",
                      "--pool-embeddings", "pool-embeddings", "--types", "1,10", "-o", "manifest.parquet"])
    reshape_meta = {
        "params": ReshapeParams(types=(1, 10), levels=(1, 3, 5)).as_dict(),
        "seed": 0,
        "inputs": {name: {"kind": "file", "size": 5120, "sha256": SHA}
                   for name in ("corpus", "embeddings", "pool", "pool_embeddings")},
        "roots": {"kadid10k": EXAMPLE_ROOT, "pool": "/data/iqa/pool"},
        "thresholds": {"r": 0.278, "maxT_all": 0.91},
        "weighting": "official",
        "encoder": ENCODER,
    }
    paths["manifest"] = schema.write_table(manifest_frame(corpus), examples / "manifest.parquet", "manifest",
                                           schema.make_metadata("manifest", **reshape_meta))
    paths["decisions"] = schema.write_table(decisions_frame(corpus), examples / "decisions.parquet", "decisions",
                                            schema.make_metadata("decisions", **reshape_meta))
    set_command_line(["embed", "corpus.parquet", "-o", "embeddings"])
    rejects_meta = schema.make_metadata("rejects", inputs={"corpus": {"kind": "file", "size": 5120, "sha256": SHA}},
                                        encoder=ENCODER, corpus={"samples": 8, "sha256": SHA})
    paths["rejects"] = schema.write_table(rejects_frame(), examples / "rejects.parquet", "rejects", rejects_meta)
    table = embeddings_table(corpus)
    dim = table.schema.field("embedding").type.list_size
    paths["embeddings"] = examples / "embeddings"
    ids = table.column("sample_id").to_pylist()
    schema.write_parquet(table, paths["embeddings"] / "part-00000.parquet", embeddings_meta(dim, ids))
    set_command_line(None)
    for name, value in (("tables.schema.json", tables_schema()), ("metadata.schema.json", metadata_schema())):
        atomic_write_text(out / name, dump_json(value))
        paths[name] = out / name
    return paths


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=ROOT / "manifests",
                        help="where the examples and schemas go (default: manifests/)")
    for name, path in build(parser.parse_args(argv).out_dir).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
