"""Batches -> embeddings: the encoder on its device, normalisation on the device, reduced precision
where the hardware has it.

The mapper takes uint8 ``[B, 3, S, S]`` batches (from the reader), moves them to the device
(non-blocking from pinned memory), scales and normalises them there, runs the encoder under
``torch.inference_mode`` (channels-last for convolutional encoders) and returns float32 ``[B, D]``
L2-normalised embeddings. Reduced precision: fp16/bf16 autocast on a GPU; bf16 on the CPU by
casting the model and the batch (CPU autocast converts every weight on every call and runs slower
than float32). The result stays on the device until asked for, so the next batch can be queued
before the previous one is copied back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from curate.devices import pick_device
from curate.embed.config import PRECISIONS
from curate.embed.encoders import Encoder
from curate.errors import CurateError

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on GPUs that support it, else fp16; fp32 on the CPU. ``bf16`` on the CPU
    casts the model and each batch (fastest where the CPU has bfloat16 matrix units).

    Why not bf16 by default on the CPU: casting the whole model is not autocast's mixed precision
    (which keeps normalisation and accumulations in float32). Measured here (2 AVX512-BF16 cores):
    ViT-B-32's forward pass runs 1.9-3x faster than in fp32 (its matrix products about 3x) with
    features within cosine 0.9999 of the fp32 ones, but the packaged
    EfficientNet-Lite0 (depthwise convolutions, folded batch norm) drifts to cosine 0.93 on some
    demo images (mean 0.991), enough to flip one of the demo's fifteen DDCUp decisions. A default
    that changes the results with the encoder is not one to make silently; ``--precision bf16`` is
    the documented opt-in. Each shard records the precision it was computed in (the encoder
    identity leaves it out, so a resume may continue in another precision).
    """
    if precision not in PRECISIONS:
        raise CurateError(f"--precision {precision}: use one of {', '.join(PRECISIONS)}")
    if device.type != "cuda":
        if precision == "fp16":
            raise CurateError("--precision fp16 needs a GPU (use fp32 or bf16 on the CPU)")
        return "fp32" if precision == "auto" else precision
    if precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return precision


def device_description(device: torch.device, precision: str, mode: str | None = None) -> dict[str, Any]:
    """Where the embeddings were computed (recorded beside, never inside, the encoder identity).

    ``mode``: how a reduced precision ran, ``autocast`` (GPU) or ``cast`` (model and batch, CPU).
    """
    info: dict[str, Any] = {"type": device.type, "precision": precision, "torch": torch.__version__}
    if mode is not None:
        info["mode"] = mode
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
    return info


class Mapper:
    """Run ``encoder`` on ``device`` with ``precision``; ``mapper(uint8 batch)`` -> device tensor.

    The mapper takes over ``encoder.module``: it moves it to the device and, for bf16 on the CPU,
    casts its weights in place (no second copy of a large model). Load the encoder again for
    another mapper.
    """

    def __init__(self, encoder: Encoder, device: str | torch.device = "auto", precision: str = "auto") -> None:
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.encoder = encoder
        self.dim = encoder.dim
        module = encoder.module.to(self.device).eval()
        # On the CPU a reduced precision means casting the weights (and each batch) once: only for
        # encoders with weights; a weight-free one computes its statistics in float32 regardless.
        self.cast_dtype: torch.dtype | None = None
        if self.device.type != "cuda" and self.precision in _DTYPES:
            if any(p.is_floating_point() for p in module.parameters()):
                self.cast_dtype = _DTYPES[self.precision]
            else:
                self.precision = "fp32"
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels
        # channels-last speeds up convolutions (cuDNN, oneDNN); transformers gain nothing from it.
        self.memory_format = torch.channels_last if encoder.channels_last else torch.contiguous_format
        if encoder.channels_last:
            module = module.to(memory_format=torch.channels_last)
        if self.cast_dtype is not None:
            module = module.to(self.cast_dtype)
        self.module = module
        pp = encoder.preprocessing
        # (x / 255 - mean) / std == x * scale + shift, one fused multiply-add on the device.
        std = torch.tensor(pp.std, dtype=torch.float32)
        mean = torch.tensor(pp.mean, dtype=torch.float32)
        self.scale = (1.0 / (255.0 * std)).view(1, 3, 1, 1).to(self.device)
        self.shift = (-mean / std).view(1, 3, 1, 1).to(self.device)

    def describe(self) -> dict[str, Any]:
        mode = None
        if self.precision in _DTYPES:
            mode = "cast" if self.cast_dtype is not None else "autocast"
        return device_description(self.device, self.precision, mode)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, 3, S, S]`` -> float32 ``[B, D]`` L2-normalised, on the device (asynchronous)."""
        x = images.to(self.device, non_blocking=True)
        x = torch.addcmul(self.shift, x.float(), self.scale)
        x = x.contiguous(memory_format=self.memory_format)
        if self.cast_dtype is not None:
            features = self.module(x.to(self.cast_dtype))
        elif self.precision in _DTYPES:
            with torch.autocast(device_type=self.device.type, dtype=_DTYPES[self.precision]):
                features = self.module(x)
        else:
            features = self.module(x)
        return F.normalize(features.float(), dim=-1, eps=1e-12)

    @staticmethod
    def to_numpy(embeddings: torch.Tensor) -> np.ndarray:
        return embeddings.detach().to("cpu").numpy().astype(np.float32, copy=False)
