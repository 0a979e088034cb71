"""Tiny fake copies of each native IQA dataset layout, for the reader tests.

Each builder writes real (8x8) images and label files with the dataset's own file names, column
names, .mat variable names and spreadsheet sheets, and returns what the test needs to check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
from PIL import Image


def image(path: Path, seed: int = 0) -> Path:
    """Write an 8x8 RGB image; the format follows the suffix (.bmp/.png/.jpg, any case)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fmt = {".bmp": "BMP", ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}[path.suffix.lower()]
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(path, format=fmt)
    return path


def cell(strings: list[str], shape: tuple[int, int]) -> np.ndarray:
    """A MATLAB cell array of strings for scipy.io.savemat."""
    arr = np.empty(len(strings), dtype=object)
    arr[:] = strings
    return arr.reshape(shape, order="F")


def kadid10k(root: Path) -> Path:
    """2 references x 2 types x 2 levels; dmos 1-5 (higher = better)."""
    base = root / "kadid10k"
    rows = []
    for r, ref in enumerate(["I01", "I02"]):
        image(base / "images" / f"{ref}.png", r)
        for t in (1, 25):
            for lev in (1, 5):
                name = f"{ref}_{t:02d}_{lev:02d}.png"
                image(base / "images" / name, r * 100 + t * 10 + lev)
                rows.append((name, f"{ref}.png", 5.0 - lev * 0.8 + r * 0.1, 0.5))
    pd.DataFrame(rows, columns=["dist_img", "ref_img", "dmos", "var"]).to_csv(base / "dmos.csv", index=False)
    return base


def kadis700k(root: Path, *, generated: bool = True) -> Path:
    base = root / "kadis700k"
    refs = [("abandoned-boat-1622316.png", 3), ("zebra-1170177.png", 12)]
    for i, (name, _) in enumerate(refs):
        image(base / "ref_imgs" / name, i)
    pd.DataFrame(refs, columns=["ref_im", "dist_type"]).to_csv(base / "kadis700k_ref_imgs.csv", index=False)
    if generated:
        (base / "dist_imgs").mkdir(parents=True)
        for name, t in refs[:1]:
            for lev in range(1, 6):
                image(base / "dist_imgs" / f"{name[:-4]}_{t:02d}_{lev:02d}.bmp", lev)
    return base


def tid2013(root: Path) -> Path:
    """References I01.BMP and i25.bmp (the real archive's case quirk); MOS 0-9."""
    base = root / "tid2013"
    image(base / "reference_images" / "I01.BMP", 1)
    image(base / "reference_images" / "i25.bmp", 2)
    lines = []
    for ref in (1, 25):
        for t, lev, mos in ((1, 1, 6.5), (24, 5, 1.25)):
            name = f"i{ref:02d}_{t:02d}_{lev}.bmp"
            image(base / "distorted_images" / (name.upper() if ref == 25 else name), ref + t + lev)
            lines.append(f"{mos + ref / 100:.5f} {name}")
    (base / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    return base


LIVE_FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))


def live(root: Path, *, realigned: bool = True) -> tuple[Path, dict[str, float]]:
    """All 982 entries, but only a few are distorted (orgs = 0); the rest are reference copies.

    Returns the root and the DMOS of each distorted image ("folder/imgN") as stored.
    """
    base = root / "databaserelease2"
    refs = ["parrots.bmp", "womanhat.bmp"]
    for i, r in enumerate(refs):
        image(base / "refimgs" / r, i)
    names, dmos, orgs, expected = [], [], [], {}
    for f, (folder, n) in enumerate(LIVE_FOLDERS):
        (base / folder).mkdir(parents=True)
        for k in range(1, n + 1):
            ref = refs[k % 2]
            distorted = k <= 2
            value = 20.0 + 10 * f + k if distorted else 0.0
            names.append(ref)
            dmos.append(value)
            orgs.append(0 if distorted else 1)
            if distorted:
                image(base / folder / f"img{k}.bmp", f * 10 + k)
                expected[f"{folder}/img{k}"] = value
    row = np.array([dmos], dtype=np.float64)
    scipy.io.savemat(base / "dmos.mat", {"dmos": row - 1.0, "orgs": np.array([orgs], dtype=np.float64)})
    if realigned:
        scipy.io.savemat(
            base / "dmos_realigned.mat",
            {"dmos_new": row, "dmos_std": np.ones_like(row), "orgs": np.array([orgs], dtype=np.float64)},
        )
    scipy.io.savemat(base / "refnames_all.mat", {"refnames_all": cell(names, (1, len(names)))})
    return base, expected


def csiq(root: Path) -> Path:
    """Two references, three types; the sheet has a title row above the header like the real file."""
    base = root / "CSIQ"
    image(base / "src_imgs" / "1600.png", 1)
    image(base / "src_imgs" / "aerial_city.png", 2)
    rows = []
    for img, types in ((1600, [(1, "awgn", "AWGN")]), ("aerial_city", [(3, "jpeg2000", "jpeg2000"), (6, "contrast", "contrast")])):
        for code, folder, tag in types:
            for lev, d in ((1, 0.05), (4, 0.8)):
                image(base / "dst_imgs" / folder / f"{img}.{tag}.{lev}.png", code * 10 + lev)
                rows.append([img, code, folder if folder != "awgn" else "noise", lev, 0.01, d])
    header = ["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"]
    table = pd.DataFrame([["CSIQ DMOS by image", None, None, None, None, None], header, *rows])
    with pd.ExcelWriter(base / "csiq.DMOS.xlsx", engine="openpyxl") as xl:
        pd.DataFrame([["notes"]]).to_excel(xl, sheet_name="info", header=False, index=False)
        table.to_excel(xl, sheet_name="all_by_image", header=False, index=False)
    return base


def pipal(root: Path) -> Path:
    base = root / "PIPAL"
    for i, ref in enumerate(["A0001", "A0002"]):
        image(base / "Train_Ref" / f"{ref}.bmp", i)
        lines = []
        for t, n, elo in ((0, 0, 1200.0), (12, 3, 1600.0 + i)):
            name = f"{ref}_{t:02d}_{n:02d}.bmp"
            image(base / "Train_Dis" / name, t + n)
            lines.append(f"{name},{elo}")
        (base / "Train_Label").mkdir(exist_ok=True)
        (base / "Train_Label" / f"{ref}.txt").write_text("\n".join(lines) + "\n")
    return base


def koniq10k(root: Path, *, sets: bool = True) -> Path:
    base = root / "koniq10k"
    names = ["826373.jpg", "1000023.jpg", "2226770.jpg"]
    mos = [3.9, 1.2, 4.4]
    for i, n in enumerate(names):
        image(base / "512x384" / n, i)
    cols = {"image_name": names, **{f"c{k}": [1, 2, 3] for k in range(1, 6)}, "c_total": [5, 5, 5], "MOS": mos,
            "SD": [0.5, 0.4, 0.3], "MOS_zscore": [70.0, 10.0, 80.0]}
    pd.DataFrame(cols).to_csv(base / "koniq10k_scores_and_distributions.csv", index=False)
    if sets:
        sets_cols = {"image_name": names, **{f"c{k}": [1, 2, 3] for k in range(1, 6)}, "MOS": mos,
                     "SD": [0.5, 0.4, 0.3], "set": ["training", "validation", "test"]}
        pd.DataFrame(sets_cols).to_csv(base / "koniq10k_distributions_sets.csv", index=False)
    return base


def livec(root: Path) -> Path:
    """7 practice entries (t1-t7, in Images/trainingImages) then 3 real images."""
    base = root / "ChallengeDB_release"
    practice = [f"t{i}.bmp" for i in range(1, 8)]
    real = ["10.bmp", "100.bmp", "1000.JPG"]
    for i, n in enumerate(practice):
        image(base / "Images" / "trainingImages" / n, i)
    for i, n in enumerate(real):
        image(base / "Images" / n, 10 + i)
    names = practice + real
    mos = [50.0] * 7 + [80.0, 20.0, 55.0]
    (base / "Data").mkdir(parents=True)
    scipy.io.savemat(base / "Data" / "AllImages_release.mat", {"AllImages_release": cell(names, (len(names), 1))})
    scipy.io.savemat(base / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.array([mos])})
    scipy.io.savemat(base / "Data" / "AllStdDev_release.mat", {"AllStdDev_release": np.ones((1, len(names)))})
    return base


def bid(root: Path, kind: str = "xlsx") -> Path:
    base = root / "BID"
    for n in (1, 2, 3):
        image(base / "ImageDatabase" / f"DatabaseImage{n:04d}.JPG", n)
    table = pd.DataFrame([["Image Number", "Average Subjective Grade"], [1, 4.2], [2, 0.6], [3, 2.5]])
    if kind == "xlsx":
        with pd.ExcelWriter(base / "DatabaseGrades.xlsx", engine="openpyxl") as xl:
            table.to_excel(xl, sheet_name="Plan1", header=False, index=False)
    else:
        table.to_csv(base / "DatabaseGrades.csv", header=False, index=False)
    return base


def spaq(root: Path) -> Path:
    base = root / "SPAQ"
    names = ["00001.jpg", "00002.jpg", "00003.jpg"]
    for i, n in enumerate(names):
        image(base / "TestImage" / n, i)
    (base / "Annotations").mkdir(parents=True)
    df = pd.DataFrame({"Image name": names, "MOS": [42.0, 90.5, 11.0], "Brightness": [1, 2, 3],
                       "Colorfulness": [1, 2, 3], "Contrast": [1, 2, 3], "Noisiness": [1, 2, 3], "Sharpness": [1, 2, 3]})
    df.to_excel(base / "Annotations" / "MOS and Image attribute scores.xlsx", index=False, engine="openpyxl")
    return base


def user_csv(root: Path) -> Path:
    base = root / "mydata"
    for p in ("refs/a.png", "dist/a_1.png", "dist/a_2.png", "dist/b_1.png", "refs/b.png"):
        image(base / p, len(p))
    pd.DataFrame(
        {
            "file": ["dist/a_1.png", "dist/a_2.png", "dist/b_1.png", "refs/b.png"],
            "dmos": ["10", "60", "35", "0"],
            "reference": ["refs/a.png", "refs/a.png", "refs/b.png", "refs/b.png"],
            "type": ["3", "3", "7", ""],
            "lev": ["1", "4", "2", ""],
            "fold": ["train", "train", "test", "test"],
        }
    ).to_csv(base / "labels.csv", index=False)
    return base


def folder(root: Path) -> Path:
    base = root / "pool"
    for p in ("x.jpg", "sub/y.PNG", "sub/deeper/z.bmp"):
        image(base / p, len(p))
    (base / "notes.txt").write_text("not an image")
    (base / ".hidden.jpg").write_bytes(b"")
    return base
