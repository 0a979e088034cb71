"""Deterministic assignment of corpus samples to output shards.

Samples are sorted by ``sample_id`` and cut into consecutive chunks of ``shard_size``; chunk ``k``
is written as ``part-{k:05d}.parquet``. The assignment depends only on the set of sample ids and the
shard size, never on file order, worker count or engine, so a rerun finds the same shards and can
skip the finished ones, and the same input always gives the same files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SHARD_NAME = "part-{index:05d}.parquet"


@dataclass(frozen=True)
class Shard:
    """One output shard: its index and its samples (``sample_ids`` sorted; ``paths`` absolute;
    ``rel_paths`` as stored in the corpus)."""

    index: int
    sample_ids: tuple[str, ...]
    paths: tuple[str, ...]
    rel_paths: tuple[str, ...]

    @property
    def name(self) -> str:
        return SHARD_NAME.format(index=self.index)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def identity(self) -> dict[str, Any]:
        """What a finished shard's metadata must repeat for a rerun to trust it."""
        return {
            "index": self.index,
            "count": len(self.sample_ids),
            "first": self.sample_ids[0],
            "last": self.sample_ids[-1],
            "ids_sha256": _ids_digest(self.sample_ids),
        }


def _ids_digest(ids: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for sid in ids:
        digest.update(sid.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def plan_shards(
    sample_ids: Sequence[str], paths: Sequence[str], rel_paths: Sequence[str], shard_size: int
) -> list[Shard]:
    """Cut the samples, sorted by id, into shards of ``shard_size`` (the last may be smaller)."""
    if shard_size < 1:
        raise ValueError("shard size must be at least 1")
    order = sorted(range(len(sample_ids)), key=lambda i: sample_ids[i])
    shards = []
    for index, start in enumerate(range(0, len(order), shard_size)):
        rows = order[start : start + shard_size]
        shards.append(
            Shard(
                index=index,
                sample_ids=tuple(sample_ids[i] for i in rows),
                paths=tuple(paths[i] for i in rows),
                rel_paths=tuple(rel_paths[i] for i in rows),
            )
        )
    return shards


def corpus_identity(sample_ids: Sequence[str], rel_paths: Sequence[str]) -> dict[str, Any]:
    """A content fingerprint of what is embedded: the sorted (sample_id, path) pairs.

    The corpus file's own bytes (its command line, its root) may change without changing a single
    embedding, so they are not part of it; adding, removing or re-pointing a sample is.
    """
    digest = hashlib.sha256()
    for sid, rel in sorted(zip(sample_ids, rel_paths, strict=True)):
        digest.update(sid.encode("utf-8"))
        digest.update(b"\t")
        digest.update(rel.encode("utf-8"))
        digest.update(b"\n")
    return {"samples": len(sample_ids), "sha256": digest.hexdigest()}
