"""A labelled grid of one reference under every distortion type and level, for checking by eye.

One row per type (number and name), the reference in the first column and the levels after it.
With more than 13 types the rows are laid out in two blocks side by side so the sheet stays
roughly square.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from curate.distort.names import output_name, reference_name
from curate.distort.registry import DISTORTIONS, distortion_rng
from curate.fsio import atomic_path
from curate.images import load_rgb

LABEL_WIDTH = 215
HEADER_HEIGHT = 24
GAP = 4
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
MISSING_FILL = (225, 225, 225)
ONE_BLOCK_TYPES = 13  # more types than this are laid out in two blocks side by side


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def render_gallery(
    image: np.ndarray, key: str, seed: int, types: Sequence[int], levels: Sequence[int]
) -> dict[tuple[int, int], np.ndarray]:
    """Distort ``image`` under every (type, level) with the same random streams ``synthesize`` uses."""
    return {(t, lv): DISTORTIONS[t](image, lv, distortion_rng(seed, key, t, lv)) for t in types for lv in levels}


def gallery_sheet(
    reference: np.ndarray | None,
    images: Mapping[tuple[int, int], np.ndarray | None],
    *,
    types: Sequence[int],
    levels: Sequence[int],
    title: str = "",
    cell_width: int = 192,
    missing_label: str | None = None,
) -> Image.Image:
    """The grid as an RGB image: one row per type, the reference then each level.

    ``reference`` is an HxWx3 uint8 array, or None when it could not be read (the cells then take
    the first image's shape). A (type, level) absent from ``images`` stays blank; one mapped to
    None (an image that could not be read), like a None reference, is a grey cell labelled
    ``missing_label``.
    """
    shape_source = reference if reference is not None else next((a for a in images.values() if a is not None), None)
    # nothing readable: cells of the full width in 4:3, so their labels fit
    h, w = shape_source.shape[:2] if shape_source is not None else (cell_width * 3 // 4, cell_width)
    cell_w = min(cell_width, w) if w > 0 else cell_width
    cell_h = max(1, round(h * cell_w / w))
    blocks = 2 if len(types) > ONE_BLOCK_TYPES else 1
    per_block = -(-len(types) // blocks)
    row_h = cell_h + GAP
    block_w = LABEL_WIDTH + (len(levels) + 1) * (cell_w + GAP)
    width = blocks * block_w + GAP
    height = HEADER_HEIGHT * 2 + per_block * row_h + GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font(14)
    draw.text((GAP, 4), title, fill=INK, font=font)

    def thumb(array: np.ndarray) -> Image.Image:
        return Image.fromarray(array, mode="RGB").resize((cell_w, cell_h), Image.Resampling.BILINEAR)

    def cell(array: np.ndarray | None, x: int, y: int) -> None:
        if array is not None:
            sheet.paste(thumb(array), (x, y))
        else:
            draw.rectangle((x, y, x + cell_w - 1, y + cell_h - 1), fill=MISSING_FILL)
            draw.text((x + 6, y + cell_h // 2 - 8), missing_label or "", fill=INK, font=font)

    ref_thumb = thumb(reference) if reference is not None else None
    for b in range(blocks):
        x0 = b * block_w + GAP
        y_header = HEADER_HEIGHT
        draw.text((x0 + LABEL_WIDTH, y_header + 4), "reference", fill=INK, font=font)
        for j, lv in enumerate(levels):
            draw.text((x0 + LABEL_WIDTH + (j + 1) * (cell_w + GAP), y_header + 4), f"level {lv}", fill=INK, font=font)
        for i, t in enumerate(types[b * per_block : (b + 1) * per_block]):
            y = HEADER_HEIGHT * 2 + i * row_h
            label = DISTORTIONS[t].label
            draw.text((x0, y + cell_h // 2 - 16), f"{t:02d}", fill=INK, font=font)
            draw.text((x0, y + cell_h // 2), label, fill=INK, font=font)
            if ref_thumb is not None:
                sheet.paste(ref_thumb, (x0 + LABEL_WIDTH, y))
            else:
                cell(None, x0 + LABEL_WIDTH, y)
            for j, lv in enumerate(levels):
                if (t, lv) in images:
                    cell(images[(t, lv)], x0 + LABEL_WIDTH + (j + 1) * (cell_w + GAP), y)
    return sheet


def save_sheet(sheet: Image.Image, path: str | os.PathLike[str]) -> Path:
    """Write a sheet as PNG, atomically; the same pixels give the same bytes."""
    final = Path(path)
    with atomic_path(final) as tmp:
        sheet.save(tmp, format="PNG", compress_level=6)
    return final


def draw_gallery(
    reference: np.ndarray,
    images: Mapping[tuple[int, int], np.ndarray],
    path: str | os.PathLike[str],
    *,
    types: Sequence[int],
    levels: Sequence[int],
    title: str = "",
    cell_width: int = 192,
) -> Path:
    """Draw the grid to ``path`` (PNG, written atomically). Missing (type, level) cells stay blank."""
    sheet = gallery_sheet(reference, images, types=types, levels=levels, title=title, cell_width=cell_width)
    return save_sheet(sheet, path)


def gallery_from_folder(
    folder: str | os.PathLike[str],
    key: str,
    types: Sequence[int],
    levels: Sequence[int],
    path: str | os.PathLike[str],
) -> Path:
    """Draw the gallery of reference ``key`` from the images ``synthesize`` wrote into ``folder``."""
    folder = Path(folder)
    reference = load_rgb(folder / reference_name(key))
    images = {}
    for t in types:
        for lv in levels:
            candidate = folder / output_name(key, t, lv)
            if candidate.is_file():
                images[(t, lv)] = load_rgb(candidate)
    return draw_gallery(reference, images, path, types=types, levels=levels, title=f"{key}: KADID types x levels")
