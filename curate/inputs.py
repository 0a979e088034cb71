"""Reading a step's inputs: the corpus, its embeddings, a pool and its embeddings, a manifest.

``reshape``, ``analyze`` and ``train`` read some of these; :func:`load_inputs` reads them the one
way: tables validated and sorted by ``sample_id``, embeddings folders opened (metadata checked, one
encoder across them) but no vector read yet: each step loads only the rows it uses
(:meth:`~curate.schema.EmbeddingsFolder.load`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from curate.data import RootOverride, read_samples
from curate.errors import TableError
from curate.provenance import input_fingerprints
from curate.schema import EmbeddingsFolder, read_corpus, same_encoder, sorted_by_id

PathLike = str | os.PathLike[str]


@dataclass
class Inputs:
    """What :func:`load_inputs` read; a field is None when its input was not given."""

    corpus: pd.DataFrame | None = None
    corpus_meta: dict[str, Any] = field(default_factory=dict)
    embeddings: EmbeddingsFolder | None = None
    pool: pd.DataFrame | None = None
    pool_meta: dict[str, Any] = field(default_factory=dict)
    pool_embeddings: EmbeddingsFolder | None = None
    manifest: pd.DataFrame | None = None
    manifest_meta: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, Any] = field(default_factory=dict)

    def fingerprints(self) -> dict[str, Any]:
        """The ``inputs`` of the step's provenance: a fingerprint of each input given."""
        return input_fingerprints(self.paths)



def load_inputs(
    *,
    corpus: PathLike | None = None,
    embeddings: PathLike | Sequence[PathLike] | None = None,
    pool: PathLike | None = None,
    pool_embeddings: PathLike | None = None,
    manifest: PathLike | None = None,
    root: RootOverride = None,
    pool_references_only: bool = False,
) -> Inputs:
    """Read the inputs given.

    ``embeddings``: one folder or several read as one set (e.g. a manifest spanning a corpus and
    a pool). ``manifest`` is read with an ``image_path`` column resolved against its recorded
    roots, or ``root`` (:func:`curate.data.read_samples`). ``pool_references_only``: read only the
    pool's candidate references (a step that needs no distorted pool row then never holds them).
    """
    out = Inputs(
        paths={
            "corpus": corpus,
            "embeddings": embeddings,
            "pool": pool,
            "pool_embeddings": pool_embeddings,
            "manifest": manifest,
        }
    )
    if corpus is not None:
        frame, out.corpus_meta = read_corpus(corpus)
        out.corpus = sorted_by_id(frame)
    if pool is not None:
        frame, out.pool_meta = read_corpus(pool, references_only=pool_references_only)
        out.pool = sorted_by_id(frame)
    if manifest is not None:
        frame, out.manifest_meta = read_samples(manifest, root)
        if out.manifest_meta["format"] != "manifest":
            raise TableError(f"{manifest}: is a {out.manifest_meta['format']} table, expected manifest")
        out.manifest = sorted_by_id(frame)
    if embeddings is not None:
        out.embeddings = EmbeddingsFolder(embeddings)
    if pool_embeddings is not None:
        out.pool_embeddings = EmbeddingsFolder(pool_embeddings)
        if out.embeddings is not None:
            same_encoder(out.embeddings, out.pool_embeddings)
    return out
