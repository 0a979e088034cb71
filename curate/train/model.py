"""Models of the reference trainer: a torchvision backbone + linear head, or a small regressor on
precomputed embeddings (``--head-only``).

Both expose ``features(x)`` (the penultimate features, which online DRCDown groups) and ``head``;
``forward(x)`` is the predicted score on 0-10, shape [batch].
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from curate.errors import CurateError
from curate.train.config import ARCHS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageRegressor(nn.Module):
    """``backbone`` (uint8 or float images -> pooled features [B, feat_dim]) + ``Linear(feat_dim, 1)``.

    Takes uint8 [B, 3, H, W] in 0-255 and normalises with ImageNet statistics inside, so that the
    loader moves a quarter of the bytes and the arithmetic runs on the device.
    """

    def __init__(self, backbone: nn.Module, feat_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feat_dim, 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0, persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() - self.mean) / self.std
        return torch.flatten(self.backbone(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)


class EmbeddingRegressor(nn.Module):
    """A small regressor on embeddings [B, dim]: linear (``hidden=0``) or one hidden ReLU layer."""

    def __init__(self, dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.trunk: nn.Module = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU()) if hidden else nn.Identity()
        self.head = nn.Linear(hidden or dim, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)


def imagenet_cache_file(arch: str) -> Path:
    """Where torchvision keeps its ImageNet (V1) weights for ``arch`` once downloaded."""
    import torchvision

    weights = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def load_state_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a torch file loaded with ``weights_only=True`` (no pickle)."""
    p = Path(path)
    if not p.is_file():
        raise CurateError(f"--weights {path}: no such file")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # any decoding failure is the file's fault
        raise CurateError(f"--weights {path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CurateError(f"--weights {path}: expected a state dict of tensors")
    return state


def build_backbone(arch: str, weights: str) -> tuple[nn.Module, int]:
    """A torchvision ResNet without its classifier, pooled output [B, feat_dim], and feat_dim.

    ``weights``: ``imagenet`` (torchvision's cached file; never downloaded here), ``none`` (random
    init) or a file (a torchvision state dict, or a curate ``model.safetensors``).
    """
    import torchvision

    if arch not in ARCHS:
        raise CurateError(f"--arch {arch!r}: choose one of {', '.join(ARCHS)}")
    net = torchvision.models.get_model(arch, weights=None)
    feat_dim = int(net.fc.in_features)
    if weights == "imagenet":
        cached = imagenet_cache_file(arch)
        if not cached.is_file():
            raise CurateError(
                f"--weights imagenet: torchvision's {arch} ImageNet weights are not in its cache ({cached}); "
                f"copy that file there, or pass --weights FILE (a torchvision state dict) or --weights none"
            )
        weights = str(cached)
    if weights != "none":
        state = load_state_file(weights)
        if any(k.startswith("backbone.") for k in state):  # a curate model file
            state = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        try:
            missing, unexpected = net.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shape mismatches
            first = str(exc).split("size mismatch for ", 1)[-1].split("\n", 1)[0]
            raise CurateError(f"--weights {weights}: does not fit {arch} (size mismatch for {first})") from None
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise CurateError(
                f"--weights {weights}: does not fit {arch} "
                f"(missing {missing[:3]}, unexpected {list(unexpected)[:3]})"
            )
    net.fc = nn.Identity()
    return net, feat_dim


def build_image_model(arch: str = "resnet50", weights: str = "imagenet") -> ImageRegressor:
    backbone, feat_dim = build_backbone(arch, weights)
    return ImageRegressor(backbone, feat_dim)
