"""The decisions frame every reshape stage returns, and how the stages' frames are joined.

A decisions frame has the columns of the decisions table (``schema.DECISION_FIELDS``): one row per
sample a stage considered, with ``kept`` (the sample is a row of the manifest), ``stage``,
``reason`` and ``detail``. A later stage that changes a sample's fate (the target size) returns rows
for those samples only; :func:`join_decisions` lets them replace the earlier rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from curate.errors import CurateError
from curate.schema import DECISION_FIELDS, sorted_by_id

DECISION_COLUMNS = [f.name for f in DECISION_FIELDS]
# What a later stage may change about a sample the earlier stages decided on.
OUTCOME_COLUMNS = ["stage", "kept", "reason"]


def decision_frame(
    sample_id: Any,
    ref_id: Any,
    origin: str,
    stage: Any,
    kept: Any,
    reason: Any,
    *,
    group_id: Any = -1,
    group_size: Any = 1,
    detail: Any = None,
) -> pd.DataFrame:
    """A decisions frame for ``n = len(sample_id)`` samples; scalar arguments apply to every row."""
    n = len(sample_id)

    def column(value: Any, dtype: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=dtype), (n,))

    return pd.DataFrame(
        {
            "sample_id": np.asarray(sample_id, dtype=object),
            "ref_id": np.asarray(ref_id, dtype=object),
            "origin": origin,
            "stage": column(stage, object),
            "kept": column(kept, bool),
            "reason": column(reason, object),
            "group_id": column(group_id, np.int64),
            "group_size": column(group_size, np.int32),
            "detail": column(detail, object),
        },
        columns=DECISION_COLUMNS,
    )


def join_decisions(frames: list[pd.DataFrame], updates: pd.DataFrame | None = None) -> pd.DataFrame:
    """The stages' frames as one decisions frame sorted by ``sample_id``.

    Each sample must appear in one frame only (a corpus sample and a pool sample sharing an id are
    refused). ``updates`` rows (a later stage) replace the stage, kept and reason of their samples.
    """
    joined = pd.concat([f for f in frames if len(f)], ignore_index=True)
    duplicated = joined["sample_id"].duplicated()
    if duplicated.any():
        dup = joined["sample_id"][duplicated].iloc[0]
        raise CurateError(f"sample_id {dup!r} appears in both the corpus and the pool; ids must be unique")
    if updates is not None and len(updates):
        rows = pd.Index(joined["sample_id"]).get_indexer(updates["sample_id"])
        for name in OUTCOME_COLUMNS:
            values = joined[name].to_numpy(copy=True)
            values[rows] = updates[name].to_numpy()
            joined[name] = values
    return sorted_by_id(joined)
