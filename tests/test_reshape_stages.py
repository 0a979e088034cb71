"""Reshape's stages on in-memory tables, the ablation switches, and the CLI's defaults from the library."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from reshape_helpers import make_dataset, unit, write_embeddings

from curate.cli import cli
from curate.errors import ParamError
from curate.reshape.downsample import downsample_stage
from curate.reshape.params import DRCParams, ReshapeParams
from curate.reshape.pipeline import reshape, reshape_tables
from curate.schema import Embeddings, read_frame


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("stages"), seed=1, n_candidates=24)


def embeddings(vectors: dict[str, np.ndarray]) -> Embeddings:
    ids = sorted(vectors)
    return Embeddings(np.asarray(ids, dtype=object), np.stack([vectors[i] for i in ids]).astype(np.float32))


def test_stages_on_frames_give_the_tables_reshape_writes(ds, tmp_path):
    params = ReshapeParams(target_size=120, redundancy=DRCParams(group_cap=5), device="cpu")
    in_memory = reshape_tables(ds.train, embeddings(ds.train_vectors), ds.pool_frame, embeddings(ds.pool_vectors), params)
    out = tmp_path / "manifest.parquet"
    reshape(ds.corpus, ds.embeddings, out, pool=ds.pool, pool_embeddings=ds.pool_embeddings, params=params)
    manifest, _ = read_frame(out, "manifest")
    decisions, _ = read_frame(tmp_path / "decisions.parquet", "decisions")
    assert in_memory.manifest["sample_id"].tolist() == manifest["sample_id"].tolist()
    np.testing.assert_allclose(in_memory.manifest["score"].astype(float), manifest["score"].astype(float), atol=1e-6)
    for column in ("sample_id", "stage", "reason"):
        assert in_memory.decisions[column].tolist() == decisions[column].tolist()
    assert in_memory.decisions["kept"].tolist() == decisions["kept"].astype(bool).tolist()
    assert len(in_memory.manifest) == 120 == in_memory.decisions["kept"].sum()


def test_downsample_stage_on_a_frame():
    rng = np.random.default_rng(0)
    base = unit(rng.normal(size=8))
    vectors = np.stack([unit(base + 0.001 * rng.normal(size=8)) for _ in range(5)] + [unit(rng.normal(size=8))])
    originals = pd.DataFrame(
        {"sample_id": [f"s/{k}" for k in range(6)], "ref_id": ["r"] * 6, "score": [5.0] * 5 + [1.0]}
    )
    stage = downsample_stage(originals, vectors.astype(np.float32), DRCParams(group_cap=2), device="cpu")
    d = stage.decisions
    # one group of 5 (kept: max(2, floor(5 / 2)) = 2) and one sample in no pair
    assert d["reason"].tolist().count("drc_group_kept") == 2
    assert d["reason"].tolist().count("drc_group_subsampled") == 3
    assert d["reason"].iloc[5] == "drc_not_redundant" and set(d["group_size"][:5]) == {5}
    off = downsample_stage(originals, None, DRCParams(), enabled=False)
    assert off.decisions["kept"].all() and set(off.decisions["reason"]) == {"drc_off"}
    assert (off.groups.group_id == -1).all() and len(off.groups.pairs) == 0


def test_no_drc_keeps_every_original(ds, tmp_path):
    out = tmp_path / "manifest.parquet"
    result = CliRunner().invoke(
        cli,
        ["reshape", "--corpus", str(ds.corpus), "--embeddings", str(ds.embeddings), "--pool", str(ds.pool),
         "--pool-embeddings", str(ds.pool_embeddings), "--no-drc", "--device", "cpu", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "DRCDown off" in result.output
    manifest, meta = read_frame(out, "manifest")
    decisions, _ = read_frame(tmp_path / "decisions.parquet", "decisions")
    assert (manifest["origin"] == "original").sum() == 150 and (manifest["group_id"] == -1).all()
    originals = decisions[decisions["origin"] == "original"]
    assert set(originals["reason"]) == {"drc_off"} and originals["kept"].all()
    assert meta["params"]["drc"] is False and meta["params"]["candidates"] == "ddcup"


def test_candidates_all_takes_every_candidate_without_selection(ds):
    params = ReshapeParams(candidates="all", device="cpu")
    result = reshape_tables(ds.train, embeddings(ds.train_vectors), ds.pool_frame, embeddings(ds.pool_vectors), params)
    chosen = result.decisions[result.decisions["stage"] == "ddc_select"]
    assert len(chosen) == 24 and set(chosen["reason"]) == {"ddc_selected"} and not chosen["kept"].any()
    upsampled = result.manifest[result.manifest["origin"] == "upsampled"]
    assert len(upsampled) == 24 * 3 * 3  # every candidate x types (1, 3, 10) x levels (1, 3, 5)
    assert result.summary["thresholds"] is None and result.summary["candidates_kept"] == 24
    selected = reshape_tables(ds.train, embeddings(ds.train_vectors), ds.pool_frame, embeddings(ds.pool_vectors),
                              ReshapeParams(device="cpu"))
    assert selected.summary["candidates_kept"] < 24


def test_params_parse_and_refuse_with_the_option_name():
    params = ReshapeParams(types="livec", levels="5,1")
    assert params.types == (1, 3, 10, 17, 18, 25) and params.levels == (1, 5)
    assert ReshapeParams(types=(3, 1)).types == (1, 3)
    for bad, needle in (
        (dict(types="imagenet"), "--types"),
        (dict(levels="0,7"), "--levels"),
        (dict(target_size=0), "--target-size 0: must be at least 1"),
        (dict(weighting="softmax"), "--weighting 'softmax': expected one of official"),
        (dict(candidates="some"), "--candidates"),
        (dict(device="gpu"), "--device gpu: expected auto, cpu, cuda or cuda:N"),
    ):
        with pytest.raises(ParamError, match=needle):
            ReshapeParams(**bad)
    with pytest.raises(ParamError, match="--score-gap 0: must be above 0"):
        DRCParams(score_gap=0)
    assert DRCParams.from_record({"similarity_threshold": 0.85, "types": [1]}) == DRCParams(similarity_threshold=0.85)


def test_reshape_cli_ranges_are_the_library_s():
    result = CliRunner().invoke(cli, ["reshape", "--corpus", "c", "--embeddings", "e", "-o", "m", "--group-cap", "0"])
    assert result.exit_code == 2 and "--group-cap" in result.output
    result = CliRunner().invoke(cli, ["reshape", "--corpus", "c", "--embeddings", "e", "-o", "m", "--keep-fraction", "0"])
    assert result.exit_code == 2 and "--keep-fraction" in result.output


def test_each_stage_reads_only_the_embedding_rows_it_needs(ds, tmp_path):
    refs = sorted(s for s in ds.train_vectors if "_" not in s)  # the corpus references only
    only_refs = write_embeddings(tmp_path / "refs-emb", refs, np.stack([ds.train_vectors[s] for s in refs]))
    base = ["reshape", "--corpus", str(ds.corpus), "--embeddings", str(only_refs), "--pool", str(ds.pool),
            "--pool-embeddings", str(ds.pool_embeddings), "--device", "cpu"]
    ok = CliRunner().invoke(cli, [*base, "--no-drc", "-o", str(tmp_path / "a" / "manifest.parquet")])
    assert ok.exit_code == 0, ok.output
    drc = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "b" / "manifest.parquet")])
    assert drc.exit_code == 1 and "do not cover the selected originals DRCDown compares: 150 sample(s)" in drc.output
    trim = CliRunner().invoke(cli, [*base, "--no-drc", "--target-size", "50", "-o", str(tmp_path / "c.parquet")])
    assert trim.exit_code == 1 and "selected originals --target-size may trim" in trim.output
    no_refs = write_embeddings(tmp_path / "no-refs", ["kadid/I01_01_01"], ds.train_vectors["kadid/I01_01_01"][None])
    base[4] = str(no_refs)
    refs_missing = CliRunner().invoke(cli, [*base, "--no-drc", "-o", str(tmp_path / "d.parquet")])
    assert refs_missing.exit_code == 1 and "corpus references DDCUp measures candidates against" in refs_missing.output
