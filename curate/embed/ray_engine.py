"""The Ray engine: the same reader, mapper and writer as a Ray Data pipeline.

``rows (sample_id, path, shard) -> map_batches(decode) -> map_batches(EmbedActor) -> driver``.
Decoding runs as stateless Ray tasks (one CPU each) using the reader's :func:`decode_one`; the model
runs in actors (one per GPU with ``--device cuda``, else CPU actors) built from the same
:class:`EncoderSpec` and :class:`Mapper`; the driver streams the results (order preserved, so memory
stays bounded) into the same :class:`ShardAssembler` / :class:`ShardWriter` as the local engine.
Output is keyed by ``sample_id``, so it does not depend on which actor embedded what. Every machine
must see the image paths and the weights at the same place (a shared file system).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from curate.embed.encoders import Encoder, EncoderSpec
from curate.embed.preprocess import Preprocessing
from curate.embed.reader import decode_one
from curate.embed.shards import Shard
from curate.embed.writer import ShardAssembler, ShardWriter
from curate.errors import CurateError
from curate.images import DEFAULT_MAX_PIXELS
from curate.progress import Progress

ROWS_PER_BLOCK = 1024


def decode_batch(batch: dict[str, np.ndarray], preprocessing: Preprocessing, max_pixels: int) -> dict[str, np.ndarray]:
    """Add ``image`` (uint8 [B, 3, S, S], zeros where unusable), ``ok``, ``reason``, ``message``."""
    size = preprocessing.size
    count = len(batch["path"])
    images = np.zeros((count, 3, size, size), dtype=np.uint8)
    ok = np.zeros(count, dtype=bool)
    reasons, messages = [], []
    for k, path in enumerate(batch["path"].tolist()):
        image, reason, message = decode_one(str(path), preprocessing, max_pixels)
        if image is not None:
            images[k] = image
            ok[k] = True
        reasons.append(reason)
        messages.append(message)
    return {
        **batch,
        "image": images,
        "ok": ok,
        "reason": np.asarray(reasons, dtype=object),
        "message": np.asarray(messages, dtype=object),
    }


class EmbedActor:
    """Holds one model; ``actor(batch)`` embeds the decoded rows and drops the pixels."""

    def __init__(self, spec: EncoderSpec, identity: dict[str, Any], device: str, precision: str) -> None:
        import warnings

        import torch

        from curate.embed.mapper import Mapper

        if device == "cpu":
            torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encoder = spec.load()
        if encoder.identity != identity:
            raise CurateError(
                f"a Ray worker loaded a different encoder than the driver for {spec} "
                "(are the weights the same file on every machine?)"
            )
        self.mapper = Mapper(encoder, device, precision)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        ok = np.asarray(batch["ok"], dtype=bool)
        embedding = np.zeros((len(ok), self.mapper.dim), dtype=np.float32)
        if ok.any():
            images = torch.from_numpy(np.ascontiguousarray(batch["image"][ok]))
            embedding[ok] = self.mapper.to_numpy(self.mapper(images))
        out = {k: v for k, v in batch.items() if k != "image"}
        out["embedding"] = embedding
        return out


def run_ray(
    shards: Sequence[Shard],
    spec: EncoderSpec,
    encoder: Encoder,
    writer: ShardWriter,
    *,
    device: str,
    precision: str,
    batch_size: int,
    actors: int | None = None,
    on_shard_done: Any = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    quiet: bool = False,
) -> dict[str, Any]:
    """Embed ``shards`` on the Ray cluster (``RAY_ADDRESS``, or a local one started here).

    Returns a description of where the model ran (recorded beside the encoder identity).
    """
    try:
        import ray
        import ray.data
    except ImportError:
        raise CurateError("--engine ray needs Ray Data: pip install 'ray[data]'") from None
    import pandas as pd

    started_here = False
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False, log_to_driver=False)
        started_here = True
    try:
        if not shards:
            return {"type": device, "precision": precision, "engine": "ray"}
        resources = ray.cluster_resources()
        if device == "cuda":
            gpus = int(resources.get("GPU", 0))
            if gpus < 1:
                raise CurateError("--device cuda --engine ray: the Ray cluster has no GPUs")
            actor_count = actors or gpus
            actor_resources: dict[str, Any] = {"num_gpus": 1}
        else:
            actor_count = actors or 1
            actor_resources = {"num_cpus": 1}
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # shards complete in order: bounded driver memory
        context.enable_progress_bars = False
        rows = pd.DataFrame(
            {
                "sample_id": [sid for s in shards for sid in s.sample_ids],
                "path": [p for s in shards for p in s.paths],
                "rel_path": [p for s in shards for p in s.rel_paths],
                "shard": np.concatenate([np.full(len(s), s.index, dtype=np.int64) for s in shards]),
            }
        )
        blocks = [rows.iloc[i : i + ROWS_PER_BLOCK] for i in range(0, len(rows), ROWS_PER_BLOCK)]
        dataset = ray.data.from_pandas(blocks)
        dataset = dataset.map_batches(
            decode_batch,
            fn_kwargs={"preprocessing": encoder.preprocessing, "max_pixels": max_pixels},
            batch_size=batch_size,
            batch_format="numpy",
            num_cpus=1,
        )
        dataset = dataset.map_batches(
            EmbedActor,
            fn_constructor_kwargs={
                "spec": spec,
                "identity": encoder.identity,
                "device": device,
                "precision": precision,
            },
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actor_count),
            **actor_resources,
        )
        assembler = ShardAssembler(writer, shards, on_shard_done)
        try:
            with Progress(len(rows), "embed (ray)", "img", quiet=quiet) as progress:
                for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                    _add_batch(assembler, batch)
                    progress.update(len(batch["sample_id"]))
        finally:
            assembler.close()
        if not assembler.complete():
            raise CurateError("the Ray pipeline ended before every shard was complete")
        return {"type": device, "precision": precision, "engine": "ray", "actors": actor_count}
    finally:
        if started_here:
            ray.shutdown()


def _add_batch(assembler: ShardAssembler, batch: dict[str, np.ndarray]) -> None:
    shard_ids = np.asarray(batch["shard"], dtype=np.int64)
    ok = np.asarray(batch["ok"], dtype=bool)
    ids = batch["sample_id"].tolist()
    for shard_index in np.unique(shard_ids).tolist():
        rows = np.flatnonzero(shard_ids == shard_index)
        good = rows[ok[rows]]
        bad = rows[~ok[rows]]
        rejects = [
            {
                "sample_id": ids[k],
                "path": str(batch["rel_path"][k]),
                "reason": str(batch["reason"][k]),
                "message": str(batch["message"][k]),
            }
            for k in bad.tolist()
        ]
        assembler.add(shard_index, [ids[k] for k in good.tolist()], batch["embedding"][good], rejects)
