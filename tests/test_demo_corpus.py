"""The demo corpus: KADID layout, scores, pool, held-out test set, determinism (built with few types)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.demo.corpus import TEST_PHOTOS, TRAIN_PHOTOS, build_demo_corpus, fr_score, plan_crops
from curate.images import load_rgb


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    return build_demo_corpus(tmp_path_factory.mktemp("demo"), seed=0, workers=1, types=(1, 10), quiet=True)


def test_train_is_in_the_kadid_layout(demo) -> None:
    images = demo.train_dir / "images"
    table = pd.read_csv(demo.train_dir / "dmos.csv")
    assert list(table.columns) == ["dist_img", "ref_img", "dmos", "var"]
    assert len(table) == 12 * 2 * 5 == demo.train_distorted
    refs = sorted(table["ref_img"].unique())
    assert refs == [f"I{i:02d}.png" for i in range(1, 13)]
    for row in table.itertuples():
        assert (images / row.dist_img).is_file() and (images / row.ref_img).is_file()
        stem = row.dist_img[:-4]
        ref, dist, level = stem.split("_")
        assert f"{ref}.png" == row.ref_img and dist in ("01", "10") and 1 <= int(level) <= 5
    assert table["dmos"].between(1.0, 5.0).all() and (table["var"] >= 0).all()
    assert load_rgb(images / "I01_10_05.png").shape == (144, 192, 3)


def test_scores_fall_with_level(demo) -> None:
    table = pd.read_csv(demo.train_dir / "dmos.csv")
    table["ref"] = table["dist_img"].str[:3]
    table["type"] = table["dist_img"].str[4:6]
    table["level"] = table["dist_img"].str[7:9].astype(int)
    for (_, _), group in table.groupby(["ref", "type"]):
        scores = group.sort_values("level")["dmos"].to_numpy()
        assert (np.diff(scores) <= 1e-9).all(), scores
    blur1 = table[(table["type"] == "01") & (table["level"] == 1)]
    assert (blur1["dmos"] > 4.9).all()  # sigma 0.1: nearly pristine
    jpeg5 = table[(table["type"] == "10") & (table["level"] == 5)]
    assert (jpeg5["dmos"] < 4.0).all()


def test_test_set_is_held_out_with_mixed_levels(demo) -> None:
    table = pd.read_csv(demo.test_dir / "dmos.csv")
    assert sorted(table["ref_img"].unique()) == ["I61.png", "I62.png", "I63.png", "I64.png"]
    assert len(table) == 4 * 2 * 2 == demo.test_distorted
    per_type = table.groupby(table["dist_img"].str[:6])["dist_img"].count()
    assert (per_type == 2).all()
    info = json.loads(demo.info_path.read_text())
    test_photos = {r["photo"] for r in info["test"]["references"]}
    train_photos = {r["photo"] for r in info["train"]["references"]}
    pool_photos = {c["photo"] for c in info["pool"]["candidates"]}
    assert test_photos == set(TEST_PHOTOS) and not test_photos & (train_photos | pool_photos)
    assert train_photos == set(TRAIN_PHOTOS)


def test_pool_holds_novel_near_duplicate_and_foreign_candidates(demo) -> None:
    pool = sorted(demo.pool_dir.glob("*.png"))
    assert [p.name for p in pool] == [f"P{i:02d}.png" for i in range(1, 31)]
    info = json.loads(demo.info_path.read_text())
    candidates = info["pool"]["candidates"]
    assert sum(c["mirrored"] for c in candidates) == 4
    assert {c["photo"] for c in candidates} >= {"colorwheel", "logo"}
    train = [load_rgb(demo.train_dir / "images" / f"I{i:02d}.png") for i in range(1, 13)]
    for path, cand in zip(pool, candidates, strict=True):
        image = load_rgb(path)
        assert image.shape == (144, 192, 3)
        assert not any(np.array_equal(image, t) for t in train)
        if cand["mirrored"]:  # a mirrored training reference: same content, not a copy
            assert any(np.array_equal(image[:, ::-1], t) for t in train)


def test_same_seed_same_corpus(demo, tmp_path: Path) -> None:
    again = build_demo_corpus(tmp_path / "again", seed=0, workers=2, types=(1, 10), quiet=True)
    assert [p.relative_to(again.root) for p in again.files] == [p.relative_to(demo.root) for p in demo.files]
    for path in demo.files:
        relative = path.relative_to(demo.root)
        assert path.read_bytes() == (again.root / relative).read_bytes(), relative
    # Another seed draws other crops.
    assert plan_crops(1) != plan_crops(0)


def test_fr_score_mapping() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (36, 48, 3), dtype=np.uint8)
    assert fr_score(image, image) == (5.0, 0.0)
    noisy = np.clip(image.astype(int) + rng.integers(-40, 41, image.shape), 0, 255).astype(np.uint8)
    score, variance = fr_score(image, noisy)
    assert 1.0 <= score < 5.0 and variance >= 0.0
    worse = np.clip(image.astype(int) + rng.integers(-120, 121, image.shape), 0, 255).astype(np.uint8)
    assert fr_score(image, worse)[0] < score


def test_cli_demo_corpus_help() -> None:
    result = CliRunner().invoke(cli, ["demo-corpus", "--help"])
    assert result.exit_code == 0 and "--seed" in result.output
