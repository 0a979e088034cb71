"""``curate embed``: image embeddings of a corpus, resumable, on one machine or on Ray.

Pieces (each does one thing): :mod:`~curate.embed.encoders` (the registry: clip, resnet50,
imagestats), :mod:`~curate.embed.config` (the settings of a run), :mod:`~curate.embed.preprocess`,
:mod:`~curate.embed.reader` (files -> batches), :mod:`~curate.embed.mapper` (batches ->
embeddings), :mod:`~curate.embed.writer` (embeddings -> shards), :mod:`~curate.embed.shards`
(which sample goes to which shard), the engines (:mod:`~curate.embed.local_engine`,
:mod:`~curate.embed.ray_engine`) and :mod:`~curate.embed.runner`, whose :func:`embed_corpus` ties
them together. The names below load on first use, so the command line can read the settings and
the registry without the engines.
"""

from __future__ import annotations

from curate.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "curate.embed.encoders": ["DEFAULT_ENCODER", "ENCODERS", "Encoder", "EncoderSpec"],
        "curate.embed.config": ["EmbedConfig"],
        "curate.embed.runner": ["EmbedResult", "embed_corpus"],
    },
)
