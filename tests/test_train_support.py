"""Builders shared by the data, export and training tests: tiny images, corpora and manifests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from curate.schema import make_metadata, write_table


def write_image(path: Path, ref: int, level: int, size: tuple[int, int] = (40, 48)) -> None:
    """A small RGB image: a per-reference pattern, blurred/noised more at higher levels."""
    rng = np.random.default_rng(ref * 100 + level)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack(
        [np.sin(xx / (3 + ref)) * 100 + 120, np.cos(yy / (2 + ref)) * 100 + 120, (xx + yy * ref) % 255], axis=2
    )
    noise = rng.normal(0, 12 * level, size=base.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path)


def sample_rows(source: str, n_refs: int, levels: int, *, origin: str = "original") -> list[dict]:
    rows = []
    for r in range(n_refs):
        for level in range(1, levels + 1):
            rows.append(
                {
                    "sample_id": f"{source}/I{r:02d}_{level}",
                    "path": f"imgs/I{r:02d}_{level}.png",
                    "ref_id": f"{source}/I{r:02d}",
                    "is_reference": False,
                    "distortion": 1,
                    "level": level,
                    "score": float(10 - 2 * level + 0.1 * r),
                    "score_raw": float(level),
                    "source": source,
                    "origin": origin,
                    "label_kind": "human",
                    "group_id": -1,
                    "group_size": 1,
                    "weight": 1.0,
                }
            )
    return rows


def write_rows_images(rows: list[dict], root: Path) -> None:
    for row in rows:
        ref = int(row["ref_id"].rsplit("I", 1)[1])
        write_image(root / row["path"], ref, int(row["level"]))


def make_manifest(
    tmp: Path, *, sources: tuple[str, ...] = ("synA",), n_refs: int = 3, levels: int = 3, name: str = "manifest.parquet"
) -> tuple[Path, dict[str, Path]]:
    """A manifest over one image root per source (tmp/<source>/imgs/...); returns (path, roots)."""
    rows: list[dict] = []
    roots: dict[str, Path] = {}
    for source in sources:
        root = tmp / "data" / source
        part = sample_rows(source, n_refs, levels)
        write_rows_images(part, root)
        rows += part
        roots[source] = root
    path = tmp / name
    meta = make_metadata("manifest", roots={k: str(v) for k, v in roots.items()}, seed=1)
    write_table(pd.DataFrame(rows), path, "manifest", meta)
    return path, roots


def make_corpus(tmp: Path, source: str = "evalset", n_refs: int = 3, levels: int = 2) -> Path:
    """A scored corpus (its own root) usable as an evaluation set."""
    root = tmp / "data" / source
    rows = sample_rows(source, n_refs, levels)
    write_rows_images(rows, root)
    frame = pd.DataFrame(rows)[
        ["sample_id", "path", "ref_id", "is_reference", "distortion", "level", "score", "score_raw", "source"]
    ]
    path = tmp / f"{source}.parquet"
    write_table(frame, path, "corpus", make_metadata("corpus", root=str(root)))
    return path


def tiny_image_model():
    """A two-convolution backbone (with batch norm, like a ResNet) in the trainer's model shape."""
    from torch import nn

    from curate.train.model import ImageRegressor

    backbone = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
    )
    return ImageRegressor(backbone, 16)
