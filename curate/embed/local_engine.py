"""The local engine: one process drives the model; DataLoader workers decode; a thread writes shards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curate.embed.encoders import Encoder
from curate.embed.mapper import Mapper
from curate.embed.reader import make_loader, shard_aligned_batches
from curate.embed.shards import Shard
from curate.embed.writer import ShardAssembler, ShardWriter
from curate.images import DEFAULT_MAX_PIXELS
from curate.progress import Progress


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
    waits for the host to write.
    """
    if not shards:
        return
    paths: list[str] = []
    ids: list[str] = []
    rel_paths: list[str] = []
    shard_of: list[int] = []
    for shard in shards:
        paths.extend(shard.paths)
        ids.extend(shard.sample_ids)
        rel_paths.extend(shard.rel_paths)
        shard_of.extend([shard.index] * len(shard))
    batches = shard_aligned_batches([len(s) for s in shards], batch_size)
    loader = make_loader(
        paths,
        encoder.preprocessing,
        batches,
        workers=workers,
        pin_memory=mapper.device.type == "cuda",
        max_pixels=max_pixels,
    )
    assembler = ShardAssembler(writer, shards, on_shard_done)
    pending: tuple[int, list[str], Any, list[dict[str, str]]] | None = None

    def finish(item: tuple[int, list[str], Any, list[dict[str, str]]]) -> None:
        shard_index, batch_ids, result, rejects = item
        vectors = mapper.to_numpy(result) if result is not None else None
        if vectors is None:
            import numpy as np

            vectors = np.zeros((0, mapper.dim), np.float32)
        assembler.add(shard_index, batch_ids, vectors, rejects)

    try:
        with Progress(len(paths), "embed", "img", quiet=quiet) as progress:
            for batch in loader:
                positions = batch.positions.tolist()
                first = positions[0] if positions else batch.failed[0][0]
                shard_index = shard_of[first]
                rejects = [
                    {"sample_id": ids[p], "path": rel_paths[p], "reason": reason, "message": message}
                    for p, reason, message in batch.failed
                ]
                result = mapper(batch.images) if positions else None
                if pending is not None:
                    finish(pending)
                pending = (shard_index, [ids[p] for p in positions], result, rejects)
                progress.update(len(batch))
            if pending is not None:
                finish(pending)
                pending = None
    finally:
        assembler.close()
