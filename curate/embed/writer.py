"""Embeddings -> Parquet shards: ``sample_id`` + L2-normalised ``embedding``, one atomic file per shard.

A shard's metadata records the encoder identity, the corpus fingerprint, the shard's own identity
(index, count, first/last id, a digest of its ids) and the samples of that shard that were rejected,
so a finished shard is self-describing: a rerun trusts it only if all of that matches, and the run's
rejects table can always be rebuilt from the shards.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.embed.shards import Shard
from curate.errors import CurateError, TableError
from curate.schema import embeddings_schema, embeddings_table, read_metadata, write_parquet

REJECT_STAGE = "embed"
# Keys of the run metadata that must match between a finished shard and the current run.
IDENTITY_KEYS = ("encoder", "dim", "dtype", "corpus", "shard_size")


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 160 else text[:157] + "..."


class ShardWriter:
    """Writes and verifies the shards of one embeddings folder.

    ``run_meta`` is the embeddings metadata common to every shard of this run (from
    :func:`curate.schema.make_metadata`, with ``encoder``, ``dim``, ``dtype``, ``corpus``,
    ``shard_size``); each shard adds its own ``shard`` entry.
    """

    def __init__(self, out_dir: str | Path, run_meta: Mapping[str, Any]) -> None:
        self.out_dir = Path(out_dir)
        self.run_meta = dict(run_meta)
        self.dim = int(run_meta["dim"])
        self.dtype = str(run_meta["dtype"])
        self.schema = embeddings_schema(self.dim, self.dtype)

    def path(self, shard: Shard) -> Path:
        return self.out_dir / shard.name

    def check_compatible(self, path: Path, meta: Mapping[str, Any]) -> None:
        """Refuse a folder written by another encoder or for another corpus or shard size."""
        for key in IDENTITY_KEYS:
            if meta.get(key) != self.run_meta.get(key):
                what = {
                    "encoder": "a different encoder",
                    "dim": "a different embedding dim",
                    "dtype": "a different dtype",
                    "corpus": "a different corpus",
                    "shard_size": "a different --shard-size",
                }[key]
                raise CurateError(
                    f"{path}: this folder holds embeddings made with {what} "
                    f"(folder: {_short(meta.get(key))}; this run: {_short(self.run_meta.get(key))}); "
                    "use a new output folder, or rerun with the original options to resume"
                )

    def finished(self, shard: Shard) -> list[dict[str, str]] | None:
        """The rejects recorded by this shard if it is already complete and matches; else ``None``."""
        path = self.path(shard)
        if not path.is_file():
            return None
        try:
            meta = read_metadata(path)
            rows = pq.ParquetFile(path).metadata.num_rows
        except (TableError, OSError, pa.ArrowException) as exc:
            raise CurateError(f"{path}: an existing shard cannot be read ({exc}); delete it to recompute it") from None
        if meta.get("format") != "embeddings":
            raise CurateError(f"{path}: is a {meta.get('format')} table, not an embeddings shard")
        self.check_compatible(path, meta)
        recorded = meta.get("shard") or {}
        expected = shard.identity()
        if {k: recorded.get(k) for k in expected} != expected:
            raise CurateError(
                f"{path}: holds other samples than this run assigns to it "
                f"({_short({k: recorded.get(k) for k in expected})} vs {_short(expected)}); use a new output folder"
            )
        rejects = list(recorded.get("rejects") or [])
        if rows + len(rejects) != len(shard):
            raise CurateError(
                f"{path}: {rows} rows + {len(rejects)} rejects do not add up to the shard's {len(shard)} samples; "
                "delete it to recompute it"
            )
        return rejects

    def write(
        self, shard: Shard, sample_ids: Sequence[str], vectors: np.ndarray, rejects: Sequence[Mapping[str, str]]
    ) -> Path:
        """Write ``vectors`` (float [n, dim], L2-normalised) for ``sample_ids`` as ``shard``, atomically.

        Rows are sorted by ``sample_id``; every sample of the shard must be either embedded or
        rejected.
        """
        ids = np.asarray(list(sample_ids), dtype=object)
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        rejected = sorted(rejects, key=lambda r: r["sample_id"])
        covered = set(ids.tolist()) | {r["sample_id"] for r in rejected}
        if len(ids) + len(rejected) != len(shard) or covered != set(shard.sample_ids):
            raise RuntimeError(f"{shard.name}: embedded + rejected samples do not match the shard's samples")
        order = np.argsort(ids.astype(str), kind="stable")
        ids, vectors = ids[order], vectors[order]
        table = embeddings_table(ids, vectors, self.dtype)
        meta = dict(self.run_meta)
        meta["shard"] = {**shard.identity(), "rejects": [dict(r) for r in rejected]}
        return write_parquet(table, self.path(shard), meta)


def collect_rejects(writer: ShardWriter, shards: Sequence[Shard]) -> list[dict[str, str]]:
    """Every reject recorded by the finished shards among ``shards``."""
    found: list[dict[str, str]] = []
    for shard in shards:
        rejects = writer.finished(shard)
        if rejects:
            found.extend(rejects)
    return found


class ShardAssembler:
    """Gathers per-batch results into shards and writes each shard as soon as it is complete.

    Engines call :meth:`add` with whatever arrives (any order, any batch size); writes happen on one
    background thread so the model keeps running while a shard is compressed and written.
    ``on_shard_done(shard, rejects)`` runs after each write (the runner counts rejects there and may
    raise to stop the run; the error surfaces from :meth:`add` or :meth:`close`).
    """

    MAX_QUEUED_WRITES = 2

    def __init__(
        self,
        writer: ShardWriter,
        shards: Sequence[Shard],
        on_shard_done: Any = None,
        *,
        background: bool = True,
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.writer = writer
        self.shards = {s.index: s for s in shards}
        self.on_shard_done = on_shard_done
        self._ids: dict[int, list[str]] = {i: [] for i in self.shards}
        self._vectors: dict[int, list[np.ndarray]] = {i: [] for i in self.shards}
        self._rejects: dict[int, list[dict[str, str]]] = {i: [] for i in self.shards}
        self._seen: dict[int, int] = dict.fromkeys(self.shards, 0)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-writer") if background else None
        self._futures: list[Any] = []
        self.written: list[int] = []

    def add(
        self,
        shard_index: int,
        sample_ids: Sequence[str],
        vectors: np.ndarray,
        rejects: Sequence[Mapping[str, str]] = (),
    ) -> None:
        """Add embedded samples (``vectors`` float32 [n, dim]) and rejected ones for one shard."""
        self.poll()
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(sample_ids), self.writer.dim)
        ids = list(sample_ids)
        rejects = [dict(r) for r in rejects]
        if len(ids):
            # A vector that is not finite or has no direction (fp16 overflow, a blank feature) is not
            # an embedding: record it as a reject rather than writing a file readers will refuse.
            norms = np.linalg.norm(vectors, axis=1)
            bad = ~np.isfinite(vectors).all(axis=1) | ~(np.abs(norms - 1.0) < 1e-2)
            if bad.any():
                shard = self.shards[shard_index]
                where = {sid: rel for sid, rel in zip(shard.sample_ids, shard.rel_paths, strict=True)}
                for k in np.flatnonzero(bad):
                    rejects.append(
                        {
                            "sample_id": ids[k],
                            "path": where[ids[k]],
                            "reason": "bad_embedding",
                            "message": f"bad_embedding: {ids[k]}: the encoder output is not finite or has zero norm",
                        }
                    )
                keep = np.flatnonzero(~bad)
                ids = [ids[k] for k in keep]
                vectors = vectors[keep]
        self._ids[shard_index].extend(ids)
        self._vectors[shard_index].append(vectors)
        self._rejects[shard_index].extend(rejects)
        self._seen[shard_index] += len(ids) + len(rejects)
        if self._seen[shard_index] == len(self.shards[shard_index]):
            self._submit(shard_index)
        elif self._seen[shard_index] > len(self.shards[shard_index]):
            raise RuntimeError(f"shard {shard_index}: more results than samples")

    def _submit(self, index: int) -> None:
        shard = self.shards[index]
        ids = self._ids.pop(index)
        vectors = (
            np.concatenate(self._vectors.pop(index))
            if ids
            else np.zeros((0, self.writer.dim), np.float32)
        )
        rejects = self._rejects.pop(index)
        if self._pool is None:
            self._write(shard, ids, vectors, rejects)
            return
        while len([f for f in self._futures if not f.done()]) >= self.MAX_QUEUED_WRITES:
            self._futures[0].result()
            self.poll()
        self._futures.append(self._pool.submit(self._write, shard, ids, vectors, rejects))

    def _write(self, shard: Shard, ids: list[str], vectors: np.ndarray, rejects: list[dict[str, str]]) -> None:
        self.writer.write(shard, ids, vectors, rejects)
        self.written.append(shard.index)
        if self.on_shard_done is not None:
            self.on_shard_done(shard, rejects)

    def poll(self) -> None:
        """Re-raise the error of any finished write."""
        still = []
        for future in self._futures:
            if future.done():
                future.result()
            else:
                still.append(future)
        self._futures = still

    def close(self) -> None:
        """Wait for every queued write; re-raise the first error. Incomplete shards are not written."""
        try:
            for future in self._futures:
                future.result()
        finally:
            self._futures = []
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def complete(self) -> bool:
        return not self._ids
