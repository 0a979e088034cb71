"""The 25 KADID-10k / KADIS-700k distortions, each as a core ``(x, value, rng) -> y``.

``x`` is a float64 RGB array H x W x 3 in [0, 1]; ``value`` is the generator's parameter for the
level (see :mod:`curate.distort.registry` for the per-level values); ``rng`` is the only source of
randomness. The result is a float array that the registry clips to [0, 1]. Grouped as in KADID:
blurs, colour distortions, compression, noise, brightness change, spatial distortions, sharpness and
contrast.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import restoration

from curate.distort.filters import (
    disk_kernel,
    filter2d,
    gaussian_filter,
    lab_to_rgb,
    luma,
    midpoint_curve,
    motion_kernel,
    otsu_thresholds,
    rgb_to_lab,
    rgb_to_ycbcr,
    spline_curve,
    stretch,
    ycbcr_to_rgb,
)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8 with rounding (as im2uint8)."""
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def from_uint8(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) / 255.0


# --------------------------------------------------------------------------------------------
# Blur


def gaussian_blur(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """1: Gaussian low-pass filter of standard deviation ``sigma`` pixels."""
    return gaussian_filter(x, sigma)


def lens_blur(x: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """2: defocus, a uniform disk kernel of ``radius`` pixels."""
    return filter2d(x, disk_kernel(radius))


def motion_blur(x: np.ndarray, length: float, rng: np.random.Generator) -> np.ndarray:
    """3: linear motion over ``length`` pixels in a random direction (uniform over 0-180 degrees)."""
    angle = float(rng.uniform(0.0, 180.0))
    return filter2d(x, motion_kernel(length, angle))


# --------------------------------------------------------------------------------------------
# Colour distortions


def color_diffusion(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """4: chroma (a*, b*) blurred with sigma ``1.5 * amount + 2`` and scaled by ``amount``; L* kept."""
    lab = rgb_to_lab(x)
    lab[..., 1:] = gaussian_filter(lab[..., 1:], 1.5 * amount + 2.0) * amount
    return lab_to_rgb(lab)


def color_shift(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """5: the green channel shifted by ``amount`` pixels in a random direction, blended in at edges.

    The blend weight is the smoothed gradient magnitude of the grey image (sigma 4), stretched to
    [0, 1] and clipped at its 1st and 99th percentiles, so the shift shows along edges as colour
    fringes.
    """
    grey = luma(x)
    # np.gradient needs two samples along an axis; a one-pixel row or column has no gradient there.
    gy = np.gradient(grey, axis=0) if grey.shape[0] > 1 else np.zeros_like(grey)
    gx = np.gradient(grey, axis=1) if grey.shape[1] > 1 else np.zeros_like(grey)
    edges = stretch(gaussian_filter(np.hypot(gx, gy), 4.0))
    high = np.percentile(edges, 99.0)
    low = 1.0 - np.percentile(1.0 - edges, 99.0)
    weight = stretch(np.clip(edges, low, high))
    direction = rng.random(2)
    norm = float(np.hypot(*direction)) or 1.0
    shift_y, shift_x = (int(v) for v in np.rint(direction / norm * amount))
    green = x[..., 1]
    h, w = green.shape
    padded = np.pad(green, ((abs(shift_y),) * 2, (abs(shift_x),) * 2), mode="edge")
    top = abs(shift_y) - shift_y
    left = abs(shift_x) - shift_x
    moved = padded[top : top + h, left : left + w]
    out = x.copy()
    out[..., 1] = moved * weight + green * (1.0 - weight)
    return out


def color_quantization(x: np.ndarray, colors: float, rng: np.random.Generator) -> np.ndarray:
    """6: an indexed image of ``colors`` colours (median-cut palette) with Floyd-Steinberg dithering."""
    image = Image.fromarray(to_uint8(x), mode="RGB")
    palette = image.quantize(colors=int(colors), method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    dithered = image.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
    return from_uint8(np.asarray(dithered.convert("RGB")))


def color_saturation_hsv(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """7: HSV saturation multiplied by ``factor``; 0 gives grey, negative values turn hues over.

    With hue and value V (the channel maximum) fixed, each channel is ``V - S * V * k(hue)``, so
    scaling S by ``factor`` is ``V - factor * (V - x)``: the HSV round trip without its cost.
    """
    value = x.max(axis=2, keepdims=True)
    return value - factor * (value - x)


def color_saturation_lab(x: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """8: CIELAB chroma (a*, b*) multiplied by ``factor``."""
    lab = rgb_to_lab(x)
    lab[..., 1:] *= factor
    return lab_to_rgb(lab)


# --------------------------------------------------------------------------------------------
# Compression


# Smallest JPEG 2000 stream (bytes) asked of the encoder. Its headers alone take about 250 bytes,
# so a smaller budget codes no picture at all (a flat grey image). The floor only binds below about
# 51,000 pixels at the strongest level (400:1); at KADID's 512 x 384 it never does.
JPEG2000_MIN_BYTES = 384


def jpeg2000(x: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """9: JPEG 2000 (irreversible 9/7 wavelet, colour transform) at a compression ratio of ``ratio``:1.

    The ratio is of raw 24-bit size to stream size, as in the generator; on tiny images the stream
    is at least :data:`JPEG2000_MIN_BYTES` long.
    """
    image = Image.fromarray(to_uint8(x), mode="RGB")
    raw_bytes = 3 * image.size[0] * image.size[1]
    ratio = min(float(ratio), raw_bytes / JPEG2000_MIN_BYTES) if raw_bytes > JPEG2000_MIN_BYTES else 1.0
    shortest = min(image.size)
    # Four wavelet reduction levels (five resolutions), fewer for images too small to reduce.
    resolutions = max(1, min(5, int(math.floor(math.log2(shortest))) + 1)) if shortest > 1 else 1
    block = 64 if shortest >= 64 else 4
    buffer = io.BytesIO()
    image.save(
        buffer,
        format="JPEG2000",
        quality_mode="rates",
        quality_layers=[float(ratio)],
        irreversible=True,
        mct=1,
        num_resolutions=resolutions,
        codeblock_size=(block, block),
    )
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return from_uint8(np.asarray(decoded.convert("RGB")))


def jpeg(x: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    """10: baseline JPEG at ``quality`` (libjpeg scale 1-100, 4:2:0 chroma subsampling)."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(x), mode="RGB").save(buffer, format="JPEG", quality=int(quality), subsampling="4:2:0")
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return from_uint8(np.asarray(decoded.convert("RGB")))


# --------------------------------------------------------------------------------------------
# Noise


def white_noise(x: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    """11: additive Gaussian noise of ``variance`` (on the [0, 1] scale) in every RGB value."""
    return x + rng.normal(0.0, math.sqrt(variance), x.shape)


def white_noise_color_component(x: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    """12: additive Gaussian noise of ``variance`` in each Y'CbCr component (studio range, clipped)."""
    ycc = rgb_to_ycbcr(x)
    noisy = np.clip(ycc + rng.normal(0.0, math.sqrt(variance), ycc.shape), 0.0, 1.0)
    return ycbcr_to_rgb(noisy)


def impulse_noise(x: np.ndarray, density: float, rng: np.random.Generator) -> np.ndarray:
    """13: salt and pepper: a share ``density`` of the values (each channel apart) set to 0 or 1."""
    draw = rng.random(x.shape)
    out = x.copy()
    out[draw < density / 2.0] = 0.0
    out[(draw >= density / 2.0) & (draw < density)] = 1.0
    return out


def multiplicative_noise(x: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    """14: speckle ``x + n * x`` with n uniform, zero mean, of ``variance``."""
    noise = math.sqrt(12.0 * variance) * (rng.random(x.shape) - 0.5)
    return x + noise * x


def denoise(x: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    """15: Gaussian noise of ``variance`` added (clipped), then removed by a denoiser.

    What is measured is the denoiser's damage: smoothed texture, flattened detail and blotches. The
    reference generator's own denoiser is not reproduced (nor available here); this uses non-local
    means (patch 5 x 5, search 11 x 11, filter strength 0.8 sigma), whose artefacts are of
    the same kind.
    """
    sigma = math.sqrt(variance)
    noisy = np.clip(x + rng.normal(0.0, sigma, x.shape), 0.0, 1.0)
    denoised = restoration.denoise_nl_means(
        noisy, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=5, fast_mode=True, channel_axis=-1
    )
    return denoised.reshape(x.shape)  # scikit-image squeezes single-pixel rows and columns


# --------------------------------------------------------------------------------------------
# Brightness change


def brighten(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """16: tone curve with mid-grey raised to ``0.5 + amount / 2``: two parts on RGB, one on L*."""
    midpoint = 0.5 + amount / 2.0
    lab = rgb_to_lab(x)
    lab[..., 0] = midpoint_curve(lab[..., 0] / 100.0, midpoint) * 100.0
    return (2.0 * midpoint_curve(x, midpoint) + lab_to_rgb(lab)) / 3.0


def darken(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """17: tone curve on RGB with mid-grey lowered to ``0.5 - amount / 2``."""
    return midpoint_curve(x, 0.5 - amount / 2.0)


def mean_shift(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """18: ``amount`` added to every value and clipped, then stretched back to the input's range.

    The stretch is the generator's: after clipping, a positive shift becomes a gain that blows out
    highlights and a negative one a crush of the shadows. A constant image is left as it is.
    """
    low, high = float(x.min()), float(x.max())
    shifted = np.clip(x + amount, 0.0, 1.0)
    return low + stretch(shifted) * (high - low) if high > low else x


# --------------------------------------------------------------------------------------------
# Spatial distortions


def jitter(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """19: five rounds of warping by random per-pixel shifts, normal with std ``amount`` pixels."""
    h, w = x.shape[:2]
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    out = x
    for _ in range(5):
        shift = rng.normal(0.0, amount, (2, h, w))
        coords = np.stack([rows - shift[0], cols - shift[1]])
        out = np.stack(
            [ndimage.map_coordinates(out[..., c], coords, order=1, mode="nearest") for c in range(3)], axis=2
        )
    return out


def _patch_geometry(h: int, w: int, size: int) -> int:
    """Patch edge to use: ``size`` when the image can hold it, smaller on tiny images (at least 1)."""
    return max(1, min(size, h // 3, w // 3))


def non_eccentricity_patch(x: np.ndarray, count: float, rng: np.random.Generator) -> np.ndarray:
    """20: ``count`` 16 x 16 patches each copied to a spot up to 8 pixels away (one after another).

    Patches come from at least 16 pixels inside the border. On images smaller than 48 pixels a side,
    the patch size and the margin shrink to a third of the short side.
    """
    h, w = x.shape[:2]
    size = _patch_geometry(h, w, 16)
    margin = size
    out = x.copy()
    for _ in range(int(count)):
        top = int(round(rng.random() * max(0, h - size - 2 * margin))) + margin
        left = int(round(rng.random() * max(0, w - size - 2 * margin))) + margin
        patch = out[top : top + size, left : left + size].copy()
        new_top = int(round((rng.random() - 0.5) * margin + top))
        new_left = int(round((rng.random() - 0.5) * margin + left))
        new_top = min(max(new_top, 0), h - patch.shape[0])
        new_left = min(max(new_left, 0), w - patch.shape[1])
        out[new_top : new_top + patch.shape[0], new_left : new_left + patch.shape[1]] = patch
    return out


def _nearest_indices(source: int, target: int) -> np.ndarray:
    """Indices of nearest-neighbour resampling from ``source`` to ``target`` samples (pixel centres)."""
    return np.minimum(((np.arange(target) + 0.5) * source / target).astype(np.int64), source - 1)


def pixelate(x: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """21: nearest-neighbour down-scaling by ``z = 0.95 - strength**0.6`` and back up to the full size."""
    h, w = x.shape[:2]
    scale = 0.95 - strength**0.6
    small_h = max(1, int(h * scale))
    small_w = max(1, int(w * scale))
    small = x[_nearest_indices(h, small_h)][:, _nearest_indices(w, small_w)]
    return small[_nearest_indices(small_h, h)][:, _nearest_indices(small_w, w)]


def quantization(x: np.ndarray, thresholds: float, rng: np.random.Generator) -> np.ndarray:
    """22: every value mapped by ``thresholds`` multi-level Otsu thresholds over all RGB values.

    A value at or below the first threshold becomes 0, one above the last becomes 1, and one in
    between becomes the upper threshold of its interval (posterisation).
    """
    cuts = otsu_thresholds(x, int(thresholds))
    values = np.concatenate(([0.0], cuts[1:], [1.0]))
    return values[np.searchsorted(cuts, x, side="left")]


def color_block(x: np.ndarray, count: float, rng: np.random.Generator) -> np.ndarray:
    """23: ``count`` 32 x 32 blocks of a random uniform colour pasted at random places.

    On images smaller than 96 pixels a side the block shrinks to a third of the short side.
    """
    h, w = x.shape[:2]
    size = _patch_geometry(h, w, 32)
    out = x.copy()
    for _ in range(int(count)):
        fill = rng.random(3)
        top = int(math.floor(rng.random() * (h - size)))
        left = int(math.floor(rng.random() * (w - size)))
        out[top : top + size, left : left + size] = fill
    return out


# --------------------------------------------------------------------------------------------
# Sharpness and contrast


def high_sharpen(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """24: unsharp masking of L* with a Gaussian of sigma 3 (13 x 13 taps) and gain ``amount``."""
    lab = rgb_to_lab(x)
    lightness = lab[..., 0]
    lab[..., 0] = lightness + amount * (lightness - gaussian_filter(lightness, 3.0))
    return lab_to_rgb(lab)


def contrast_change(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """25: tone curve through (0.3, 0.25 - amount/4), (0.5, 0.5), (0.7, 0.75 + amount/4).

    Positive ``amount`` raises contrast, negative lowers it; the end points 0 and 1 stay fixed.
    """
    return spline_curve(x, [0.0, 0.3, 0.5, 0.7, 1.0], [0.0, 0.25 - amount / 4.0, 0.5, 0.75 + amount / 4.0, 1.0])
