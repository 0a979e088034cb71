"""Builders for the embed tests: a tiny open_clip model (file and local-dir: folder) and a tiny corpus."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from curate.schema import make_metadata, write_table

TINY_MODEL = "curate-tiny-vit"
TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 32},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
}
TINY_PREPROCESS = {
    "mean": [0.48145466, 0.4578275, 0.40821073],
    "std": [0.26862954, 0.26130258, 0.27577711],
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}


def register_tiny_model(folder: Path) -> str:
    """Register the tiny config with open_clip under :data:`TINY_MODEL`; returns the name."""
    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{TINY_MODEL}.json"
    path.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(path)
    return TINY_MODEL


def build_tiny_weights(folder: Path, seed: int = 7) -> dict[str, Path]:
    """Random tiny CLIP saved as a bare weights file and as a ``local-dir:`` folder.

    Returns ``{"file": weights.safetensors, "pt": weights.pt, "local_dir": folder}``.
    """
    import open_clip
    import torch
    from safetensors.torch import save_file

    register_tiny_model(folder / "configs")
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_MODEL, pretrained=None)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    file = folder / "tiny.safetensors"
    save_file(state, str(file))
    pt = folder / "tiny.pt"
    torch.save(state, pt)
    local = folder / "tiny-local"
    local.mkdir(exist_ok=True)
    (local / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": TINY_CFG, "preprocess_cfg": TINY_PREPROCESS})
    )
    save_file(state, str(local / "open_clip_model.safetensors"))
    return {"file": file, "pt": pt, "local_dir": local}


def synthetic_image(seed: int, width: int, height: int) -> np.ndarray:
    """A smooth colourful image with some texture (uint8 [H, W, 3]), different for each seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.005, 0.05, 2).tolist() + [rng.uniform(0, 6.28)]
        channels.append(0.5 + 0.4 * np.sin(xx * fx + yy * fy + phase))
    image = np.stack(channels, axis=-1) + rng.normal(0, 0.04, (height, width, 3))
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels and holds no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def build_corpus(root: Path, count: int, *, bad: bool = False, sizes: tuple[int, int] = (96, 72)) -> Path:
    """``count`` PNGs under ``root/images`` and ``root/corpus.parquet``; ``bad`` adds problem files.

    Problem files (sample ids ``bad/...``): corrupt bytes, truncated PNG, zero-byte file,
    header-only decompression bomb, missing file (rejected), and a CMYK JPEG and a 16-bit PNG
    (readable: converted to RGB).
    """
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(count):
        width = sizes[0] + (k % 3) * 8
        height = sizes[1] + (k % 2) * 10
        if k % 4 == 3:
            width, height = height, width  # some portrait images
        rel = f"images/img{k:04d}.png"
        Image.fromarray(synthetic_image(k, width, height)).save(root / rel)
        rows.append({"sample_id": f"toy/{k:04d}", "path": rel})
    if bad:
        good_png = (root / rows[0]["path"]).read_bytes()
        (images / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
        (images / "truncated.png").write_bytes(good_png[: len(good_png) // 2])
        (images / "empty.png").write_bytes(b"")
        (images / "bomb.png").write_bytes(png_header_only(200_000, 200_000))
        Image.fromarray(synthetic_image(99, 80, 60)).convert("CMYK").save(images / "cmyk.jpg")
        grey16 = (np.linspace(0, 65535, 70 * 50).reshape(50, 70)).astype(np.uint16)
        Image.fromarray(grey16).save(images / "grey16.png")
        for name in ("corrupt.png", "truncated.png", "empty.png", "bomb.png", "missing.png", "cmyk.jpg", "grey16.png"):
            rows.append({"sample_id": f"bad/{name}", "path": f"images/{name}"})
    frame = _corpus_frame(rows)
    path = root / "corpus.parquet"
    write_table(frame, path, "corpus", make_metadata("corpus", root=str(root)))
    return path


def _corpus_frame(rows: list[dict[str, str]]):
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["ref_id"] = frame["sample_id"]
    frame["is_reference"] = True
    frame["source"] = "toy"
    return frame
