"""The registry of the 25 KADID distortion types, keyed by KADID number and by name.

Every type is a :class:`Distortion`: call it as ``distortion(image, level, rng)`` with a uint8
H x W x 3 image, a level 1-5 and a :class:`numpy.random.Generator`; it returns a new uint8 image of
the same shape. The per-level parameter values are those of the KADID-10k / KADIS-700k generator.

The reference generator also min-max stretches its input and its result to [0, 1]. For a
reference that spans 0-255 that changes little, except for mean shift, where stretching the
clipped result turns the shift into a gain change; for any other reference it would add a contrast
change that is not part of the distortion (and that the stored reference does not have). So here
the result is clipped to [0, 1], and only mean shift stretches its result back to the reference's
own range.

Two types have levels that are not ordered by strength in KADID itself: mean shift (18) goes from
+0.15 through 0 to -0.15 and contrast change (25) from +0.3 (more contrast) through 0 to -0.6 (less
contrast), so their distance to the reference falls over the first levels and rises again (lowest
at level 3, or 3-4 for contrast change).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from curate.distort import functions as f
from curate.distort.presets import ALL_TYPES, LEVELS  # noqa: F401  (LEVELS is part of this module's interface)

# Largest image (pixels) a distortion accepts: 16 megapixels, e.g. 4896 x 3264. Above it the float
# working copies of one image would take gigabytes per worker. IQA corpora are far smaller
# (KADID/KADIS 512 x 384).
MAX_PIXELS = 16_000_000

Core = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Distortion:
    """One KADID distortion type: ``number`` (1-25), ``name``, ``label``, ``values`` per level 1-5."""

    number: int
    name: str
    label: str
    parameter: str
    values: tuple[float, ...]
    core: Core

    def value(self, level: int) -> float:
        """The generator's parameter for ``level`` (1-5)."""
        if not isinstance(level, (int, np.integer)) or not 1 <= int(level) <= len(self.values):
            raise ValueError(f"{self.name}: level {level!r} is not one of 1-{len(self.values)}")
        return self.values[int(level) - 1]

    def __call__(self, image: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
        """Distort a uint8 H x W x 3 ``image`` at ``level`` (1-5); returns a new uint8 H x W x 3 array."""
        return apply(self, image, level, rng)


def check_image(image: np.ndarray, *, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse anything but a uint8 H x W x 3 array of at most ``max_pixels`` pixels (ValueError)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"expected a uint8 image array, got {kind}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"expected an H x W x 3 RGB image, got shape {image.shape}")
    pixels = image.shape[0] * image.shape[1]
    if pixels > max_pixels:
        raise ValueError(
            f"image of {image.shape[1]}x{image.shape[0]} = {pixels} pixels is above the limit of {max_pixels}"
        )


def apply(
    distortion: Distortion,
    image: np.ndarray,
    level: int,
    rng: np.random.Generator,
    *,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Run ``distortion`` at ``level`` on ``image`` scaled to [0, 1]; clip and round the result to 8 bits."""
    check_image(image, max_pixels=max_pixels)
    value = distortion.value(level)
    x = image.astype(np.float64) / 255.0
    y = distortion.core(x, value, rng)
    if y.shape != image.shape:
        raise AssertionError(f"{distortion.name} changed the shape {image.shape} -> {y.shape}")
    return f.to_uint8(np.clip(y, 0.0, 1.0))


# The per-level values of the KADID-10k / KADIS-700k generator. JPEG 2000 level 5 is 400:1 as in
# the generator (some re-implementations use 170:1).
_TABLE: list[tuple[int, str, str, str, tuple[float, ...], Core]] = [
    (1, "gaussian_blur", "Gaussian blur", "sigma (px)", (0.1, 0.5, 1, 2, 5), f.gaussian_blur),
    (2, "lens_blur", "Lens blur", "disk radius (px)", (1, 2, 4, 6, 8), f.lens_blur),
    (3, "motion_blur", "Motion blur", "length (px)", (1, 2, 4, 6, 10), f.motion_blur),
    (4, "color_diffusion", "Colour diffusion", "amount", (1, 3, 6, 8, 12), f.color_diffusion),
    (5, "color_shift", "Colour shift", "shift (px)", (1, 3, 6, 8, 12), f.color_shift),
    (6, "color_quantization", "Colour quantisation", "colours", (64, 48, 32, 16, 8), f.color_quantization),
    (7, "color_saturation_1", "Colour saturation 1", "HSV saturation factor", (0.4, 0.2, 0.1, 0, -0.4),
     f.color_saturation_hsv),
    (8, "color_saturation_2", "Colour saturation 2", "Lab chroma factor", (1, 2, 3, 6, 9), f.color_saturation_lab),
    (9, "jpeg2000", "JPEG 2000", "compression ratio", (16, 32, 45, 120, 400), f.jpeg2000),
    (10, "jpeg", "JPEG", "quality", (43, 36, 24, 7, 4), f.jpeg),
    (11, "white_noise", "White noise", "variance", (0.001, 0.002, 0.003, 0.005, 0.01), f.white_noise),
    (12, "white_noise_color_component", "White noise in colour component", "variance",
     (0.0001, 0.0005, 0.001, 0.002, 0.003), f.white_noise_color_component),
    (13, "impulse_noise", "Impulse noise", "density", (0.001, 0.005, 0.01, 0.02, 0.03), f.impulse_noise),
    (14, "multiplicative_noise", "Multiplicative noise", "variance", (0.001, 0.005, 0.01, 0.02, 0.05),
     f.multiplicative_noise),
    (15, "denoise", "Denoise", "noise variance", (0.01, 0.03, 0.05, 0.1, 0.15), f.denoise),
    (16, "brighten", "Brighten", "amount", (0.1, 0.2, 0.4, 0.7, 1.1), f.brighten),
    (17, "darken", "Darken", "amount", (0.05, 0.1, 0.2, 0.4, 0.8), f.darken),
    (18, "mean_shift", "Mean shift", "shift", (0.15, 0.08, 0, -0.08, -0.15), f.mean_shift),
    (19, "jitter", "Jitter", "shift std (px)", (0.05, 0.1, 0.2, 0.5, 1), f.jitter),
    (20, "non_eccentricity_patch", "Non-eccentricity patch", "patches", (20, 40, 60, 80, 100),
     f.non_eccentricity_patch),
    (21, "pixelate", "Pixelate", "strength", (0.01, 0.05, 0.1, 0.2, 0.5), f.pixelate),
    (22, "quantization", "Quantisation", "thresholds", (20, 16, 13, 10, 7), f.quantization),
    (23, "color_block", "Colour block", "blocks", (2, 4, 6, 8, 10), f.color_block),
    (24, "high_sharpen", "High sharpen", "gain", (1, 2, 3, 6, 12), f.high_sharpen),
    (25, "contrast_change", "Contrast change", "amount", (0.3, 0.15, 0, -0.4, -0.6), f.contrast_change),
]

DISTORTIONS: dict[int, Distortion] = {
    number: Distortion(number, name, label, parameter, tuple(float(v) for v in values), core)
    for number, name, label, parameter, values, core in _TABLE
}
BY_NAME: dict[str, Distortion] = {d.name: d for d in DISTORTIONS.values()}
assert tuple(DISTORTIONS) == ALL_TYPES, "the presets' type numbers are the registry's"

# Types whose KADID levels are not ordered by strength (see the module docstring).
NON_MONOTONIC_TYPES: tuple[int, ...] = (18, 25)


def get_distortion(key: int | str) -> Distortion:
    """A distortion by KADID number (1-25, int or digit string) or by name (``"gaussian_blur"``)."""
    if isinstance(key, (int, np.integer)) or (isinstance(key, str) and key.strip().isdigit()):
        number = int(key)
        if number not in DISTORTIONS:
            raise KeyError(f"no KADID distortion type {number}; types are 1-25")
        return DISTORTIONS[number]
    name = str(key).strip().lower().replace("-", "_").replace(" ", "_")
    if name not in BY_NAME:
        raise KeyError(f"no KADID distortion named {key!r}; names: {', '.join(BY_NAME)}")
    return BY_NAME[name]


def distort(
    image: np.ndarray,
    distortion: int | str,
    level: int,
    rng: np.random.Generator,
    *,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Apply KADID type ``distortion`` (number or name) at ``level`` to a uint8 H x W x 3 image."""
    return apply(get_distortion(distortion), image, level, rng, max_pixels=max_pixels)


def distortion_rng(seed: int, reference: str, distortion: int, level: int) -> np.random.Generator:
    """The random generator for one (reference, type, level) under ``seed``.

    Derived from a SHA-256 of the four values, so an output depends on nothing else: not on the
    worker that makes it, nor on the order, nor on which other types or levels are made.
    """
    text = f"curate.distort|{int(seed)}|{reference}|{int(distortion)}|{int(level)}"
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))
