"""The one image loader: every handled mode to RGB, as an array and as a Pillow image alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curate.embed.preprocess import Preprocessing
from curate.errors import ImageError
from curate.images import load_rgb, open_rgb

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, (30, 40), dtype=np.uint8)
GREY16 = RNG.integers(0, 65536, (30, 40), dtype=np.uint16)


def _over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None].astype(np.float64) / 255.0
    return rgb.astype(np.float64) * a + 255.0 * (1.0 - a)


CASES = {
    # name: (image to save, file name, expected RGB array, tolerance)
    "rgb": (Image.fromarray(RGB), "rgb.png", RGB, 0),
    "grey": (Image.fromarray(RGB[..., 0]), "grey.png", np.repeat(RGB[..., :1], 3, axis=2), 0),
    "rgba": (Image.fromarray(np.dstack([RGB, ALPHA])), "rgba.png", _over_white(RGB, ALPHA), 1),
    "grey16": (Image.fromarray(GREY16), "grey16.png",
               np.repeat(np.rint(GREY16 / 65535.0 * 255.0)[..., None], 3, axis=2), 0),
    "float": (Image.fromarray(RGB[..., 1].astype(np.float32) + 0.25), "float.tif",
              np.repeat(RGB[..., 1:2], 3, axis=2), 0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_mode_becomes_the_expected_rgb(name: str, tmp_path: Path) -> None:
    image, file_name, expected, tolerance = CASES[name]
    path = tmp_path / file_name
    image.save(path)
    array = load_rgb(path)
    opened = open_rgb(path)
    assert opened.mode == "RGB" and opened.size == (40, 30)
    assert array.shape == (30, 40, 3) and array.dtype == np.uint8
    assert array.flags.writeable and array.flags.c_contiguous
    np.testing.assert_array_equal(np.asarray(opened), array)
    assert np.abs(array.astype(np.float64) - expected).max() <= tolerance
    # Preprocessing from the Pillow image equals preprocessing from the array.
    pp = Preprocessing(16, 16, "shortest", "bicubic", (0.5, 0.5, 0.5), (0.2, 0.2, 0.2))
    np.testing.assert_array_equal(pp.apply_image(opened), pp.apply(array))


def test_open_rgb_refuses_what_load_rgb_refuses(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    for name, reason in (("missing.png", "missing"), ("empty.png", "empty"), ("junk.png", "unreadable")):
        for read in (open_rgb, load_rgb):
            with pytest.raises(ImageError, match=f"^{reason}: "):
                read(tmp_path / name)
    Image.fromarray(RGB).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="^too_large: .*1200 pixels, above the limit of 1000"):
        open_rgb(tmp_path / "big.png", max_pixels=1000)
