"""``curate embed``: image embeddings of a corpus, resumable, on one machine or on Ray.

Pieces (each does one thing): :mod:`~curate.embed.encoders` (the registry: clip, resnet50,
imagestats), :mod:`~curate.embed.preprocess`, :mod:`~curate.embed.reader` (files -> batches),
:mod:`~curate.embed.mapper` (batches -> embeddings), :mod:`~curate.embed.writer` (embeddings ->
shards), :mod:`~curate.embed.shards` (which sample goes to which shard), the engines
(:mod:`~curate.embed.local_engine`, :mod:`~curate.embed.ray_engine`) and
:mod:`~curate.embed.runner`, whose :func:`embed_corpus` ties them together.
"""

from curate.embed.encoders import DEFAULT_ENCODER, ENCODERS, Encoder, EncoderSpec
from curate.embed.runner import DEFAULT_MAX_REJECTS, DEFAULT_SHARD_SIZE, EmbedResult, embed_corpus

__all__ = [
    "DEFAULT_ENCODER",
    "DEFAULT_MAX_REJECTS",
    "DEFAULT_SHARD_SIZE",
    "ENCODERS",
    "EmbedResult",
    "Encoder",
    "EncoderSpec",
    "embed_corpus",
]
