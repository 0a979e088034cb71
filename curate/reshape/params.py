"""The parameters of a reshape: the single statement of their defaults, ranges and choices.

:class:`DRCParams` (DRCDown's thresholds, shared with ``analyze`` and the trainer's online
DRCDown) and :class:`ReshapeParams` (everything else). The library, the command line and the demo
all build these; a manifest records :meth:`ReshapeParams.as_dict` as its ``params``. This module
imports nothing heavy, so the command line can read it when it starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curate.devices import DEVICES_HELP, check_device
from curate.distort.presets import parse_levels, parse_types
from curate.errors import ParamError
from curate.params import check_fields, param, pick, set_field

# DRCDown (METHOD.md): the paper's thresholds
SIMILARITY_THRESHOLD = 0.9
SCORE_GAP = 1.0
GROUP_CAP = 20
KEEP_FRACTION = 0.5

# DDCUp: pseudo-label weightings, label neighbours, and which candidates are taken
WEIGHTINGS = ("official", "similarity", "uniform")
PSEUDO_NEIGHBOURS = 5
PSEUDO_MARGIN = 0.05
CANDIDATE_MODES = ("ddcup", "all")  # all: every candidate, no selection (an ablation)

DEFAULT_LEVELS = (1, 3, 5)


@dataclass(frozen=True)
class DRCParams:
    """DRCDown's thresholds; the defaults are the paper's. Shared by reshape, analyze and the trainer."""

    similarity_threshold: float = param(
        SIMILARITY_THRESHOLD, low=-1.0, high=1.0,
        help="DRCDown: cosine similarity above which two samples' features count as near-identical.",
    )
    score_gap: float = param(
        SCORE_GAP, low=0.0, low_open=True,
        help="DRCDown: score gap (0-10) below which two near-identical samples are redundant.",
    )
    group_cap: int = param(GROUP_CAP, low=1, help="DRCDown: redundancy groups up to this size are kept whole.")
    keep_fraction: float = param(
        KEEP_FRACTION, low=0.0, high=1.0, low_open=True,
        help="DRCDown: a larger group keeps a random max(cap, floor(size x fraction)).",
    )

    def __post_init__(self) -> None:
        check_fields(self)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> DRCParams:
        """The thresholds recorded in a manifest's ``params`` (absent keys keep their defaults)."""
        return cls(**pick(record, cls))

    @classmethod
    def given(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """The thresholds among ``values`` that are set (not None), each checked against its range;
        an unknown name is refused."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ParamError(f"unknown DRCDown threshold(s) {unknown}; they are {', '.join(names)}")
        given = {k: v for k, v in values.items() if v is not None}
        cls(**given)
        return given


@dataclass(frozen=True)
class ResolvedDRC:
    """DRCDown's thresholds as a step that reads a manifest uses them, and where each came from:
    ``given`` (an option), ``manifest`` (the manifest's recorded params) or ``default``."""

    params: DRCParams
    source: dict[str, str]


def resolve_drc(given: Mapping[str, Any], recorded: Mapping[str, Any] | None) -> ResolvedDRC:
    """DRCDown's thresholds for ``analyze --manifest`` and ``train --online-drc``: each threshold
    ``given`` (not None) wins, then the one the manifest ``recorded`` in its params, then the
    paper's default."""
    given = DRCParams.given(given)
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for name in (f.name for f in dataclasses.fields(DRCParams)):
        if name in given:
            values[name], source[name] = given[name], "given"
        elif recorded is not None and recorded.get(name) is not None:
            values[name], source[name] = recorded[name], "manifest"
        else:
            source[name] = "default"
    return ResolvedDRC(DRCParams(**values), source)


@dataclass(frozen=True)
class ReshapeParams:
    """Every setting of one reshape; the defaults reproduce the paper.

    ``types``/``levels`` take a preset name or a ``"1,3,10"`` string or a tuple; ``types=None``
    means every distortion type of the training corpus. Each stage can be switched off for the
    paper's ablations: ``drc=False`` keeps every original (no DRCDown); no pool means no DDCUp;
    ``candidates="all"`` adds every pool candidate without DDCUp's selection.
    """

    types: tuple[int, ...] | None = param(
        None, kind="types",
        help="Distortion types: a preset (livec, koniq, bid, ...) or a list like 1,3,10. "
        "Default: every type of the corpus.",
    )
    levels: tuple[int, ...] = param(DEFAULT_LEVELS, kind="levels", help="Levels of the DDCUp samples.")
    weighting: str = param(
        "official", choices=WEIGHTINGS, help="Pseudo-label weights: softmax(+d) as released, softmax(-d), or uniform."
    )
    target_size: int | None = param(
        None, kind=int, low=1, help="Exact number of manifest rows. Default: the paper's rule decides."
    )
    seed: int = param(0, help="Seed of DRCDown's subsampling and the target size's tie-breaks.")
    drc: bool = param(True, help="DRCDown; --no-drc keeps every original (an ablation).")
    candidates: str = param(
        "ddcup", choices=CANDIDATE_MODES,
        help="Pool candidates: ddcup (DDCUp's selection) or all (every candidate, an ablation).",
    )
    candidate_order: str | None = param(
        None, kind=str,
        help="A file listing every pool candidate (ref_id, file name or stem), one per line: of two close "
        "candidates DDCUp's thinning drops the one listed first, as the paper's release does with its file "
        "order (curate ingest-refset writes it). Default: the one with the lower sample_id.",
    )
    redundancy: DRCParams = dataclasses.field(default_factory=DRCParams)
    device: str = param("auto", kind="device", help=f"Where the neighbour search runs: {DEVICES_HELP}.")

    def __post_init__(self) -> None:
        if self.types is not None:
            set_field(self, "types", parse_types(self.types))
        set_field(self, "levels", parse_levels(self.levels or DEFAULT_LEVELS))
        set_field(self, "seed", int(self.seed))
        check_device(self.device)
        check_fields(self)
        if self.candidate_order is not None and self.candidates != "ddcup":
            raise ParamError("--candidate-order orders DDCUp's selection; --candidates all selects nothing")

    def with_types(self, types: tuple[int, ...]) -> ReshapeParams:
        return dataclasses.replace(self, types=types)

    def as_dict(self) -> dict[str, Any]:
        """The manifest's ``params``: what decided its rows (not the seed, recorded beside it, nor the device)."""
        return {
            "types": None if self.types is None else list(self.types),
            "levels": list(self.levels),
            "weighting": self.weighting,
            "target_size": self.target_size,
            **self.redundancy.as_dict(),
            "pseudo_neighbours": PSEUDO_NEIGHBOURS,
            "pseudo_margin": PSEUDO_MARGIN,
            "drc": self.drc,
            "candidates": self.candidates,
            # only when given, so manifests made without one keep their bytes
            **({"candidate_order": Path(self.candidate_order).name} if self.candidate_order else {}),
        }
