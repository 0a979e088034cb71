"""Building blocks of the KADID distortions: filter kernels, filtering, colour spaces, tone curves.

Images here are float arrays, H x W x C, values nominally in [0, 1]. Borders are handled by
replicating the edge pixels (the behaviour of an ``imfilter(..., 'replicate')`` in the reference
generator), so no dark frame appears around blurred images.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import ndimage, signal
from scipy.interpolate import CubicSpline
from skimage import color

# Kernels with more taps than this are applied through the FFT (faster for lens and motion blur).
FFT_MIN_TAPS = 49


# --------------------------------------------------------------------------------------------
# Kernels


def gaussian_taps(sigma: float) -> np.ndarray:
    """1-D Gaussian of standard deviation ``sigma`` (pixels) over ``2*ceil(2*sigma)+1`` taps, sum 1.

    The 2-D kernel of the reference generator (``fspecial('gaussian', fs, sigma)``) is the outer
    product of two of these, so filtering along each axis in turn gives the same result.
    """
    half = int(math.ceil(2 * sigma))
    x = np.arange(-half, half + 1, dtype=np.float64)
    taps = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return taps / taps.sum()


def disk_kernel(radius: float, supersample: int = 33) -> np.ndarray:
    """Anti-aliased disk of ``radius`` pixels: each tap is the share of its pixel square inside the disk.

    Computed by supersampling every pixel square ``supersample`` x ``supersample`` times, which is
    within a fraction of a percent of the exact area. Shape (2*ceil(radius-0.5)+1,)*2, sum 1.
    """
    half = int(math.ceil(radius - 0.5))
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    coords = np.arange(-half, half + 1, dtype=np.float64)
    fine = (coords[:, None] + offsets[None, :]).ravel()
    inside = (fine[:, None] ** 2 + fine[None, :] ** 2) <= radius * radius
    size = 2 * half + 1
    area = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return area / area.sum()


def motion_kernel(length: float, angle_degrees: float) -> np.ndarray:
    """Linear motion blur: a line segment of ``length`` pixels through the centre at ``angle_degrees``.

    Each tap weighs ``max(0, 1 - distance to the segment)`` (a line one pixel wide, anti-aliased),
    normalised to sum 1. ``length`` 1 gives the identity. The angle is counter-clockwise from the
    x axis with rows pointing down, as in image coordinates.
    """
    half = (max(1.0, length) - 1.0) / 2.0
    theta = math.radians(angle_degrees)
    direction = np.array([math.cos(theta), -math.sin(theta)])  # (x, y) with y pointing down
    reach = int(math.ceil(half)) + 1
    ys, xs = np.mgrid[-reach : reach + 1, -reach : reach + 1].astype(np.float64)
    along = np.clip(xs * direction[0] + ys * direction[1], -half, half)
    dx = xs - along * direction[0]
    dy = ys - along * direction[1]
    weights = np.maximum(0.0, 1.0 - np.hypot(dx, dy))
    weights[weights < 1e-12] = 0.0
    kernel = weights / weights.sum()
    # Trim empty outer rows and columns so the FFT and padding stay small.
    rows = np.flatnonzero(kernel.any(axis=1))
    cols = np.flatnonzero(kernel.any(axis=0))
    r = max(reach - rows[0], rows[-1] - reach)
    c = max(reach - cols[0], cols[-1] - reach)
    return kernel[reach - r : reach + r + 1, reach - c : reach + c + 1]


# --------------------------------------------------------------------------------------------
# Filtering


def gaussian_filter(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the two spatial axes of an H x W [x C] array (edges replicated)."""
    taps = gaussian_taps(sigma)
    out = ndimage.correlate1d(image, taps, axis=0, mode="nearest")
    return ndimage.correlate1d(out, taps, axis=1, mode="nearest")


def filter2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate every channel of an H x W [x C] array with an odd-sized 2-D kernel (edges replicated)."""
    kh, kw = kernel.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel shape {kernel.shape} must be odd")
    if kernel.size < FFT_MIN_TAPS:
        if image.ndim == 2:
            return ndimage.correlate(image, kernel, mode="nearest")
        return np.stack(
            [ndimage.correlate(image[..., c], kernel, mode="nearest") for c in range(image.shape[2])], axis=2
        )
    ph, pw = kh // 2, kw // 2
    pad = ((ph, ph), (pw, pw)) + ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image, pad, mode="edge")
    flipped = kernel[::-1, ::-1]  # fftconvolve convolves; the kernel is flipped to correlate
    if image.ndim == 3:
        flipped = flipped[:, :, None]
    return signal.fftconvolve(padded, flipped, mode="valid", axes=(0, 1))


# --------------------------------------------------------------------------------------------
# Colour spaces (float RGB in [0, 1])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (D65) -> CIE L*a*b*: L in [0, 100], a and b roughly [-128, 127]."""
    return color.rgb2lab(rgb)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE L*a*b* -> sRGB, clipped to [0, 1] (out-of-gamut colours are clipped, silently)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about negative Z for out-of-gamut colours
        return np.clip(color.lab2rgb(lab), 0.0, 1.0)


# ITU-R BT.601 studio range, as MATLAB's rgb2ycbcr on doubles: Y in [16, 235]/255, Cb/Cr in [16, 240]/255.
_YCBCR_MATRIX = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
) / 255.0
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] -> studio-range Y'CbCr in [0, 1] (BT.601)."""
    return rgb @ _YCBCR_MATRIX.T + _YCBCR_OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr` (not clipped)."""
    return (ycbcr - _YCBCR_OFFSET) @ np.linalg.inv(_YCBCR_MATRIX).T


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma (the weights of MATLAB's rgb2gray) of an H x W x 3 array."""
    return rgb @ np.array([0.2989, 0.5870, 0.1140])


# --------------------------------------------------------------------------------------------
# Tone curves and value statistics


def midpoint_curve(values: np.ndarray, midpoint: float) -> np.ndarray:
    """The parabola through (0, 0), (0.5, ``midpoint``) and (1, 1), applied to ``values``, clipped to [0, 1].

    This is the three-point interpolating spline of the generator's ``curves`` tone adjustment.
    """
    a = 2.0 - 4.0 * midpoint
    b = 4.0 * midpoint - 1.0
    return np.clip(values * (a * values + b), 0.0, 1.0)


def spline_curve(values: np.ndarray, xs: list[float], ys: list[float]) -> np.ndarray:
    """A not-a-knot cubic spline through the control points (xs, ys), applied and clipped to [0, 1]."""
    return np.clip(CubicSpline(xs, ys, bc_type="not-a-knot")(values), 0.0, 1.0)


def stretch(image: np.ndarray) -> np.ndarray:
    """Min-max stretch to [0, 1] over the whole array; a constant array is returned unchanged."""
    low = float(image.min())
    high = float(image.max())
    if low < high:
        return (image - low) / (high - low)
    return image


def otsu_thresholds(values: np.ndarray, count: int, max_iterations: int = 200) -> np.ndarray:
    """``count`` thresholds that split ``values`` (in [0, 1]) into ``count + 1`` classes by Otsu's rule.

    Otsu's criterion (largest between-class variance) is the smallest within-class variance, so the
    thresholds are found by Lloyd iterations of 1-D k-means on the 256-bin histogram, started from
    equal-count quantiles. Exhaustive multi-level Otsu is infeasible for 7-20 thresholds; this reaches
    a local optimum deterministically. Returns sorted thresholds in [0, 1], midway between grey levels.
    """
    levels = np.clip(np.rint(values.ravel() * 255.0), 0, 255).astype(np.int64)
    hist = np.bincount(levels, minlength=256).astype(np.float64)
    grey = np.arange(256, dtype=np.float64)
    cumulative = np.cumsum(hist) / hist.sum()
    # Start: class boundaries at equal-count quantiles (boundary k: last level of class k).
    quantiles = np.arange(1, count + 1) / (count + 1)
    bounds = np.searchsorted(cumulative, quantiles).astype(np.float64)
    bounds = np.maximum.accumulate(bounds)
    previous = None
    for _ in range(max_iterations):
        edges = np.concatenate(([-1.0], bounds, [255.0]))
        means = np.empty(count + 1)
        for k in range(count + 1):
            mask = (grey > edges[k]) & (grey <= edges[k + 1])
            weight = hist[mask].sum()
            means[k] = (hist[mask] * grey[mask]).sum() / weight if weight > 0 else (edges[k] + edges[k + 1]) / 2
        means = np.maximum.accumulate(means)
        bounds = np.floor((means[:-1] + means[1:]) / 2.0)
        if previous is not None and np.array_equal(bounds, previous):
            break
        previous = bounds.copy()
    return (bounds + 0.5) / 255.0
