"""The encoder registry: a name -> a vision model, its preprocessing, and its full provenance.

Encoders:

* ``clip`` (default): an open_clip image tower; default ``ViT-B-32`` with ``laion2b_s34b_b79k``.
  Weights come from a pretrained tag (found in open_clip's / the Hugging Face cache, downloaded only
  when the hub is reachable), a bare weights file, or ``local-dir:DIR`` (``open_clip_config.json``
  plus weights, which also carries the preprocessing), or ``random`` (seeded random init, for
  benchmarks only).
* ``resnet50``: torchvision's ImageNet ResNet-50; the 2048-d globally pooled feature before the
  classifier; 224 centre crop of the image resized to 256 (V1) / 232 (V2), ImageNet normalisation.
* ``timm``: any timm image model (``--model NAME``, a timm registry name, optionally ``NAME.TAG``);
  the pooled features before the classifier (``num_classes=0``), preprocessing from the model's
  pretrained config (input size, crop_pct, crop mode, interpolation, mean/std). Weights: ``package``
  (the packaged ImageNet EfficientNet-Lite0, installed from the package index, for the default
  ``tf_efficientnet_lite0``; see :mod:`curate.embed.weights`), a state dict FILE in timm's naming,
  ``local-dir:DIR`` (timm's own folder layout: ``config.json`` naming the architecture and its
  pretrained config, plus ``model.safetensors`` or ``pytorch_model.bin``; what
  ``timm.models.save_for_hf`` writes and a timm hub snapshot holds) or ``random``.
* ``imagestats``: weight-free colour and texture statistics (see :mod:`curate.embed.imagestats`).

An :class:`EncoderSpec` is the small, picklable request (name, model, pretrained); ``spec.load()``
returns an :class:`Encoder`, whose ``identity`` is what embeddings metadata records under
``encoder``. The identity holds only what determines the vectors (model, weights sha256,
preprocessing, activation) and nothing volatile (device, paths, batch size), so a run may resume on
another machine, but never mix two encoders in one folder.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.embed.preprocess import Preprocessing
from curate.embed.weights import (
    PACKAGED_LITE0_DISTRIBUTION,
    cached_hf_file,
    check_weights_file,
    existing_file,
    packaged_lite0_state,
    read_state_dict,
    require_download_possible,
    weights_sha256,
)
from curate.errors import CurateError, WeightsUnavailable

DEFAULT_ENCODER = "clip"
DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = {"ViT-B-32": "laion2b_s34b_b79k"}
DEFAULT_RESNET_WEIGHTS = "IMAGENET1K_V1"
DEFAULT_TIMM_MODEL = "tf_efficientnet_lite0"
PACKAGED_WEIGHTS = "package"
DEFAULT_TIMM_PRETRAINED = {DEFAULT_TIMM_MODEL: PACKAGED_WEIGHTS}
TIMM_LOCAL_DIR_CONFIG = "config.json"
TIMM_LOCAL_DIR_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
RANDOM_WEIGHTS = "random"
RANDOM_SEED = 0
LOCAL_DIR_PREFIX = "local-dir:"

_HOW_TO_SUPPLY_CLIP = (
    "Supply local weights: --pretrained /path/to/weights.safetensors|.bin|.pt (a state dict for "
    "--model), or --pretrained local-dir:DIR (a folder with open_clip_config.json and the weights), "
    "or copy the hub cache from a machine that has it (HF_HOME)."
)


@dataclass
class Encoder:
    """A loaded encoder.

    ``module`` maps a float32 batch ``[B, 3, size, size]`` (already normalised with
    ``preprocessing.mean``/``std``) to features ``[B, dim]`` (not yet L2-normalised).
    """

    name: str
    module: Any  # torch.nn.Module
    preprocessing: Preprocessing
    dim: int
    identity: dict[str, Any]
    channels_last: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EncoderSpec:
    """What to load: registry ``name``, ``model`` (clip and timm) and ``pretrained`` source. Picklable."""

    name: str = DEFAULT_ENCODER
    model: str | None = None
    pretrained: str | None = None

    def resolved(self) -> EncoderSpec:
        """The spec with defaults filled in; unknown names and misplaced options refused."""
        if self.name not in ENCODERS:
            raise CurateError(f"--encoder {self.name!r} is not known (choose from {', '.join(ENCODERS)})")
        if self.name == "clip":
            model = self.model or DEFAULT_CLIP_MODEL
            pretrained = self.pretrained
            if not pretrained:
                pretrained = DEFAULT_CLIP_PRETRAINED.get(model)
                if pretrained is None:
                    raise CurateError(
                        f"--model {model}: no default weights; give --pretrained TAG|FILE|local-dir:DIR"
                    )
            return EncoderSpec("clip", model, pretrained)
        if self.name == "timm":
            if self.pretrained and self.pretrained.startswith(LOCAL_DIR_PREFIX):
                return EncoderSpec("timm", self.model, self.pretrained)  # the folder names the model
            model = self.model or DEFAULT_TIMM_MODEL
            pretrained = self.pretrained or DEFAULT_TIMM_PRETRAINED.get(model)
            if pretrained is None:
                raise CurateError(
                    f"--model {model}: no default weights (--pretrained {PACKAGED_WEIGHTS} fits {DEFAULT_TIMM_MODEL}); "
                    "give --pretrained FILE|local-dir:DIR"
                )
            return EncoderSpec("timm", model, pretrained)
        if self.model is not None:
            raise CurateError(f"--model applies to --encoder clip and timm only, not {self.name}")
        if self.name == "resnet50":
            return EncoderSpec("resnet50", None, self.pretrained or DEFAULT_RESNET_WEIGHTS)
        if self.pretrained:
            raise CurateError(f"--encoder {self.name} uses no weights; drop --pretrained")
        return EncoderSpec(self.name, None, None)

    def load(self) -> Encoder:
        spec = self.resolved()
        encoder = ENCODERS[spec.name](spec)
        for note in encoder.notes:
            warnings.warn(note, UserWarning, stacklevel=2)
        return encoder


# --------------------------------------------------------------------------------------------
# clip (open_clip)


def _clip_activation(model: Any) -> str:
    from open_clip.transformer import QuickGELU

    return "quick_gelu" if any(isinstance(m, QuickGELU) for m in model.modules()) else "gelu"


def _clip_preprocessing(model: Any, where: str) -> Preprocessing:
    import open_clip

    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg.get("size", 224)
    if isinstance(size, (tuple, list)):
        if len(set(size)) != 1:
            raise CurateError(f"{where}: non-square input size {tuple(size)} is not supported")
        size = size[0]
    resize_mode = cfg.get("resize_mode", "shortest")
    interpolation = cfg.get("interpolation", "bicubic")
    if interpolation == "random":  # open_clip uses bicubic for evaluation in that case
        interpolation = "bicubic"
    try:
        return Preprocessing(
            size=int(size),
            resize=int(size),
            resize_mode=resize_mode,
            interpolation=interpolation,
            mean=tuple(float(v) for v in cfg["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in cfg["std"]),  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise CurateError(f"{where}: {exc}") from None


def _cached_tag_file(tag_cfg: dict[str, Any]) -> Path | None:
    """The weights file for an open_clip pretrained tag if it is already on disk (no network)."""
    hub = tag_cfg.get("hf_hub", "")
    if hub:
        repo_id, filename = os.path.split(hub)
        names = []
        if not filename or filename == "open_clip_pytorch_model.bin":
            names = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        else:
            if filename.endswith((".bin", ".pth")):
                names.append(filename[:-4] + ".safetensors")
            names.append(filename)
        found = cached_hf_file(repo_id, names)
        if found is not None:
            return found
    url = tag_cfg.get("url", "")
    if url:
        candidate = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if candidate.is_file():
            return candidate
    return None


def _load_clip(spec: EncoderSpec) -> Encoder:
    import open_clip
    import torch

    model_name, pretrained = spec.model, spec.pretrained
    assert model_name is not None and pretrained is not None
    what = f"--encoder clip --model {model_name} --pretrained {pretrained}"
    notes: list[str] = []
    logging_quiet = _quiet_open_clip_logging()
    try:
        if pretrained.startswith(LOCAL_DIR_PREFIX):
            model, weights, model_label = _clip_from_local_dir(pretrained, what)
        elif pretrained == RANDOM_WEIGHTS:
            if model_name not in open_clip.list_models():
                raise CurateError(f"--model {model_name}: not an open_clip model config")
            torch.manual_seed(RANDOM_SEED)
            model = open_clip.create_model(model_name, pretrained=None)
            weights = {"kind": "random", "seed": RANDOM_SEED}
            model_label = model_name
            notes.append(f"{what}: RANDOM weights (seed {RANDOM_SEED}); embeddings are meaningless for curation")
        elif Path(pretrained).expanduser().is_file():
            path = existing_file(pretrained, what)
            check_weights_file(path, what)
            model = _create_clip(model_name, str(path), what)
            weights = {"kind": "file", "file": path.name, "sha256": weights_sha256(path)}
            model_label = model_name
            activation = _clip_activation(model)
            notes.append(
                f"{what}: a bare weights file does not record its activation or preprocessing; used "
                f"the {model_name} config ({activation}) and open_clip's default preprocessing. "
                f"OpenAI CLIP weights need QuickGELU (--model {model_name.removesuffix('-quickgelu')}-quickgelu); "
                "a local-dir: folder with open_clip_config.json records both."
            )
        else:
            model, weights, model_label = _clip_from_tag(model_name, pretrained, what)
    finally:
        logging_quiet()
    preprocessing = _clip_preprocessing(model, what)
    activation = _clip_activation(model)
    visual = model.visual
    visual.eval()
    dim = int(getattr(visual, "output_dim", 0) or 0)
    if not dim:
        with torch.inference_mode():
            dim = int(visual(torch.zeros(1, 3, preprocessing.size, preprocessing.size)).shape[-1])
    activation_note = {
        "name": activation,
        "source": "model config (assumed: a bare weights file does not record it)"
        if weights["kind"] == "file"
        else "model config" if weights["kind"] in ("random", "local-dir") else "pretrained tag",
    }
    identity = {
        "name": "clip",
        "library": "open_clip",
        "model": model_label,
        "weights": weights,
        "preprocessing": preprocessing.to_meta(),
        "preprocessing_source": "open_clip defaults (assumed)" if weights["kind"] == "file" else "model/tag config",
        "activation": activation_note,
        "output": "image tower projection",
    }
    return Encoder("clip", visual, preprocessing, dim, identity, channels_last=False, notes=notes)


def _create_clip(model_name: str, checkpoint: str | None, what: str, **kwargs: Any) -> Any:
    import open_clip

    if model_name not in open_clip.list_models():
        raise CurateError(f"--model {model_name}: not an open_clip model config (see open_clip.list_models())")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # our own checks replace open_clip's warnings
            return open_clip.create_model(model_name, pretrained=checkpoint, weights_only=True, **kwargs)
    except (RuntimeError, ValueError, KeyError, OSError, AssertionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CurateError(f"{what}: cannot load these weights into {model_name} ({first[:300]})") from None


def _clip_from_local_dir(pretrained: str, what: str) -> tuple[Any, dict[str, Any], str]:
    import open_clip

    folder = Path(pretrained[len(LOCAL_DIR_PREFIX) :]).expanduser()
    config = folder / "open_clip_config.json"
    if not folder.is_dir():
        raise CurateError(f"{what}: folder {folder} does not exist")
    if not config.is_file():
        raise CurateError(f"{what}: {config} is missing (a local-dir: folder needs open_clip_config.json + weights)")
    try:
        cfg = json.loads(config.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CurateError(f"{config}: not valid JSON ({exc})") from None
    if "model_cfg" not in cfg:
        raise CurateError(f"{config}: has no 'model_cfg'")
    from open_clip.factory import _find_checkpoint_in_dir

    checkpoint = _find_checkpoint_in_dir(folder)
    if checkpoint is None:
        raise CurateError(f"{what}: no weights (*.safetensors, *.bin, *.pth) in {folder}")
    check_weights_file(checkpoint, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model = open_clip.create_model(LOCAL_DIR_PREFIX + str(folder), weights_only=True)
    except (RuntimeError, ValueError, KeyError, OSError, AssertionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CurateError(f"{what}: cannot load {checkpoint} ({first[:300]})") from None
    weights = {
        "kind": "local-dir",
        "file": Path(checkpoint).name,
        "sha256": weights_sha256(checkpoint),
        "config_sha256": weights_sha256(config),
    }
    label = str(cfg.get("model_name") or "custom (open_clip_config.json)")
    return model, weights, label


def _clip_from_tag(model_name: str, tag: str, what: str) -> tuple[Any, dict[str, Any], str]:
    import open_clip

    if model_name not in open_clip.list_models():
        raise CurateError(f"--model {model_name}: not an open_clip model config (see open_clip.list_models())")
    tag_cfg = open_clip.get_pretrained_cfg(model_name, tag)
    base_name = model_name.removesuffix("-quickgelu")
    if not tag_cfg and base_name != model_name:
        base_cfg = open_clip.get_pretrained_cfg(base_name, tag)
        if base_cfg and not base_cfg.get("quick_gelu", False):
            raise CurateError(
                f"{what}: tag {tag} was trained with GELU, but {model_name} uses QuickGELU; use --model {base_name}"
            )
    if not tag_cfg:
        known = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
        raise CurateError(
            f"{what}: neither an existing file, a local-dir: folder nor a known tag for {model_name} "
            f"(known tags: {known})"
        )
    # open_clip only warns when a tag's activation differs from the config's; force the tag's.
    tag_quick_gelu = bool(tag_cfg.get("quick_gelu", False))
    if base_name != model_name and not tag_quick_gelu:
        raise CurateError(f"{what}: tag {tag} was trained with GELU, but {model_name} uses QuickGELU")
    path = _cached_tag_file(tag_cfg)
    if path is None:
        source = tag_cfg.get("hf_hub") or tag_cfg.get("url")
        url = tag_cfg.get("url") if not tag_cfg.get("hf_hub") else os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        require_download_possible(f"{what} ({source})", str(url), _HOW_TO_SUPPLY_CLIP)
        try:
            path = Path(open_clip.download_pretrained(tag_cfg))
        except Exception as exc:  # network failures come in many types
            raise WeightsUnavailable(f"{what}: download failed ({exc}). {_HOW_TO_SUPPLY_CLIP}") from None
    check_weights_file(path, what)
    preprocess = {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg}
    model = _create_clip(
        model_name,
        str(path),
        what,
        force_quick_gelu=tag_quick_gelu,
        force_preprocess_cfg=preprocess,
    )
    weights = {
        "kind": "tag",
        "tag": tag,
        "source": tag_cfg.get("hf_hub") or tag_cfg.get("url"),
        "file": path.name,
        "sha256": weights_sha256(path),
    }
    return model, weights, model_name


def _quiet_open_clip_logging() -> Callable[[], None]:
    """open_clip logs every loading step at INFO/WARNING on the root logger; keep the terminal clean."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    return lambda: root.setLevel(level)


# --------------------------------------------------------------------------------------------
# resnet50 (torchvision)


def _load_resnet50(spec: EncoderSpec) -> Encoder:
    import torch
    import torchvision

    pretrained = spec.pretrained
    assert pretrained is not None
    what = f"--encoder resnet50 --pretrained {pretrained}"
    model = torchvision.models.resnet50(weights=None)
    notes: list[str] = []
    tags = [w.name for w in torchvision.models.ResNet50_Weights]
    if pretrained == RANDOM_WEIGHTS:
        torch.manual_seed(RANDOM_SEED)
        model = torchvision.models.resnet50(weights=None)
        weights_enum = torchvision.models.ResNet50_Weights[DEFAULT_RESNET_WEIGHTS]
        weights: dict[str, Any] = {"kind": "random", "seed": RANDOM_SEED}
        notes.append(f"{what}: RANDOM weights (seed {RANDOM_SEED}); embeddings are meaningless for curation")
    elif pretrained in tags:
        weights_enum = torchvision.models.ResNet50_Weights[pretrained]
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights_enum.url)
        if not cached.is_file():
            require_download_possible(
                what,
                weights_enum.url,
                f"Supply local weights: --pretrained /path/to/{cached.name} (a torchvision ResNet-50 "
                f"state dict), or place that file in {cached.parent}.",
            )
            weights_enum.get_state_dict(progress=False, check_hash=True)
        state = read_state_dict(cached, what)
        model.load_state_dict(state)
        weights = {"kind": "tag", "tag": pretrained, "source": weights_enum.url, "file": cached.name,
                   "sha256": weights_sha256(cached)}
    elif Path(pretrained).expanduser().is_file():
        path = existing_file(pretrained, what)
        state = read_state_dict(path, what)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise CurateError(f"{what}: not a torchvision ResNet-50 state dict ({str(exc).splitlines()[0][:200]})") from None
        weights_enum = torchvision.models.ResNet50_Weights[DEFAULT_RESNET_WEIGHTS]
        weights = {"kind": "file", "file": path.name, "sha256": weights_sha256(path)}
        notes.append(
            f"{what}: a bare weights file does not record its preprocessing; used the ImageNet "
            f"{DEFAULT_RESNET_WEIGHTS} evaluation transform (resize 256, centre crop 224, bilinear)."
        )
    else:
        raise CurateError(f"{what}: neither an existing file nor a known tag ({', '.join(tags)})")
    transform = weights_enum.transforms()
    preprocessing = Preprocessing(
        size=int(transform.crop_size[0]),
        resize=int(transform.resize_size[0]),
        resize_mode="shortest",
        interpolation=transform.interpolation.value,
        mean=tuple(float(v) for v in transform.mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in transform.std),  # type: ignore[arg-type]
    )
    model.fc = torch.nn.Identity()  # the 2048-d global-average-pooled feature
    model.eval()
    identity = {
        "name": "resnet50",
        "library": "torchvision",
        "model": "resnet50",
        "weights": weights,
        "preprocessing": preprocessing.to_meta(),
        "preprocessing_source": "ImageNet V1 evaluation transform (assumed)" if weights["kind"] == "file"
        else "torchvision weights transform",
        "activation": {"name": "relu", "source": "architecture"},
        "output": "global average pool (2048-d, before fc)",
    }
    return Encoder("resnet50", model, preprocessing, 2048, identity, channels_last=True, notes=notes)


# --------------------------------------------------------------------------------------------
# timm


def _timm_architecture(model_name: str, what: str) -> str:
    """The registry architecture of ``NAME`` or ``NAME.TAG``; unknown names refused with close matches."""
    import timm
    from timm.models import split_model_name_tag

    if any(c in model_name for c in "/\\:"):
        raise CurateError(
            f"--model {model_name}: give a timm model name; a model folder goes in --pretrained local-dir:DIR"
        )
    architecture, tag = split_model_name_tag(model_name)
    if not timm.is_model(architecture):
        close = difflib.get_close_matches(architecture, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models()"
        raise CurateError(f"--model {model_name}: not a timm model ({hint})")
    if tag:
        tags = [name.split(".", 1)[1] for name in timm.list_pretrained(f"{architecture}.*")]
        if tag not in tags:
            raise CurateError(
                f"--model {model_name}: {architecture} has no pretrained config {tag!r} "
                f"(known: {', '.join(tags) or 'none'})"
            )
    return architecture


def _create_timm(model_name: str, what: str, **kwargs: Any) -> Any:
    import timm

    try:
        return timm.create_model(model_name, pretrained=False, **kwargs)
    except (RuntimeError, ValueError, KeyError, OSError, AssertionError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CurateError(f"{what}: timm cannot build {model_name} ({first[:300]})") from None


def _load_timm_state(model: Any, state: dict[str, Any], what: str, file: Path, model_label: str) -> None:
    """Load ``state`` into ``model`` strictly; any misfit is one line naming the file and the first misfit."""
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    other_shape = [k for k in target if k in state and tuple(state[k].shape) != tuple(target[k].shape)]
    if missing or unexpected or other_shape:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of the model's tensors missing, first {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected, first {unexpected[0]}")
        if other_shape:
            k = other_shape[0]
            parts.append(
                f"{len(other_shape)} of another shape, first {k} {list(state[k].shape)} vs {list(target[k].shape)}"
            )
        raise CurateError(f"{what}: {file} is not a state dict for timm model {model_label} ({'; '.join(parts)})")
    model.load_state_dict(state, strict=True)


def _timm_from_local_dir(spec: EncoderSpec, what: str) -> tuple[Any, dict[str, Any], str]:
    assert spec.pretrained is not None
    folder = Path(spec.pretrained[len(LOCAL_DIR_PREFIX) :]).expanduser()
    config = folder / TIMM_LOCAL_DIR_CONFIG
    if not folder.is_dir():
        raise CurateError(f"{what}: folder {folder} does not exist")
    if not config.is_file():
        raise CurateError(
            f"{what}: {config} is missing (a timm local-dir: folder holds config.json + "
            f"{' or '.join(TIMM_LOCAL_DIR_WEIGHTS)})"
        )
    try:
        cfg = json.loads(config.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CurateError(f"{config}: not valid JSON ({exc})") from None
    architecture = cfg.get("architecture") if isinstance(cfg, dict) else None
    if not isinstance(architecture, str):
        raise CurateError(f"{config}: has no 'architecture' (timm's config.json names the model)")
    architecture = _timm_architecture(architecture, what)
    if spec.model is not None and _timm_architecture(spec.model, what) != architecture:
        raise CurateError(f"{what}: --model {spec.model} disagrees with {config} ({architecture}); drop --model")
    found = [folder / name for name in TIMM_LOCAL_DIR_WEIGHTS if (folder / name).is_file()]
    if not found:
        raise CurateError(f"{what}: no {' or '.join(TIMM_LOCAL_DIR_WEIGHTS)} in {folder}")
    state = read_state_dict(found[0], what)
    model = _create_timm(LOCAL_DIR_PREFIX + str(folder), what)  # timm reads config.json
    _load_timm_state(model, state, what, found[0], architecture)
    weights = {
        "kind": "local-dir",
        "file": found[0].name,
        "sha256": weights_sha256(found[0]),
        "config_sha256": weights_sha256(config),
    }
    return model, weights, f"{TIMM_LOCAL_DIR_CONFIG} of the local-dir folder"


def _timm_what(spec: EncoderSpec) -> str:
    model = f" --model {spec.model}" if spec.model else ""
    return f"--encoder timm{model} --pretrained {spec.pretrained}"


def build_timm_model(spec: EncoderSpec) -> tuple[Any, dict[str, Any], str, list[str]]:
    """The timm model of a ``timm`` spec with its weights, classifier included when the weights have one.

    Returns ``(model, weights, preprocessing_source, notes)``: ``weights`` is the provenance recorded
    in the encoder identity. The model's ``pretrained_cfg`` carries its preprocessing.
    """
    import torch
    from timm.models import get_pretrained_cfg

    spec = spec.resolved()
    pretrained = spec.pretrained
    assert spec.name == "timm" and pretrained is not None
    what = _timm_what(spec)
    if pretrained.startswith(LOCAL_DIR_PREFIX):
        model, weights, source = _timm_from_local_dir(spec, what)
        return model, weights, source, []
    model_name = spec.model
    assert model_name is not None
    architecture = _timm_architecture(model_name, what)
    if pretrained == PACKAGED_WEIGHTS:
        if architecture != DEFAULT_TIMM_MODEL:
            raise CurateError(
                f"{what}: the packaged weights are TensorFlow's EfficientNet-Lite0 (\"same\" padding, BatchNorm "
                f"eps 1e-3, inputs scaled to [-1, 1]) and fit --model {DEFAULT_TIMM_MODEL} only"
            )
        model = _create_timm(model_name, what)
        state, path = packaged_lite0_state({k: tuple(v.shape) for k, v in model.state_dict().items()}, what)
        _load_timm_state(model, state, what, path, architecture)
        weights = {"kind": "package", "package": PACKAGED_LITE0_DISTRIBUTION, "file": path.name,
                   "sha256": weights_sha256(path)}
        return model, weights, f"timm pretrained config of {model_name}", []
    if pretrained == RANDOM_WEIGHTS:
        torch.manual_seed(RANDOM_SEED)
        model = _create_timm(model_name, what, num_classes=0)
        note = f"{what}: RANDOM weights (seed {RANDOM_SEED}); embeddings are meaningless for curation"
        return model, {"kind": "random", "seed": RANDOM_SEED}, f"timm pretrained config of {model_name}", [note]
    if not Path(pretrained).expanduser().is_file():
        raise CurateError(
            f"{what}: neither an existing file, a local-dir: folder, '{PACKAGED_WEIGHTS}' nor '{RANDOM_WEIGHTS}'"
        )
    path = existing_file(pretrained, what)
    state = read_state_dict(path, what)
    # Build the head the file has (none for a feature-only state dict), so the load stays strict.
    cfg = get_pretrained_cfg(model_name)
    heads = cfg.classifier if cfg is not None and cfg.classifier else ()
    head = (heads,) if isinstance(heads, str) else tuple(heads)
    classes = next((int(state[f"{h}.weight"].shape[0]) for h in head if f"{h}.weight" in state), 0)
    model = _create_timm(model_name, what, num_classes=classes)
    _load_timm_state(model, state, what, path, architecture)
    note = (
        f"{what}: a bare weights file does not record its preprocessing; used timm's pretrained config "
        f"of {model_name}. A local-dir: folder with timm's config.json records it."
    )
    weights = {"kind": "file", "file": path.name, "sha256": weights_sha256(path)}
    return model, weights, f"timm pretrained config of {model_name} (assumed)", [note]


def _timm_preprocessing(model: Any, what: str) -> Preprocessing:
    """timm's evaluation transform (``resolve_model_data_config``) as a :class:`Preprocessing`.

    timm resizes to ``floor(size / crop_pct)`` (the shorter side for ``crop_mode='center'``, both
    sides for ``'squash'``) and takes the centre ``size`` crop.
    """
    from timm.data import DEFAULT_CROP_PCT, resolve_model_data_config

    cfg = resolve_model_data_config(model)
    _, height, width = cfg["input_size"]
    if height != width:
        raise CurateError(f"{what}: non-square input size {height}x{width} is not supported")
    crop_mode = cfg.get("crop_mode") or "center"
    modes = {"center": "shortest", "squash": "squash"}
    if crop_mode not in modes:
        raise CurateError(f"{what}: timm crop_mode {crop_mode!r} is not supported (center or squash)")
    crop_pct = float(cfg.get("crop_pct") or DEFAULT_CROP_PCT)
    try:
        return Preprocessing(
            size=int(height),
            resize=math.floor(height / crop_pct),
            resize_mode=modes[crop_mode],
            interpolation=str(cfg.get("interpolation", "bicubic")),
            mean=tuple(float(v) for v in cfg["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in cfg["std"]),  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise CurateError(f"{what}: {exc}") from None


def _load_timm(spec: EncoderSpec) -> Encoder:
    import torch

    model, weights, preprocessing_source, notes = build_timm_model(spec)
    preprocessing = _timm_preprocessing(model, _timm_what(spec.resolved()))
    architecture = str(model.pretrained_cfg.get("architecture") or spec.model)
    model.reset_classifier(0)  # the pooled features, exactly as create_model(num_classes=0) gives them
    model.eval()
    dim = int(getattr(model, "head_hidden_size", None) or model.num_features)
    identity = {
        "name": "timm",
        "library": "timm",
        "model": architecture,
        "weights": weights,
        "preprocessing": preprocessing.to_meta(),
        "preprocessing_source": preprocessing_source,
        "output": f"pooled features before the classifier (num_classes=0, {dim}-d)",
    }
    # channels-last speeds up convolutional networks; a transformer has one conv (its patch embedding).
    convolutional = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) > 1
    return Encoder("timm", model, preprocessing, dim, identity, channels_last=convolutional, notes=notes)


# --------------------------------------------------------------------------------------------


def _load_imagestats(spec: EncoderSpec) -> Encoder:
    from curate.embed.imagestats import ImageStats, imagestats_identity, imagestats_preprocessing

    module = ImageStats()
    preprocessing = imagestats_preprocessing()
    return Encoder("imagestats", module.eval(), preprocessing, module.dim, imagestats_identity(preprocessing),
                   channels_last=False)


ENCODERS: dict[str, Callable[[EncoderSpec], Encoder]] = {
    "clip": _load_clip,
    "resnet50": _load_resnet50,
    "timm": _load_timm,
    "imagestats": _load_imagestats,
}
