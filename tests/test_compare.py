"""``curate compare`` on tiny synthetic data: the table, resumption, selection, leaks, statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from reshape_helpers import corpus_rows, unit, write_corpus, write_embeddings

import curate.train as train_package
from curate.cli import cli
from curate.compare import CompareParams, compare, parse_variants
from curate.compare.stats import Interval, spearman_columns, srcc_interval, verdict
from curate.errors import CurateError

TYPES = (1, 3)
LEVELS = (1, 2, 3, 4, 5)
DIM = 16


def _world(tmp: Path, *, leak: bool = True) -> dict:
    """Training corpus, pool and one target set whose features carry the level (and so the score)."""
    rng = np.random.default_rng(7)
    type_dir = {t: unit(rng.normal(size=DIM)) for t in TYPES}
    centre = unit(rng.normal(size=DIM))

    def content(n: int) -> np.ndarray:
        return unit(centre + 0.9 * rng.normal(size=(n, DIM)))

    def versions(prefix: str, refs: list[str], ref_vec: np.ndarray) -> dict[str, np.ndarray]:
        out = {f"{prefix}/{r}": ref_vec[k] for k, r in enumerate(refs)}
        for k, r in enumerate(refs):
            for t in TYPES:
                for lv in LEVELS:
                    mix = 0.17 * lv
                    out[f"{prefix}/{r}_{t:02d}_{lv:02d}"] = unit(
                        (1 - mix) * ref_vec[k] + mix * type_dir[t] + 0.03 * rng.normal(size=DIM)
                    )
        return out

    def scores(refs: list[str]) -> dict:
        return {(r, t, lv): float(np.clip(9.5 - 1.8 * lv + rng.normal(0, 0.3), 0, 10))
                for r in refs for t in TYPES for lv in LEVELS}

    train_refs = [f"I{k:02d}" for k in range(1, 11)]
    train_vec = versions("kadid", train_refs, content(10))
    train = corpus_rows("kadid", "kadid10k", train_refs, list(TYPES), list(LEVELS), scores(train_refs))
    (tmp / "train_root").mkdir(parents=True, exist_ok=True)
    corpus = write_corpus(tmp / "corpus.parquet", train, tmp / "train_root")
    ids = sorted(train_vec)
    emb = write_embeddings(tmp / "emb", ids, np.stack([train_vec[i] for i in ids]), shards=2)

    cands = [f"P{k:02d}" for k in range(8)]
    pool_vec = versions("pool", cands, content(8))
    pool_frame = corpus_rows("pool", "pool", cands, list(TYPES), list(LEVELS), None)
    (tmp / "pool_root").mkdir(parents=True, exist_ok=True)
    pool = write_corpus(tmp / "pool.parquet", pool_frame, tmp / "pool_root")
    pids = sorted(pool_vec)
    pool_emb = write_embeddings(tmp / "pool_emb", pids, np.stack([pool_vec[i] for i in pids]))

    test_refs = [f"T{k:02d}" for k in range(1, 7)]
    test_vec = versions("target", test_refs, content(6))
    test = corpus_rows("target", "target", test_refs, list(TYPES), list(LEVELS), scores(test_refs))
    if leak:  # a planted near-duplicate: one target content is a training content
        test_vec["target/T01"] = train_vec["kadid/I03"].copy()
    (tmp / "test_root").mkdir(parents=True, exist_ok=True)
    target = write_corpus(tmp / "target.parquet", test, tmp / "test_root")
    tids = sorted(test_vec)
    target_emb = write_embeddings(tmp / "target_emb", tids, np.stack([test_vec[i] for i in tids]))
    return {"corpus": corpus, "embeddings": emb, "pool": pool, "pool_embeddings": pool_emb,
            "eval_sets": {"target": target}, "eval_embeddings": {"target": target_emb}}


def _params(**changes) -> CompareParams:
    base = dict(types=TYPES, variants=None, seeds=2,
                resamples=200, train={"epochs": 6, "batch_size": 16})
    base.update(changes)
    return CompareParams(**base)


def _run(world: dict, out: Path, params: CompareParams):
    return compare(world["corpus"], world["embeddings"], out, eval_sets=world["eval_sets"], params=params,
                   pool=world["pool"], pool_embeddings=world["pool_embeddings"],
                   eval_embeddings=world["eval_embeddings"], quiet=True)


def test_compare_writes_the_table_selects_on_validation_and_reports_the_leak(tmp_path):
    world = _world(tmp_path)
    result = _run(world, tmp_path / "cmp", _params())
    out = tmp_path / "cmp"
    table = pd.read_csv(out / "results.csv")
    head = table[table["selection"] == "val_best"]
    assert sorted(set(head["variant"])) == ["all-candidates", "ddc", "drc", "original", "paper", "sized"]
    assert len(head) == 6 * 2 and set(head["seed"]) == {0, 1}
    assert {"srcc", "plcc", "epoch", "rows", "val_srcc"} <= set(table.columns)
    assert "test_best" not in set(table["selection"])  # only when asked for
    # the sized variant has exactly the original's rows, seed by seed
    for seed in (0, 1):
        rows = head[head["seed"] == seed].set_index("variant")["rows"]
        assert rows["sized"] == rows["original"] and rows["paper"] != rows["original"]
        upsampled = head[head["seed"] == seed].set_index("variant")["upsampled_rows"]
        assert upsampled["all-candidates"] == 8 * len(TYPES) * 3 > upsampled["ddc"] == upsampled["paper"] > 0
        assert upsampled["original"] == upsampled["drc"] == 0
    from curate.schema import read_metadata

    recorded = {run.parent.name: read_metadata(run / "manifest.parquet")["params"]
                for run in out.glob("runs/*/seed-0")}
    assert [recorded[v]["drc"] for v in ("original", "drc", "ddc", "paper")] == [False, True, False, True]
    assert recorded["all-candidates"]["candidates"] == "all" and recorded["paper"]["candidates"] == "ddcup"

    for run_dir in sorted(out.glob("runs/*/seed-*")):
        seed = int(run_dir.name.split("-")[1])
        history = [json.loads(x) for x in (run_dir / "run" / "metrics.jsonl").read_text().splitlines()]
        vals = [r["val"]["srcc"] for r in history]
        summary = json.loads((run_dir / "run" / "summary.json").read_text())
        # selection on the validation split of training references, never on the target
        assert summary["val_best"]["epoch"] == 1 + int(np.argmax(vals))
        val_refs = set(pd.read_parquet(out / "data" / f"seed-{seed}" / "val_corpus.parquet")["ref_id"])
        manifest = pd.read_parquet(run_dir / "manifest.parquet")
        assert val_refs and not val_refs & set(manifest["ref_id"])
        assert not set(manifest["sample_id"]) & set(pd.read_parquet(world["eval_sets"]["target"])["sample_id"])

    summary = json.loads((out / "summary.json").read_text())
    entry = summary["targets"]["target"]
    assert entry["n_references"] == 6 and entry["n_images"] == 6 * 10
    for name, v in entry["variants"].items():
        assert v["srcc_interval"][0] <= v["srcc_mean"] <= v["srcc_interval"][1]
        if name != "original":
            d = v["difference"]
            assert d["verdict"] in ("better", "worse", "within noise")
            assert d["srcc"] == pytest.approx(np.mean(d["per_seed"]), abs=1e-9)
    assert "within noise" in entry["sentence"] or "beyond noise" in entry["sentence"]
    assert "cannot resolve small effects" in entry["sentence"]  # 6 test references: says so

    leaks = pd.read_csv(out / "leaks.csv")
    flagged = leaks[leaks["leak"]]
    assert flagged["sample_id"].tolist() == ["target/T01"] and flagged["test_images"].tolist() == [10]
    assert flagged["nearest_sample_id"].tolist() == ["kadid/I03"] and flagged["cosine"].iloc[0] > 0.999
    assert summary["leaks"]["targets"]["target"]["above_threshold"] == 1
    assert any("leak check target: 1 of 6 contents" in line for line in result.lines())
    for name in ("comparison.png", "curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "index.html").read_text()
    assert "paired difference" in page and "Leak check" in page
    assert "within noise" in page or "beyond noise" in page


def test_exclude_leaks_drops_the_leaked_content_from_every_manifest(tmp_path):
    world = _world(tmp_path)
    _run(world, tmp_path / "cmp", _params(variants=parse_variants("paper", have_pool=True), seeds=1,
                                          exclude_leaks=True))
    for manifest in (tmp_path / "cmp").glob("runs/*/seed-0/manifest.parquet"):
        assert "I03" not in set(pd.read_parquet(manifest)["ref_id"])


def test_a_killed_compare_reruns_only_the_missing_runs_and_gives_the_same_table(tmp_path, monkeypatch):
    world = _world(tmp_path, leak=False)
    params = _params(variants=parse_variants("paper", have_pool=True))
    _run(world, tmp_path / "whole", params)

    real_train = train_package.train
    calls: list[str] = []

    def dying_train(manifest, out_dir, **kwargs):
        calls.append(str(out_dir))
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed during the third run
        return real_train(manifest, out_dir, **kwargs)

    monkeypatch.setattr(train_package, "train", dying_train)
    with pytest.raises(KeyboardInterrupt):
        _run(world, tmp_path / "parts", params)
    monkeypatch.setattr(train_package, "train", lambda *a, **k: calls.append(str(a[1])) or real_train(*a, **k))
    calls.clear()
    _run(world, tmp_path / "parts", params)
    assert len(calls) == 2  # the killed run and the one never started; the two finished runs are kept
    assert (tmp_path / "whole" / "results.csv").read_bytes() == (tmp_path / "parts" / "results.csv").read_bytes()
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    parts = json.loads((tmp_path / "parts" / "summary.json").read_text())
    assert whole["targets"] == parts["targets"]


def test_compare_refuses_bad_requests(tmp_path):
    world = _world(tmp_path, leak=False)
    with pytest.raises(CurateError, match="other inputs or settings"):
        _run(world, tmp_path / "cmp", _params(variants=("original",), seeds=1))
        _run(world, tmp_path / "cmp", _params(variants=("original",), seeds=2))
    with pytest.raises(CurateError, match="needs its embeddings"):
        compare(world["corpus"], world["embeddings"], tmp_path / "x", eval_sets=world["eval_sets"],
                params=_params(trainer="full", variants=("original",)), quiet=True)
    with pytest.raises(CurateError, match="give --pool"):
        parse_variants("paper", have_pool=False)
    with pytest.raises(CurateError, match="not one of"):
        parse_variants("papper", have_pool=True)
    with pytest.raises(CurateError, match="--online-drc needs --trainer full"):
        _params(online_drc=True)
    with pytest.raises(CurateError, match="--seeds 0: must be at least 1"):
        _params(seeds=0)


def test_cli_compare_prints_the_table(tmp_path):
    world = _world(tmp_path, leak=False)
    args = ["compare", "--corpus", str(world["corpus"]), "--embeddings", str(world["embeddings"]),
            "--pool", str(world["pool"]), "--pool-embeddings", str(world["pool_embeddings"]), "--types", "1,3",
            "--eval", f"target={world['eval_sets']['target']}",
            "--eval-embeddings", f"target={world['eval_embeddings']['target']}", "--variants", "paper",
            "--seeds", "1", "--epochs", "3", "--resamples", "100", "--val-refs", "I01,I02",
            "--report-test-best", "-o", str(tmp_path / "cmp")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "original" in result.output and "paper" in result.output and "verdict" in result.output
    table = pd.read_csv(tmp_path / "cmp" / "results.csv")
    assert "test_best" in set(table["selection"])
    assert set(pd.read_parquet(tmp_path / "cmp" / "data" / "seed-0" / "val_corpus.parquet")["ref_id"]) == {"I01", "I02"}
    bad = CliRunner().invoke(cli, args[:-1] + [str(tmp_path / "cmp2"), "--val-refs", "I99"])
    assert bad.exit_code == 1 and "I99" in bad.output


# ---- statistics ----------------------------------------------------------------------------


def test_spearman_columns_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    y = rng.normal(size=50).round(1)  # ties
    pred = rng.normal(size=(3, 50)) + y
    expected = [spearmanr(p, y).statistic for p in pred]
    assert spearman_columns(pred, y) == pytest.approx(expected)


def test_bootstrap_interval_is_paired_and_reflects_the_number_of_references():
    rng = np.random.default_rng(2)
    n_refs, per = 40, 10
    clusters = np.repeat([f"r{k}" for k in range(n_refs)], per)
    y = rng.normal(size=n_refs * per)
    good = np.stack([y + rng.normal(scale=0.5, size=y.size) for _ in range(3)])
    bad = np.stack([y + rng.normal(scale=2.0, size=y.size) for _ in range(3)])
    better = srcc_interval(good, y, clusters, baseline=bad, resamples=300)
    assert better.low > 0 and verdict(better, [0.2, 0.3, 0.25]) == "better"
    same = srcc_interval(good, y, clusters, baseline=good, resamples=300)
    assert same.estimate == 0 and verdict(same, [0.0, 0.0, 0.0]) == "within noise"
    # fewer test references: a wider interval around the same kind of effect
    few = srcc_interval(good[:, :40], y[:40], clusters[:40], baseline=bad[:, :40], resamples=300)
    assert few.high - few.low > better.high - better.low
    # an interval that excludes zero is still noise when the seeds disagree in sign
    assert verdict(Interval(0.05, 0.01, 0.09), [0.1, -0.02, 0.07]) == "within noise"


def test_the_sentence_says_why_an_interval_that_excludes_zero_is_still_noise():
    from curate.compare.report import _sentence

    def variant(mean, interval, verdict_words):
        return {"srcc_mean": mean, "srcc_sd": 0.01, "difference": {"srcc": mean - 0.5, "interval": interval,
                                                                    "verdict": verdict_words}}

    entry = {"n_images": 600, "n_references": 60, "variants": {
        "original": {"srcc_mean": 0.5, "srcc_sd": 0.01, "srcc_interval": [0.45, 0.55]},
        "drc": variant(0.47, [-0.05, -0.001], "within noise"),
        "ddc": variant(0.51, [-0.02, 0.04], "within noise"),
        "paper": variant(0.58, [0.02, 0.14], "better"),
    }}
    text = _sentence("t", entry, CompareParams(seeds=3), "original")
    assert "drc -0.030 (95% CI [-0.050, -0.001]): within noise (the interval excludes 0, but the seeds" in text
    assert "ddc +0.010 (95% CI [-0.020, +0.040]): within noise;" in text
    assert "paper +0.080 (95% CI [+0.020, +0.140]): better than original, beyond noise" in text


def test_too_few_independent_test_units_give_no_verdict():
    clear = Interval(0.05, 0.01, 0.09)
    assert verdict(clear, [0.04, 0.05, 0.06], units=12) == "better"
    assert verdict(clear, [0.04, 0.05, 0.06], units=4) == "within noise"


def test_resample_groups_map_references_to_their_group(tmp_path):
    from curate.compare.report import read_resample_groups, resample_units

    path = tmp_path / "groups.csv"
    path.write_text("ref_id,group\nI61,cat\nI62,cat\nt/I63,cup\n")
    groups = read_resample_groups(path)
    refs = np.array(["t/I61", "t/I62", "t/I63", "t/I64", "t/I61"])
    assert resample_units(refs, groups, "t").tolist() == ["group:cat", "group:cat", "group:cup", "t/I64", "group:cat"]
    assert resample_units(refs, None, "t") is refs
    with pytest.raises(CurateError, match="names none of target 't'"):
        resample_units(np.array(["t/X1"]), groups, "t")
    path.write_text("ref_id,group\nI61,cat\nI61,dog\n")
    with pytest.raises(CurateError, match=r"row 2: ref_id 'I61' is in two groups"):
        read_resample_groups(path)
    path.write_text("ref,group\nI61,cat\n")
    with pytest.raises(CurateError, match="needs columns ref_id and group"):
        read_resample_groups(path)
    with pytest.raises(CurateError, match="no such file"):
        read_resample_groups(tmp_path / "none.csv")


def test_the_comparison_figure_carries_the_verdicts_and_says_when_units_are_too_few(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from curate.compare.report import plot_comparison
    from curate.compare.stats import MIN_UNITS

    def variant(mean, verdict=None):
        v = {"srcc_per_seed": [mean - 0.01, mean + 0.01], "srcc_mean": mean, "srcc_sd": 0.01}
        if verdict:
            v["difference"] = {"srcc": mean - 0.5, "interval": [0.01, 0.2], "verdict": verdict, "per_seed": [0.1, 0.1]}
        return v

    titles, ticks = [], []
    real_title, real_ticks = Axes.set_title, Axes.set_xticks

    def set_title(self, text, *args, **kwargs):
        titles.append(text)
        return real_title(self, text, *args, **kwargs)

    def set_xticks(self, positions, labels=None, **kwargs):
        ticks.append(list(labels or []))
        return real_ticks(self, positions, labels, **kwargs)

    monkeypatch.setattr(Axes, "set_title", set_title)
    monkeypatch.setattr(Axes, "set_xticks", set_xticks)
    for units, warned in ((4, True), (MIN_UNITS, False)):
        titles.clear()
        ticks.clear()
        entry = {"resampled_units": units, "variants": {"original": variant(0.5), "paper": variant(0.6, "within noise")}}
        plot_comparison(tmp_path / f"c{units}.png", {"targets": {"t": entry}})
        assert (tmp_path / f"c{units}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert ["paper\nwithin noise"] in ticks
        assert any(f"only {units} independent test units" in t for t in titles) == warned
