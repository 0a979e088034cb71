"""The settings of ``curate compare``: the single statement of their defaults, ranges and choices.

The variants of the ablation are declared here too (:data:`VARIANTS`), so the command line, the
runner and the report read one list. This module imports nothing heavy, so the command line can
read it when it starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curate.devices import DEVICES_HELP, check_device
from curate.distort.presets import parse_types
from curate.errors import ParamError
from curate.params import check_fields, param, set_field

BASELINE = "original"
HEAD_ONLY, FULL = "head-only", "full"
TRAINERS = (HEAD_ONLY, FULL)
LEAK_THRESHOLD = 0.95
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
TRAIN_SEED = 123  # the paper's seed, the first run's; seed s trains with TRAIN_SEED + s
# Settings that may change between a compare and its resumption without changing its results.
RESUMABLE_SETTINGS = ("device", "workers", "report_test_best", "resamples", "resample_groups")


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: which reshape stages are on.

    ``pool``: DDCUp adds candidates; ``candidates``: ``ddcup`` (DDCUp's selection) or ``all``
    (every candidate, no selection: the ablation of the selection itself); ``drc``: DRCDown thins
    redundant clusters; ``sized``: reshaped to the size of the ``original`` manifest of the seed.
    """

    name: str
    pool: bool
    drc: bool
    candidates: str = "ddcup"
    sized: bool = False
    description: str = ""


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(BASELINE, pool=False, drc=False, description="the selected types, nothing reshaped"),
        Variant("drc", pool=False, drc=True, description="DRCDown only"),
        Variant("ddc", pool=True, drc=False, description="DDCUp only"),
        Variant("paper", pool=True, drc=True, description="DDCUp + DRCDown, the paper's rule"),
        Variant(
            "all-candidates", pool=True, drc=False, candidates="all",
            description="every pool candidate added (pseudo-labelled), without DDCUp's selection; no DRCDown",
        ),
        Variant("sized", pool=True, drc=True, sized=True, description="the paper's rule at the original's size"),
    )
}


def parse_variants(spec: str | Sequence[str] | None, *, have_pool: bool) -> tuple[str, ...]:
    """Variant names in table order, ``original`` always first (every difference is taken to it).

    ``None``: every variant the inputs allow (those with a pool only when one is given)."""
    if spec is None:
        names = [n for n, v in VARIANTS.items() if have_pool or not v.pool]
    else:
        names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            raise ParamError(f"--variants {unknown[0]!r}: not one of {', '.join(VARIANTS)}")
        needs_pool = [n for n in names if VARIANTS[n].pool]
        if needs_pool and not have_pool:
            raise ParamError(f"--variants {needs_pool[0]} adds pool candidates; give --pool and --pool-embeddings")
    return tuple(n for n in VARIANTS if n in set(names) | {BASELINE})


def _names(value: str | Sequence[str]) -> tuple[str, ...]:
    """A comma (or newline) separated list, or the lines of a file holding one."""
    if isinstance(value, str):
        path = Path(value)
        text = path.read_text() if "," not in value and path.is_file() else value
        return tuple(part.strip() for part in text.replace("\n", ",").split(",") if part.strip())
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class CompareParams:
    """Every setting of a comparison; the trainer's own settings (epochs, lr, ...) sit in ``train``."""

    types: tuple[int, ...] | None = param(
        None, kind="types",
        help="Distortion types trained on: a preset (livec, koniq, bid, ...) or a list like 1,3,10. "
        "Default: every type of the corpus.",
    )
    variants: tuple[str, ...] | None = param(
        None, kind=str,
        help=f"Comma list of {', '.join(VARIANTS)}. Default: every one the inputs allow; "
        f"{BASELINE} always runs (every difference is taken to it).",
    )
    seeds: int = param(
        3, low=1, help="Seeds per variant: each draws its own validation split, reshape seed and training seed."
    )
    trainer: str = param(
        HEAD_ONLY, choices=TRAINERS,
        help="head-only: a small regressor on the embeddings (minutes on a CPU); full: the bundled image trainer.",
    )
    online_drc: bool = param(
        False, help="With --trainer full: DRCDown each epoch on the model's own features, as the paper does."
    )
    val_fraction: float = param(
        0.25, low=0.0, high=1.0, low_open=True, high_open=True,
        help="Share of the training references held out (per seed, before reshaping) to select the epoch.",
    )
    val_refs: tuple[str, ...] = param(
        (), kind=str,
        help="Fixed validation references instead: ref_ids (or their last part, e.g. I06), a comma list or a file.",
    )
    leak_check: bool = param(
        True, help="Check every target set for near-duplicate training content before training (needs its embeddings)."
    )
    leak_threshold: float = param(
        LEAK_THRESHOLD, low=-1.0, high=1.0,
        help="Cosine similarity above which a target content counts as a near-duplicate of training content.",
    )
    exclude_leaks: bool = param(False, help="Drop training and pool contents that leak into a target set.")
    resamples: int = param(BOOTSTRAP_RESAMPLES, low=100, help="Bootstrap resamples of each interval.")
    resample_groups: str | None = param(
        None, kind=str,
        help="A CSV with columns ref_id,group: test references of one group (e.g. crops of one photo) are "
        "resampled together by the bootstrap, so its intervals do not treat them as independent.",
    )
    report_test_best: bool = param(
        False, help="Also tabulate the test-selected epoch, as the paper reports it (optimistic, labelled)."
    )
    device: str = param("auto", kind="device", help=f"Where training and neighbour searches run: {DEVICES_HELP}.")
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.types is not None:
            set_field(self, "types", parse_types(self.types))
        if self.variants is not None:
            set_field(self, "variants", _names(self.variants))
        set_field(self, "val_refs", _names(self.val_refs or ()))
        set_field(self, "train", dict(self.train))
        check_device(self.device)
        check_fields(self)
        if self.online_drc and self.trainer != FULL:
            raise ParamError("--online-drc needs --trainer full (DRCDown on the model's own features)")
        if self.exclude_leaks and not self.leak_check:
            raise ParamError("--exclude-leaks needs the leak check (drop --no-leak-check)")
        unknown = sorted(set(self.train) - _train_fields())
        if unknown:
            raise ParamError(f"compare: unknown trainer setting(s) {unknown}")

    def resolved(self, *, corpus_types: Sequence[int], have_pool: bool) -> CompareParams:
        """These settings with the types and variants the inputs decide filled in."""
        types = self.types if self.types is not None else tuple(sorted({int(t) for t in corpus_types}))
        return dataclasses.replace(self, types=types, variants=parse_variants(self.variants, have_pool=have_pool))

    def identity(self) -> dict[str, Any]:
        """What determines the results (a rerun into the same folder must match it)."""
        out = asdict(self)
        out["train"] = dict(self.train)
        for key in RESUMABLE_SETTINGS:
            out.pop(key, None)
            out["train"].pop(key, None)
        return out


def _train_fields() -> set[str]:
    from curate.train.config import TrainConfig

    return {f.name for f in dataclasses.fields(TrainConfig)} - {"seed", "online_drc", "report_test_best", "device",
                                                                 "head_only", "val_fraction"}
