"""The settings of a training run: the single statement of their defaults, ranges and choices.

:class:`TrainConfig`'s defaults reproduce the paper's protocol (METHOD.md); the command line
builds its options from the same declarations. This module imports nothing heavy, so the command
line can read it when it starts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curate.devices import DEVICES_HELP, check_device
from curate.params import check_fields, param, set_field
from curate.reshape.params import DRCParams

ARCHS = ("resnet50", "resnet18", "resnet34")
IMAGE_LR = 2e-5  # the paper's backbone learning rate
HEAD_ONLY_LR = 1e-3


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run; defaults reproduce the paper's protocol (image mode).

    ``redundancy``: DRCDown thresholds given for ``online_drc``; the others come from the
    manifest's recorded params, else the paper's (:func:`~curate.reshape.params.resolve_drc`).
    """

    epochs: int = param(24, low=1, help="Training epochs.")
    batch_size: int = param(32, low=2, help="Batch size (at least 2: batch normalisation).")
    lr: float | None = param(
        None, kind=float, low=0.0, low_open=True,
        help=f"Backbone learning rate (head 10x). Default: {IMAGE_LR:g}; {HEAD_ONLY_LR:g} with --head-only.",
    )
    head_lr_mult: float = param(10.0, low=0.0, low_open=True, help="Head learning rate / backbone learning rate.")
    weight_decay: float = param(5e-4, low=0.0, help="Adam weight decay.")
    crop: int = param(224, low=8, help="Crop size (pixels).")
    test_crops: int = param(5, low=1, help="Random crops per test image (mean prediction).")
    seed: int = param(123, help="Seed of the initialisation, batch order, crops and validation split.")
    arch: str = param("resnet50", choices=ARCHS, help="torchvision backbone.")
    weights: str = param("imagenet", help="Backbone weights: imagenet (torchvision's cache), none, or a FILE.")
    online_drc: bool = param(False, help="DRCDown every epoch on the model's own features.")
    redundancy: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    val_fraction: float = param(
        0.0, low=0.0, high=1.0, high_open=True, help="Validation split of the training manifest, by reference content."
    )
    report_test_best: bool = param(False, help="Also report the test-selected epoch (optimistic).")
    head_only: bool = param(False, help="Train a small regressor on precomputed embeddings.")
    hidden: int = param(256, low=1, help="Hidden units of the head-only regressor.")
    device: str = param("auto", kind="device", help=f"Where training runs: {DEVICES_HELP}.")
    workers: int | None = param(
        None, kind=int, low=0, help="Image loader processes. Default: min(8, CPU cores - 1)."
    )
    amp: bool = param(True, help="Mixed precision on a GPU.")
    channels_last: bool = param(True, help="Channels-last memory format on a GPU.")

    def __post_init__(self) -> None:
        set_field(self, "redundancy", DRCParams.given(self.redundancy))
        check_device(self.device)
        check_fields(self)

    def resolved_lr(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return HEAD_ONLY_LR if self.head_only else IMAGE_LR

    def resolved_workers(self) -> int:
        if self.workers is not None:
            return int(self.workers)
        return max(0, min(8, (os.cpu_count() or 1) - 1))
