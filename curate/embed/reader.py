"""Files -> batches: decoding and resizing in DataLoader worker processes, pinned for the GPU, or
in the main process's threads between forward passes (a CPU model).

Each item is read with :func:`curate.images.open_rgb` (the one image loader: every mode to RGB,
decompression bombs refused from the header; kept as a Pillow image) and resized/cropped to uint8
``[3, S, S]`` in the worker. A file that cannot be used becomes a reject (its reason code and message) instead of an
exception, so one bad image never stops a run. Batches never straddle two shards, so a shard's
embeddings are computed from the same batches whether or not the run was interrupted before.

Beside a GPU, worker processes decode while the device computes. Beside a CPU model the model's
threads already use every core, and a worker process decoding at the same time stalls them (a
preempted thread holds up the others at every operator's barrier); there the loader has no workers
and the main process decodes each batch on ``threads`` threads (Pillow releases the GIL while it
decodes and resizes), so decoding and the model take turns, each on all cores. The decoded pixels
are the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from curate.embed.preprocess import Preprocessing
from curate.errors import ImageError
from curate.images import DEFAULT_MAX_PIXELS, open_rgb, reject_reason

# A resize of the short side to S makes the long side S * aspect; cap it to avoid huge buffers.
MAX_ASPECT = 16.0


def decode_one(path: str, preprocessing: Preprocessing, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[
    np.ndarray | None, str, str
]:
    """Read and preprocess one file -> (uint8 ``[3, S, S]`` or None, reject reason, message)."""
    try:
        image = open_rgb(path, max_pixels=max_pixels)
    except ImageError as exc:
        return None, reject_reason(exc), str(exc)
    width, height = image.size
    if max(height, width) > MAX_ASPECT * min(height, width) and preprocessing.resize_mode == "shortest":
        return None, "bad_shape", f"bad_shape: {path} is {width}x{height}, aspect ratio above {MAX_ASPECT:g}"
    try:
        return preprocessing.apply_image(image), "", ""
    except (ValueError, OSError, MemoryError) as exc:
        return None, "unreadable", f"unreadable: {path}: preprocessing failed ({exc})"


class PathTable:
    """Many paths as one UTF-8 byte buffer plus offsets.

    A Python list of millions of strings, forked into every DataLoader worker, is slowly copied
    page by page as reference counts are touched; two numpy arrays are shared for good.
    """

    def __init__(self, paths: Sequence[str]) -> None:
        encoded = [p.encode("utf-8") for p in paths]
        self.offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=self.offsets[1:])
        self.blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> str:
        return self.blob[self.offsets[index] : self.offsets[index + 1]].tobytes().decode("utf-8")


class ImageFiles(Dataset):
    """``dataset[i]`` -> ``(i, uint8 [3, S, S] or None, reason, message)`` for ``paths[i]``.

    ``threads`` > 1: a batch (:meth:`__getitems__`) is decoded by that many threads of this process.
    """

    def __init__(
        self, paths: Sequence[str], preprocessing: Preprocessing, max_pixels: int = DEFAULT_MAX_PIXELS, threads: int = 1
    ):
        self.paths = PathTable(paths)
        self.preprocessing = preprocessing
        self.max_pixels = max_pixels
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None, str, str]:
        image, reason, message = decode_one(self.paths[index], self.preprocessing, self.max_pixels)
        return index, image, reason, message

    def __getitems__(self, indices: list[int]) -> list[tuple[int, np.ndarray | None, str, str]]:
        """One batch, in the order of ``indices`` (the DataLoader asks for whole batches this way)."""
        if self.threads <= 1 or len(indices) <= 1:
            return [self[i] for i in indices]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="curate-decode")
        return list(self._pool.map(self.__getitem__, indices))

    def close(self) -> None:
        """Stop the decoding threads (a new batch starts them again); images not yet started are
        dropped, so an interrupted run stops after the images in hand."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __getstate__(self) -> dict[str, Any]:
        # A worker process gets the paths and settings, never this process's threads.
        state = self.__dict__.copy()
        state["_pool"] = None
        return state


@dataclass
class Batch:
    """``positions`` (int64 [k]) of the decoded ``images`` (uint8 [k, 3, S, S]) in the dataset, and
    ``failed``: (position, reason, message) of the items that could not be used."""

    positions: torch.Tensor
    images: torch.Tensor
    failed: list[tuple[int, str, str]]

    def pin_memory(self) -> Batch:
        # DataLoader calls this in its pinning thread when pin_memory=True.
        return Batch(self.positions, self.images.pin_memory(), self.failed)

    def __len__(self) -> int:
        return int(self.positions.numel()) + len(self.failed)


def collate(items: list[tuple[int, np.ndarray | None, str, str]], size: int) -> Batch:
    good = [(i, img) for i, img, _, _ in items if img is not None]
    failed = [(i, reason, message) for i, img, reason, message in items if img is None]
    if good:
        images = torch.from_numpy(np.stack([img for _, img in good]))
    else:
        images = torch.empty((0, 3, size, size), dtype=torch.uint8)
    positions = torch.tensor([i for i, _ in good], dtype=torch.int64)
    return Batch(positions, images, failed)


class _Collate:
    """Picklable collate function bound to the image size."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, items: list[tuple[int, np.ndarray | None, str, str]]) -> Batch:
        return collate(items, self.size)


def shard_aligned_batches(shard_lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Batches of dataset positions, ``batch_size`` at most, never crossing a shard boundary.

    The dataset holds the shards' samples back to back, in shard order.
    """
    batches: list[list[int]] = []
    start = 0
    for length in shard_lengths:
        for offset in range(0, length, batch_size):
            batches.append(list(range(start + offset, start + min(offset + batch_size, length))))
        start += length
    return batches


def make_loader(
    paths: Sequence[str],
    preprocessing: Preprocessing,
    batches: list[list[int]],
    *,
    workers: int,
    pin_memory: bool,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    prefetch_batches: int = 4,
    threads: int = 1,
) -> DataLoader:
    """A DataLoader over ``paths`` yielding :class:`Batch` objects in the order of ``batches``.

    ``threads``: with no ``workers``, the threads that decode each batch in this process (the
    dataset's :meth:`ImageFiles.close` stops them). Worker processes decode one image at a time.
    """
    return DataLoader(
        ImageFiles(paths, preprocessing, max_pixels, threads if workers == 0 else 1),
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=_Collate(preprocessing.size),
        pin_memory=pin_memory,
        prefetch_factor=prefetch_batches if workers > 0 else None,
        persistent_workers=False,
    )
