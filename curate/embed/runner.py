"""``embed_corpus``: corpus -> embeddings folder, tying encoder, reader, mapper, writer and an engine.

Folder layout (``EMB_DIR``): ``part-00000.parquet`` ... (the embeddings, one atomic file per shard)
and ``rejects.parquet`` (every sample that could not be embedded, with its reason; rewritten at the
end of each run). Rerunning the same command skips the finished shards; a folder written by another
encoder, for another corpus or with another ``--shard-size`` is refused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.devices import pick_device
from curate.embed.config import EmbedConfig
from curate.embed.encoders import Encoder, EncoderSpec
from curate.embed.shards import Shard, corpus_identity, plan_shards
from curate.embed.writer import REJECT_STAGE, ShardWriter, collect_rejects
from curate.errors import CurateError
from curate.fsio import folder_lock, remove_stale_temporaries
from curate.provenance import input_fingerprints
from curate.schema import (
    EMBEDDING_SHARD_GLOB,
    REJECTS_NAME,
    corpus_root,
    make_metadata,
    read_corpus,
    read_metadata,
    write_rejects,
)

DTYPE = "float32"


@dataclass
class EmbedResult:
    """What a run did: counts, the encoder identity it recorded, and its throughput."""

    out_dir: Path
    samples: int
    embedded: int
    rejected: int
    shards_total: int
    shards_written: int
    shards_skipped: int
    encoder: dict[str, Any]
    dim: int
    device: dict[str, Any]
    seconds: float
    images_per_second: float
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.out_dir}: {self.embedded} embedded, {self.rejected} rejected "
            f"({self.shards_written} shard(s) written, {self.shards_skipped} already done) "
            f"with {self.encoder.get('name')} {self.encoder.get('model')} ({self.dim}-d) on {self.device.get('type')}, "
            f"{self.images_per_second:.1f} images/s"
        )


def corpus_samples(corpus: str | os.PathLike[str]) -> tuple[list[str], list[str], list[str], dict[str, Any]]:
    """(sample_ids, absolute paths, relative paths, metadata) of a corpus table."""
    frame, meta = read_corpus(corpus)
    root = corpus_root(meta, corpus)
    ids = frame["sample_id"].astype(str).tolist()
    rel = frame["path"].astype(str).tolist()
    return ids, [str(root / p) for p in rel], rel, meta




def _check_existing_folder(out_dir: Path, writer: ShardWriter, plan: Sequence[Shard]) -> None:
    names = {s.name for s in plan}
    for path in sorted(out_dir.glob(EMBEDDING_SHARD_GLOB)):
        try:
            meta = read_metadata(path)
        except CurateError as exc:
            raise CurateError(f"{path}: not an embeddings shard this run can resume ({exc})") from None
        writer.check_compatible(path, meta)
        if path.name not in names:
            raise CurateError(f"{path}: a shard this run would not write; the folder holds another run's output")


def embed_corpus(
    corpus: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    notes: Sequence[str] = (),
    quiet: bool = False,
    **settings: Any,
) -> EmbedResult:
    """Embed every image of ``corpus`` into Parquet shards under ``out_dir``; resume if present.

    ``settings`` are :class:`~curate.embed.config.EmbedConfig` fields: ``encoder``/``model``/
    ``pretrained`` choose the encoder (see :mod:`curate.embed.encoders`); ``batch_size``/``workers``
    default to the device (256 and all cores but one on a GPU); the run fails once more than
    ``max_rejects`` samples are rejected (finished shards stay).
    ``notes``: free text recorded in the metadata (e.g. why a fallback encoder was used).
    Returns an :class:`EmbedResult`; raises :class:`CurateError` on bad options or input.
    """
    from curate.embed.mapper import Mapper, resolve_precision

    started = time.perf_counter()
    config = EmbedConfig(**settings)
    engine, shard_size, max_rejects, max_pixels = config.engine, config.shard_size, config.max_rejects, config.max_pixels
    torch_device = pick_device(config.device)
    precision = resolve_precision(config.precision, torch_device)
    batch_size = config.resolved_batch_size(torch_device.type)
    workers = config.resolved_workers(torch_device.type)

    ids, paths, rel_paths, _corpus_meta = corpus_samples(corpus)
    if not ids:
        raise CurateError(f"{corpus}: the corpus is empty")
    plan = plan_shards(ids, paths, rel_paths, shard_size)
    spec = EncoderSpec(config.encoder, config.model, config.pretrained).resolved()
    loaded: Encoder = spec.load()

    out = Path(out_dir)
    device_info = {"type": torch_device.type, "precision": precision}
    run_meta = make_metadata(
        "embeddings",
        params={
            "encoder": spec.name,
            "model": spec.model,
            "pretrained": spec.pretrained,
            "batch_size": batch_size,
            "workers": workers,
            "engine": engine,
            "precision": precision,
            "max_pixels": max_pixels,
        },
        inputs=input_fingerprints({"corpus": corpus}),
        encoder=loaded.identity,
        dim=loaded.dim,
        dtype=DTYPE,
        corpus=corpus_identity(ids, rel_paths),
        shard_size=shard_size,
        notes=list(loaded.notes) + list(notes),
    )
    with folder_lock(out, "embed"):
        remove_stale_temporaries(out)  # left by a killed run; never readable as shards
        probe = ShardWriter(out, {**run_meta, "device": device_info})
        _check_existing_folder(out, probe, plan)
        done = {s.index for s in plan if probe.finished(s) is not None}
        pending = [s for s in plan if s.index not in done]
        rejected_before = len(collect_rejects(probe, [s for s in plan if s.index in done]))
        counter = {"rejects": rejected_before}

        def on_shard_done(shard: Shard, rejects: list[dict[str, str]]) -> None:
            counter["rejects"] += len(rejects)
            if counter["rejects"] > max_rejects:
                raise CurateError(
                    f"{counter['rejects']} images rejected, more than --max-rejects {max_rejects} "
                    f"(see {out / REJECTS_NAME}; first: {rejects[0]['message'] if rejects else 'earlier shards'})"
                )

        if rejected_before > max_rejects:
            _finish_rejects(out, probe, plan, run_meta)
            raise CurateError(
                f"{rejected_before} images already rejected in {out}, more than --max-rejects {max_rejects} "
                f"(see {out / REJECTS_NAME})"
            )
        to_embed = sum(len(s) for s in pending)
        try:
            if engine == "local":
                from curate.embed.local_engine import run_local

                mapper = Mapper(loaded, torch_device, precision)
                device_info = mapper.describe()
                writer = ShardWriter(out, {**run_meta, "device": device_info})
                run_local(
                    pending, loaded, mapper, writer,
                    batch_size=batch_size, workers=workers, on_shard_done=on_shard_done,
                    max_pixels=max_pixels, quiet=quiet,
                )
            else:
                from curate.embed.ray_engine import run_ray

                writer = ShardWriter(out, {**run_meta, "device": device_info})
                device_info = run_ray(
                    pending, spec, loaded, writer,
                    device=torch_device.type, precision=precision, batch_size=batch_size,
                    actors=config.actors, on_shard_done=on_shard_done, max_pixels=max_pixels, quiet=quiet,
                )
        finally:
            rejects_total = _finish_rejects(out, probe, plan, run_meta)
    seconds = time.perf_counter() - started
    return EmbedResult(
        out_dir=out,
        samples=len(ids),
        embedded=len(ids) - rejects_total,
        rejected=rejects_total,
        shards_total=len(plan),
        shards_written=len(pending),
        shards_skipped=len(done),
        encoder=loaded.identity,
        dim=loaded.dim,
        device=device_info,
        seconds=seconds,
        images_per_second=to_embed / seconds if seconds > 0 else 0.0,
        notes=list(run_meta["notes"]),
    )


def _finish_rejects(out: Path, writer: ShardWriter, plan: Sequence[Shard], run_meta: dict[str, Any]) -> int:
    """Rebuild ``rejects.parquet`` from the finished shards; returns the number of rejects."""
    rejects = collect_rejects(writer, [s for s in plan if writer.path(s).is_file()])
    meta = make_metadata(
        "rejects",
        params=run_meta["params"],
        inputs=run_meta["inputs"],
        encoder=run_meta["encoder"],
        corpus=run_meta["corpus"],
    )
    write_rejects(rejects, out / REJECTS_NAME, REJECT_STAGE, meta)
    return len(rejects)
