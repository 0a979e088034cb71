"""Rejected images downstream, incomplete embeddings folders, and tables edited outside curate.

``curate exclude`` leaves rejected rows out; ``curate validate`` refuses an unfinished embeddings
folder; ``curate adopt`` brings back a manifest filtered and saved by pandas or HF ``datasets``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from test_train_support import make_corpus, make_manifest

from curate.cli import cli
from curate.data import read_manifest
from curate.schema import METADATA_KEY, read_metadata


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def corpus_with_broken_images(tmp_path: Path, broken: tuple[str, ...]) -> Path:
    """A scored 3 x 3 corpus whose images named in ``broken`` (e.g. 'I00_2') are not images."""
    corpus = make_corpus(tmp_path, source="toy", n_refs=3, levels=3)
    for name in broken:
        (tmp_path / "data" / "toy" / "imgs" / f"{name}.png").write_bytes(b"not an image")
    return corpus


def test_validate_refuses_an_embeddings_folder_a_run_did_not_finish(tmp_path: Path) -> None:
    corpus = corpus_with_broken_images(tmp_path, ("I00_2",))
    emb = tmp_path / "emb"
    stopped = run("embed", corpus, "-o", emb, "--encoder", "imagestats", "--workers", "0", "--shard-size", "2",
                  "--max-rejects", "0", "--quiet")
    assert stopped.exit_code == 1 and "--max-rejects 0" in stopped.output
    assert len(list(emb.glob("part-*.parquet"))) == 1  # the first shard, holding the reject, then the stop

    result = run("validate", emb)
    assert result.exit_code == 1
    message = result.output.strip().splitlines()[-1]
    assert "incomplete embeddings folder: 7 of the 9 samples" in message and "1 of 5 shards" in message

    finished = run("embed", corpus, "-o", emb, "--encoder", "imagestats", "--workers", "0", "--shard-size", "2",
                   "--max-rejects", "1", "--quiet")
    assert finished.exit_code == 0, finished.output
    result = run("validate", emb)
    assert result.exit_code == 0, result.output
    assert "9 (8 embedded, 1 rejected)" in result.output


def test_rejected_images_point_at_the_rejects_table_and_exclude_leaves_them_out(tmp_path: Path) -> None:
    corpus = corpus_with_broken_images(tmp_path, ("I01_1", "I02_3"))
    emb = tmp_path / "emb"
    assert run("embed", corpus, "-o", emb, "--encoder", "imagestats", "--workers", "0", "--quiet").exit_code == 0
    rejects = emb / "rejects.parquet"

    refused = run("reshape", "--corpus", corpus, "--embeddings", emb, "--device", "cpu", "-o", tmp_path / "m.parquet")
    assert refused.exit_code == 1
    message = refused.output.strip()
    assert "\n" not in message
    assert "2 of them were rejected by 'curate embed'" in message and str(rejects) in message
    assert f"curate exclude TABLE --rejects {rejects}" in message and "run 'curate embed'" not in message

    clean = tmp_path / "corpus.clean.parquet"
    result = run("exclude", corpus, "--rejects", rejects, "-o", clean)
    assert result.exit_code == 0, result.output
    assert "7 of the 9 rows" in result.output
    frame = pd.read_parquet(clean)
    assert len(frame) == 7 and not {"toy/I01_1", "toy/I02_3"} & set(frame["sample_id"])
    meta = read_metadata(clean)
    assert meta["root"] == read_metadata(corpus)["root"]
    (edit,) = meta["edits"]
    assert edit["command"][:2] == ["curate", "exclude"] and edit["rows"] == 7 and edit["source_rows"] == 9
    assert edit["rejects"][0]["path"] == str(rejects) and "sha256" in edit["rejects"][0]

    reshaped = run("reshape", "--corpus", clean, "--embeddings", emb, "--device", "cpu", "-o", tmp_path / "m.parquet")
    assert reshaped.exit_code == 0, reshaped.output
    assert run("validate", tmp_path / "m.parquet").exit_code == 0


def test_samples_of_an_unfinished_folder_say_so(tmp_path: Path) -> None:
    corpus = corpus_with_broken_images(tmp_path, ())
    emb = tmp_path / "emb"
    assert run("embed", corpus, "-o", emb, "--encoder", "imagestats", "--workers", "0", "--shard-size", "4",
               "--quiet").exit_code == 0
    (emb / "part-00001.parquet").unlink()
    refused = run("reshape", "--corpus", corpus, "--embeddings", emb, "--device", "cpu", "-o", tmp_path / "m.parquet")
    assert refused.exit_code == 1
    assert f"{emb} is incomplete (4 of its 9 samples not embedded yet)" in refused.output


def _filtered_by_pandas(manifest: Path, out: Path) -> Path:
    frame = read_manifest(manifest)  # every column + image_path
    frame = frame[frame["level"] <= 2]  # keeps a non-default index, which pandas saves as a column
    frame.loc[frame["level"] == 2, "weight"] = 0.5
    frame.to_parquet(out)
    return out


def _filtered_by_datasets(manifest: Path, out: Path) -> Path:
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("parquet", data_files=str(manifest), split="train")
    loaded.filter(lambda row: row["level"] <= 2).to_parquet(str(out))
    return out


@pytest.mark.parametrize("edit", [_filtered_by_pandas, _filtered_by_datasets], ids=["pandas", "datasets"])
def test_a_manifest_edited_elsewhere_is_adopted_and_accepted_downstream(tmp_path: Path, edit) -> None:
    manifest, roots = make_manifest(tmp_path, sources=("synA", "synB"), n_refs=2, levels=3)
    edited = edit(manifest, tmp_path / "edited.parquet")
    not_curate = run("validate", edited)
    assert not_curate.exit_code == 1 and "not written by curate" in not_curate.output

    adopted = tmp_path / "adopted.parquet"
    result = run("adopt", edited, "--like", manifest, "-o", adopted)
    assert result.exit_code == 0, result.output
    assert "8 of the 12 rows" in result.output

    meta = read_metadata(adopted)
    source_meta = read_metadata(manifest)
    assert meta["format"] == "manifest" and meta["roots"] == source_meta["roots"]
    assert meta["seed"] == source_meta["seed"] and meta["command"] == source_meta["command"]
    (note,) = meta["edits"]
    assert note["command"][:2] == ["curate", "adopt"] and (note["rows"], note["source_rows"]) == (8, 12)
    assert note["edited"]["path"] == str(edited) and note["source"]["path"] == str(manifest)
    frame = read_manifest(adopted)
    assert sorted(frame["sample_id"]) == sorted(
        s for s in read_manifest(manifest)["sample_id"] if not s.endswith("_3")
    )
    if edit is _filtered_by_pandas:
        assert note["changed"] == {"split": 0, "weight": 4} and "image_path" in note["dropped_columns"]
        assert sorted(frame["weight"].tolist()) == [0.5] * 4 + [1.0] * 4

    assert run("validate", adopted, "--check-files").exit_code == 0
    exported = run("export", adopted, "--format", "csv", "-o", tmp_path / "out.csv")
    assert exported.exit_code == 0, exported.output
    assert len(pd.read_csv(tmp_path / "out.csv")) == 8
    trained = run("train", adopted, "-o", tmp_path / "run", "--arch", "resnet18", "--weights", "none", "--crop", "32",
                  "--test-crops", "1", "--epochs", "1", "--batch-size", "4", "--workers", "0")
    assert trained.exit_code == 0, trained.output
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["last"]["epoch"] == 1


def test_adopt_names_rows_that_do_not_come_from_the_source(tmp_path: Path) -> None:
    manifest, _ = make_manifest(tmp_path, n_refs=2, levels=2)
    frame = read_manifest(manifest)

    foreign = frame.copy()
    foreign.loc[1, "sample_id"] = "synA/stranger"
    foreign.to_parquet(tmp_path / "foreign.parquet")
    result = run("adopt", tmp_path / "foreign.parquet", "--like", manifest, "-o", tmp_path / "out.parquet")
    assert result.exit_code == 1 and "1 row(s) are not rows of" in result.output and "'synA/stranger'" in result.output

    relabelled = frame.copy()
    relabelled.loc[2, "score"] = 9.75
    relabelled.to_parquet(tmp_path / "relabelled.parquet")
    result = run("adopt", tmp_path / "relabelled.parquet", "--like", manifest, "-o", tmp_path / "out.parquet")
    assert result.exit_code == 1
    assert "row 2 ('synA/I01_1'): score is 9.75" in result.output and "only split, weight may be edited" in result.output

    no_score = frame.drop(columns=["score"])
    no_score.to_parquet(tmp_path / "no_score.parquet")
    result = run("adopt", tmp_path / "no_score.parquet", "--like", manifest, "-o", tmp_path / "out.parquet")
    assert result.exit_code == 1 and "missing column(s) 'score'" in result.output
    assert not (tmp_path / "out.parquet").exists()


def test_adopting_twice_keeps_both_notes(tmp_path: Path) -> None:
    manifest, _ = make_manifest(tmp_path, n_refs=2, levels=2)
    read_manifest(manifest).iloc[:3].to_parquet(tmp_path / "a.parquet")
    assert run("adopt", tmp_path / "a.parquet", "--like", manifest, "-o", tmp_path / "a2.parquet").exit_code == 0
    read_manifest(tmp_path / "a2.parquet").iloc[:2].to_parquet(tmp_path / "b.parquet")
    assert run("adopt", tmp_path / "b.parquet", "--like", tmp_path / "a2.parquet", "-o", tmp_path / "b2.parquet").exit_code == 0
    edits = read_metadata(tmp_path / "b2.parquet")["edits"]
    assert [e["rows"] for e in edits] == [3, 2]
    assert METADATA_KEY in pq.read_schema(tmp_path / "b2.parquet").metadata
