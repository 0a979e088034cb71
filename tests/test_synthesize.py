"""``curate synthesize``: outputs, corpus table, determinism across workers, resume, rejects, odd inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage import data

from curate.cli import cli
from curate.distort import DISTORTIONS, distortion_rng
from curate.distort.synthesize import output_name, synthesize
from curate.errors import CurateError
from curate.images import load_rgb
from curate.schema import make_metadata, read_corpus, read_frame, write_table

TYPES = (1, 10, 23)
LEVELS = (1, 3)


def photo(size: tuple[int, int], which: str = "astronaut") -> Image.Image:
    return Image.fromarray(getattr(data, which)()).resize(size, Image.Resampling.LANCZOS)


@pytest.fixture()
def refs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "refs"
    folder.mkdir()
    photo((48, 36)).save(folder / "alpha.png")
    photo((40, 30), "coffee").save(folder / "beta.jpg", quality=95)
    return folder


def table_bytes_free_of_metadata(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def test_outputs_and_corpus_table(refs_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = synthesize(refs_dir, out, types=TYPES, levels=LEVELS, seed=5, quiet=True)
    assert (summary.references, summary.distorted, summary.written, summary.kept, summary.rejected) == (2, 12, 12, 0, 0)
    for key, size in (("alpha", (48, 36)), ("beta", (40, 30))):
        assert load_rgb(out / f"{key}.png").shape == (size[1], size[0], 3)
        for t in TYPES:
            for lv in LEVELS:
                path = out / f"{key}_{t:02d}_{lv:02d}.png"
                assert path.is_file()
                expected = DISTORTIONS[t](load_rgb(out / f"{key}.png"), lv, distortion_rng(5, key, t, lv))
                np.testing.assert_array_equal(load_rgb(path), expected)
    frame, meta = read_corpus(out / "corpus.parquet")
    assert meta["root"] == str(out.resolve())
    assert meta["params"]["types"] == list(TYPES) and meta["params"]["levels"] == list(LEVELS)
    assert meta["seed"] == 5
    assert len(frame) == 14 and frame["is_reference"].sum() == 2
    alpha = frame[frame["ref_id"] == "synthesized/alpha"]
    assert len(alpha) == 7
    row = frame.set_index("sample_id").loc["synthesized/alpha_10_03"]
    assert (row["path"], row["distortion"], row["level"], bool(row["is_reference"])) == ("alpha_10_03.png", 10, 3, False)
    assert frame["score"].isna().all()
    for path in frame["path"]:
        assert (out / path).is_file()
    rejects, _ = read_frame(out / "rejects.parquet", "rejects")
    assert rejects.empty


def test_corpus_input_shares_ref_ids_and_splits(refs_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "pool.parquet"
    frame = pd.DataFrame(
        {
            "sample_id": ["pool/alpha", "pool/beta", "pool/alpha_x"],
            "path": ["alpha.png", "beta.jpg", "alpha.png"],
            "ref_id": ["pool/ref-a", "pool/ref-b", "pool/ref-a"],
            "is_reference": [True, True, False],
            "distortion": [None, None, 3],
            "level": [None, None, 2],
            "source": ["pool", "pool", "pool"],
            "split": ["train", None, "train"],
        }
    )
    write_table(frame, corpus, "corpus", make_metadata("corpus", root=str(refs_dir)))
    out = tmp_path / "out"
    synthesize(corpus, out, types=(1,), levels=(1, 5), quiet=True)
    result, _ = read_corpus(out / "corpus.parquet")
    assert set(result["ref_id"]) == {"pool/ref-a", "pool/ref-b"}
    a = result[result["ref_id"] == "pool/ref-a"]
    assert len(a) == 3 and set(a["split"]) == {"train"}
    assert set(a["path"]) == {"alpha.png", "alpha_01_01.png", "alpha_01_05.png"}


def test_same_images_and_table_whatever_the_worker_count(refs_dir: Path, tmp_path: Path) -> None:
    one = synthesize(refs_dir, tmp_path / "one", types=(3, 13), levels=LEVELS, workers=1, seed=9, quiet=True)
    two = synthesize(refs_dir, tmp_path / "two", types=(3, 13), levels=LEVELS, workers=2, seed=9, quiet=True)
    names = sorted(p.name for p in one.out_dir.glob("*.png"))
    assert names == sorted(p.name for p in two.out_dir.glob("*.png")) and len(names) == 10
    for name in names:
        assert (one.out_dir / name).read_bytes() == (two.out_dir / name).read_bytes(), name
    a = table_bytes_free_of_metadata(one.corpus_path).drop(columns=[])
    b = table_bytes_free_of_metadata(two.corpus_path)
    pd.testing.assert_frame_equal(a, b)
    # Another seed changes the random types.
    three = synthesize(refs_dir, tmp_path / "three", types=(13,), levels=(3,), seed=10, quiet=True)
    assert (three.out_dir / "alpha_13_03.png").read_bytes() != (one.out_dir / "alpha_13_03.png").read_bytes()


def test_resume_keeps_existing_outputs(refs_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = synthesize(refs_dir, out, types=TYPES, levels=LEVELS, quiet=True)
    assert first.written == 12
    original = (out / "beta_01_03.png").read_bytes()
    # A finished output is never redone: replace one with a marker and rerun.
    marker = out / "alpha_10_01.png"
    Image.new("RGB", (48, 36), (1, 2, 3)).save(marker)
    (out / "beta_01_03.png").unlink()
    again = synthesize(refs_dir, out, types=TYPES, levels=LEVELS, quiet=True)
    assert (again.written, again.kept) == (1, 11)
    assert load_rgb(marker)[0, 0].tolist() == [1, 2, 3]
    assert (out / "beta_01_03.png").read_bytes() == original
    assert not list(out.glob(".*tmp*"))  # no temporary files left behind


def test_a_folder_rendered_otherwise_is_refused_not_reused(refs_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    synthesize(refs_dir, out, types=(11,), levels=(3,), seed=0, quiet=True)
    before = (out / "alpha_11_03.png").read_bytes()
    with pytest.raises(CurateError, match="seed 0"):
        synthesize(refs_dir, out, types=(11,), levels=(3,), seed=5, quiet=True)
    assert (out / "alpha_11_03.png").read_bytes() == before
    # a reference whose content changed under the same name is refused too
    photo((48, 36), "coffee").save(refs_dir / "alpha.png")
    with pytest.raises(CurateError, match="'alpha' has changed"):
        synthesize(refs_dir, out, types=(11,), levels=(3,), seed=0, quiet=True)
    # more types with the same seed and the same references resume into a folder
    other = tmp_path / "other"
    synthesize(refs_dir, other, types=(11,), levels=(3,), seed=0, quiet=True)
    more = synthesize(refs_dir, other, types=(1, 11), levels=(3,), seed=0, quiet=True)
    assert more.kept == more.references and more.written == more.references


def test_bad_reference_is_a_reject_not_a_crash(refs_dir: Path, tmp_path: Path) -> None:
    (refs_dir / "broken.png").write_bytes(b"this is not a png")
    good = refs_dir / "alpha.png"
    (refs_dir / "cut.png").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    out = tmp_path / "out"
    summary = synthesize(refs_dir, out, types=(1,), levels=(2,), quiet=True)
    assert summary.rejected == 2 and summary.references == 2
    rejects, _ = read_frame(out / "rejects.parquet", "rejects")
    by_id = rejects.set_index("sample_id")
    assert by_id.loc["synthesized/broken", "reason"] == "unreadable"
    assert by_id.loc["synthesized/cut", "reason"] in ("truncated", "unreadable")
    assert str(refs_dir / "broken.png") == by_id.loc["synthesized/broken", "path"]
    corpus, _ = read_corpus(out / "corpus.parquet")
    assert not corpus["sample_id"].str.contains("broken|cut").any()
    # Past the threshold the run fails, still recording why.
    with pytest.raises(CurateError, match="2 rejects exceed --max-rejects 1"):
        synthesize(refs_dir, tmp_path / "strict", types=(1,), levels=(2,), max_rejects=1, quiet=True)
    assert (tmp_path / "strict" / "rejects.parquet").is_file()
    assert not (tmp_path / "strict" / "corpus.parquet").exists()


def test_odd_image_modes_and_sizes_are_converted(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    base = photo((24, 18))
    base.convert("L").save(folder / "grey.png")
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "rgba.png")
    base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(folder / "palette.png")
    deep = (np.asarray(base.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep16.png")  # 16-bit greyscale PNG
    photo((17, 9)).save(folder / "tiny.png")
    out = tmp_path / "out"
    summary = synthesize(folder, out, types=(2, 9, 20), levels=(1, 5), quiet=True)
    assert summary.rejected == 0 and summary.references == 5 and summary.distorted == 30
    for key, shape in (("grey", (18, 24)), ("rgba", (18, 24)), ("palette", (18, 24)), ("deep16", (18, 24)),
                       ("tiny", (9, 17))):
        with Image.open(out / output_name(key, 9, 5)) as written:
            assert written.mode == "RGB" and written.size == (shape[1], shape[0])
    grey = load_rgb(out / "grey.png")
    assert (grey[..., 0] == grey[..., 1]).all()  # greyscale stays grey in the RGB copy


def test_very_large_images_are_refused_above_the_limit(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    Image.new("1", (5000, 4000)).save(folder / "huge.png")  # 20 megapixels, tiny on disk
    photo((24, 18)).save(folder / "small.png")
    summary = synthesize(folder, tmp_path / "out", types=(1,), levels=(1,), quiet=True)
    rejects, _ = read_frame(summary.rejects_path, "rejects")
    assert rejects["reason"].tolist() == ["too_large"]
    assert "16000000" in rejects["message"].iloc[0]
    # The limit is a parameter: a lower one refuses the small image too, and then nothing is left.
    with pytest.raises(CurateError, match="no reference could be distorted"):
        synthesize(folder, tmp_path / "out2", types=(1,), levels=(1,), max_pixels=100, quiet=True)
    rejects, _ = read_frame(tmp_path / "out2" / "rejects.parquet", "rejects")
    assert sorted(rejects["reason"]) == ["too_large", "too_large"]


def test_name_collisions_and_bad_inputs_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "dupes"
    folder.mkdir()
    photo((20, 15)).save(folder / "a.png")
    photo((20, 15)).save(folder / "a.jpg")
    with pytest.raises(CurateError, match="share the file stem 'a'"):
        synthesize(folder, tmp_path / "out", types=(1,), levels=(1,), quiet=True)
    (folder / "a.jpg").unlink()
    photo((20, 15)).save(folder / "a_01_01.png")
    with pytest.raises(CurateError, match="name of an output"):
        synthesize(folder, tmp_path / "out", types=(1,), levels=(1,), quiet=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CurateError, match="no images"):
        synthesize(empty, tmp_path / "out", quiet=True)
    with pytest.raises(CurateError, match="another folder"):
        synthesize(folder, folder, types=(1,), levels=(1,), quiet=True)
    with pytest.raises(CurateError, match="types must be 1-25"):
        synthesize(folder, tmp_path / "out", types=(26,), quiet=True)


def test_gallery_is_drawn(refs_dir: Path, tmp_path: Path) -> None:
    gallery = tmp_path / "gallery.png"
    summary = synthesize(refs_dir, tmp_path / "out", types=(1, 2, 3), levels=(1, 2, 3, 4, 5), gallery=gallery,
                         quiet=True)
    assert summary.gallery_path == gallery
    with Image.open(gallery) as sheet:
        width, height = sheet.size
        assert width > 6 * 48 and height > 3 * 36


def test_cli_synthesize(refs_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(cli, ["synthesize", str(refs_dir), "-o", str(out), "--types", "1,10", "--levels", "5"])
    assert result.exit_code == 0, result.output
    assert "2 references, 4 distorted images (4 written, 0 kept" in result.output
    assert (out / "alpha_10_05.png").is_file() and (out / "corpus.parquet").is_file()
    preset = runner.invoke(cli, ["synthesize", str(refs_dir), "-o", str(out), "--types", "bid", "--levels", "1"])
    assert preset.exit_code == 0, preset.output
    assert (out / "alpha_21_01.png").is_file()  # bid = 1, 3, 9, 21, 23, 25
    bad = runner.invoke(cli, ["synthesize", str(refs_dir), "-o", str(out), "--levels", "6"])
    assert bad.exit_code == 2 and "levels are 1-5" in bad.output
    bad = runner.invoke(cli, ["synthesize", str(refs_dir), "-o", str(out), "--types", "nope"])
    assert bad.exit_code == 2 and "not a preset" in bad.output
    (refs_dir / "broken.png").write_bytes(b"junk")
    strict = runner.invoke(cli, ["synthesize", str(refs_dir), "-o", str(tmp_path / "s"), "--types", "1",
                                 "--levels", "1", "--max-rejects", "0"])
    assert strict.exit_code == 1 and "exceed --max-rejects 0" in strict.output
