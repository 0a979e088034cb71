"""curate analyze: numbers checked against the construction and brute force, files, refusals, determinism."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from reshape_helpers import make_dataset

from curate.analyze import analyze
from curate.analyze.density import gini
from curate.analyze.params import AnalyzeParams
from curate.cli import cli
from curate.errors import CurateError
from curate.sampling import subsample
from curate.schema import embeddings_table, make_metadata, write_parquet, write_table

DIM = 32
TYPES = (1, 2, 3, 9, 10)
LEVELS = (1, 2, 3, 4, 5)
REFS = ("A", "B", "C", "D")
# Reference k is unit(g + s_k e_k): different spreads, so r and maxT_all are not degenerate.
SPREAD = (0.6, 0.8, 1.0, 1.2)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _centre(k: int, s: float) -> np.ndarray:
    v = np.zeros(DIM)
    v[0], v[k] = 1.0, s
    return _unit(v)


def _scores(ref: str) -> np.ndarray:
    """Scores of a blob's 25 samples (types x levels, row-major), chosen to give known groups.

    A: all equal -> one group of 25. B: 4 classes 2.5 apart -> groups 7, 6, 6, 6. C: by level, 2
    apart -> five groups of 5. D: steps of 0.4 chain every sample -> one group of 25.
    """
    k = np.arange(len(TYPES) * len(LEVELS))
    levels = np.tile(np.array(LEVELS), len(TYPES))
    return {
        "A": np.full(k.size, 5.0),
        "B": 2.5 * (k % 4),
        "C": 2.0 * levels - 1.0,
        "D": 0.4 * k,
    }[ref]


EXPECTED_GROUPS = sorted([25, 7, 6, 6, 6, 5, 5, 5, 5, 5, 25])


def _write_embeddings(
    folder: Path, ids: list[str], vectors: np.ndarray, encoder: str = "test-encoder"
) -> None:
    table = embeddings_table(ids, vectors)
    meta = make_metadata("embeddings", encoder={"name": encoder}, dim=DIM, dtype="float32")
    write_parquet(table, folder / "part-00000.parquet", meta)


def _rows(prefix: str, ref: str, types: tuple[int, ...], levels: tuple[int, ...]) -> list[dict]:
    rows = [dict(sample_id=f"{prefix}/{ref}", path=f"{ref}.png", ref_id=ref, is_reference=True)]
    for t in types:
        for lv in levels:
            rows.append(
                dict(
                    sample_id=f"{prefix}/{ref}_{t:02d}_{lv}",
                    path=f"{ref}_{t:02d}_{lv}.png",
                    ref_id=ref,
                    is_reference=False,
                    distortion=t,
                    level=lv,
                )
            )
    return rows


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Corpus (4 blobs), pool (4 candidates, one eligible with distorted versions) and a manifest."""
    root = tmp_path_factory.mktemp("analyze-inputs")
    rng = np.random.default_rng(7)
    rows, vectors = [], []
    for k, ref in enumerate(REFS):
        centre = _centre(k + 1, SPREAD[k])
        blob = _rows("c", ref, TYPES, LEVELS)
        blob[0]["score"] = None
        for row, score in zip(blob[1:], _scores(ref), strict=True):
            row["score"] = float(score)
        rows += blob
        vectors.append(centre)
        vectors += list(_unit(centre + 0.015 * rng.normal(size=(len(blob) - 1, DIM))))
    corpus = pd.DataFrame(rows).assign(source="test")
    corpus_vectors = np.asarray(vectors)
    write_table(corpus, root / "corpus.parquet", "corpus", make_metadata("corpus", root="img"))
    _write_embeddings(root / "emb", corpus["sample_id"].tolist(), corpus_vectors)

    # pool: P1 eligible (g + 0.92 e10), P2 not novel (g + 0.6 e10), P3 out of distribution
    # (g + 1.5 e11), P4 a near copy of reference A (not novel). P1 has distorted versions.
    g = np.zeros(DIM)
    g[0] = 1.0
    cands = {
        "P1": _unit(g + 0.92 * np.eye(DIM)[10]),
        "P2": _unit(g + 0.6 * np.eye(DIM)[10]),
        "P3": _unit(g + 1.5 * np.eye(DIM)[11]),
        "P4": _unit(_centre(1, SPREAD[0]) + 0.01 * rng.normal(size=DIM)),
    }
    prows, pvecs = [], []
    for name, centre in cands.items():
        blob = _rows("p", name, (1, 3), (1, 3, 5)) if name == "P1" else _rows("p", name, (), ())
        prows += blob
        pvecs.append(centre)
        pvecs += list(_unit(centre + 0.015 * rng.normal(size=(len(blob) - 1, DIM))))
    pool = pd.DataFrame(prows).assign(source="pool")
    write_table(pool, root / "pool.parquet", "corpus", make_metadata("corpus", root="pool"))
    _write_embeddings(root / "pool-emb", pool["sample_id"].tolist(), np.asarray(pvecs))

    # manifest: the corpus samples minus 5 of group A, plus P1's six distorted versions
    samples = corpus[~corpus["is_reference"]].copy()
    removed = [f"c/A_{t:02d}_1" for t in TYPES]
    originals = samples[~samples["sample_id"].isin(removed)].assign(origin="original", label_kind="human")
    up = pool[(pool["ref_id"] == "P1") & ~pool["is_reference"]].copy()
    up = up.assign(origin="upsampled", label_kind="pseudo", score=7.5)
    up["pseudo_refs"] = [["A", "B"]] * len(up)
    up["pseudo_weights"] = [[0.5, 0.5]] * len(up)
    manifest = pd.concat([originals, up], ignore_index=True).assign(group_id=-1, group_size=1, weight=1.0)
    meta = make_metadata("manifest", roots={"test": "img", "pool": "pool"})
    write_table(manifest, root / "manifest.parquet", "manifest", meta)
    return {
        "root": root,
        "corpus": root / "corpus.parquet",
        "embeddings": root / "emb",
        "pool": root / "pool.parquet",
        "pool_embeddings": root / "pool-emb",
        "manifest": root / "manifest.parquet",
        "ref_vectors": corpus_vectors[corpus["is_reference"].to_numpy(bool)],
        "candidate_vectors": np.stack(list(cands.values())),
    }


def _run(inputs: dict, out: Path, **kw) -> dict:
    args = {k: inputs[k] for k in ("pool", "pool_embeddings", "manifest")}
    args.update({k: v for k, v in kw.items() if k in args})
    params = AnalyzeParams(seed=3, **{k: v for k, v in kw.items() if k not in args})
    analyze(inputs["corpus"], inputs["embeddings"], out, params=params, quiet=True, **args)
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def report(inputs: dict) -> tuple[Path, dict]:
    out = inputs["root"] / "report"
    return out, _run(inputs, out)


def test_clusters_found_on_separated_blobs_are_pure_by_reference(report: tuple[Path, dict]) -> None:
    clusters = report[1]["before"]["clusters"]
    assert clusters["found"] == 4
    assert clusters["noise_share"] == 0.0
    assert clusters["reference_purity"] == 1.0
    # every blob holds the 5 types equally
    assert clusters["distortion_purity"] == pytest.approx(0.2)
    assert sorted(c["top_reference"] for c in clusters["table"]) == list(REFS)
    assert all(c["size"] == 25 for c in clusters["table"])
    assert [row["reference_purity"] for row in clusters["purity_by_level"]] == [1.0] * 5


def test_redundancy_groups_match_the_construction(report: tuple[Path, dict]) -> None:
    red = report[1]["before"]["redundancy"]
    sizes = sorted(s for s, count in red["size_histogram"] for _ in range(count))
    assert sizes == EXPECTED_GROUPS
    assert red["groups"] == 11 and red["in_groups"] == 100 and red["largest_group"] == 25
    assert red["groups_above_cap"] == 2 and red["samples_above_cap"] == 50
    assert red["share_above_cap"] == 0.5
    # DRCDown keeps max(20, floor(25/2)) = 20 of each group of 25
    assert red["drcdown_would_remove"] == 10
    assert red["size_gini"] == pytest.approx(gini(np.array(EXPECTED_GROUPS)))
    assert red["sample_weighted_group_size"] == pytest.approx(sum(s * s for s in EXPECTED_GROUPS) / 100)


def test_thresholds_and_pool_placement_equal_brute_force(inputs: dict, report: tuple[Path, dict]) -> None:
    refs = inputs["ref_vectors"].astype(np.float32).astype(np.float64)
    dist = 1.0 - refs @ refs.T
    off = dist + np.diag(np.full(len(refs), np.inf))
    r = float(np.median(off.min(axis=1)))
    max_spread = float(dist.max())
    content = report[1]["content"]
    assert content["references"] == 4
    assert content["r"] == pytest.approx(r, abs=1e-6)
    assert content["maxT_all"] == pytest.approx(max_spread, abs=1e-6)
    assert content["nearest_distance"]["max"] == pytest.approx(off.min(axis=1).max(), abs=1e-6)

    cands = inputs["candidate_vectors"].astype(np.float32).astype(np.float64)
    cd = 1.0 - cands @ refs.T
    novel = cd.min(axis=1) > r
    inside = cd.max(axis=1) < max_spread
    pool = content["pool"]
    assert (pool["candidates"], pool["novel"], pool["in_distribution"], pool["eligible"]) == (
        4,
        int(novel.sum()),
        int(inside.sum()),
        int((novel & inside).sum()),
    )
    # the construction: P1 eligible, P2 and P4 not novel, P3 novel but out of distribution
    assert (novel.tolist(), inside.tolist()) == ([True, False, True, False], [True, True, False, True])
    assert pool["min_distance"]["min"] == pytest.approx(cd.min(axis=1).min(), abs=1e-6)


def test_before_and_after_a_manifest(report: tuple[Path, dict]) -> None:
    s = report[1]
    assert s["reshape"] == {
        "manifest_rows": 101,
        "originals_kept": 95,
        "originals_removed": 5,
        "originals_outside_analysed_corpus": 0,
        "upsampled": 6,
        "pseudo_labelled": 6,
        "new_contents": 1,
    }
    after = s["after"]
    assert after["samples"] == 101 and after["by_origin"] == {"original": 95, "upsampled": 6}
    # group A lost 5 members (20 left: at the cap, no longer above it)
    sizes = sorted(sz for sz, count in after["redundancy"]["size_histogram"] for _ in range(count))
    assert 20 in sizes and sizes.count(25) == 1
    assert after["redundancy"]["groups_above_cap"] == 1
    # the references behind the manifest: the 4 training references + P1
    assert s["content"]["after"]["references"] == 5
    assert s["content"]["after"]["new_contents"] == 1


def test_report_files_and_html_links(report: tuple[Path, dict]) -> None:
    out, _ = report
    pngs = sorted(p.name for p in out.glob("*.png"))
    expected = {
        "map_level.png",
        "map_distortion.png",
        "map_clusters.png",
        "map_origin.png",
        "purity_by_level.png",
        "cluster_sizes.png",
        "redundancy_groups.png",
        "scores.png",
        "nn_distances.png",
        "pool_placement.png",
        "gallery.png",  # the corpus's own images, one reference by type and level
    }
    assert set(pngs) == expected
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "index.html").read_text()
    linked = sorted(re.findall(r'<img src="([^"]+)"', html))
    assert linked == pngs
    assert "http" not in html and "<script" not in html
    assert 'href="pool_placement.csv"' in html
    table = pd.read_csv(out / "pool_placement.csv")
    assert table["sample_id"].tolist() == ["p/P1", "p/P2", "p/P3", "p/P4"]
    assert table["eligible"].tolist() == [True, False, False, False]
    # no temporary folder left beside the report
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".report")]


def test_summary_records_inputs_and_params(report: tuple[Path, dict]) -> None:
    s = report[1]
    assert s["format"] == "analyze_report" and s["seed"] == 3
    assert set(s["inputs"]) == {"corpus", "embeddings", "pool", "pool_embeddings", "manifest"}
    assert all("sha256" in v for v in s["inputs"].values())
    assert s["params"]["similarity_threshold"] == 0.9 and s["params"]["score_gap"] == 1.0
    assert s["params"]["group_cap"] == 20
    assert s["encoder"] == {"name": "test-encoder"}


def test_same_inputs_and_seed_give_identical_files(inputs: dict, report: tuple[Path, dict]) -> None:
    again = inputs["root"] / "again"
    _run(inputs, again)
    first = report[0]
    for name in sorted(p.name for p in first.iterdir()):
        assert (again / name).read_bytes() == (first / name).read_bytes(), name


def test_sample_cap_limits_hdbscan_not_redundancy(inputs: dict, tmp_path: Path) -> None:
    s = _run(inputs, tmp_path / "capped", sample_cap=40, pool=None, pool_embeddings=None, manifest=None)
    assert s["before"]["clusters"]["sampled"] == 40 and s["before"]["clusters"]["of"] == 100
    assert s["before"]["redundancy"]["samples"] == 100
    assert s["before"]["redundancy"]["groups"] == 11
    assert "pool" not in s["content"] and "after" not in s
    assert not (tmp_path / "capped" / "map_origin.png").exists()


def test_types_that_match_nothing_are_refused(inputs: dict, tmp_path: Path) -> None:
    with pytest.raises(CurateError, match="no non-reference samples of types 7"):
        _run(inputs, tmp_path / "none", types=(7,), pool=None, pool_embeddings=None, manifest=None)


def test_mixed_encoders_are_refused(inputs: dict, tmp_path: Path) -> None:
    other = tmp_path / "other-emb"
    pool = pd.read_parquet(inputs["pool"])
    _write_embeddings(other, pool["sample_id"].tolist(), _pool_vectors(inputs), encoder="another-encoder")
    with pytest.raises(CurateError, match="different encoder"):
        _run(inputs, tmp_path / "mixed", pool_embeddings=other)
    assert not (tmp_path / "mixed").exists()
    result = CliRunner().invoke(
        cli,
        [
            "analyze",
            "--corpus",
            str(inputs["corpus"]),
            "--embeddings",
            str(inputs["embeddings"]),
            "--pool",
            str(inputs["pool"]),
            "--pool-embeddings",
            str(other),
            "-o",
            str(tmp_path / "mixed"),
        ],
    )
    assert result.exit_code == 1
    assert "different encoder" in result.output and "Traceback" not in result.output


def _pool_vectors(inputs: dict) -> np.ndarray:
    from curate.schema import EmbeddingsFolder

    return EmbeddingsFolder(inputs["pool_embeddings"]).load().vectors


def test_bad_requests_are_refused(inputs: dict, tmp_path: Path) -> None:
    with pytest.raises(CurateError, match="upsampled row"):
        _run(inputs, tmp_path / "r1", pool=None, pool_embeddings=None)
    with pytest.raises(CurateError, match="--pool needs --pool-embeddings"):
        _run(inputs, tmp_path / "r2", pool_embeddings=None, manifest=None)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(CurateError, match="holds no curate analyze report"):
        _run(inputs, taken, pool=None, pool_embeddings=None, manifest=None)
    assert (taken / "notes.txt").read_text() == "mine"
    runner = CliRunner()
    base = ["analyze", "--corpus", str(inputs["corpus"]), "--embeddings", str(inputs["embeddings"])]
    result = runner.invoke(cli, [*base, "--types", "nope", "-o", str(tmp_path / "r3")])
    assert result.exit_code == 2 and "--types" in result.output
    result = runner.invoke(cli, [*base, "--pool", str(inputs["pool"]), "-o", str(tmp_path / "r4")])
    assert result.exit_code == 2 and "--pool-embeddings" in result.output


def test_cli_writes_a_report_and_replaces_an_earlier_one(inputs: dict, tmp_path: Path) -> None:
    out = tmp_path / "cli-report"
    base = [
        "analyze",
        "--corpus",
        str(inputs["corpus"]),
        "--embeddings",
        str(inputs["embeddings"]),
        "--types",
        "1,2",
        "-o",
        str(out),
    ]
    result = CliRunner().invoke(cli, base)
    assert result.exit_code == 0, result.output
    assert "index.html" in result.output and "4 references" in result.output
    typed = json.loads((out / "summary.json").read_text())
    assert typed["before"]["samples"] == 40 and typed["params"]["types"] == [1, 2]
    assert typed["before"]["by_distortion"] == {"1": 20, "2": 20}
    result = CliRunner().invoke(cli, [*base[:-4], "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["before"]["samples"] == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli-report"]


def test_subsample_is_seeded_and_independent_of_row_order() -> None:
    ids = np.array([f"s{k:04d}" for k in range(500)], dtype=object)
    pick = set(ids[subsample(ids, 50, seed=1)])
    assert len(pick) == 50
    shuffled = ids[np.random.default_rng(0).permutation(ids.size)]
    assert set(shuffled[subsample(shuffled, 50, seed=1)]) == pick
    assert set(ids[subsample(ids, 50, seed=2)]) != pick
    assert subsample(ids, 600, seed=1).tolist() == list(range(500))


def test_gini_matches_the_mean_absolute_difference() -> None:
    sizes = np.array([1, 1, 1, 2, 5, 25, 3, 1])
    brute = np.abs(sizes[:, None] - sizes[None, :]).sum() / (2 * sizes.size**2 * sizes.mean())
    assert gini(sizes) == pytest.approx(brute)
    assert gini(np.full(7, 4)) == 0.0


def test_a_corpus_without_references_still_gets_a_density_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ids = [f"live/{k:03d}" for k in range(30)]
    corpus = pd.DataFrame(
        {
            "sample_id": ids,
            "path": [f"{k:03d}.jpg" for k in range(30)],
            "ref_id": ids,
            "is_reference": False,
            "score": np.linspace(0, 10, 30),
            "source": "live",
        }
    )
    write_table(corpus, tmp_path / "c.parquet", "corpus", make_metadata("corpus", root="img"))
    vectors = _unit(np.repeat(np.eye(DIM)[:3], 10, axis=0) + 0.02 * rng.normal(size=(30, DIM)))
    _write_embeddings(tmp_path / "e", ids, vectors)
    analyze(tmp_path / "c.parquet", tmp_path / "e", tmp_path / "r", quiet=True, params=AnalyzeParams(min_cluster_size=5))
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert "at least 2 reference images" in s["content"]["note"]
    assert s["before"]["clusters"]["found"] == 3 and s["before"]["clusters"]["reference_purity"] == 0.1
    assert s["before"]["by_distortion"] == {"none": 30}
    assert not (tmp_path / "r" / "nn_distances.png").exists()
    assert "at least 2 reference images" in (tmp_path / "r" / "index.html").read_text()


def test_cluster_structure_purity_and_levels() -> None:
    from curate.analyze.density import cluster_structure

    labels = np.array([0, 0, 0, 0, 1, 1, 1, -1])
    reference = np.array(["a", "a", "a", "b", "c", "d", "e", "a"])
    distortion = np.array([1, 1, 2, 2, 3, 3, 3, -1])
    level = np.array([1, 1, 1, 1, 5, 5, 5, 0])
    score = np.array([9.0, 9.0, 8.0, 8.0, 1.0, 2.0, 3.0, np.nan])
    s = cluster_structure(labels, reference, distortion, level, score)
    assert s["found"] == 2 and s["clustered"] == 7 and s["noise_share"] == pytest.approx(1 / 8)
    first, second = s["table"]
    assert (first["top_reference"], first["reference_purity"], first["references"]) == ("a", 0.75, 2)
    # a tie between types 1 and 2 goes to the smaller code
    assert (first["top_distortion"], first["distortion_purity"]) == (1, 0.5)
    assert (second["reference_purity"], second["distortion_purity"], second["mean_score"]) == (
        1 / 3,
        1.0,
        2.0,
    )
    assert s["reference_purity"] == pytest.approx((3 + 1) / 7)
    assert s["distortion_purity"] == pytest.approx((2 + 3) / 7)
    by_level = {row["level"]: row for row in s["purity_by_level"]}
    assert by_level[1]["reference_purity"] == 0.75 and by_level[5]["distortion_purity"] == 1.0


def test_a_manifest_is_analysed_with_the_thresholds_it_was_reshaped_with(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "data", seed=2, with_pool=False)
    manifest = tmp_path / "manifest.parquet"
    base = ["--corpus", str(ds.corpus), "--embeddings", str(ds.embeddings), "--device", "cpu"]
    reshaped = CliRunner().invoke(
        cli, ["reshape", *base, "--similarity-threshold", "0.97", "--score-gap", "0.6", "-o", str(manifest)]
    )
    assert reshaped.exit_code == 0, reshaped.output

    def analysed(*extra: str) -> dict:
        out = tmp_path / f"report{len(list(tmp_path.iterdir()))}"
        result = CliRunner().invoke(cli, ["analyze", *base, "--manifest", str(manifest), *extra, "-o", str(out)])
        assert result.exit_code == 0, result.output
        return json.loads((out / "summary.json").read_text()) | {"_html": (out / "index.html").read_text()}

    s = analysed()
    assert s["params"]["similarity_threshold"] == 0.97 and s["params"]["score_gap"] == 0.6
    assert s["thresholds_source"] == {
        "similarity_threshold": "manifest", "score_gap": "manifest", "group_cap": "manifest", "keep_fraction": "manifest"
    }
    assert "0.97 <span" in s["_html"] and "(from the manifest)" in s["_html"]
    # the groups are those of the manifest's thresholds, not of the defaults
    explicit = analysed("--similarity-threshold", "0.97", "--score-gap", "0.6")
    default = analysed("--similarity-threshold", "0.9", "--score-gap", "1.0")
    assert s["before"]["redundancy"] == explicit["before"]["redundancy"] != default["before"]["redundancy"]
    assert explicit["thresholds_source"]["similarity_threshold"] == "given"
    assert explicit["thresholds_source"]["group_cap"] == "manifest"
    plain = CliRunner().invoke(cli, ["analyze", *base, "-o", str(tmp_path / "no-manifest")])
    assert plain.exit_code == 0 and "cos > 0.9 (default)" in plain.output
