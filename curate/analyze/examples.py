"""The samples the report shows as pictures, chosen as plain data; their images are read on first use.

* **Pool candidates** by DDCUp's decision (selected, not novel, out of distribution, too close to a
  kept candidate): at most :data:`CANDIDATES_PER_REASON` per reason, each beside its
  :data:`NEAREST_REFERENCES` nearest training references with their cosine distances (and, when
  thinning dropped it, the kept candidate it was too close to).
* **The largest redundancy group** of the reshape (DRCDown's groups as the decisions table records
  them): at most :data:`GROUP_MEMBERS_SHOWN` kept and as many dropped members.
* **The distortion gallery**: one corpus reference under every analysed type and level, from the
  corpus's own images (the pixels the analysis is about; for a real dataset these are the
  dataset's images, which curate's re-implemented generator would only approximate).

Every choice ranks by a seeded hash of ``sample_id`` (:func:`curate.sampling.sample_keys`), so
the same inputs and seed show the same samples whatever the row order. Only the images shown are
read (:class:`ThumbnailReader`); one that cannot be read is a labelled blank and is listed in
``summary.json``, never a failure of the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curate.analyze.density import NO_DISTORTION
from curate.analyze.inputs import AnalysisInputs
from curate.distort.registry import DISTORTIONS
from curate.errors import ImageError
from curate.images import load_rgb
from curate.reshape.downsample import keep_count
from curate.reshape.neighbours import knn
from curate.reshape.params import DRCParams
from curate.sampling import sample_keys, subsample

CANDIDATES_PER_REASON = 3
NEAREST_REFERENCES = 3
GROUP_MEMBERS_SHOWN = 6
THUMBNAIL_SIDE = 320  # pixels: the longer side of an image as the report keeps it

SELECTED = "ddc_selected"
# DDCUp's decisions on pool candidates, in page order, with the words the page uses.
CANDIDATE_REASONS = {
    SELECTED: "selected by DDCUp",
    "ddc_not_novel": "not novel",
    "ddc_out_of_distribution": "out of distribution",
    "ddc_too_close_to_kept": "too close to a kept candidate",
}
# What a candidate of a --candidates all manifest is: added without DDCUp's selection.
EVERY_CANDIDATE = "added without selection (--candidates all)"
# Written by curate 0.1 for a selected candidate.
LEGACY_REASONS = {"ddc_kept": SELECTED}


@dataclass(frozen=True)
class Thumb:
    """One image to show: its ``sample_id``, absolute ``path`` (None when no root is known), a
    caption of one or more lines and, beside a candidate, its cosine ``distance`` to it."""

    sample_id: str
    path: Path | None
    caption: str
    distance: float | None = None
    absent: str | None = None  # why there is no path, when it is not a missing image root


@dataclass(frozen=True)
class CandidateRow:
    """A pool candidate, its nearest training references (closest first) and, when thinning
    dropped it, the kept candidate it was too close to."""

    candidate: Thumb
    references: tuple[Thumb, ...]
    rival: Thumb | None = None


@dataclass(frozen=True)
class CandidateExamples:
    """The candidates shown for one DDCUp ``reason``, of ``total`` with that reason."""

    reason: str
    total: int
    rows: tuple[CandidateRow, ...]
    every_candidate: bool = False  # reshaped with --candidates all: nothing was selected

    @property
    def words(self) -> str:
        return EVERY_CANDIDATE if self.every_candidate else CANDIDATE_REASONS[self.reason]


@dataclass(frozen=True)
class GroupExample:
    """Members of the reshape's largest redundancy group: ``kept`` and ``dropped`` (shown), of
    ``kept_total`` and ``dropped_total``; ``allowed`` is what DRCDown's rule keeps of it with the
    ``cap`` and ``keep_fraction`` the manifest was reshaped with."""

    group_id: int
    size: int
    kept_total: int
    dropped_total: int
    allowed: int
    cap: int
    keep_fraction: float
    kept: tuple[Thumb, ...]
    dropped: tuple[Thumb, ...]


@dataclass(frozen=True)
class GalleryChoice:
    """One corpus reference and its own distorted images at the analysed ``types`` x ``levels``
    (``cells`` maps (type, level) to the image; absent when the corpus has none)."""

    reference: Thumb
    types: tuple[int, ...]
    levels: tuple[int, ...]
    cells: Mapping[tuple[int, int], Thumb]
    unlabelled_types: tuple[int, ...] = ()


@dataclass(frozen=True)
class Examples:
    """Everything the report shows as pictures, and why some are not shown (``notes``)."""

    candidates: tuple[CandidateExamples, ...] = ()
    group: GroupExample | None = None
    gallery: GalleryChoice | None = None
    notes: tuple[str, ...] = ()


def pick(sample_ids: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Indices of at most ``count`` ids: those with the smallest seeded hash, in ``sample_id`` order."""
    ids = np.asarray(sample_ids, dtype=object)
    chosen = subsample(ids, count, seed)
    return chosen[np.argsort(ids[chosen].astype(str), kind="stable")]


def _path(root: Path | None, relative: Any) -> Path | None:
    return None if root is None else root / str(relative)


def _short(sample_id: str) -> str:
    """The id without its source prefix, to keep captions short."""
    return sample_id.split("/", 1)[-1]


def _detail(text: Any) -> dict[str, str]:
    """A decisions ``detail`` (``key=value;key=value``) as a dict."""
    if not isinstance(text, str):
        return {}
    return dict(part.split("=", 1) for part in text.split(";") if "=" in part)


# --------------------------------------------------------------------------------------------
# Pool candidates


def candidate_examples(data: AnalysisInputs, seed: int, device: str = "auto") -> tuple[list[CandidateExamples], str | None]:
    """The candidates shown per DDCUp reason, or a note saying why none can be shown."""
    decisions = data.decisions
    if decisions is None:
        return [], None
    rows = decisions[decisions["stage"].to_numpy(dtype=object) == "ddc_select"]
    if rows.empty:
        return [], None
    if data.candidates is None or data.candidate_vectors is None:
        return [], "the manifest's pool candidates are shown when analyze is given --pool and --pool-embeddings"
    if data.reference_vectors.shape[0] == 0:
        return [], "the pool candidates are shown beside training references; the corpus has none"
    candidate_ids = data.candidates["sample_id"].to_numpy(dtype=object).astype(str)
    position = {sid: k for k, sid in enumerate(candidate_ids)}
    reasons = np.array([LEGACY_REASONS.get(r, r) for r in rows["reason"].astype(str)], dtype=object)
    ids = rows["sample_id"].to_numpy(dtype=object).astype(str)
    details = rows["detail"].to_numpy(dtype=object)
    references = data.references
    ref_ids = references["sample_id"].to_numpy(dtype=object).astype(str)
    ref_paths = references["path"].to_numpy(dtype=object)
    paths = data.candidates["path"].to_numpy(dtype=object)
    every = (data.manifest_params or {}).get("candidates") == "all"
    out: list[CandidateExamples] = []
    absent = 0
    for reason in CANDIDATE_REASONS:
        mine = np.flatnonzero(reasons == reason)
        present = mine[[ids[k] in position for k in mine]]
        absent += mine.size - present.size
        if mine.size == 0:
            continue
        chosen = present[pick(ids[present], CANDIDATES_PER_REASON, seed)]
        shown = [position[ids[k]] for k in chosen]
        k_refs = min(NEAREST_REFERENCES, len(ref_ids))
        if shown:
            nearest, distance = knn(data.candidate_vectors[shown], data.reference_vectors, k_refs, device=device)
        lines = []
        for row, k in enumerate(chosen):
            sid = ids[k]
            cand = position[sid]
            refs = tuple(
                Thumb(
                    ref_ids[j],
                    _path(data.corpus_root, ref_paths[j]),
                    f"reference {_short(ref_ids[j])}\nd = {distance[row, n]:.3f}",
                    float(distance[row, n]),
                )
                for n, j in enumerate(nearest[row])
            )
            rival = None
            other = _detail(details[k]).get("too_close_to")
            if other is not None:
                if other in position:
                    d = 1.0 - float(
                        np.dot(data.candidate_vectors[cand].astype(np.float64), data.candidate_vectors[position[other]])
                    )
                    rival = Thumb(
                        other, _path(data.pool_root, paths[position[other]]), f"kept {_short(other)}\nd = {d:.3f}", d
                    )
                else:
                    rival = Thumb(other, None, f"kept {_short(other)}\n(not in the pool given)",
                                  absent="not in the pool given to analyze")
            caption = f"candidate {_short(sid)}\n{'added, no selection' if every else CANDIDATE_REASONS[reason]}"
            farthest = _detail(details[k]).get("farthest")
            if reason == "ddc_out_of_distribution" and farthest is not None:
                caption += f"\nfarthest reference d = {float(farthest):.3f}"
            lines.append(CandidateRow(Thumb(sid, _path(data.pool_root, paths[cand]), caption), refs, rival))
        out.append(CandidateExamples(reason, int(mine.size), tuple(lines), every))
    note = None
    if absent:
        note = f"{absent} candidate(s) of the decisions table are not in the pool given to analyze; they are not shown"
    return out, note


def candidate_numbers(examples: list[CandidateExamples]) -> dict[str, Any]:
    """``summary.json``'s record of the candidates shown: per reason, the total and each shown
    candidate with its nearest references and distances."""
    out: dict[str, Any] = {}
    for ex in examples:
        out[ex.reason] = {
            "total": ex.total,
            "shown": [
                {
                    "sample_id": row.candidate.sample_id,
                    "nearest_references": [
                        {"sample_id": r.sample_id, "distance": r.distance}
                        for r in row.references
                    ],
                    **(
                        {"too_close_to": {"sample_id": row.rival.sample_id, "distance": row.rival.distance}}
                        if row.rival is not None
                        else {}
                    ),
                }
                for row in ex.rows
            ],
        }
    return out


# --------------------------------------------------------------------------------------------
# The largest redundancy group


def largest_group(data: AnalysisInputs, seed: int) -> GroupExample | None:
    """Kept and dropped members of the reshape's largest redundancy group (ties: the lower group id)."""
    decisions = data.decisions
    if decisions is None:
        return None
    rule = DRCParams.from_record(data.manifest_params or {})
    group_cap, keep_fraction = rule.group_cap, rule.keep_fraction
    grouped = decisions[
        (decisions["origin"].to_numpy(dtype=object) == "original") & (decisions["group_id"].to_numpy(np.int64) >= 0)
    ]
    if grouped.empty:
        return None
    sizes = grouped.groupby("group_id", sort=True)["group_size"].max()
    top = int(sizes.to_numpy().max())
    group_id = int(sizes.index[sizes.to_numpy() == top][0])
    members = grouped[grouped["group_id"].to_numpy(np.int64) == group_id]
    corpus = data.corpus.set_index("sample_id")
    kept = members["kept"].to_numpy(dtype=bool)
    reasons = members["reason"].to_numpy(dtype=object)

    def thumbs(mask: np.ndarray) -> tuple[Thumb, ...]:
        ids = members["sample_id"].to_numpy(dtype=object)[mask].astype(str)
        why = reasons[mask]
        out = []
        for k in pick(ids, GROUP_MEMBERS_SHOWN, seed):
            sid = ids[k]
            row = corpus.loc[sid] if sid in corpus.index else None
            if row is None:
                out.append(Thumb(sid, None, f"{_short(sid)}\n(not in the corpus)", absent="not in the corpus given"))
                continue
            level = "" if pd.isna(row["level"]) else f" level {int(row['level'])}"
            kind = "" if pd.isna(row["distortion"]) else f"type {int(row['distortion'])}"
            score = "" if pd.isna(row["score"]) else f", score {float(row['score']):.2f}"
            out.append(
                Thumb(sid, _path(data.corpus_root, row["path"]), f"{_short(sid)}\n{kind}{level}{score}\n{why[k]}")
            )
        return tuple(out)

    return GroupExample(
        group_id=group_id,
        size=top,
        kept_total=int(kept.sum()),
        dropped_total=int((~kept).sum()),
        allowed=keep_count(top, group_cap, keep_fraction),
        cap=group_cap,
        keep_fraction=keep_fraction,
        kept=thumbs(kept),
        dropped=thumbs(~kept),
    )


# --------------------------------------------------------------------------------------------
# The distortion gallery


def gallery_choice(data: AnalysisInputs, seed: int) -> tuple[GalleryChoice | None, str | None]:
    """The reference with the most analysed (type, level) images of its own (ties: seeded hash),
    and those images; or a note saying why there is no gallery."""
    before = data.before
    typed = (before.distortion != NO_DISTORTION) & (before.level > 0)
    if not typed.any():
        return None, "no distortion gallery: the analysed samples have no distortion type and level"
    codes = sorted({int(c) for c in before.distortion[typed]})
    types = tuple(c for c in codes if c in DISTORTIONS)
    unlabelled = tuple(c for c in codes if c not in DISTORTIONS)
    if not types:
        return None, (
            f"no distortion gallery: the analysed types ({', '.join(map(str, codes))}) are not KADID type numbers"
        )
    levels = tuple(sorted({int(v) for v in before.level[typed]}))
    references = data.references
    if references.empty:
        return None, "no distortion gallery: the corpus has no reference images"
    usable = typed & np.isin(before.distortion, types)
    frame = pd.DataFrame({"ref": before.reference[usable], "cell": before.distortion[usable] * 1000 + before.level[usable]})
    cells_per_ref = frame.drop_duplicates().groupby("ref")["cell"].size()
    refs = references[references["ref_id"].astype(str).isin(cells_per_ref.index)]
    if refs.empty:
        return None, "no distortion gallery: no corpus reference has analysed distorted images"
    ref_ids = refs["sample_id"].to_numpy(dtype=object).astype(str)
    counts = cells_per_ref.reindex(refs["ref_id"].astype(str)).to_numpy(np.int64)
    keys = sample_keys(ref_ids, seed)
    best = int(np.lexsort((ref_ids, keys, -counts))[0])
    reference = refs.iloc[best]
    content = str(reference["ref_id"])
    rows = data.corpus[
        (data.corpus["ref_id"].astype(str) == content) & ~data.corpus["is_reference"].to_numpy(dtype=bool)
    ]
    cells: dict[tuple[int, int], Thumb] = {}
    for row in rows.itertuples(index=False):
        if pd.isna(row.distortion) or pd.isna(row.level):
            continue
        cell = (int(row.distortion), int(row.level))
        if cell[0] in types and cell[1] in levels and cell not in cells:  # rows are in sample_id order
            cells[cell] = Thumb(str(row.sample_id), _path(data.corpus_root, row.path), "")
    ref_thumb = Thumb(str(reference["sample_id"]), _path(data.corpus_root, reference["path"]), "")
    return GalleryChoice(ref_thumb, types, levels, cells, unlabelled), None


# --------------------------------------------------------------------------------------------
# Reading the images shown


@dataclass
class ThumbnailReader:
    """Reads each image shown once, on first use, downsized to at most ``side`` pixels; remembers
    those that could not be read (``missing``: sample_id -> reason)."""

    side: int = THUMBNAIL_SIDE
    missing: dict[str, str] = field(default_factory=dict)
    _cache: dict[str, np.ndarray | None] = field(default_factory=dict)

    def read(self, thumb: Thumb) -> np.ndarray | None:
        """HxWx3 uint8 RGB (longer side at most ``side``), or None when it cannot be read."""
        if thumb.sample_id in self._cache:
            return self._cache[thumb.sample_id]
        image: np.ndarray | None = None
        if thumb.path is None:
            self.missing[thumb.sample_id] = thumb.absent or "no image root recorded for its table"
        else:
            try:
                image = _downsized(load_rgb(thumb.path), self.side)
            except ImageError as exc:
                self.missing[thumb.sample_id] = str(exc)
        self._cache[thumb.sample_id] = image
        return image

    def missing_list(self) -> list[dict[str, str]]:
        """The images that could not be read, sorted by ``sample_id``."""
        return [{"sample_id": sid, "message": self.missing[sid]} for sid in sorted(self.missing)]


def _downsized(image: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    if max(h, w) <= side:
        return image
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS), dtype=np.uint8)


# --------------------------------------------------------------------------------------------


def choose_examples(data: AnalysisInputs, seed: int, device: str = "auto") -> Examples:
    """Every picture the report shows, and notes for those it cannot show."""
    notes: list[str] = []
    if data.manifest is not None and data.decisions_note is not None:
        notes.append(data.decisions_note)
    candidates, note = candidate_examples(data, seed, device)
    if note:
        notes.append(note)
    gallery, note = gallery_choice(data, seed)
    if note:
        notes.append(note)
    if gallery is not None and gallery.unlabelled_types:
        codes = ", ".join(map(str, gallery.unlabelled_types))
        notes.append(f"distortion type(s) {codes} are not KADID type numbers and are left out of the gallery")
    return Examples(tuple(candidates), largest_group(data, seed), gallery, tuple(notes))


def examples_numbers(examples: Examples) -> dict[str, Any]:
    """``summary.json``'s ``examples``: what the pictures show (``missing_images`` is added once
    they have been read)."""
    out: dict[str, Any] = {"candidates": candidate_numbers(list(examples.candidates)), "notes": list(examples.notes)}
    group = examples.group
    if group is not None:
        out["largest_group"] = {
            "group_id": group.group_id,
            "group_size": group.size,
            "kept": group.kept_total,
            "dropped": group.dropped_total,
            "drcdown_keeps": group.allowed,
            "shown_kept": [t.sample_id for t in group.kept],
            "shown_dropped": [t.sample_id for t in group.dropped],
        }
    gallery = examples.gallery
    if gallery is not None:
        out["gallery"] = {
            "reference": gallery.reference.sample_id,
            "types": list(gallery.types),
            "levels": list(gallery.levels),
            "images": len(gallery.cells),
            "source": "the corpus's own images",
            "types_without_kadid_name": list(gallery.unlabelled_types),
        }
    return out
