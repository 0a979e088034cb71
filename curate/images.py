"""The one image loader: any file Pillow reads -> uint8 RGB array, or an ImageError with a reason.

Handled: 8-bit L/LA/P/RGBA/CMYK/YCbCr (converted to RGB; alpha composited on white), 16-bit
greyscale (``I;16*`` and ``I``) rescaled from its full range, float images (``F``) clipped to
0-255. Refused with a reason: missing, zero-byte, truncated or undecodable files, and images above
``max_pixels`` (decompression bombs), checked from the header before any pixel is decoded.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from curate.errors import ImageError

# 100 megapixels: above any IQA dataset image (PIPAL/KonIQ/SPAQ are far smaller); refused above.
DEFAULT_MAX_PIXELS = 100_000_000

# Never decode partial data as if it were a whole image.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def _rgb_image(img: Image.Image) -> Image.Image:
    """A loaded image of any handled mode -> an RGB image (the same object when it is RGB already)."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        if mode == "I" and arr.max() <= 255 and arr.min() >= 0:
            top = 255.0
        grey = np.clip(np.rint(arr / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2))
    if mode == "F":
        grey = np.clip(np.rint(np.asarray(img, dtype=np.float64)), 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[..., None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def open_rgb(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read ``path`` as a decoded RGB Pillow image (what :func:`load_rgb` returns as an array).

    For callers that go on in Pillow (resizing): an RGB file is not copied into numpy and back.
    Raises :class:`ImageError` whose message starts with a short reason code
    (``missing``, ``empty``, ``too_large``, ``unreadable``, ``truncated``).
    """
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"missing: {p} does not exist")
    if p.stat().st_size == 0:
        raise ImageError(f"empty: {p} is a zero-byte file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"too_large: {p} is {width}x{height} = {width * height} pixels, "
                        f"above the limit of {max_pixels}"
                    )
                img.load()
                rgb = _rgb_image(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"too_large: {p}: {exc}") from exc
    except OSError as exc:
        reason = "truncated" if "truncated" in str(exc).lower() else "unreadable"
        raise ImageError(f"{reason}: {p}: {exc}") from exc
    except (ValueError, SyntaxError, MemoryError) as exc:  # Pillow raises these on corrupt headers
        raise ImageError(f"unreadable: {p}: {exc}") from exc
    if rgb.mode != "RGB" or rgb.width == 0 or rgb.height == 0:
        raise ImageError(f"unreadable: {p}: decoded to mode {rgb.mode}, size {rgb.width}x{rgb.height}")
    return rgb


def load_rgb(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read ``path`` as an HxWx3 uint8 RGB array (C-contiguous, writable, owned by the caller).

    Raises :class:`ImageError` whose message starts with a short reason code
    (``missing``, ``empty``, ``too_large``, ``unreadable``, ``truncated``).
    """
    arr = np.asarray(open_rgb(path, max_pixels=max_pixels), dtype=np.uint8)
    if not (arr.flags.writeable and arr.flags.c_contiguous):
        # A view of Pillow's buffer is read-only; torch.from_numpy warns on every such array.
        arr = np.array(arr, order="C")
    return arr


def reject_reason(error: ImageError) -> str:
    """The reason code at the start of an ImageError message (``missing``, ``truncated``...)."""
    return str(error).split(":", 1)[0]
