"""A KADID-layout demo corpus built offline from photos shipped inside installed packages.

``build_demo_corpus(out_dir)`` writes, under ``out_dir``:

* ``train/``: 28 references (``images/I01.png`` ... ``I28.png``), four crops of each of the seven
  :data:`TRAIN_PHOTOS`. The first crop of each photo (``I01`` ... ``I07``) is rendered under all
  25 KADID types x 5 levels, like KADID; the other 21 under the target's types only (default:
  livec's 1, 3, 10, 17, 18, 25), the types every manifest trains on: 1,505 distorted images. With
  ``dmos.csv`` (columns ``dist_img,ref_img,dmos,var``) this is the real KADID-10k layout, so
  ``curate ingest kadid10k DIR/train`` reads it.
* ``pool/``: 15 candidate reference images (``P01.png`` ...) for ``curate ingest folder`` and then
  ``curate synthesize``: crops of the six greyscale :data:`POOL_PHOTOS` (contents found nowhere
  else), a mirrored twin of the first of them, other regions of four training photos, mirrored
  copies of two training references (the same content) and two synthetic graphics (a colour wheel
  and a logo), so that DDCUp keeps some and refuses others for each of its reasons.
* ``test/``: 12 references (``I61`` ... ``I72``), three crops of each of the four
  :data:`TEST_PHOTOS`, photos that appear nowhere in train or pool, under the target's types at
  all 5 levels (360 distorted images), in the same layout: the shift DDCUp addresses is new
  content, not new distortion types.
* ``demo_corpus.json``: where every reference came from (photo, crop box, mirroring), the image
  size, the seed, the score definition, and whether the build finished (``complete``).

Photos: scikit-image ``skimage.data`` (astronaut, chelsea, coffee, rocket, hubble_deep_field,
retina, immunohistochemistry, stereo_motorcycle; greyscale brick, camera, coins, grass, gravel,
moon; graphics colorwheel, logo), scikit-learn ``load_sample_images`` (china, flower) and
matplotlib's sample ``grace_hopper``.

The design was chosen on a validation split of the training photos (``tools/demo_design.py``
prints the study; the held-out test photos play no part in it). Why the images are this small:
every encoder resizes an image to 256 pixels on its short side before its 224 crop, so a small
image shows its distortions magnified (here 3.6x) and a large one shrinks them; a ridge regressor
on EfficientNet-Lite0 features ranked held-out photos' images better the smaller they were (SRCC
0.63 at 192 x 144, 0.67 at 96 x 72, 0.70 at 64 x 48 with the demo's encoder); 96 x 72 keeps the
thumbnails legible. Each crop is at least 192 pixels wide in its photo, so every reference is a
shrunk, sharp view. KADID's fixed-size distortions (16-pixel patches of type 20, 32-pixel colour
blocks of type 23, shrunk here to a third of the short side) cover far more of such an image than
of a 512 x 384 one. Why four crops per photo, three of them under the target's types only: on
validation the head-only regressor did as well or better from four crops as from two, and varied
less between splits (SRCC 0.515 +- 0.094 against 0.492 +- 0.137), and the 25-type grid on every
crop would quadruple the embedding time of ``curate demo``.

Scores (higher = better, like KADID's DMOS, on 1-5) come from GMSD, a perceptual full-reference
measure (:func:`gmsd`, :func:`fr_score`).
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
from scipy import ndimage

from curate.distort.filters import luma
from curate.distort.presets import parse_types
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

# Version of the design below (photos, crops, size, score); a folder built by another is not reused.
DESIGN_VERSION = 2
SIZE = (96, 72)  # width, height of every demo image (KADID's 4:3)
TRAIN_PHOTOS = ("astronaut", "rocket", "china", "flower", "hubble_deep_field", "retina", "immunohistochemistry")
TEST_PHOTOS = ("chelsea", "coffee", "grace_hopper", "stereo_motorcycle")
POOL_PHOTOS = ("brick", "camera", "coins", "grass", "gravel", "moon")
SYNTHETIC = ("colorwheel", "logo")
TRAIN_CROPS_PER_PHOTO = 4
# Crops of each training photo rendered under every requested type (the KADID-like grid); the
# others only under the target's types, which every manifest trains on (a fraction of the time).
GRID_CROPS_PER_PHOTO = 1
TEST_CROPS_PER_PHOTO = 3
# Other regions of the training photos with most room for them, as pool candidates.
POOL_OTHER_CROPS = ("astronaut", "rocket", "china", "flower")
POOL_MIRRORED_TRAIN = 2  # mirrored copies of the first training references
POOL_MIRRORED_POOL = 1  # mirrored copies of the first greyscale candidates
TRAIN_FIRST_NUMBER = 1
TEST_FIRST_NUMBER = 61
# The target whose distortion types the test set holds unless told otherwise (the demo's default).
DEMO_PRESET = "livec"

# Least luma standard deviation (0-255) of a crop: references need content; pool candidates may be plainer.
REFERENCE_MIN_DETAIL = 35.0
POOL_MIN_DETAIL = 15.0

# GMSD's stability constant for 8-bit values (0.0026 on a 0-1 scale); see gmsd().
GMSD_CONSTANT = 170.0
# Score mapping (see fr_score): GMSD lies in [0, 0.5] (the largest spread of values in [0, 1]).
SCORE_PER_GMSD = 8.0

INFO_NAME = "demo_corpus.json"
PARTS = ("train", "pool", "test")


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


def _matplotlib_photo(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from matplotlib import cbook

        with cbook.get_sample_data(f"{name}.jpg") as handle, Image.open(handle) as image:
            return np.asarray(image.convert("RGB"))

    return load


PHOTO_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    **{n: _skimage_photo(n) for n in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
                                      "immunohistochemistry", "stereo_motorcycle", "colorwheel", "logo",
                                      *POOL_PHOTOS)},
    "china": _sklearn_photo("china"),
    "flower": _sklearn_photo("flower"),
    "grace_hopper": _matplotlib_photo("grace_hopper"),
}


@functools.cache
def load_photo(name: str) -> np.ndarray:
    """An installed photo as uint8 RGB (greyscale repeated, alpha composited on white); read-only, decoded once."""
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

    def render(self, photo: np.ndarray, size: tuple[int, int] = SIZE) -> np.ndarray:
        """The box resized to ``size`` (width, height) with Lanczos filtering: uint8 [height, width, 3]."""
        box = photo[self.top : self.top + self.height, self.left : self.left + self.width]
        image = Image.fromarray(box, mode="RGB").resize(size, Image.Resampling.LANCZOS)
        array = np.asarray(image)
        return np.ascontiguousarray(array[:, ::-1] if self.mirrored else array)

    def flipped(self) -> Crop:
        return Crop(self.photo, self.left, self.top, self.width, self.height, mirrored=not self.mirrored)


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


def draw_crop(
    name: str,
    photo: np.ndarray,
    rng: np.random.Generator,
    taken: Sequence[Crop],
    min_detail: float = REFERENCE_MIN_DETAIL,
    min_width: int = 2 * SIZE[0],
) -> Crop:
    """A random 4:3 box covering 30-75% of the width of the photo's largest 4:3 box (at least ``min_width``).

    The default minimum, twice the demo image's width, makes every reference a shrunk (sharp) view.

    Accepted at once when it overlaps earlier boxes of the photo by at most 25% and its luma varies
    by at least ``min_detail`` (no empty sky or defocused background); otherwise the best of 200
    draws, counting overlap beyond 25% and missing detail (as a share of ``min_detail``) alike.
    """
    h, w = photo.shape[:2]
    full_w = min(w, h * 4 // 3)
    best: Crop | None = None
    best_key = (math.inf, math.inf)
    for _ in range(200):
        scale = rng.uniform(0.3, 0.75)
        cw = min(full_w, max(min_width, int(full_w * scale)))
        ch = cw * 3 // 4
        left = int(rng.integers(0, w - cw + 1))
        top = int(rng.integers(0, h - ch + 1))
        crop = Crop(name, left, top, cw, ch)
        worst = max((_overlap(crop, t) for t in taken if t.photo == name), default=0.0)
        flat = max(0.0, min_detail - _detail(photo, crop))
        key = (max(0.0, worst - 0.25) + flat / min_detail, worst)
        if key < best_key:
            best, best_key = crop, key
        if key[0] == 0.0:
            break
    assert best is not None
    return best


def plan_crops(seed: int) -> dict[str, list[Crop]]:
    """The crops of each part (train, pool, test), drawn from ``seed``; boxes of a photo barely overlap.

    Train: one crop of every training photo, then another of every one, four rounds. Pool: greyscale
    photos, mirrored twins of the first of them, other regions of training photos, mirrored
    training references, the synthetic graphics. Test: three crops of every test photo.
    """
    rng = np.random.default_rng([int(seed), 20_251_126])
    photos = {name: load_photo(name) for name in TRAIN_PHOTOS + TEST_PHOTOS + POOL_PHOTOS}
    taken: list[Crop] = []

    def draw(name: str, min_detail: float = REFERENCE_MIN_DETAIL) -> Crop:
        crop = draw_crop(name, photos[name], rng, taken, min_detail)
        taken.append(crop)
        return crop

    train = [draw(n) for _ in range(TRAIN_CROPS_PER_PHOTO) for n in TRAIN_PHOTOS]
    grey = [draw(n, POOL_MIN_DETAIL) for n in POOL_PHOTOS]
    twins = [c.flipped() for c in grey[:POOL_MIRRORED_POOL]]
    other = [draw(n, POOL_MIN_DETAIL) for n in POOL_OTHER_CROPS]
    mirrored = [c.flipped() for c in train[:POOL_MIRRORED_TRAIN]]
    synthetic = []
    for name in SYNTHETIC:
        h, w = load_photo(name).shape[:2]
        cw = min(w, h * 4 // 3)
        synthetic.append(Crop(name, (w - cw) // 2, (h - cw * 3 // 4) // 2, cw, cw * 3 // 4))
    test = [draw(n) for n in TEST_PHOTOS for _ in range(TEST_CROPS_PER_PHOTO)]
    return {"train": train, "pool": grey + twins + other + mirrored + synthetic, "test": test}


# --------------------------------------------------------------------------------------------
# Scores

_PREWITT = np.array([[1.0, 0.0, -1.0]] * 3) / 3.0


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """Prewitt gradient magnitude of a 2-D array (edges replicated)."""
    gx = ndimage.correlate(image, _PREWITT, mode="nearest")
    gy = ndimage.correlate(image, _PREWITT.T, mode="nearest")
    return np.sqrt(gx * gx + gy * gy)


def gmsd(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Gradient magnitude similarity deviation of ``distorted`` against ``reference`` (0 = identical).

    GMSD (Xue, Zhang, Mou and Bovik, IEEE TIP 2014): the per-pixel similarity of the two images'
    Prewitt gradient magnitudes m_r, m_d on the Rec. 601 luma (0-255),
    ``(2 m_r m_d + c) / (m_r^2 + m_d^2 + c)`` with ``c`` = :data:`GMSD_CONSTANT`, pooled by its
    standard deviation: a distortion that damages edges unevenly, as people notice, scores high.
    Computed at the image's own resolution (the published 2x pre-shrink suits 512-pixel images, not
    96-pixel ones). Inputs: uint8 [H, W, 3] arrays of one shape. Result in [0, 0.5].
    """
    if reference.shape != distorted.shape:
        raise ValueError(f"gmsd: shapes differ ({reference.shape} vs {distorted.shape})")
    m_ref = gradient_magnitude(luma(reference.astype(np.float64)))
    m_dist = gradient_magnitude(luma(distorted.astype(np.float64)))
    similarity = (2.0 * m_ref * m_dist + GMSD_CONSTANT) / (m_ref * m_ref + m_dist * m_dist + GMSD_CONSTANT)
    return float(similarity.std())


def fr_score(reference: np.ndarray, distorted: np.ndarray) -> tuple[float, float]:
    """Full-reference quality of ``distorted`` on a 1-5 DMOS-like scale (5 = pristine) and its variance.

    ``score = 5 - 8 * GMSD`` (:func:`gmsd`; GMSD <= 0.5, so the score stays within 1-5), rounded
    to 4 decimals. The variance, KADID's rating variance, is 0: one computed measure, no raters.

    Why GMSD: the labels must rank images across distortion types and levels as people do, and on
    KADID-10k gradient-similarity measures agree with human ratings markedly better than PSNR or
    SSIM. On the demo's validation split, GMSD's labels and MDSI's (which adds a chromaticity
    term) were learned equally well from EfficientNet-Lite0 features, well ahead of MS-SSIM, SSIM,
    PSNR and the former SSIM/PSNR mix (``tools/demo_design.py``); GMSD is the simpler of the two.
    """
    return round(5.0 - SCORE_PER_GMSD * gmsd(reference, distorted), 4), 0.0


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


def _check_types(types: Sequence[int], what: str) -> tuple[int, ...]:
    chosen = tuple(sorted(set(int(t) for t in types)))
    if not chosen or any(t not in DISTORTIONS for t in chosen):
        raise CurateError(f"demo corpus: {what} must be KADID numbers 1-25 (got {chosen})")
    return chosen


def _design(seed: int, crops: dict[str, list[Crop]]) -> dict[str, Any]:
    """What the images depend on (not which types were rendered): a folder made under another is not reused."""
    return {
        "version": DESIGN_VERSION,
        "seed": int(seed),
        "image_size": {"width": SIZE[0], "height": SIZE[1]},
        "crops": {part: [asdict(c) for c in crops[part]] for part in PARTS},
    }


def _prepare_folder(root: Path, design: dict[str, Any]) -> None:
    """Refuse a folder holding another demo corpus (or unknown train/pool/test folders); else mark it ours."""
    if root.exists() and not root.is_dir():
        raise CurateError(f"{root}: exists and is not a folder")
    info_path = root / INFO_NAME
    if info_path.is_file():
        try:
            earlier = json.loads(info_path.read_text(encoding="utf-8")).get("design")
        except (OSError, ValueError, AttributeError):
            earlier = None
        if earlier != design:
            raise CurateError(
                f"{root}: holds a demo corpus built with another seed or design; "
                "choose another folder or remove this one"
            )
    elif any((root / part).exists() for part in PARTS):
        raise CurateError(
            f"{root}: has train/, pool/ or test/ folders but no {INFO_NAME}; choose another folder or remove them"
        )
    # Marked before any image is written, so a killed build is recognised (and resumed) by a rerun.
    atomic_write_text(info_path, json.dumps({"design": design, "complete": False}, indent=2, sort_keys=True) + "\n")


def build_demo_corpus(
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    *,
    workers: int = 2,
    types: Sequence[int] = tuple(DISTORTIONS),
    target_types: Sequence[int] | None = None,
    quiet: bool = False,
) -> DemoCorpus:
    """Build the demo corpus under ``out_dir`` (see the module docstring); deterministic for ``seed``.

    ``types``: the KADID types rendered for the first crop of every training photo (all 25 by
    default). ``target_types``: the target's types (default: the :data:`DEMO_PRESET`'s), rendered
    for the other training crops and for the test set. Rerunning into the same folder with the same
    seed rewrites the references and keeps distorted images that already exist (they are
    identical), so a killed build resumes; a folder built with another seed or an earlier design is
    refused. About 10 CPU-seconds.
    """
    types = _check_types(types, "types")
    target_types = _check_types(parse_types(DEMO_PRESET) if target_types is None else target_types, "target types")
    root = Path(out_dir)
    crops = plan_crops(seed)
    design = _design(seed, crops)
    _prepare_folder(root, design)
    photos = {name: load_photo(name) for name in {c.photo for part in crops.values() for c in part}}

    train_refs = [(f"I{TRAIN_FIRST_NUMBER + i:02d}", c.render(photos[c.photo])) for i, c in enumerate(crops["train"])]
    grid = GRID_CROPS_PER_PHOTO * len(TRAIN_PHOTOS)  # plan_crops lists every photo's first crop first
    train_plan = {
        key: [(t, LEVELS) for t in (types if i < grid else target_types)] for i, (key, _) in enumerate(train_refs)
    }
    train_count, train_files = _write_kadid_part(
        root / "train", train_refs, train_plan, seed, workers, quiet, "demo train"
    )

    test_refs = [(f"I{TEST_FIRST_NUMBER + i:02d}", c.render(photos[c.photo])) for i, c in enumerate(crops["test"])]
    test_plan = [(t, LEVELS) for t in target_types]
    test_count, test_files = _write_kadid_part(
        root / "test", test_refs, {k: test_plan for k, _ in test_refs}, seed, workers, quiet, "demo test"
    )

    pool_dir = root / "pool"
    pool_files = []
    for i, crop in enumerate(crops["pool"]):
        path = pool_dir / f"P{i + 1:02d}.png"
        write_png(path, crop.render(photos[crop.photo]))
        pool_files.append(path)

    def describe(key: str, crop: Crop) -> dict[str, Any]:
        return {"name": key, **asdict(crop)}

    info = {
        "design": design,
        "complete": True,
        "seed": int(seed),
        "image_size": {"width": SIZE[0], "height": SIZE[1]},
        "train": {
            "references": [describe(k, c) for (k, _), c in zip(train_refs, crops["train"], strict=True)],
            "distorted": train_count,
            "types": {"first crop of each photo": list(types), "other crops": list(target_types)},
            "levels": list(LEVELS),
        },
        "pool": {"candidates": [describe(p.stem, c) for p, c in zip(pool_files, crops["pool"], strict=True)]},
        "test": {
            "references": [describe(k, c) for (k, _), c in zip(test_refs, crops["test"], strict=True)],
            "distorted": test_count,
            "types": list(target_types),
            "levels": list(LEVELS),
        },
        "score": {
            "scale": "1-5, higher = better (like KADID DMOS)",
            "formula": "5 - 8 * GMSD(reference, distorted), GMSD on Rec. 601 luma with Prewitt gradients, c = 170",
            "var": "0: one computed measure, no raters",
        },
        "photos": "skimage.data, sklearn.datasets.load_sample_images, matplotlib sample data (grace_hopper)",
    }
    info_path = root / INFO_NAME
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
