"""`curate reshape` end to end: outputs, reproducibility, row-order independence, bad input."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from reshape_helpers import make_dataset, unit, write_corpus, write_embeddings

from curate.cli import cli
from curate.schema import make_metadata, read_frame, write_table


def run(args: list[str]):
    result = CliRunner().invoke(cli, ["reshape", *args])
    return result.exit_code, result.output


def base_args(ds, out: Path, pool: bool = True) -> list[str]:
    args = ["--corpus", str(ds.corpus), "--embeddings", str(ds.embeddings), "-o", str(out), "--device", "cpu"]
    if pool:
        args += ["--pool", str(ds.pool), "--pool-embeddings", str(ds.pool_embeddings)]
    return args


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), seed=1, n_candidates=24)


def test_cli_writes_manifest_decisions_and_summary(ds, tmp_path):
    out = tmp_path / "manifest.parquet"
    code, text = run([*base_args(ds, out), "--group-cap", "5", "--seed", "4"])
    assert code == 0, text
    assert "originals: 150 in" in text and "r = " in text and "manifest:" in text
    manifest, meta = read_frame(out, "manifest")
    decisions, dmeta = read_frame(tmp_path / "decisions.parquet", "decisions")
    assert meta["roots"] == {
        "kadid10k": str(ds.corpus.parent / "train_root"),
        "pool": str(ds.pool.parent / "pool_root"),
    }
    assert (
        meta["seed"] == 4 and meta["params"]["group_cap"] == 5 and meta["encoder"]["name"] == "test-encoder"
    )
    assert set(meta["inputs"]) == {"corpus", "embeddings", "pool", "pool_embeddings"}
    # the paper's rule: originals after DRCDown + all DDCUp samples
    orig_dec = decisions[decisions["origin"] == "original"]
    assert len(orig_dec) == 150
    kept_orig = set(orig_dec["sample_id"][orig_dec["kept"].astype(bool)])
    assert set(manifest["sample_id"][manifest["origin"] == "original"]) == kept_orig
    assert (orig_dec["reason"][~orig_dec["kept"].astype(bool)] == "drc_group_subsampled").all()
    assert (~orig_dec["kept"].astype(bool)).sum() > 0
    up_dec = decisions[decisions["reason"] == "ddc_added"]
    assert set(manifest["sample_id"][manifest["origin"] == "upsampled"]) == set(up_dec["sample_id"])
    for _gid, group in manifest[manifest["group_id"] >= 0].groupby("group_id"):
        size = int(group["group_size"].iloc[0])
        assert len(group) == (size if size <= 5 else max(5, size // 2))


def test_reruns_are_byte_identical(ds, tmp_path):
    out = tmp_path / "manifest.parquet"
    first = []
    for _ in range(2):
        code, text = run([*base_args(ds, out), "--group-cap", "5", "--target-size", "120"])
        assert code == 0, text
        first.append((out.read_bytes(), (tmp_path / "decisions.parquet").read_bytes()))
    assert first[0] == first[1]


def test_shuffled_input_rows_change_nothing(ds, tmp_path):
    rng = np.random.default_rng(0)
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    frame = ds.train.sample(frac=1.0, random_state=3).reset_index(drop=True)
    corpus = write_table(
        frame,
        shuffled / "corpus.parquet",
        "corpus",
        make_metadata("corpus", root=str(ds.corpus.parent / "train_root")),
        sort=False,
    )
    assert pq.read_table(corpus).column("sample_id")[0].as_py() != "kadid/I01"
    ids = list(ds.train_vectors)
    ids = [ids[k] for k in rng.permutation(len(ids))]
    emb = write_embeddings(shuffled / "emb", ids, np.stack([ds.train_vectors[i] for i in ids]), shards=3)
    outs = []
    for c, e, name in ((ds.corpus, ds.embeddings, "plain"), (corpus, emb, "shuffled")):
        out = tmp_path / name / "manifest.parquet"
        args = [
            "--corpus",
            str(c),
            "--embeddings",
            str(e),
            "-o",
            str(out),
            "--device",
            "cpu",
            "--group-cap",
            "5",
            "--pool",
            str(ds.pool),
            "--pool-embeddings",
            str(ds.pool_embeddings),
            "--target-size",
            "100",
        ]
        result = CliRunner().invoke(cli, ["reshape", *args])
        assert result.exit_code == 0, result.output
        outs.append(out)
    for name in ("manifest.parquet", "decisions.parquet"):
        x = pq.read_table(outs[0].with_name(name)).replace_schema_metadata(None)
        y = pq.read_table(outs[1].with_name(name)).replace_schema_metadata(None)
        assert x.equals(y)


def test_downsampling_only_without_pool(ds, tmp_path):
    out = tmp_path / "manifest.parquet"
    code, text = run([*base_args(ds, out, pool=False), "--types", "1,3"])
    assert code == 0, text
    manifest, meta = read_frame(out, "manifest")
    assert set(manifest["origin"]) == {"original"} and set(manifest["distortion"]) == {1, 3}
    assert meta["thresholds"] is None
    decisions, _ = read_frame(tmp_path / "decisions.parquet", "decisions")
    assert (decisions["reason"] == "type_not_selected").sum() == 50


# ---- bad input -------------------------------------------------------------------------------


def expect_error(args: list[str], *needles: str, code: int = 1) -> str:
    exit_code, text = run(args)
    assert exit_code == code, text
    for needle in needles:
        assert needle in text, text
    return text


def test_unknown_preset_refused(ds, tmp_path):
    expect_error(
        [*base_args(ds, tmp_path / "m.parquet"), "--types", "imagenet"], "--types", "not a preset", code=2
    )
    expect_error([*base_args(ds, tmp_path / "m.parquet"), "--levels", "0,7"], "levels are 1-5", code=2)
    assert not (tmp_path / "m.parquet").exists()


def test_pool_without_embeddings_is_a_usage_error(ds, tmp_path):
    args = [
        "--corpus",
        str(ds.corpus),
        "--embeddings",
        str(ds.embeddings),
        "--pool",
        str(ds.pool),
        "-o",
        str(tmp_path / "m.parquet"),
    ]
    expect_error(args, "--pool-embeddings", code=2)


def test_missing_embeddings_refused(ds, tmp_path):
    ids = [s for s in sorted(ds.train_vectors) if s != "kadid/I03_10_04"]
    emb = write_embeddings(tmp_path / "emb", ids, np.stack([ds.train_vectors[i] for i in ids]))
    args = ["--corpus", str(ds.corpus), "--embeddings", str(emb), "-o", str(tmp_path / "m.parquet")]
    expect_error(args, "do not cover", "kadid/I03_10_04")


def test_pool_embeddings_missing_for_a_reference_refused(ds, tmp_path):
    ids = [s for s in sorted(ds.pool_vectors) if s != "pool/P005"]
    emb = write_embeddings(tmp_path / "pemb", ids, np.stack([ds.pool_vectors[i] for i in ids]))
    args = [
        *base_args(ds, tmp_path / "m.parquet", pool=False),
        "--pool",
        str(ds.pool),
        "--pool-embeddings",
        str(emb),
    ]
    expect_error(args, "pool references", "pool/P005")


@pytest.mark.parametrize("change", ["encoder", "dim"])
def test_mixed_encoders_or_dims_refused(ds, tmp_path, change):
    ids = sorted(ds.pool_vectors)
    vectors = np.stack([ds.pool_vectors[i] for i in ids])
    encoder = None
    if change == "encoder":
        encoder = {"name": "another-encoder", "weights": {"tag": "none"}}
    else:
        vectors = unit(np.concatenate([vectors, np.ones((len(ids), 4))], axis=1))
    emb = write_embeddings(tmp_path / "pemb", ids, vectors, encoder=encoder)
    args = [
        *base_args(ds, tmp_path / "m.parquet", pool=False),
        "--pool",
        str(ds.pool),
        "--pool-embeddings",
        str(emb),
    ]
    expect_error(args, "different encoder or dim")


def test_pool_without_references_refused(ds, tmp_path):
    frame = ds.pool_frame[~ds.pool_frame["is_reference"]]
    pool = write_corpus(tmp_path / "pool.parquet", frame, tmp_path)
    args = [
        *base_args(ds, tmp_path / "m.parquet", pool=False),
        "--pool",
        str(pool),
        "--pool-embeddings",
        str(ds.pool_embeddings),
    ]
    expect_error(args, "no reference images")


def test_kept_candidate_without_distorted_images_refused(ds, tmp_path):
    out = tmp_path / "ok" / "manifest.parquet"
    assert run(base_args(ds, out))[0] == 0
    manifest, _ = read_frame(out, "manifest")
    victim = manifest[manifest["origin"] == "upsampled"].iloc[0]
    frame = ds.pool_frame[ds.pool_frame["sample_id"] != victim["sample_id"]]
    pool = write_corpus(tmp_path / "pool.parquet", frame, tmp_path)
    args = [
        *base_args(ds, tmp_path / "m.parquet", pool=False),
        "--pool",
        str(pool),
        "--pool-embeddings",
        str(ds.pool_embeddings),
    ]
    expect_error(
        args,
        f"pool/{victim['ref_id']}",
        f"type {victim['distortion']} level {victim['level']}",
        "curate synthesize",
    )


def test_missing_scores_refused(ds, tmp_path):
    frame = ds.train.copy()
    frame.loc[frame["sample_id"] == "kadid/I02_03_02", ["score", "score_raw"]] = None
    corpus = write_corpus(tmp_path / "corpus.parquet", frame, tmp_path)
    args = ["--corpus", str(corpus), "--embeddings", str(ds.embeddings), "-o", str(tmp_path / "m.parquet")]
    expect_error(args, "no score", "kadid/I02_03_02")


def test_too_few_training_references_refused(ds, tmp_path):
    frame = ds.train[~ds.train["is_reference"] | (ds.train["sample_id"] == "kadid/I01")]
    corpus = write_corpus(tmp_path / "corpus.parquet", frame, tmp_path)
    args = [*base_args(ds, tmp_path / "m.parquet"), "--corpus", str(corpus)]
    expect_error(args, "reference images", "found 1")


def test_missing_label_neighbour_version_refused(tmp_path):
    ds = make_dataset(tmp_path, seed=1, n_candidates=24, levels=(1, 2, 4, 5))
    expect_error(base_args(ds, tmp_path / "m.parquet"), "level 3", "pseudo-label cannot be made")


def test_embedding_rows_read_in_the_asked_order_keeping_float16(tmp_path):

    from curate.schema import EmbeddingsFolder, embeddings_table, make_metadata, write_parquet

    rng = np.random.default_rng(0)
    vectors = unit(rng.normal(size=(6, 8))).astype(np.float16)
    ids = [f"s/{k}" for k in range(6)]
    folder = tmp_path / "emb"
    folder.mkdir()
    meta = make_metadata("embeddings", encoder={"name": "e"}, dim=8, dtype="float16")
    for shard, part in enumerate((slice(0, 4), slice(4, 6))):
        write_parquet(embeddings_table(ids[part], vectors[part], "float16"), folder / f"part-{shard:05d}.parquet", meta)
    opened = EmbeddingsFolder(folder)
    assert opened.dim == 8 and opened.dtype == "float16" and opened.ids().tolist() == ids
    got = opened.load(["s/5", "s/0", "s/3"])
    assert got.vectors.dtype == np.float16
    np.testing.assert_array_equal(got.vectors, vectors[[5, 0, 3]])
    assert got.ids.tolist() == ["s/5", "s/0", "s/3"] and got.dim == 8
    np.testing.assert_array_equal(opened.load().vectors, vectors)
    with pytest.raises(Exception, match="s/9"):
        opened.load(["s/1", "s/9"])
    with pytest.raises(Exception, match="do not cover the rows stage B needs: 1 sample"):
        opened.load(["s/1", "s/9"], needs=[(["s/1"], "rows stage A needs"), (["s/9"], "rows stage B needs")])
    assert opened.verify() == 6
