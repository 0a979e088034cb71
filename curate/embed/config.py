"""The settings of ``curate embed``: the single statement of their defaults, ranges and choices.

The encoder choices are the :data:`~curate.embed.encoders.ENCODERS` registry's names, so a new
encoder appears on the command line by itself. Defaults that depend on the device (batch size,
decoding workers) are decided here too (:meth:`EmbedConfig.resolved_batch_size`,
:meth:`EmbedConfig.resolved_workers`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from curate.devices import DEVICES_HELP, check_device
from curate.embed.encoders import (
    DEFAULT_CLIP_MODEL,
    DEFAULT_CLIP_PRETRAINED,
    DEFAULT_ENCODER,
    DEFAULT_RESNET_WEIGHTS,
    DEFAULT_TIMM_MODEL,
    DEFAULT_TIMM_PRETRAINED,
    ENCODERS,
    PACKAGED_WEIGHTS,
)
from curate.images import DEFAULT_MAX_PIXELS
from curate.params import check_fields, param

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
# An embeddings note starting with this says the encoder is a fallback, not the one asked for
# (``curate demo --encoder auto`` without CLIP weights); ``analyze`` shows such notes in a banner.
FALLBACK_NOTE = "demo fallback:"
ENGINES = ("local", "ray")
GPU_BATCH_SIZE = 256
CPU_BATCH_SIZE = 32
DEFAULT_SHARD_SIZE = 10_000  # samples per shard (any writer of an embeddings folder)


def encoder_names() -> tuple[str, ...]:
    """Every encoder the registry knows."""
    return tuple(ENCODERS)


@dataclass(frozen=True)
class EmbedConfig:
    """Every setting of one embedding run."""

    encoder: str = param(
        DEFAULT_ENCODER, choices=encoder_names,
        help="Encoder: clip (open_clip), resnet50 (the paper's torchvision ImageNet feature), timm (any timm "
        "image model; offline by default: the packaged ImageNet EfficientNet-Lite0) or imagestats (weight-free).",
    )
    model: str | None = param(
        None, kind=str,
        help="Model name: open_clip (clip) or timm (timm; NAME or NAME.TAG, whose pretrained config sets the "
        f"preprocessing). Default: {DEFAULT_CLIP_MODEL} for clip, {DEFAULT_TIMM_MODEL} for timm.",
    )
    pretrained: str | None = param(
        None, kind=str,
        help="Weights: a pretrained tag (clip, resnet50), a weights FILE, local-dir:DIR (clip: open_clip_config.json "
        "+ weights; timm: config.json + model.safetensors or pytorch_model.bin), "
        f"'{PACKAGED_WEIGHTS}' (timm: the packaged EfficientNet-Lite0), or 'random' (benchmarks only). "
        f"Default: {DEFAULT_CLIP_PRETRAINED[DEFAULT_CLIP_MODEL]} for clip, {DEFAULT_RESNET_WEIGHTS} for resnet50, "
        f"{DEFAULT_TIMM_PRETRAINED[DEFAULT_TIMM_MODEL]} for timm.",
    )
    batch_size: int | None = param(
        None, kind=int, low=1, help=f"Images per batch. Default: {GPU_BATCH_SIZE} on a GPU, {CPU_BATCH_SIZE} on the CPU."
    )
    workers: int | None = param(
        None, kind=int, low=0,
        help="Decoding processes (local engine). Default: cores - 1 beside a GPU; 0 beside a CPU model, where "
        "each batch is decoded by threads of the main process between forward passes, on the cores the model uses.",
    )
    device: str = param("auto", kind="device", help=f"Where the encoder runs: {DEVICES_HELP}.")
    precision: str = param(
        "auto", choices=PRECISIONS,
        help="auto: bf16 (or fp16) autocast on a GPU, fp32 on the CPU. bf16 on the CPU casts model and batch: "
             "2.1-2.5x fp32 end to end for ViT-B-32 on 2 cores with bfloat16 units (AMX, AVX512-BF16), but convolutional "
             "encoders drift more (manifests/FORMATS.md).",
    )
    engine: str = param("local", choices=ENGINES, help="local: this machine's loader; ray: Ray Data.")
    actors: int | None = param(
        None, kind=int, low=1, help="Model actors for --engine ray. Default: one per GPU, or 1 on the CPU."
    )
    shard_size: int = param(DEFAULT_SHARD_SIZE, low=1, help="Samples per output shard (sorted by sample_id).")
    max_rejects: int = param(1000, low=0, help="Fail once more images than this cannot be read.")
    max_pixels: int = param(DEFAULT_MAX_PIXELS, low=1, help="Refuse images above this many pixels.")

    def __post_init__(self) -> None:
        check_device(self.device)
        check_fields(self)

    def resolved_batch_size(self, device_type: str) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return GPU_BATCH_SIZE if device_type == "cuda" else CPU_BATCH_SIZE

    def resolved_workers(self, device_type: str) -> int:
        """Decoding processes: all cores but one beside a GPU. None beside a CPU model: its threads
        use every core, and a process decoding beside them stalls them; the main process decodes each
        batch on those cores between forward passes instead (see :mod:`curate.embed.reader`)."""
        if self.workers is not None:
            return self.workers
        if device_type == "cuda":
            return max(1, min(32, (os.cpu_count() or 1) - 1))
        return 0
