"""Training inputs: the by-reference validation split, image crops, precomputed embeddings.

Randomness is a pure function of ``(seed, epoch, sample index)``: every crop position comes from its
own generator, and batch order from a generator seeded with ``seed + epoch``. A resumed run therefore
sees exactly the batches an uninterrupted run sees, with any number of loader workers.

Images travel as uint8 tensors (1/4 of the bytes of float32) and are normalised on the device.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from curate.data import ManifestDataset
from curate.errors import CurateError
from curate.sampling import sample_keys

TRAIN, EVAL, FEATURES = "train", "eval", "features"


def split_by_reference(ref_ids: Sequence[str] | np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation rows: whole references go to validation, never single images.

    References are ranked by a hash of ``(seed, ref_id)``; the first ``round(n_refs * val_fraction)``
    (at least 1, at most n_refs - 1) are validation. Independent of row order.
    """
    refs = np.asarray(ref_ids, dtype=object).astype(str)
    if not 0.0 <= val_fraction < 1.0:
        raise CurateError(f"--val-fraction {val_fraction}: must be in [0, 1)")
    if val_fraction == 0.0 or refs.size == 0:
        return np.zeros(refs.size, dtype=bool)
    unique = np.unique(refs)
    if unique.size < 2:
        raise CurateError(f"--val-fraction: the training manifest has {unique.size} reference(s); need 2 or more")
    n_val = int(min(max(round(unique.size * val_fraction), 1), unique.size - 1))
    order = np.lexsort((unique, sample_keys(unique, seed)))
    return np.isin(refs, unique[order[:n_val]])


def check_images_exist(dataset: ManifestDataset, where: str) -> None:
    """Refuse before training starts if images are missing, naming the first few."""
    missing = [(s, p) for s, p in zip(dataset.sample_ids, dataset.paths, strict=True) if not Path(p).is_file()]
    if missing:
        shown = ", ".join(f"{s} ({p})" for s, p in missing[:3])
        raise CurateError(
            f"{where}: {len(missing)} of {len(dataset)} image(s) missing, e.g. {shown} "
            "(move them back or pass --root)"
        )


def _crop_generator(seed: int, mode: str, epoch: int, index: int) -> np.random.Generator:
    salt = {TRAIN: 0, EVAL: 1, FEATURES: 2}[mode]
    return np.random.default_rng([int(seed), salt, max(int(epoch), 0), int(index)])


def _at_least(image: np.ndarray, size: int) -> np.ndarray:
    """Upscale (bilinear) so that both sides are at least ``size``; larger images are untouched."""
    h, w = image.shape[:2]
    if h >= size and w >= size:
        return image
    scale = size / min(h, w)
    new = (max(size, int(np.ceil(w * scale))), max(size, int(np.ceil(h * scale))))
    return np.asarray(Image.fromarray(image).resize(new, Image.BILINEAR))


class CropDataset(torch.utils.data.Dataset):
    """Items are ``(index, epoch, mode)`` keys -> ``(uint8 crops, index)``.

    ``train``: one random ``crop`` x ``crop`` crop, shape [3, crop, crop]; ``eval``: ``n_crops`` random
    crops, fixed per image across epochs, shape [n_crops, 3, crop, crop]; ``features``: the centre
    crop, shape [3, crop, crop] (the view DRCDown's features are computed on).
    """

    def __init__(self, images: ManifestDataset, crop: int, n_crops: int, seed: int) -> None:
        self.images = images
        self.crop = crop
        self.n_crops = n_crops
        self.seed = seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int, str]) -> tuple[torch.Tensor, int]:
        index, epoch, mode = key
        image = _at_least(self.images.load(index), self.crop)
        h, w = image.shape[:2]
        c = self.crop
        if mode == FEATURES:
            tops, lefts = [(h - c) // 2], [(w - c) // 2]
        else:
            rng = _crop_generator(self.seed, mode, epoch if mode == TRAIN else 0, index)
            count = 1 if mode == TRAIN else self.n_crops
            tops = rng.integers(0, h - c + 1, size=count).tolist()
            lefts = rng.integers(0, w - c + 1, size=count).tolist()
        crops = np.stack([image[t : t + c, s : s + c] for t, s in zip(tops, lefts, strict=True)])
        tensor = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2)
        return (tensor[0] if mode != EVAL else tensor), index


class _BatchPlan(torch.utils.data.Sampler):
    """A batch sampler whose batches the loop sets before each pass (so workers can persist)."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int, str]]] = []

    def __iter__(self) -> Iterator[list[tuple[int, int, str]]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


@dataclass
class Samples:
    """What the loop needs to know about a table's rows (arrays of length n)."""

    sample_ids: np.ndarray
    scores: np.ndarray
    ref_ids: np.ndarray
    origins: np.ndarray
    weights: np.ndarray  # the manifest's per-sample loss weight (1.0 for a corpus)


class ImageSource:
    """Images of a manifest/corpus, served as uint8 crop batches by a (persistent) DataLoader."""

    def __init__(
        self, images: ManifestDataset, *, crop: int, n_crops: int, seed: int, workers: int, pin_memory: bool
    ) -> None:
        self.samples = samples_of(images)
        self.crops = CropDataset(images, crop, n_crops, seed)
        self.plan = _BatchPlan()
        self.loader = torch.utils.data.DataLoader(
            self.crops,
            batch_sampler=self.plan,
            num_workers=workers,
            pin_memory=pin_memory,
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers > 0 else None,
        )

    def __len__(self) -> int:
        return len(self.crops)

    def batches(
        self, chunks: Sequence[np.ndarray], *, epoch: int, mode: str
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, row_index)`` for each chunk of row numbers, in order."""
        self.plan.batches = [[(int(i), epoch, mode) for i in chunk] for chunk in chunks]
        yield from self.loader


class EmbeddingSource:
    """Precomputed embeddings of a table's rows (joined by sample_id), served as float32 batches."""

    def __init__(self, samples: Samples, vectors: np.ndarray) -> None:
        self.samples = samples
        self.vectors = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def batches(
        self, chunks: Sequence[np.ndarray], *, epoch: int, mode: str
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(vectors, row_index)`` for each chunk of row numbers (epoch and mode do not matter)."""
        for chunk in chunks:
            rows = torch.from_numpy(np.asarray(chunk, dtype=np.int64))
            yield self.vectors[rows], rows


def samples_of(images: ManifestDataset) -> Samples:
    frame = images.frame
    origins = frame["origin"].astype(str).to_numpy() if "origin" in frame else np.full(len(frame), "original")
    return Samples(
        sample_ids=np.asarray(images.sample_ids, dtype=object),
        scores=images.scores.astype(np.float32),
        ref_ids=frame["ref_id"].astype(str).to_numpy(dtype=object),
        origins=np.asarray(origins, dtype=object),
        weights=images.weights,
    )
