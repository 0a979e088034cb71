"""A small KADID-layout demo corpus built offline from photos shipped inside installed packages.

``build_demo_corpus(out_dir)`` writes, under ``out_dir``:

* ``train/``: 12 references (``images/I01.png`` ... ``I12.png``) of 192 x 144 pixels, each under all
  25 KADID types x 5 levels (``images/I01_01_01.png`` ...; 1,500 distorted images) and
  ``dmos.csv`` (columns ``dist_img,ref_img,dmos,var``), i.e. the real KADID-10k layout, so
  ``curate ingest kadid10k DIR/train`` reads it.
* ``pool/``: 30 candidate reference images (``P01.png`` ...) for ``curate ingest folder`` and then
  ``curate synthesize``: 24 other crops (other regions and scales) of the training photos, 4
  mirrored copies of training references (near duplicates: not novel) and 2 synthetic graphics
  (a colour wheel and a logo: out of the training distribution), so DDCUp has candidates to keep
  and candidates to refuse for each reason.
* ``test/``: 4 references from two photos that appear nowhere else (``I61`` ... ``I64``), each
  under all 25 types at 2 levels drawn at random (200 distorted images), in the same layout.
* ``demo_corpus.json``: where every reference came from (photo, crop box, mirroring), the sizes,
  the seed and the score mapping.

Photos: scikit-image ``skimage.data`` (astronaut, chelsea, coffee, rocket, hubble_deep_field,
retina, immunohistochemistry, stereo_motorcycle) and scikit-learn ``load_sample_images`` (china,
flower). Training and pool crops come from the first eight of
:data:`TRAIN_PHOTOS`; the test set uses :data:`TEST_PHOTOS`.

Scores (higher = better, like KADID's DMOS, on 1-5): a full-reference measure against each image's
own reference, documented in :func:`fr_score`.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

from curate.distort.filters import luma
from curate.distort.registry import DISTORTIONS, LEVELS
from curate.distort.synthesize import (
    Reference,
    RenderTask,
    output_name,
    reference_name,
    render_task,
    run_parallel,
    write_png,
)
from curate.errors import CurateError
from curate.fsio import atomic_write_text

SIZE = (192, 144)  # width, height of every demo image (KADID's 4:3 at 3/8 of 512 x 384)
TRAIN_PHOTOS = ("astronaut", "chelsea", "rocket", "hubble_deep_field", "retina", "immunohistochemistry", "china", "flower")
TEST_PHOTOS = ("coffee", "stereo_motorcycle")
SYNTHETIC = ("colorwheel", "logo")
# Second training crops come from the photos with most room for distinct regions.
SECOND_TRAIN_CROPS = ("astronaut", "rocket", "china", "flower")
POOL_CROPS_PER_PHOTO = 3
POOL_MIRRORED_TRAIN = 4
TEST_CROPS_PER_PHOTO = 2
TEST_LEVELS_PER_TYPE = 2
TRAIN_FIRST_NUMBER = 1
TEST_FIRST_NUMBER = 61

# Least luma standard deviation (0-255) of a crop: references need content; pool candidates may be plainer.
REFERENCE_MIN_DETAIL = 35.0
POOL_MIN_DETAIL = 15.0

# Score mapping (see fr_score).
PSNR_FLOOR_DB = 10.0
PSNR_SPAN_DB = 40.0


@dataclass
class DemoCorpus:
    """The folders and files ``build_demo_corpus`` made."""

    root: Path
    train_dir: Path
    pool_dir: Path
    test_dir: Path
    info_path: Path
    train_references: int
    train_distorted: int
    pool_candidates: int
    test_references: int
    test_distorted: int
    files: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Photos


def _skimage_photo(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        image = getattr(data, name)()
        if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
            image = image[0]
        return image

    return load


def _sklearn_photo(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")

    return load


PHOTO_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    **{n: _skimage_photo(n) for n in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
                                      "immunohistochemistry", "stereo_motorcycle", "colorwheel", "logo")},
    "china": _sklearn_photo("china"),
    "flower": _sklearn_photo("flower"),
}


@functools.cache
def load_photo(name: str) -> np.ndarray:
    """An installed photo as uint8 RGB (alpha composited on white); read-only, decoded once."""
    try:
        image = np.asarray(PHOTO_LOADERS[name]())
    except Exception as exc:  # a package without its bundled images
        raise CurateError(f"demo photo {name!r} is not available in the installed packages ({exc})") from None
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[..., 3:4].astype(np.float64) / 255.0
        image = np.rint(image[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    image = np.ascontiguousarray(image[..., :3].astype(np.uint8))
    image.flags.writeable = False
    return image


# --------------------------------------------------------------------------------------------
# Crops


@dataclass(frozen=True)
class Crop:
    """A 4:3 box (left, top, width, height in photo pixels) of ``photo``, optionally mirrored."""

    photo: str
    left: int
    top: int
    width: int
    height: int
    mirrored: bool = False

    def render(self, photo: np.ndarray) -> np.ndarray:
        box = photo[self.top : self.top + self.height, self.left : self.left + self.width]
        image = Image.fromarray(box, mode="RGB").resize(SIZE, Image.Resampling.LANCZOS)
        array = np.asarray(image)
        return np.ascontiguousarray(array[:, ::-1] if self.mirrored else array)


def _overlap(a: Crop, b: Crop) -> float:
    """Intersection over the smaller box's area (1 when one box lies inside the other)."""
    w = min(a.left + a.width, b.left + b.width) - max(a.left, b.left)
    h = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
    if w <= 0 or h <= 0:
        return 0.0
    return (w * h) / min(a.width * a.height, b.width * b.height)


def _detail(photo: np.ndarray, crop: Crop) -> float:
    """Standard deviation of the luma inside the box (0-255), sampled on a coarse grid."""
    step = max(1, crop.width // 64)
    box = photo[crop.top : crop.top + crop.height : step, crop.left : crop.left + crop.width : step]
    return float(luma(box.astype(np.float64)).std())


def _draw_crop(name: str, photo: np.ndarray, rng: np.random.Generator, taken: list[Crop], min_detail: float) -> Crop:
    """A random 4:3 box covering 30-75% of the photo's largest 4:3 box.

    Accepted at once when it overlaps earlier boxes of the photo by at most 25% and its luma varies
    by at least ``min_detail`` (no empty sky or defocused background); otherwise the best of 200 draws.
    """
    h, w = photo.shape[:2]
    full_w = min(w, h * 4 // 3)
    best: Crop | None = None
    best_key = (math.inf, math.inf)
    for _ in range(200):
        scale = rng.uniform(0.3, 0.75)
        cw = max(SIZE[0] // 2, int(full_w * scale))
        ch = cw * 3 // 4
        left = int(rng.integers(0, w - cw + 1))
        top = int(rng.integers(0, h - ch + 1))
        crop = Crop(name, left, top, cw, ch)
        worst = max((_overlap(crop, t) for t in taken if t.photo == name), default=0.0)
        flat = max(0.0, min_detail - _detail(photo, crop))
        key = (max(0.0, worst - 0.25) + flat / 255.0, worst)
        if key < best_key:
            best, best_key = crop, key
        if key[0] == 0.0:
            break
    assert best is not None
    return best


def plan_crops(seed: int) -> dict[str, list[Crop]]:
    """The crops of each part (train, pool, test), drawn from ``seed``; boxes of a photo barely overlap."""
    rng = np.random.default_rng([int(seed), 20_251_126])
    photos = {name: load_photo(name) for name in TRAIN_PHOTOS + TEST_PHOTOS}
    taken: list[Crop] = []

    def draw(name: str, min_detail: float = REFERENCE_MIN_DETAIL) -> Crop:
        crop = _draw_crop(name, photos[name], rng, taken, min_detail)
        taken.append(crop)
        return crop

    train = [draw(n) for n in TRAIN_PHOTOS] + [draw(n) for n in SECOND_TRAIN_CROPS]
    pool = [draw(n, POOL_MIN_DETAIL) for n in TRAIN_PHOTOS for _ in range(POOL_CROPS_PER_PHOTO)]
    mirrored = [Crop(c.photo, c.left, c.top, c.width, c.height, mirrored=True) for c in train[:POOL_MIRRORED_TRAIN]]
    synthetic = []
    for name in SYNTHETIC:
        h, w = load_photo(name).shape[:2]
        cw = min(w, h * 4 // 3)
        synthetic.append(Crop(name, (w - cw) // 2, (h - cw * 3 // 4) // 2, cw, cw * 3 // 4))
    test = [draw(n) for n in TEST_PHOTOS for _ in range(TEST_CROPS_PER_PHOTO)]
    return {"train": train, "pool": pool + mirrored + synthetic, "test": test}


# --------------------------------------------------------------------------------------------
# Scores


def fr_score(reference: np.ndarray, distorted: np.ndarray) -> tuple[float, float]:
    """Full-reference quality of ``distorted`` against ``reference`` on a 1-5 DMOS-like scale (5 = pristine).

    Two fidelity terms in [0, 1]:

    * structure: SSIM of the Rec. 601 luma (Gaussian window sigma 1.5, data range 255), clipped at 0;
    * colour: PSNR over the RGB values mapped linearly from 10 dB (0) to 50 dB (1), clipped.

    ``score = 1 + 4 * (structure + colour) / 2``. ``variance`` is the variance of the two one-term
    predictions ``1 + 4 * term`` (their disagreement), standing in for KADID's rating variance.
    Identical images score 5 with variance 0.
    """
    ref = reference.astype(np.float64)
    dist = distorted.astype(np.float64)
    ssim = structural_similarity(
        luma(ref), luma(dist), data_range=255.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    mse = float(np.mean((ref - dist) ** 2))
    psnr = math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)
    structure = min(1.0, max(0.0, float(ssim)))
    colour = min(1.0, max(0.0, (psnr - PSNR_FLOOR_DB) / PSNR_SPAN_DB))
    predictions = (1.0 + 4.0 * structure, 1.0 + 4.0 * colour)
    score = (predictions[0] + predictions[1]) / 2.0
    variance = ((predictions[0] - predictions[1]) / 2.0) ** 2
    return round(score, 4), round(variance, 4)


# --------------------------------------------------------------------------------------------
# Building


def _write_kadid_part(
    part_dir: Path,
    references: list[tuple[str, np.ndarray]],
    plan: dict[str, list[tuple[int, tuple[int, ...]]]],
    seed: int,
    workers: int,
    quiet: bool,
    desc: str,
) -> tuple[int, list[Path]]:
    """Write references, their distortions and ``dmos.csv`` in the KADID layout; returns (count, files)."""
    images_dir = part_dir / "images"
    files: list[Path] = []
    refs = []
    for key, array in references:
        path = images_dir / reference_name(key)
        write_png(path, array)
        files.append(path)
        refs.append(Reference(key=key, path=path, sample_id=key, ref_id=key))
    tasks = [
        RenderTask(ref, images_dir, (t,), levels, seed, scorer=fr_score)
        for ref in refs
        for t, levels in plan[ref.key]
    ]
    results = run_parallel(
        render_task, tasks, workers, desc=desc, unit="img", weights=[len(t.levels) for t in tasks], quiet=quiet
    )
    lines = ["dist_img,ref_img,dmos,var"]
    for task, result in zip(tasks, results, strict=True):
        problems = [result.load_error] if result.load_error else [f[3] for f in result.failures]
        if problems:
            raise CurateError(f"demo corpus: {task.reference.key} type {task.types[0]}: {problems[0]}")
        for image in result.images:
            name = output_name(task.reference.key, image.distortion, image.level)
            lines.append(f"{name},{reference_name(task.reference.key)},{image.score:.4f},{image.variance:.4f}")
            files.append(images_dir / name)
    body = [lines[0]] + sorted(lines[1:])
    csv_path = part_dir / "dmos.csv"
    atomic_write_text(csv_path, "\n".join(body) + "\n")
    files.append(csv_path)
    return len(body) - 1, files


def build_demo_corpus(
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    *,
    workers: int = 2,
    types: Sequence[int] = tuple(DISTORTIONS),
    quiet: bool = False,
) -> DemoCorpus:
    """Build the demo corpus under ``out_dir`` (see the module docstring); deterministic for ``seed``.

    ``types`` narrows the KADID types rendered (all 25 by default; fewer make a quick corpus for
    tests). Rerunning into the same folder rewrites the references and keeps distorted images that
    already exist (they are identical for the same seed). About 40 CPU-seconds (20-30 s on 2 cores).
    """
    types = tuple(sorted(set(int(t) for t in types)))
    if not types or any(t not in DISTORTIONS for t in types):
        raise CurateError(f"demo corpus: types must be KADID numbers 1-25 (got {types})")
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise CurateError(f"{root}: exists and is not a folder")
    crops = plan_crops(seed)
    photos = {name: load_photo(name) for name in {c.photo for part in crops.values() for c in part}}
    rng = np.random.default_rng([int(seed), 61])

    train_refs = [(f"I{TRAIN_FIRST_NUMBER + i:02d}", c.render(photos[c.photo])) for i, c in enumerate(crops["train"])]
    full_plan = [(t, LEVELS) for t in types]
    train_count, train_files = _write_kadid_part(
        root / "train", train_refs, {k: full_plan for k, _ in train_refs}, seed, workers, quiet, "demo train"
    )

    test_refs = [(f"I{TEST_FIRST_NUMBER + i:02d}", c.render(photos[c.photo])) for i, c in enumerate(crops["test"])]
    test_plan = {
        key: [(t, tuple(sorted(int(v) for v in rng.choice(LEVELS, TEST_LEVELS_PER_TYPE, replace=False))))
              for t in types]
        for key, _ in test_refs
    }
    test_count, test_files = _write_kadid_part(root / "test", test_refs, test_plan, seed, workers, quiet, "demo test")

    pool_dir = root / "pool"
    pool_files = []
    for i, crop in enumerate(crops["pool"]):
        path = pool_dir / f"P{i + 1:02d}.png"
        write_png(path, crop.render(photos[crop.photo]))
        pool_files.append(path)

    def describe(key: str, crop: Crop) -> dict[str, Any]:
        return {"name": key, **asdict(crop)}

    info = {
        "seed": int(seed),
        "image_size": {"width": SIZE[0], "height": SIZE[1]},
        "train": {
            "references": [describe(k, c) for (k, _), c in zip(train_refs, crops["train"], strict=True)],
            "distorted": train_count,
            "types": list(types),
            "levels": list(LEVELS),
        },
        "pool": {"candidates": [describe(p.stem, c) for p, c in zip(pool_files, crops["pool"], strict=True)]},
        "test": {
            "references": [describe(k, c) for (k, _), c in zip(test_refs, crops["test"], strict=True)],
            "distorted": test_count,
            "levels_per_type": TEST_LEVELS_PER_TYPE,
        },
        "score": {
            "scale": "1-5, higher = better (like KADID DMOS)",
            "formula": "1 + 4 * (clip(SSIM_luma, 0, 1) + clip((PSNR_rgb_dB - 10) / 40, 0, 1)) / 2",
            "var": "variance of the two one-term predictions 1 + 4 * term",
        },
        "photos": "skimage.data and sklearn.datasets.load_sample_images",
    }
    info_path = root / "demo_corpus.json"
    atomic_write_text(info_path, json.dumps(info, indent=2, sort_keys=True) + "\n")
    return DemoCorpus(
        root=root,
        train_dir=root / "train",
        pool_dir=pool_dir,
        test_dir=root / "test",
        info_path=info_path,
        train_references=len(train_refs),
        train_distorted=train_count,
        pool_candidates=len(pool_files),
        test_references=len(test_refs),
        test_distorted=test_count,
        files=train_files + test_files + pool_files + [info_path],
    )
