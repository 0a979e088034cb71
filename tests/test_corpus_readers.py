"""Each native reader on a tiny fake copy of its dataset: rows, ids, grouping, codes, scores."""

from __future__ import annotations

import iqa_fakes as fakes
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from curate import schema
from curate.cli import cli


def ingest(fmt: str, root, tmp_path, *extra: str) -> tuple[pd.DataFrame, dict]:
    out = tmp_path / f"{fmt}.parquet"
    result = CliRunner().invoke(cli, ["ingest", fmt, str(root), "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    frame, meta = schema.read_corpus(out)
    return frame.set_index("sample_id", drop=False), meta


def minmax(values, higher_is_better=True):
    v = np.asarray(values, dtype=float)
    unit = (v - v.min()) / (v.max() - v.min())
    return 10 * (unit if higher_is_better else 1 - unit)


def test_kadid10k(tmp_path):
    root = fakes.kadid10k(tmp_path)
    df, meta = ingest("kadid10k", tmp_path, tmp_path)  # the parent of kadid10k/ is accepted too
    assert len(df) == 2 + 2 * 2 * 2
    assert meta["root"] == str(root.resolve())
    ref = df.loc["kadid10k/I01"]
    assert ref.is_reference and ref.path == "images/I01.png" and pd.isna(ref.score) and pd.isna(ref.distortion)
    row = df.loc["kadid10k/I02_25_05"]
    assert (row.ref_id, row.distortion, row.level, bool(row.is_reference)) == ("kadid10k/I02", 25, 5, False)
    assert df.groupby("ref_id").size().to_dict() == {"kadid10k/I01": 5, "kadid10k/I02": 5}
    scored = df[df.score_raw.notna()]
    np.testing.assert_allclose(scored.score, minmax(scored.score_raw), atol=1e-4)
    assert scored.loc["kadid10k/I02_01_01", "score"] == pytest.approx(10.0)  # best raw dmos -> 10
    assert meta["score_normalization"]["higher_is_better"] is True
    assert meta["score_normalization"]["raw_min"] == pytest.approx(1.0)
    assert "dmos.csv" in meta["inputs"] and meta["inputs"]["dmos.csv"]["sha256"]
    assert meta["source"] == "kadid10k" and meta["params"]["format"] == "kadid10k"


def test_kadis700k_refs_and_generated(tmp_path):
    fakes.kadis700k(tmp_path)
    df, meta = ingest("kadis700k", tmp_path / "kadis700k", tmp_path)
    assert df.is_reference.sum() == 2 and len(df) == 2 + 5
    row = df.loc["kadis700k/abandoned-boat-1622316_03_04"]
    assert (row.ref_id, row.distortion, row.level, row.path) == (
        "kadis700k/abandoned-boat-1622316", 3, 4, "dist_imgs/abandoned-boat-1622316_03_04.bmp")
    assert df.score.isna().all() and meta["score_normalization"]["method"] == "none"
    assert meta["reader"]["kadis_distorted_images"] == 5 and meta["reader"]["kadis_incomplete_refs"] == 0
    assert meta["reader"]["kadis_ignored_files"] == 0


def test_kadis700k_without_generated_images(tmp_path):
    fakes.kadis700k(tmp_path, generated=False)
    df, _ = ingest("kadis700k", tmp_path / "kadis700k", tmp_path)
    assert len(df) == 2 and df.is_reference.all()
    assert df.loc["kadis700k/zebra-1170177", "path"] == "ref_imgs/zebra-1170177.png"


def test_tid2013_case_quirks(tmp_path):
    fakes.tid2013(tmp_path)
    df, _ = ingest("tid2013", tmp_path / "tid2013", tmp_path)
    assert len(df) == 2 + 4
    # Ids follow the label text and canonical reference names; paths keep the case on disk.
    assert df.loc["tid2013/I25", "path"] == "reference_images/i25.bmp"
    assert df.loc["tid2013/I01", "path"] == "reference_images/I01.BMP"
    row = df.loc["tid2013/i25_24_5"]
    assert (row.path, row.ref_id, row.distortion, row.level) == ("distorted_images/I25_24_5.BMP", "tid2013/I25", 24, 5)
    scored = df[df.score_raw.notna()]
    np.testing.assert_allclose(scored.score, minmax(scored.score_raw), atol=1e-4)


@pytest.mark.parametrize("realigned", [True, False])
def test_live_flips_dmos(tmp_path, realigned):
    _, expected = fakes.live(tmp_path, realigned=realigned)
    df, meta = ingest("live", tmp_path, tmp_path)
    distorted = df[~df.is_reference]
    assert len(distorted) == 10 and df.is_reference.sum() == 2
    assert meta["reader"]["score_variable"] == ("dmos_new" if realigned else "dmos")
    raw = np.array([expected[sid.split("/", 1)[1]] for sid in distorted.sample_id]) - (0 if realigned else 1)
    np.testing.assert_allclose(distorted.score_raw, raw, atol=1e-4)
    np.testing.assert_allclose(distorted.score, minmax(raw, higher_is_better=False), atol=1e-4)
    assert meta["score_normalization"]["higher_is_better"] is False
    row = df.loc["live/fastfading/img2"]
    assert (row.path, row.distortion, row.ref_id) == ("fastfading/img2.bmp", 5, "live/parrots")
    assert pd.isna(row.level) and df.loc["live/jp2k/img1", "distortion"] == 1
    assert df.loc["live/jp2k/img1", "score"] == pytest.approx(10.0)  # lowest DMOS = best


def test_live_labels_option_picks_original_dmos(tmp_path):
    fakes.live(tmp_path)
    _, meta = ingest("live", tmp_path, tmp_path, "--labels", "dmos.mat")
    assert meta["reader"]["score_variable"] == "dmos" and meta["params"]["labels"] == "dmos.mat"


def test_csiq(tmp_path):
    fakes.csiq(tmp_path)
    df, meta = ingest("csiq", tmp_path, tmp_path)
    assert len(df) == 2 + 6 and meta["reader"]["sheet"] == "all_by_image"
    row = df.loc["csiq/1600.AWGN.4"]
    assert (row.path, row.ref_id, row.distortion, row.level) == ("dst_imgs/awgn/1600.AWGN.4.png", "csiq/1600", 1, 4)
    assert df.loc["csiq/aerial_city.contrast.1", "distortion"] == 6
    scored = df[df.score_raw.notna()]
    np.testing.assert_allclose(scored.score, minmax(scored.score_raw, higher_is_better=False), atol=1e-4)
    assert df.loc["csiq/1600.AWGN.1", "score"] == pytest.approx(10.0)


def test_pipal(tmp_path):
    fakes.pipal(tmp_path)
    df, _ = ingest("pipal", tmp_path / "PIPAL", tmp_path)
    assert len(df) == 2 + 4
    row = df.loc["pipal/A0002_12_03"]
    assert (row.path, row.ref_id, row.distortion, row.score_raw) == ("Train_Dis/A0002_12_03.bmp", "pipal/A0002", 12, 1601.0)
    assert pd.isna(row.level) and row.score == pytest.approx(10.0)
    assert df.loc["pipal/A0001_00_00", "score"] == pytest.approx(0.0)
    assert df.loc["pipal/A0001", "is_reference"]


def test_koniq10k_official_split(tmp_path):
    fakes.koniq10k(tmp_path)
    df, meta = ingest("koniq10k", tmp_path, tmp_path)
    assert len(df) == 3 and not df.is_reference.any() and (df.ref_id == df.sample_id).all()
    assert df.loc["koniq10k/826373", "path"] == "512x384/826373.jpg"
    assert df.split.to_dict() == {"koniq10k/1000023": "val", "koniq10k/2226770": "test", "koniq10k/826373": "train"}
    np.testing.assert_allclose(df.score, minmax(df.score_raw), atol=1e-4)
    assert meta["reader"]["image_folder"] == "512x384"
    assert set(meta["inputs"]) == {"koniq10k_scores_and_distributions.csv", "koniq10k_distributions_sets.csv"}


def test_koniq10k_other_folder_and_no_split(tmp_path):
    base = fakes.koniq10k(tmp_path, sets=False)
    (base / "512x384").rename(base / "1024x768")
    df, meta = ingest("koniq10k", base, tmp_path)
    assert df.split.isna().all() and meta["reader"]["image_folder"] == "1024x768"


def test_livec_drops_practice_images(tmp_path):
    fakes.livec(tmp_path)
    df, meta = ingest("livec", tmp_path, tmp_path)
    assert sorted(df.sample_id) == ["livec/10", "livec/100", "livec/1000"]
    assert df.loc["livec/1000", "path"] == "Images/1000.JPG"
    np.testing.assert_allclose(df.loc[["livec/10", "livec/100", "livec/1000"], "score"], [10.0, 0.0, 35 / 60 * 10], atol=1e-4)
    assert meta["reader"]["dropped_practice_images"] == 7


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_bid(tmp_path, kind):
    # The original DatabaseGrades.xls cannot be written here (no .xls writer installed); the .xls
    # path uses the same code through pandas' xlrd engine.
    fakes.bid(tmp_path, kind)
    df, meta = ingest("bid", tmp_path, tmp_path)
    assert sorted(df.sample_id) == ["bid/DatabaseImage0001", "bid/DatabaseImage0002", "bid/DatabaseImage0003"]
    assert df.loc["bid/DatabaseImage0002", "path"] == "ImageDatabase/DatabaseImage0002.JPG"
    np.testing.assert_allclose(df.loc["bid/DatabaseImage0001", "score"], 10.0)
    np.testing.assert_allclose(df.loc["bid/DatabaseImage0003", "score"], (2.5 - 0.6) / 3.6 * 10, atol=1e-4)
    assert meta["reader"]["label_file"] == f"DatabaseGrades.{kind}"


def test_spaq(tmp_path):
    fakes.spaq(tmp_path)
    df, _ = ingest("spaq", tmp_path, tmp_path)
    assert df.loc["spaq/00002", "score"] == pytest.approx(10.0) and df.loc["spaq/00003", "score"] == pytest.approx(0.0)
    assert df.loc["spaq/00001", "path"] == "TestImage/00001.jpg"


def test_user_csv_mapping(tmp_path):
    root = fakes.user_csv(tmp_path)
    df, meta = ingest(
        "csv", root, tmp_path, "--labels", "labels.csv", "--path-column", "file", "--score-column", "dmos",
        "--lower-is-better", "--ref-column", "reference", "--distortion-column", "type", "--level-column", "lev",
        "--split-column", "fold", "--source", "mine",
    )
    assert len(df) == 5  # 4 listed + refs/a.png added as the (unscored) reference of a_1, a_2
    a = df.loc["mine/refs/a"]
    assert a.is_reference and pd.isna(a.score)
    b = df.loc["mine/refs/b"]
    assert b.is_reference and b.score == pytest.approx(10.0)  # dmos 0 = best
    row = df.loc["mine/dist/a_2"]
    assert (row.ref_id, row.distortion, row.level, row.split) == ("mine/refs/a", 3, 4, "train")
    assert row.score == pytest.approx(0.0)
    assert meta["params"]["lower_is_better"] is True and meta["score_normalization"]["higher_is_better"] is False


def test_user_csv_empty_score_cell_is_unscored(tmp_path):
    root = fakes.user_csv(tmp_path)
    pd.DataFrame({"path": ["dist/a_1.png", "refs/a.png"], "mos": ["3.5", ""]}).to_csv(root / "s.csv", index=False)
    df, _ = ingest("csv", root, tmp_path, "--labels", "s.csv", "--score-column", "mos")
    assert pd.isna(df.loc["mydata/refs/a", "score"]) and df.loc["mydata/dist/a_1", "score"] == pytest.approx(5.0)


def test_user_csv_minimal_each_image_its_own_content(tmp_path):
    root = fakes.user_csv(tmp_path)
    df, _ = ingest("csv", root, tmp_path, "--labels", str(root / "labels.csv"), "--path-column", "file")
    assert len(df) == 4 and (df.ref_id == df.sample_id).all() and df.score.isna().all()
    assert df.source.unique().tolist() == ["mydata"]


def test_folder(tmp_path):
    fakes.folder(tmp_path)
    df, meta = ingest("folder", tmp_path / "pool", tmp_path)
    assert sorted(df.sample_id) == ["pool/sub/deeper/z", "pool/sub/y", "pool/x"]
    assert df.is_reference.all() and (df.ref_id == df.sample_id).all() and df.score.isna().all()
    assert df.loc["pool/sub/y", "path"] == "sub/y.PNG"
    assert meta["inputs"]["./"]["files"] == 3


def test_source_option_renames_ids(tmp_path):
    root = fakes.kadid10k(tmp_path)
    df, meta = ingest("kadid10k", root, tmp_path, "--source", "kadid-a")
    assert "kadid-a/I01_01_01" in df.index and df.loc["kadid-a/I01_01_01", "ref_id"] == "kadid-a/I01"
    assert meta["source"] == "kadid-a" and meta["params"]["source"] == "kadid-a"
