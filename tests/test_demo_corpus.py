"""The demo corpus: KADID layout, GMSD scores, pool, held-out test set, determinism (built with few types)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.demo.corpus import (
    DEMO_PRESET,
    GRID_CROPS_PER_PHOTO,
    POOL_PHOTOS,
    SIZE,
    SYNTHETIC,
    TEST_PHOTOS,
    TRAIN_CROPS_PER_PHOTO,
    TRAIN_PHOTOS,
    build_demo_corpus,
    fr_score,
    gmsd,
    plan_crops,
)
from curate.distort.presets import PRESETS
from curate.distort.registry import DISTORTIONS, distortion_rng
from curate.errors import CurateError
from curate.images import load_rgb

TYPES = (1, 10)
TARGET_TYPES = (3, 10)
N_TRAIN = TRAIN_CROPS_PER_PHOTO * len(TRAIN_PHOTOS)
N_GRID = GRID_CROPS_PER_PHOTO * len(TRAIN_PHOTOS)
N_TEST = 3 * len(TEST_PHOTOS)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    return build_demo_corpus(
        tmp_path_factory.mktemp("demo"), seed=0, workers=1, types=TYPES, target_types=TARGET_TYPES, quiet=True
    )


def _parsed(csv_path: Path) -> pd.DataFrame:
    table = pd.read_csv(csv_path)
    parts = table["dist_img"].str[:-4].str.split("_", expand=True)
    return table.assign(ref=parts[0], type=parts[1].astype(int), level=parts[2].astype(int))


def test_train_is_in_the_kadid_layout_with_a_full_grid_on_first_crops(demo) -> None:
    images = demo.train_dir / "images"
    table = _parsed(demo.train_dir / "dmos.csv")
    assert list(table.columns[:4]) == ["dist_img", "ref_img", "dmos", "var"]
    assert sorted(table["ref_img"].unique()) == [f"I{i:02d}.png" for i in range(1, N_TRAIN + 1)]
    for row in table.itertuples():
        assert (images / row.dist_img).is_file() and (images / row.ref_img).is_file()
        assert f"{row.ref}.png" == row.ref_img and 1 <= row.level <= 5
    # The first crop of every photo under every requested type, the others under the target's.
    types_of = table.groupby("ref")["type"].apply(lambda t: tuple(sorted(set(t))))
    grid = [f"I{i:02d}" for i in range(1, N_GRID + 1)]
    assert (types_of[grid] == TYPES).all() and (types_of.drop(grid) == TARGET_TYPES).all()
    assert len(table) == (N_GRID * len(TYPES) + (N_TRAIN - N_GRID) * len(TARGET_TYPES)) * 5 == demo.train_distorted
    assert table["dmos"].between(1.0, 5.0).all() and (table["var"] == 0).all()
    assert load_rgb(images / "I01_10_05.png").shape == (SIZE[1], SIZE[0], 3)
    info = json.loads(demo.info_path.read_text())
    grid_photos = [r["photo"] for r in info["train"]["references"][:N_GRID]]
    assert grid_photos == list(TRAIN_PHOTOS)


def test_scores_are_gmsd_and_fall_with_level(demo) -> None:
    table = _parsed(demo.train_dir / "dmos.csv")
    for (_, kind), group in table.groupby(["ref", "type"]):
        scores = group.sort_values("level")["dmos"].to_numpy()
        if kind in (1, 3):  # blurs: every level strictly stronger (level 1 of type 1 is near identity)
            assert (np.diff(scores) <= 1e-9).all(), scores
        else:  # JPEG's qualities 43 and 36 (levels 1, 2) are close: only the trend is asserted
            assert scores[-1] < scores[0] - 0.5 and (np.diff(scores) < 0).sum() >= 3, scores
    blur1 = table[(table["type"] == 1) & (table["level"] == 1)]
    assert len(blur1) == N_GRID
    assert (blur1["dmos"] > 4.9).all()  # sigma 0.1: nearly pristine
    jpeg5 = table[(table["type"] == 10) & (table["level"] == 5)]
    assert (jpeg5["dmos"] < 4.0).all()
    # The stored score is the documented mapping of GMSD between the files on disk.
    row = table.iloc[7]
    images = demo.train_dir / "images"
    expected = 5.0 - 8.0 * gmsd(load_rgb(images / row.ref_img), load_rgb(images / row.dist_img))
    assert row.dmos == pytest.approx(expected, abs=1e-4)


def test_test_set_is_held_out_with_every_level_of_its_types(demo) -> None:
    table = _parsed(demo.test_dir / "dmos.csv")
    assert sorted(table["ref_img"].unique()) == [f"I{61 + i}.png" for i in range(N_TEST)]
    assert len(table) == N_TEST * len(TARGET_TYPES) * 5 == demo.test_distorted
    assert info_types(demo) == list(TARGET_TYPES)
    assert set(table["type"]) == set(TARGET_TYPES)
    assert table.groupby(["ref", "type"])["level"].apply(lambda levels: sorted(levels) == [1, 2, 3, 4, 5]).all()
    info = json.loads(demo.info_path.read_text())
    assert info["complete"] is True
    test_photos = {r["photo"] for r in info["test"]["references"]}
    train_photos = {r["photo"] for r in info["train"]["references"]}
    pool_photos = {c["photo"] for c in info["pool"]["candidates"]}
    assert test_photos == set(TEST_PHOTOS) and not test_photos & (train_photos | pool_photos)
    assert train_photos == set(TRAIN_PHOTOS)
    assert set(POOL_PHOTOS) | set(SYNTHETIC) <= pool_photos <= set(POOL_PHOTOS) | set(SYNTHETIC) | set(TRAIN_PHOTOS)


def info_types(demo) -> list[int]:
    return json.loads(demo.info_path.read_text())["test"]["types"]


def test_default_target_types_are_the_demo_presets(tmp_path: Path) -> None:
    built = build_demo_corpus(tmp_path / "default", seed=0, workers=1, types=(1,), quiet=True)
    info = json.loads(built.info_path.read_text())
    assert DEMO_PRESET == "livec" and info["test"]["types"] == list(PRESETS["livec"])
    assert set(_parsed(built.test_dir / "dmos.csv")["type"]) == set(PRESETS["livec"])


def test_pool_holds_novel_near_duplicate_and_foreign_candidates(demo) -> None:
    pool = sorted(demo.pool_dir.glob("*.png"))
    info = json.loads(demo.info_path.read_text())
    candidates = info["pool"]["candidates"]
    assert [p.name for p in pool] == [f"P{i:02d}.png" for i in range(1, len(candidates) + 1)]
    assert {c["photo"] for c in candidates} >= set(POOL_PHOTOS) | set(SYNTHETIC)
    train = [load_rgb(demo.train_dir / "images" / f"I{i:02d}.png") for i in range(1, N_TRAIN + 1)]
    images = [load_rgb(p) for p in pool]
    mirrored_of_train = mirrored_of_pool = 0
    for image, cand in zip(images, candidates, strict=True):
        assert image.shape == (SIZE[1], SIZE[0], 3)
        assert not any(np.array_equal(image, t) for t in train)
        if cand["mirrored"]:  # same content, not a copy: a training reference or another candidate mirrored
            mirrored_of_train += any(np.array_equal(image[:, ::-1], t) for t in train)
            mirrored_of_pool += any(np.array_equal(image[:, ::-1], other) for other in images)
    assert mirrored_of_train == 2 and mirrored_of_pool == 1


def test_same_seed_same_corpus_and_a_rerun_resumes(demo, tmp_path: Path) -> None:
    again = build_demo_corpus(tmp_path / "again", seed=0, workers=2, types=TYPES, target_types=TARGET_TYPES, quiet=True)
    assert [p.relative_to(again.root) for p in again.files] == [p.relative_to(demo.root) for p in demo.files]
    for path in demo.files:
        relative = path.relative_to(demo.root)
        assert path.read_bytes() == (again.root / relative).read_bytes(), relative
    # A rerun into the same folder (e.g. after a kill) keeps what exists and gives the same files.
    victim = again.train_dir / "images" / "I03_10_04.png"
    victim.unlink()
    info = json.loads(again.info_path.read_text())
    again.info_path.write_text(json.dumps({"design": info["design"], "complete": False}))
    third = build_demo_corpus(tmp_path / "again", seed=0, workers=1, types=TYPES, target_types=TARGET_TYPES, quiet=True)
    assert victim.read_bytes() == (demo.train_dir / "images" / "I03_10_04.png").read_bytes()
    assert third.info_path.read_bytes() == demo.info_path.read_bytes()
    # Another seed draws other crops.
    assert plan_crops(1) != plan_crops(0)


def test_a_folder_of_another_corpus_is_refused(demo, tmp_path: Path) -> None:
    with pytest.raises(CurateError, match="another seed or design"):
        build_demo_corpus(demo.root, seed=1, workers=1, types=TYPES, target_types=TARGET_TYPES, quiet=True)
    stranger = tmp_path / "stranger"
    (stranger / "train").mkdir(parents=True)
    with pytest.raises(CurateError, match="no demo_corpus.json"):
        build_demo_corpus(stranger, seed=0, workers=1, types=TYPES, quiet=True)
    with pytest.raises(CurateError, match="KADID numbers"):
        build_demo_corpus(tmp_path / "bad", types=(0, 26), quiet=True)


def test_gmsd_tracks_distortion_strength() -> None:
    from curate.demo.corpus import Crop, load_photo

    reference = Crop("astronaut", 0, 0, 512, 384).render(load_photo("astronaut"))
    assert gmsd(reference, reference) == 0.0 and fr_score(reference, reference) == (5.0, 0.0)
    for number in (1, 3, 10):  # blur, motion blur, JPEG: stronger at every level
        values = [gmsd(reference, DISTORTIONS[number](reference, level, distortion_rng(0, "t", number, level)))
                  for level in (1, 2, 3, 4, 5)]
        assert np.all(np.diff(values) > 0), (number, values)
        assert 0.0 <= values[0] and values[-1] <= 0.5
    blurred = DISTORTIONS[1](reference, 4, distortion_rng(0, "t", 1, 4))
    assert gmsd(reference, blurred) == pytest.approx(gmsd(blurred, reference))  # symmetric
    score, variance = fr_score(reference, blurred)
    assert score == pytest.approx(5.0 - 8.0 * gmsd(reference, blurred), abs=1e-4) and variance == 0.0
    # A uniform offset keeps every gradient: GMSD measures structure, not brightness.
    dim = (reference.astype(int) // 2).astype(np.uint8)
    assert gmsd(dim, dim + 40) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="shapes differ"):
        gmsd(reference, reference[:10])


def test_cli_demo_corpus_help() -> None:
    result = CliRunner().invoke(cli, ["demo-corpus", "--help"])
    assert result.exit_code == 0 and "--seed" in result.output
