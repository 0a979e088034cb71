"""The local engine: one process drives the model; DataLoader workers (or, with none, this process's
threads between batches) decode; a thread writes shards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from curate.embed.encoders import Encoder
from curate.embed.mapper import Mapper
from curate.embed.reader import make_loader, shard_aligned_batches
from curate.embed.shards import Shard
from curate.embed.writer import ShardAssembler, ShardWriter
from curate.images import DEFAULT_MAX_PIXELS
from curate.progress import Progress

# Shards are fed to one DataLoader in groups of about this many samples, so the per-sample lists
# stay bounded for corpora of millions; restarting the workers between groups costs about a second.
GROUP_SAMPLES = 1_000_000


def decode_threads() -> int:
    """Threads that decode each batch when there are no worker processes: as many as torch computes
    with, so decoding, like the model, has every core the run was given."""
    return max(1, torch.get_num_threads())


def shard_groups(shards: Sequence[Shard], limit: int = GROUP_SAMPLES) -> list[list[Shard]]:
    """Consecutive shards grouped so that each group holds at most ``limit`` samples (or one shard)."""
    groups: list[list[Shard]] = []
    current: list[Shard] = []
    size = 0
    for shard in shards:
        if current and size + len(shard) > limit:
            groups.append(current)
            current, size = [], 0
        current.append(shard)
        size += len(shard)
    if current:
        groups.append(current)
    return groups


def run_local(
    shards: Sequence[Shard],
    encoder: Encoder,
    mapper: Mapper,
    writer: ShardWriter,
    *,
    batch_size: int,
    workers: int,
    on_shard_done: Any = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    quiet: bool = False,
) -> None:
    """Embed every sample of ``shards`` and write each shard when it is complete.

    Batches are cut within shards (see :func:`shard_aligned_batches`) and processed in order; the
    device result of batch k is copied back only after batch k+1 has been queued, so the GPU never
    waits for the host to write. With ``workers=0`` each batch is decoded here by as many threads as
    torch computes with, between forward passes (see :mod:`curate.embed.reader`).
    """
    if not shards:
        return
    assembler = ShardAssembler(writer, shards, on_shard_done)
    try:
        with Progress(sum(len(s) for s in shards), "embed", "img", quiet=quiet) as progress:
            for group in shard_groups(shards):
                _run_group(group, encoder, mapper, assembler, progress, batch_size=batch_size, workers=workers,
                           max_pixels=max_pixels)
    finally:
        assembler.close()


def _run_group(
    shards: Sequence[Shard],
    encoder: Encoder,
    mapper: Mapper,
    assembler: ShardAssembler,
    progress: Progress,
    *,
    batch_size: int,
    workers: int,
    max_pixels: int,
) -> None:
    paths: list[str] = []
    ids: list[str] = []
    rel_paths: list[str] = []
    shard_of: list[int] = []
    for shard in shards:
        paths.extend(shard.paths)
        ids.extend(shard.sample_ids)
        rel_paths.extend(shard.rel_paths)
        shard_of.extend([shard.index] * len(shard))
    loader = make_loader(
        paths,
        encoder.preprocessing,
        shard_aligned_batches([len(s) for s in shards], batch_size),
        workers=workers,
        pin_memory=mapper.device.type == "cuda",
        max_pixels=max_pixels,
        threads=decode_threads(),
    )
    del paths  # the loader holds them compactly
    pending: tuple[int, list[str], Any, list[dict[str, str]]] | None = None

    def finish(item: tuple[int, list[str], Any, list[dict[str, str]]]) -> None:
        shard_index, batch_ids, result, rejects = item
        if result is not None:
            vectors = mapper.to_numpy(result)
        else:
            vectors = np.zeros((0, mapper.dim), np.float32)
        assembler.add(shard_index, batch_ids, vectors, rejects)

    try:
        for batch in loader:
            positions = batch.positions.tolist()
            first = positions[0] if positions else batch.failed[0][0]
            rejects = [
                {"sample_id": ids[p], "path": rel_paths[p], "reason": reason, "message": message}
                for p, reason, message in batch.failed
            ]
            result = mapper(batch.images) if positions else None
            if pending is not None:
                finish(pending)
            pending = (shard_of[first], [ids[p] for p in positions], result, rejects)
            progress.update(len(batch))
    finally:
        loader.dataset.close()
    if pending is not None:
        finish(pending)
