"""Near-duplicate content between a target (test) set and the training side of a comparison.

A reshaped training set that holds a copy, crop or light edit of a test image measures
memorisation, not generalisation. Before anything is trained, every target content is matched to
its nearest training-side content (the training corpus and the candidate pool) by cosine similarity
of their embeddings, and pairs above the threshold are reported. Contents are compared through
their pristine reference images where a table has them (strongly distorted versions of different
contents look alike, which is the distortion, not the content), else through every image (an
authentic set: each image is its own content). Excluding a leak drops the whole training-side
content (every row sharing the ``ref_id``), since its distorted versions carry the same content.

The threshold is a cosine similarity of the embeddings used, so its meaning depends on the encoder:
CLIP and ImageNet features of unrelated photos rarely exceed 0.9, while a copy scores about 1.0.
The report lists the closest pairs whether or not they pass it, so a user can see the margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from curate.compare.params import LEAK_THRESHOLD
from curate.reshape.neighbours import knn

LEAK_COLUMNS = ("target", "sample_id", "ref_id", "nearest_sample_id", "nearest_ref_id", "nearest_side", "cosine", "leak")


@dataclass(frozen=True)
class TrainingSide:
    """The rows a target set is checked against: ids, their content (``ref_id``), which table they
    come from (``corpus`` | ``pool``) and their L2-normalised vectors [n, dim]."""

    sample_ids: np.ndarray
    ref_ids: np.ndarray
    side: np.ndarray
    vectors: np.ndarray


def nearest_training(
    target: str,
    sample_ids: np.ndarray,
    ref_ids: np.ndarray,
    vectors: np.ndarray,
    training: TrainingSide,
    *,
    threshold: float = LEAK_THRESHOLD,
    device: str = "auto",
) -> pd.DataFrame:
    """One row per target content image: its nearest training-side image, their cosine, and ``leak``
    (cosine above ``threshold``). Columns :data:`LEAK_COLUMNS`, sorted by descending cosine."""
    if len(training.sample_ids) == 0 or len(sample_ids) == 0:
        return pd.DataFrame({c: [] for c in LEAK_COLUMNS})
    index, distance = knn(vectors, training.vectors, 1, device=device)
    nearest = index[:, 0]
    cosine = 1.0 - distance[:, 0]
    frame = pd.DataFrame(
        {
            "target": target,
            "sample_id": np.asarray(sample_ids, dtype=object).astype(str),
            "ref_id": np.asarray(ref_ids, dtype=object).astype(str),
            "nearest_sample_id": training.sample_ids[nearest].astype(str),
            "nearest_ref_id": training.ref_ids[nearest].astype(str),
            "nearest_side": training.side[nearest].astype(str),
            "cosine": cosine,
            "leak": cosine > threshold,
        }
    )
    return frame.sort_values(["cosine", "sample_id"], ascending=[False, True], kind="stable").reset_index(drop=True)


def leaked_contents(matches: pd.DataFrame) -> dict[str, list[str]]:
    """{side: sorted training-side ref_ids that hold a leak} from :func:`nearest_training` rows."""
    leaks = matches[matches["leak"].astype(bool)]
    return {
        side: sorted(set(leaks.loc[leaks["nearest_side"] == side, "nearest_ref_id"].astype(str)))
        for side in ("corpus", "pool")
    }
