"""Where work runs: one grammar for ``--device`` in every verb, and the torch device it names.

``auto`` (CUDA when this machine has it, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from curate.errors import CurateError, ParamError

if TYPE_CHECKING:
    import torch

DEVICE_GRAMMAR = re.compile(r"auto|cpu|cuda(:\d+)?")
DEVICES_HELP = "auto, cpu, cuda or cuda:N"


def check_device(device: str, *, option: str = "--device") -> str:
    """Return ``device`` when it is auto, cpu, cuda or cuda:N; else raise :class:`ParamError`."""
    if not isinstance(device, str) or not DEVICE_GRAMMAR.fullmatch(device):
        raise ParamError(f"{option} {device}: expected {DEVICES_HELP}")
    return device


def pick_device(device: str = "auto") -> torch.device:
    """The torch device ``device`` names; ``auto`` picks CUDA when available. CUDA without a GPU is refused."""
    import torch

    check_device(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CurateError(f"--device {device}: CUDA is not available on this machine (use auto or cpu)")
    return torch.device(device)
