"""The parameters of ``curate analyze``: the single statement of their defaults, ranges and choices.

DRCDown's thresholds are not stated here: they are :class:`~curate.reshape.params.DRCParams`'s,
and with a manifest they default to the ones the manifest recorded
(:func:`~curate.reshape.params.resolve_drc`). This module imports nothing heavy, so the command
line can read it when it starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curate.devices import DEVICES_HELP, check_device
from curate.distort.presets import parse_types
from curate.params import check_fields, param, set_field
from curate.reshape.params import DRCParams

CLUSTER_SELECTIONS = ("leaf", "eom")


@dataclass(frozen=True)
class AnalyzeParams:
    """Every setting of one analysis; ``redundancy`` holds DRCDown thresholds given explicitly."""

    types: tuple[int, ...] | None = param(
        None, kind="types",
        help="Distortion types of the corpus to analyse: a preset or a list (1,3,10). Default: every type.",
    )
    seed: int = param(0, help="Seed for sampling, PCA and figures.")
    sample_cap: int = param(
        20_000, low=2, help="At most this many samples per set for PCA, HDBSCAN and the maps (seeded sample)."
    )
    pca_dims: int = param(32, low=2, help="PCA dimensions HDBSCAN runs on (the map uses the first two).")
    min_cluster_size: int = param(10, low=2, help="HDBSCAN's smallest cluster.")
    min_samples: int | None = param(None, kind=int, low=1, help="HDBSCAN's min_samples. Default: the min cluster size.")
    cluster_selection: str = param(
        "leaf", choices=CLUSTER_SELECTIONS,
        help="HDBSCAN cluster selection (leaf: finest clusters, comparable before/after).",
    )
    redundancy: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    device: str = param("auto", kind="device", help=f"Where the neighbour search runs: {DEVICES_HELP}.")

    def __post_init__(self) -> None:
        if self.types is not None:
            set_field(self, "types", parse_types(self.types))
        set_field(self, "seed", int(self.seed))
        set_field(self, "redundancy", DRCParams.given(self.redundancy))
        check_device(self.device)
        check_fields(self)

    def as_dict(self, redundancy: DRCParams) -> dict[str, Any]:
        """The report's ``params``, with the DRCDown thresholds the analysis used."""
        return {
            "types": None if self.types is None else list(self.types),
            "sample_cap": self.sample_cap,
            "pca_dims": self.pca_dims,
            "min_cluster_size": self.min_cluster_size,
            "min_samples": self.min_samples,
            "cluster_selection": self.cluster_selection,
            **redundancy.as_dict(),
            "map": "pca",
        }
