"""curate analyze shows the outcome: the comparison, pictures of the decisions, the gallery, the
encoder banner, the analysed types and the target size's add-back, on tiny data with tiny PNGs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image
from reshape_helpers import ENCODER, corpus_rows, make_dataset, unit, write_corpus, write_embeddings

from curate.analyze import analyze
from curate.analyze.params import AnalyzeParams
from curate.cli import cli
from curate.compare import CompareParams, compare
from curate.errors import CurateError
from curate.reshape.downsample import keep_count
from curate.reshape.params import DRCParams, ReshapeParams
from curate.reshape.pipeline import reshape
from curate.sampling import sample_keys
from curate.schema import embeddings_table, make_metadata, write_parquet

TYPES = (1, 3, 10)
GROUP_CAP = 3  # small, so DRCDown thins the tiny corpus's groups and the target size adds back
GALLERY_MARK = (255, 0, 255)  # the one pure-magenta image
DIM = 12  # make_dataset's


def _colour(sample_id: str) -> tuple[int, int, int]:
    key = int(sample_keys([sample_id], 99)[0])
    return (40 + key % 150, 40 + (key >> 8) % 150, 40 + (key >> 16) % 150)


def _write_images(frame: pd.DataFrame, root: Path) -> None:
    """A 24x16 PNG per row, its colour from its id."""
    for row in frame.itertuples(index=False):
        Image.new("RGB", (24, 16), _colour(row.sample_id)).save(root / row.path)


def _target(tmp: Path, dim: int) -> tuple[Path, Path]:
    """A scored target set of 6 contents whose features carry the level, and its embeddings."""
    rng = np.random.default_rng(5)
    refs = [f"T{k}" for k in range(6)]
    scores = {(r, t, lv): 9.5 - 1.8 * lv + rng.normal(0, 0.2) for r in refs for t in TYPES for lv in range(1, 6)}
    frame = corpus_rows("target", "target", refs, list(TYPES), [1, 2, 3, 4, 5], scores)
    (tmp / "target_root").mkdir()
    path = write_corpus(tmp / "target.parquet", frame, tmp / "target_root")
    vectors = unit(rng.normal(size=(len(frame), dim)))
    emb = write_embeddings(tmp / "target_emb", frame["sample_id"].tolist(), vectors)
    return path, emb


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Corpus + pool with images, a sized reshape (manifest + decisions), a finished comparison."""
    tmp = tmp_path_factory.mktemp("outcome")
    ds = make_dataset(tmp, types=TYPES, seed=4)  # a seed whose pool has candidates of every reason
    refs = ds.train[ds.train["is_reference"]]["sample_id"].tolist()
    _write_embeddings(ds.pool_embeddings, _with_versions(ds), ENCODER, [])
    _write_images(ds.train, tmp / "train_root")
    assert ds.pool_frame is not None
    _write_images(ds.pool_frame[ds.pool_frame["is_reference"]], tmp / "pool_root")
    manifest = tmp / "manifest.parquet"
    reshape(ds.corpus, ds.embeddings, tmp / "paper.parquet", pool=ds.pool, pool_embeddings=ds.pool_embeddings,
            params=ReshapeParams(types=TYPES, redundancy=DRCParams(group_cap=GROUP_CAP), device="cpu"))
    size = len(pd.read_parquet(tmp / "paper.parquet")) + 5  # adds back a few originals, not every one
    result = reshape(ds.corpus, ds.embeddings, manifest, pool=ds.pool, pool_embeddings=ds.pool_embeddings,
                     params=ReshapeParams(types=TYPES, redundancy=DRCParams(group_cap=GROUP_CAP), target_size=size,
                                          device="cpu"))
    target, target_emb = _target(tmp, DIM)
    compared = tmp / "compare"
    compare(ds.corpus, ds.embeddings, compared, eval_sets={"target": target}, eval_embeddings={"target": target_emb},
            params=CompareParams(types=TYPES, variants=("paper",), seeds=1, resamples=100, leak_check=False,
                                 train={"epochs": 3, "batch_size": 16}, device="cpu"),
            pool=ds.pool, pool_embeddings=ds.pool_embeddings, quiet=True)
    return {"tmp": tmp, "ds": ds, "manifest": manifest, "decisions": result.decisions_path, "compare": compared,
            "reshape": result, "refs": refs}


def _analyze(world: dict, out: Path, **kw) -> dict:
    ds = world["ds"]
    args = dict(pool=ds.pool, pool_embeddings=ds.pool_embeddings, manifest=world["manifest"], compare=world["compare"])
    args.update({k: v for k, v in kw.items() if k in args})
    params = AnalyzeParams(seed=4, device="cpu", **{k: v for k, v in kw.items() if k not in args})
    analyze(ds.corpus, ds.embeddings, out, params=params, quiet=True, **args)
    return json.loads((out / "summary.json").read_text()) | {"_html": (out / "index.html").read_text()}


@pytest.fixture(scope="module")
def report(world: dict) -> tuple[Path, dict]:
    out = world["tmp"] / "report"
    return out, _analyze(world, out)


def test_the_page_includes_the_comparison_with_its_figures_copied(world: dict, report: tuple[Path, dict]) -> None:
    out, s = report
    compared = json.loads((world["compare"] / "summary.json").read_text())
    for name in ("summary.json", "results.csv", "comparison.png", "curves.png"):
        assert (out / "compare" / name).read_bytes() == (world["compare"] / name).read_bytes()
    html = s["_html"]
    # compare's own renderer, with the figures read from the copies
    assert "src='compare/comparison.png'" in html and "src='compare/curves.png'" in html
    sentence = compared["targets"]["target"]["sentence"]
    assert sentence and html.count(sentence.split(" (")[0]) >= 1
    assert "ΔSRCC vs original" in html and "paired difference" in html
    assert s["compare"]["targets"]["target"]["sentence"] == sentence
    assert s["compare"]["same_corpus"] is True
    assert s["inputs"]["compare"]["sha256"]
    # the comparison comes before the key numbers: it is the outcome
    assert html.index("Outcome: does reshaping help?") < html.index("Key numbers")
    # every image the page shows is in the report folder
    for src in re.findall(r"<img src=['\"]([^'\"]+)['\"]", html):
        assert (out / src).is_file(), src


def test_candidates_are_shown_per_reason_beside_their_nearest_references(
    world: dict, report: tuple[Path, dict]
) -> None:
    out, s = report
    ds = world["ds"]
    decisions = pd.read_parquet(world["decisions"])
    picked = decisions[decisions["stage"] == "ddc_select"]
    shown = s["examples"]["candidates"]
    counts = picked["reason"].value_counts().to_dict()
    assert {r: v["total"] for r, v in shown.items()} == counts
    assert set(counts) == {"ddc_selected", "ddc_not_novel", "ddc_out_of_distribution", "ddc_too_close_to_kept"}
    refs = world["refs"]
    ref_vectors = np.stack([ds.train_vectors[r] for r in refs]).astype(np.float32).astype(np.float64)
    for reason, entry in shown.items():
        ids = picked[picked["reason"] == reason]["sample_id"].to_numpy(dtype=object)
        # the seeded-hash choice: the 3 smallest keys of the analysis seed
        expected = sorted(ids[np.argsort(sample_keys(ids, 4), kind="stable")[:3]])
        assert [c["sample_id"] for c in entry["shown"]] == expected
        assert (out / f"candidates_{reason.removeprefix('ddc_')}.png").is_file()
        for c in entry["shown"]:
            v = ds.pool_vectors[c["sample_id"]].astype(np.float32).astype(np.float64)
            d = 1.0 - ref_vectors @ v
            order = np.argsort(d, kind="stable")[:3]
            assert [r["sample_id"] for r in c["nearest_references"]] == [refs[k] for k in order]
            assert [r["distance"] for r in c["nearest_references"]] == pytest.approx(d[order], abs=1e-5)
            if reason == "ddc_too_close_to_kept":
                rival = c["too_close_to"]["sample_id"]
                assert rival in set(picked[picked["reason"] == "ddc_selected"]["sample_id"])
                assert c["too_close_to"]["distance"] < s["content"]["r"]


def test_the_largest_redundancy_group_shows_kept_and_dropped_members(world: dict, report: tuple[Path, dict]) -> None:
    out, s = report
    decisions = pd.read_parquet(world["decisions"])
    grouped = decisions[(decisions["origin"] == "original") & (decisions["group_id"] >= 0)]
    top = int(grouped["group_size"].max())
    gid = int(grouped[grouped["group_size"] == top]["group_id"].min())
    members = grouped[grouped["group_id"] == gid]
    g = s["examples"]["largest_group"]
    assert (g["group_id"], g["group_size"]) == (gid, top)
    assert (g["kept"], g["dropped"]) == (int(members["kept"].sum()), int((~members["kept"]).sum()))
    assert g["dropped"] > 0 and g["drcdown_keeps"] == keep_count(top, GROUP_CAP, 0.5)
    kept_ids = set(members[members["kept"]]["sample_id"])
    assert set(g["shown_kept"]) <= kept_ids and not set(g["shown_dropped"]) & kept_ids
    assert len(g["shown_kept"]) == min(6, g["kept"]) and len(g["shown_dropped"]) == min(6, g["dropped"])
    assert (out / "largest_group.png").is_file()
    assert "The largest redundancy group, kept and dropped" in s["_html"]


def test_the_gallery_shows_the_corpus_own_images(world: dict, tmp_path: Path) -> None:
    """Mark one corpus image magenta: it appears in the gallery, in the cell of its type and level."""
    s = json.loads((world["tmp"] / "report" / "summary.json").read_text())
    gallery = s["examples"]["gallery"]
    assert gallery["types"] == list(TYPES) and gallery["levels"] == [1, 2, 3, 4, 5]
    assert gallery["images"] == len(TYPES) * 5 and gallery["source"] == "the corpus's own images"
    reference = gallery["reference"]
    # the corpus has every cell for every reference: the tie goes to the smallest seeded hash
    refs = np.array(world["refs"], dtype=object)
    assert reference == refs[np.argsort(sample_keys(refs, 4), kind="stable")[0]]
    marked = f"{reference}_10_03"
    row = world["ds"].train.set_index("sample_id").loc[marked]
    image = world["tmp"] / "train_root" / row["path"]
    before = image.read_bytes()
    try:
        Image.new("RGB", (24, 16), GALLERY_MARK).save(image)
        out = tmp_path / "marked"
        _analyze(world, out, compare=None)
        pixels = np.asarray(Image.open(out / "gallery.png").convert("RGB"))
        magenta = np.all(pixels == GALLERY_MARK, axis=-1)
        assert magenta.sum() > 100
        # JPEG (type 10) is the third row, level 3 the fourth image column
        rows, cols = np.nonzero(magenta)
        assert rows.min() > pixels.shape[0] * 0.55 and cols.min() > pixels.shape[1] * 0.55
    finally:
        image.write_bytes(before)


def test_analysed_types_are_stated_beside_the_counts(world: dict, tmp_path: Path) -> None:
    s = _analyze(world, tmp_path / "typed", types=(1,), manifest=None, compare=None)
    assert s["before"]["types"] == [1] and s["before"]["samples"] == 50
    assert s["corpus"]["types"] == list(TYPES) and s["corpus"]["types_analysed"] == [1]
    assert s["corpus"]["distorted"] == 150 and s["corpus"]["samples_analysed"] == 50
    html = s["_html"]
    assert "<td>distortion types</td><td class=\"num\">1</td>" in html
    assert "of the analysed distortion types only (1, <code>--types</code>; the corpus has 3 type(s)): 50 of its 150" in html
    # the gallery shows the analysed types only
    assert s["examples"]["gallery"]["types"] == [1]


def test_a_note_when_the_target_size_leaves_groups_above_the_cap(world: dict, report: tuple[Path, dict]) -> None:
    _, s = report
    manifest = pd.read_parquet(world["manifest"])
    decisions = pd.read_parquet(world["decisions"])
    grouped = manifest[(manifest["origin"] == "original") & (manifest["group_id"] >= 0)]
    over = [
        (int(part["group_size"].iloc[0]), len(part))
        for _, part in grouped.groupby("group_id")
        if len(part) > keep_count(int(part["group_size"].iloc[0]), GROUP_CAP, 0.5)
    ]
    sized = s["reshape"]["target_size"]
    assert over, "the fixture must add back into thinned groups"
    assert sized["groups_over_quota"] == len(over)
    assert sized["rows_over_quota"] == sum(k - keep_count(n, GROUP_CAP, 0.5) for n, k in over)
    assert sized["added_back"]["originals"] == int(
        ((decisions["reason"] == "target_size_added") & (decisions["origin"] == "original")).sum()
    )
    assert sized["added_back"]["originals"] > 0
    assert 'class="warn">--target-size' in s["_html"] and "undoes part of DRCDown's thinning" in s["_html"]


def test_same_inputs_and_seed_give_identical_report_files(world: dict, report: tuple[Path, dict]) -> None:
    again = world["tmp"] / "again"
    _analyze(world, again)
    first = report[0]
    names = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(again)) for p in again.rglob("*") if p.is_file())
    for name in names:
        assert (again / name).read_bytes() == (first / name).read_bytes(), name


def _with_versions(ds: Any) -> dict[str, np.ndarray]:
    """The pool's vectors with its distorted versions near their candidate (the manifest's
    upsampled rows, which the paper variant trains on and analyze measures)."""
    rng = np.random.default_rng(8)
    versions = {
        row.sample_id: unit(ds.pool_vectors[f"pool/{row.ref_id}"] + 0.05 * rng.normal(size=DIM))
        for row in ds.pool_frame[~ds.pool_frame["is_reference"]].itertuples()
    }
    return {**ds.pool_vectors, **versions}


def _write_embeddings(folder: Path, vectors: dict[str, np.ndarray], encoder: dict, notes: list[str]) -> None:
    shutil.rmtree(folder)
    folder.mkdir()
    ids = sorted(vectors)
    dim = vectors[ids[0]].size
    meta = make_metadata("embeddings", encoder=encoder, dim=dim, dtype="float32", notes=notes)
    write_parquet(embeddings_table(ids, np.stack([vectors[i] for i in ids])), folder / "part-00000.parquet", meta)


def _small_world(tmp: Path, *, encoder: dict, notes: list[str] = ()) -> dict:
    """A small corpus and pool with images, embeddings made by ``encoder`` (with ``notes``), a manifest."""
    ds = make_dataset(tmp, n_refs=5, n_candidates=8, types=(1, 3), seed=6)
    _write_embeddings(ds.embeddings, ds.train_vectors, encoder, list(notes))
    _write_embeddings(ds.pool_embeddings, _with_versions(ds), encoder, list(notes))
    _write_images(ds.train, tmp / "train_root")
    _write_images(ds.pool_frame[ds.pool_frame["is_reference"]], tmp / "pool_root")
    manifest = tmp / "manifest.parquet"
    reshape(ds.corpus, ds.embeddings, manifest, pool=ds.pool, pool_embeddings=ds.pool_embeddings,
            params=ReshapeParams(types=(1, 3), device="cpu"))
    return {"ds": ds, "manifest": manifest, "compare": None}


def test_missing_images_are_labelled_blanks_and_noted_never_a_crash(tmp_path: Path) -> None:
    world = _small_world(tmp_path, encoder={"name": "test-encoder"})
    first = _analyze(world, tmp_path / "first")
    gallery_ref = first["examples"]["gallery"]["reference"]
    shown = first["examples"]["candidates"]["ddc_selected"]["shown"][0]["sample_id"]
    rows = pd.concat([world["ds"].train, world["ds"].pool_frame]).set_index("sample_id")
    (tmp_path / "train_root" / rows.loc[gallery_ref, "path"]).unlink()
    (tmp_path / "pool_root" / rows.loc[shown, "path"]).write_bytes(b"not a png")
    s = _analyze(world, tmp_path / "second")
    missing = {m["sample_id"]: m["message"] for m in s["examples"]["missing_images"]}
    assert set(missing) == {gallery_ref, shown}
    assert missing[gallery_ref].startswith("missing:") and missing[shown].startswith("unreadable:")
    assert "2 image(s) could not be read and are shown as labelled blanks" in s["_html"]
    assert (tmp_path / "second" / "gallery.png").is_file()
    # everything else is as before: the same samples are shown
    assert s["examples"]["candidates"] == first["examples"]["candidates"]


def test_a_banner_says_when_the_encoder_was_a_fallback_or_random(tmp_path: Path) -> None:
    notes = ["demo fallback: CLIP unavailable (no weights); used the packaged EfficientNet-Lite0",
             "a bare weights file does not record its preprocessing", "no fallback was needed for the pool"]
    world = _small_world(tmp_path, encoder={"name": "timm", "weights": {"kind": "random", "seed": 0}}, notes=notes)
    s = _analyze(world, tmp_path / "r", manifest=None, pool=None, pool_embeddings=None)
    kinds = [w["kind"] for w in s["encoder_warnings"]]
    assert kinds == ["random_weights", "fallback"]
    html = s["_html"]
    banner = html[html.index('<div class="banner">'):html.index("</div>", html.index('<div class="banner">'))]
    assert "random weights" in banner and "fallback encoder" in banner and "CLIP unavailable" in banner
    assert "bare weights file" not in banner and "Embeddings notes: a bare weights file" in html
    assert html.index('<div class="banner">') < html.index("Key numbers")
    plain = _small_world(tmp_path / "plain", encoder={"name": "test-encoder"})
    assert '<div class="banner">' not in _analyze(plain, tmp_path / "plain-report")["_html"]


def test_a_folder_that_is_not_a_finished_comparison_is_refused(world: dict, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CurateError, match="no summary.json"):
        _analyze(world, tmp_path / "r1", compare=empty)
    partial = tmp_path / "partial"
    shutil.copytree(world["compare"], partial)
    (partial / "curves.png").unlink()
    with pytest.raises(CurateError, match="curves.png is missing"):
        _analyze(world, tmp_path / "r2", compare=partial)
    (empty / "summary.json").write_text(json.dumps({"format": "analyze_report"}))
    with pytest.raises(CurateError, match="not a curate compare summary"):
        _analyze(world, tmp_path / "r3", compare=empty)
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_a_comparison_of_another_corpus_is_flagged(world: dict, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(world["compare"], other)
    summary = json.loads((other / "summary.json").read_text())
    summary["inputs"]["corpus"]["sha256"] = "0" * 64
    (other / "summary.json").write_text(json.dumps(summary))
    s = _analyze(world, tmp_path / "r", compare=other)
    assert s["compare"]["same_corpus"] is False
    assert "run on another corpus than the one analysed here" in s["_html"]


def test_cli_analyze_with_a_comparison(world: dict, tmp_path: Path) -> None:
    ds = world["ds"]
    base = ["analyze", "--corpus", str(ds.corpus), "--embeddings", str(ds.embeddings), "--pool", str(ds.pool),
            "--pool-embeddings", str(ds.pool_embeddings), "--manifest", str(world["manifest"]), "--device", "cpu"]
    out = tmp_path / "cli"
    result = CliRunner().invoke(cli, [*base, "--compare", str(world["compare"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "comparison: target" in result.output and "types analysed: 1, 3, 10" in result.output
    assert "keep more members than DRCDown allows" in result.output
    assert (out / "compare" / "comparison.png").is_file()
    bad = CliRunner().invoke(cli, [*base, "--compare", str(tmp_path), "-o", str(tmp_path / "bad")])
    assert bad.exit_code == 1 and "no summary.json" in bad.output and "Traceback" not in bad.output
    missing = CliRunner().invoke(cli, [*base, "--compare", str(tmp_path / "nope"), "-o", str(tmp_path / "bad")])
    assert missing.exit_code == 2 and "--compare" in missing.output


def test_a_manifest_of_every_candidate_says_nothing_was_selected(tmp_path: Path) -> None:
    world = _small_world(tmp_path, encoder={"name": "test-encoder"})
    ds = world["ds"]
    every = tmp_path / "every.parquet"
    reshape(ds.corpus, ds.embeddings, every, pool=ds.pool, pool_embeddings=ds.pool_embeddings,
            params=ReshapeParams(types=(1, 3), candidates="all", drc=False, device="cpu"))
    s = _analyze(world, tmp_path / "r", manifest=every)
    assert set(s["examples"]["candidates"]) == {"ddc_selected"}
    assert "every pool candidate was added, with no DDCUp selection" in s["_html"]
    assert "DDCUp kept these" not in s["_html"] and "selected by DDCUp" not in s["_html"]
