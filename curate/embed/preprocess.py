"""Image preprocessing shared by every encoder: resize and crop on the CPU, normalise on the device.

The reader's workers turn a decoded image into a small uint8 ``[3, size, size]`` array (resize +
crop, the costly part, done once per image in parallel); the mapper turns a batch of those into
normalised floats on the model's device (``(x / 255 - mean) / std``). Splitting it this way moves 4x
fewer bytes to the GPU than float tensors and matches open_clip's and torchvision's evaluation
transforms on PIL images exactly (same output size rounding, same centre-crop offsets, Pillow's
antialiased resampling).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

RESIZE_MODES = ("shortest", "squash")
INTERPOLATIONS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


@dataclass(frozen=True)
class Preprocessing:
    """How an RGB image becomes model input.

    ``resize_mode='shortest'``: scale the shorter side to ``resize`` pixels (aspect kept), then take
    the centre ``size`` x ``size`` crop. ``'squash'``: scale to ``resize`` x ``resize`` (aspect not
    kept), then take the centre ``size`` x ``size`` crop (none when ``resize == size``, the whole
    image squashed). ``resize / size`` is the inverse of timm's ``crop_pct``.
    ``mean``/``std`` apply to pixel values scaled to 0-1, per RGB channel.
    """

    size: int
    resize: int
    resize_mode: str
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop: str = "center"

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize mode {self.resize_mode!r} is not supported (use one of {RESIZE_MODES})")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation {self.interpolation!r} is not supported (use bicubic or bilinear)")
        if self.resize < self.size:
            raise ValueError(f"resize {self.resize} is smaller than the crop {self.size}")

    def to_meta(self) -> dict[str, Any]:
        meta = asdict(self)
        meta["mean"] = [float(v) for v in self.mean]
        meta["std"] = [float(v) for v in self.std]
        return meta

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after the resize step (before the crop)."""
        if self.resize_mode == "squash":
            return self.resize, self.resize
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(self.resize * long / short)  # truncation, as torchvision does
        return (self.resize, new_long) if width <= height else (new_long, self.resize)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 ``[H, W, 3]`` RGB -> uint8 ``[3, size, size]`` (resized and cropped, not normalised)."""
        return self.apply_image(Image.fromarray(rgb))

    def apply_image(self, image: Image.Image) -> np.ndarray:
        """An RGB Pillow image -> uint8 ``[3, size, size]``, as :meth:`apply` (which wraps its array in one)."""
        width, height = image.size
        new_w, new_h = self.resized_size(width, height)
        if (new_w, new_h) != (width, height):
            image = image.resize((new_w, new_h), INTERPOLATIONS[self.interpolation])
        if (new_w, new_h) != (self.size, self.size):
            top = int(round((new_h - self.size) / 2.0))
            left = int(round((new_w - self.size) / 2.0))
            image = image.crop((left, top, left + self.size, top + self.size))
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))
