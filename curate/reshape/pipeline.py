"""``curate reshape``: corpus + embeddings [+ pool] -> manifest.parquet + decisions.parquet.

The paper's rule (METHOD.md): the original samples of the selected distortion types after DRCDown,
plus every DDCUp sample (each kept candidate's distorted versions of the selected types at the
selected levels, pseudo-labelled). With a target size the manifest has exactly that many rows
(``targetsize``). Every decision is keyed by ``sample_id``: inputs are sorted by it first, so the
row order of the inputs never matters, and the same inputs + seed give byte-identical outputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curate.errors import CurateError
from curate.fsio import fingerprint
from curate.reshape.downsample import (
    GROUP_CAP,
    KEEP_FRACTION,
    MAX_SCORE_GAP,
    SIMILARITY_THRESHOLD,
    drc_down,
    sample_keys,
)
from curate.reshape.presets import parse_levels, parse_types
from curate.reshape.targetsize import add_back_order, trim_order
from curate.reshape.upsample import (
    CANDIDATE_KEPT,
    PSEUDO_MARGIN,
    PSEUDO_NEIGHBOURS,
    WEIGHTINGS,
    CandidateSelection,
    label_neighbours,
    select_candidates,
)
from curate.schema import (
    CORPUS_FIELDS,
    Embeddings,
    corpus_root,
    make_metadata,
    read_corpus,
    read_embedding_rows,
    same_encoder,
    write_table,
)

DEFAULT_LEVELS = (1, 3, 5)
CORPUS_COLUMNS = [f.name for f in CORPUS_FIELDS]

# decision reasons (DDCUp candidate reasons live in upsample.py)
TYPE_NOT_SELECTED = "type_not_selected"
DRC_NOT_REDUNDANT = "drc_not_redundant"
DRC_GROUP_KEPT = "drc_group_kept"
DRC_SUBSAMPLED = "drc_group_subsampled"
DDC_ADDED = "ddc_added"
DDC_LEVEL_NOT_SELECTED = "ddc_level_not_selected"
DDC_NO_LABEL = "ddc_no_label"
TARGET_TRIM = "target_size_trim"
TARGET_ADDED = "target_size_added"


@dataclass(frozen=True)
class ReshapeParams:
    """Parameters of one reshape; defaults reproduce the paper."""

    types: tuple[int, ...]
    levels: tuple[int, ...] = DEFAULT_LEVELS
    weighting: str = "official"
    target_size: int | None = None
    seed: int = 0
    similarity_threshold: float = SIMILARITY_THRESHOLD
    score_gap: float = MAX_SCORE_GAP
    group_cap: int = GROUP_CAP
    keep_fraction: float = KEEP_FRACTION
    device: str = "auto"

    def as_dict(self) -> dict[str, Any]:
        return {
            "types": list(self.types),
            "levels": list(self.levels),
            "weighting": self.weighting,
            "target_size": self.target_size,
            "similarity_threshold": self.similarity_threshold,
            "score_gap": self.score_gap,
            "group_cap": self.group_cap,
            "keep_fraction": self.keep_fraction,
            "pseudo_neighbours": PSEUDO_NEIGHBOURS,
            "pseudo_margin": PSEUDO_MARGIN,
        }


@dataclass
class ReshapeResult:
    """What a reshape produced: the two tables (as written) and a summary for the terminal."""

    manifest: pd.DataFrame
    decisions: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    manifest_path: Path | None = None
    decisions_path: Path | None = None


@dataclass
class _Pool:
    frame: pd.DataFrame
    embeddings: Embeddings
    meta: dict[str, Any]
    where: str


def decisions_path_for(manifest_path: str | os.PathLike[str]) -> Path:
    """The decisions table written beside a manifest.

    ``manifest.parquet`` -> ``decisions.parquet``, ``manifest_X.parquet`` -> ``decisions_X.parquet``
    (so a glob for ``manifest*.parquet`` finds manifests only), any other name ``N.parquet`` ->
    ``N.decisions.parquet``.
    """
    path = Path(manifest_path)
    if path.name.startswith("manifest") and path.suffix == ".parquet":
        return path.with_name("decisions" + path.name[len("manifest"):])
    return path.with_name(f"{path.stem}.decisions.parquet")


def reshape(
    corpus: str | os.PathLike[str],
    embeddings: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    pool: str | os.PathLike[str] | None = None,
    pool_embeddings: str | os.PathLike[str] | None = None,
    types: str | None = None,
    levels: str | tuple[int, ...] | None = None,
    weighting: str = "official",
    target_size: int | None = None,
    seed: int = 0,
    similarity_threshold: float = SIMILARITY_THRESHOLD,
    score_gap: float = MAX_SCORE_GAP,
    group_cap: int = GROUP_CAP,
    device: str = "auto",
) -> ReshapeResult:
    """Read the inputs, reshape, write ``output`` (manifest) and the decisions table beside it."""
    if (pool is None) != (pool_embeddings is None):
        raise CurateError("--pool and --pool-embeddings go together (the pool corpus and its embeddings)")
    if weighting not in WEIGHTINGS:
        raise CurateError(f"--weighting {weighting!r}: expected one of {', '.join(WEIGHTINGS)}")
    if target_size is not None and target_size < 1:
        raise CurateError(f"--target-size {target_size}: must be at least 1")
    level_tuple = levels if isinstance(levels, tuple) else parse_levels(levels) if levels else DEFAULT_LEVELS
    train_frame, train_meta = read_corpus(corpus)
    if types:
        type_tuple = parse_types(types)
    else:  # no --types: every distortion type the training corpus has
        present = train_frame["distortion"][~train_frame["is_reference"].astype(bool)].dropna()
        type_tuple = tuple(sorted({int(t) for t in present}))
    params = ReshapeParams(
        types=type_tuple,
        levels=level_tuple,
        weighting=weighting,
        target_size=target_size,
        seed=int(seed),
        similarity_threshold=float(similarity_threshold),
        score_gap=float(score_gap),
        group_cap=int(group_cap),
        device=device,
    )
    # Only the vectors reshape uses are read: the selected originals first (so that they are a view,
    # not a copy), then the training references DDCUp needs.
    train_sorted = _sorted(train_frame)
    originals, _ = _select_originals(train_sorted, params.types, str(corpus))
    wanted = originals["sample_id"].to_numpy(dtype=object)
    if pool is not None:
        refs = train_sorted["sample_id"][train_sorted["is_reference"].to_numpy(dtype=bool)]
        wanted = np.concatenate([wanted, refs.to_numpy(dtype=object)])
    train_emb = read_embedding_rows(embeddings, wanted, what="corpus")
    inputs: dict[str, Any] = {"corpus": fingerprint(corpus), "embeddings": fingerprint(embeddings)}
    roots = _roots(train_meta, train_frame, str(corpus))
    pool_data = None
    if pool is not None and pool_embeddings is not None:
        pool_frame, pool_meta = read_corpus(pool)
        pool_refs = _sorted(pool_frame)
        pool_refs = pool_refs["sample_id"][pool_refs["is_reference"].to_numpy(dtype=bool)]
        if pool_refs.empty:
            raise CurateError(
                f"{pool}: the pool has no reference images (is_reference); "
                "a pool is candidate references plus their distorted versions from 'curate synthesize'"
            )
        pool_emb = read_embedding_rows(
            pool_embeddings, pool_refs.to_numpy(dtype=object), what="pool references"
        )
        same_encoder(train_emb, pool_emb)
        pool_data = _Pool(pool_frame, pool_emb, pool_meta, str(pool))
        inputs["pool"] = fingerprint(pool)
        inputs["pool_embeddings"] = fingerprint(pool_embeddings)
        for source, root in _roots(pool_meta, pool_frame, str(pool)).items():
            if roots.get(source, root) != root:
                raise CurateError(
                    f"{pool}: source {source!r} has root {root} but the corpus gives it {roots[source]}; "
                    "one source must have one image root"
                )
            roots[source] = root
    result = reshape_tables(train_frame, train_emb, pool_data, params, where=str(corpus))
    used_sources = sorted(set(result.manifest["source"]))
    extra = {
        "roots": {s: roots[s] for s in used_sources},
        "thresholds": result.summary.get("thresholds"),
        "weighting": params.weighting,
        "encoder": train_emb.encoder,
    }
    manifest_meta = make_metadata(
        "manifest", params=params.as_dict(), seed=params.seed, inputs=inputs, **extra
    )
    decisions_meta = make_metadata(
        "decisions", params=params.as_dict(), seed=params.seed, inputs=inputs, **extra
    )
    out = Path(output)
    dec_path = decisions_path_for(out)
    # An older manifest must not outlive the decisions it no longer matches (a kill in between).
    out.unlink(missing_ok=True)
    write_table(result.decisions, dec_path, "decisions", decisions_meta)
    write_table(result.manifest, out, "manifest", manifest_meta)
    result.manifest_path, result.decisions_path = out, dec_path
    return result


def _roots(meta: dict[str, Any], frame: pd.DataFrame, where: str) -> dict[str, str]:
    path = corpus_root(meta, where)
    return {str(source): str(path) for source in sorted(set(frame["source"]))}


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("sample_id", kind="stable").reset_index(drop=True)


def reshape_tables(
    train: pd.DataFrame,
    train_emb: Embeddings,
    pool: _Pool | None,
    params: ReshapeParams,
    *,
    where: str = "corpus",
) -> ReshapeResult:
    """The reshape itself, on tables in memory. Returns the manifest and decisions frames."""
    train = _sorted(train)
    is_ref = train["is_reference"].to_numpy(dtype=bool)
    originals, selected = _select_originals(train, params.types, where)
    scores = originals["score"].astype("Float64").to_numpy(na_value=np.nan)
    ids = originals["sample_id"].to_numpy(dtype=object)
    vectors = _vectors(train_emb, ids, "corpus")

    drc = drc_down(
        ids,
        vectors,
        scores,
        similarity_threshold=params.similarity_threshold,
        max_score_gap=params.score_gap,
        group_cap=params.group_cap,
        keep_fraction=params.keep_fraction,
        seed=params.seed,
        device=params.device,
    )
    kept = drc.kept.copy()
    n_orig = ids.size
    orig_reason = np.where(
        drc.group_id < 0, DRC_NOT_REDUNDANT, np.where(kept, DRC_GROUP_KEPT, DRC_SUBSAMPLED)
    ).astype(object)
    orig_stage = np.full(n_orig, "drc", dtype=object)

    up = _upsample(train, train_emb, pool, params, where) if pool is not None else None
    n_up_paper = 0 if up is None else int(up.required.sum())
    paper_size = int(kept.sum()) + n_up_paper
    extra_order = np.zeros(0, np.int64) if up is None else up.extra_order
    up_take = np.zeros(0, bool) if up is None else up.required.copy()
    up_stage = None if up is None else np.full(up.required.size, "ddc_add", dtype=object)
    up_reason = None if up is None else up.reason.copy()

    target = params.target_size
    if target is not None and target != paper_size:
        keys = sample_keys(ids, params.seed)
        if target < paper_size:
            remove = paper_size - target
            if remove > int(kept.sum()):
                raise CurateError(
                    f"--target-size {target}: below the minimum {n_up_paper} (the DDCUp samples alone); "
                    "use fewer --levels or types, or no --pool"
                )
            order = trim_order(vectors, drc.groups.pairs, kept, remove, keys, device=params.device)
            kept[order] = False
            orig_reason[order] = TARGET_TRIM
            orig_stage[order] = "target_size"
        else:
            add = target - paper_size
            removed = np.flatnonzero(~kept)
            maximum = paper_size + removed.size + extra_order.size
            if target > maximum:
                raise CurateError(
                    f"--target-size {target}: above the maximum {maximum} these inputs allow "
                    f"({n_orig} originals of the selected types + "
                    f"{n_up_paper + extra_order.size} labelled DDCUp samples)"
                )
            back = add_back_order(removed, drc.groups.pairs, drc.group_size, keys)[:add]
            kept[back] = True
            orig_reason[back] = TARGET_ADDED
            orig_stage[back] = "target_size"
            more = extra_order[: add - back.size]
            if more.size:
                assert up is not None and up_stage is not None and up_reason is not None
                up_take[more] = True
                up_reason[more] = TARGET_ADDED
                up_stage[more] = "target_size"

    # ---- manifest
    parts = []
    kept_orig = originals[kept].copy()
    kept_orig["origin"] = "original"
    kept_orig["label_kind"] = "human"
    kept_orig["pseudo_refs"] = None
    kept_orig["pseudo_weights"] = None
    kept_orig["group_id"] = drc.group_id[kept]
    kept_orig["group_size"] = drc.group_size[kept]
    kept_orig["weight"] = 1.0
    parts.append(kept_orig)
    if up is not None and up_take.any():
        rows = up.rows[up_take].copy()
        rows["origin"] = "upsampled"
        rows["label_kind"] = "pseudo"
        rows["score"] = up.label[up_take]
        rows["score_raw"] = np.nan
        rows["pseudo_refs"] = [up.pseudo_refs[k] for k in np.flatnonzero(up_take)]
        rows["pseudo_weights"] = [up.pseudo_weights[k] for k in np.flatnonzero(up_take)]
        rows["group_id"] = -1
        rows["group_size"] = 1
        rows["weight"] = 1.0
        parts.append(rows)
    manifest = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if manifest["sample_id"].duplicated().any():
        dup = manifest["sample_id"][manifest["sample_id"].duplicated()].iloc[0]
        raise CurateError(f"sample_id {dup!r} appears in both the corpus and the pool; ids must be unique")
    manifest = _sorted(manifest)

    # ---- decisions
    unselected = train[~is_ref & ~selected]
    dec_parts = [
        _decision_frame(
            unselected["sample_id"], unselected["ref_id"], "original", "select", False, TYPE_NOT_SELECTED
        ),
        _decision_frame(
            originals["sample_id"],
            originals["ref_id"],
            "original",
            orig_stage,
            kept,
            orig_reason,
            group_id=drc.group_id,
            group_size=drc.group_size,
        ),
    ]
    if up is not None:
        assert up_stage is not None and up_reason is not None
        dec_parts.append(up.candidate_decisions)
        dec_parts.append(
            _decision_frame(
                up.rows["sample_id"], up.rows["ref_id"], "upsampled", up_stage, up_take, up_reason
            )
        )
    decisions = pd.concat([d for d in dec_parts if len(d)], ignore_index=True)
    if decisions["sample_id"].duplicated().any():
        dup = decisions["sample_id"][decisions["sample_id"].duplicated()].iloc[0]
        raise CurateError(f"sample_id {dup!r} appears in both the corpus and the pool; ids must be unique")
    decisions = _sorted(decisions)

    summary = _summary(n_orig, kept, drc, up, up_take, paper_size, params, int(unselected.shape[0]))
    return ReshapeResult(manifest, decisions, summary)


def _select_originals(
    train: pd.DataFrame, types: tuple[int, ...], where: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """The original samples reshape works on: distorted rows of the selected types, with scores.

    ``train`` sorted by sample_id; returns (originals, mask over ``train``)."""
    is_ref = train["is_reference"].to_numpy(dtype=bool)
    distortion = train["distortion"].astype("Float64").to_numpy(na_value=np.nan)
    selected = ~is_ref & np.isin(distortion, np.asarray(types, dtype=float))
    if not selected.any():
        raise CurateError(f"{where}: no distorted samples of the selected types {list(types)}")
    originals = train[selected].reset_index(drop=True)
    scores = originals["score"].astype("Float64").to_numpy(na_value=np.nan)
    if np.isnan(scores).any():
        missing = originals["sample_id"][np.isnan(scores)].tolist()
        raise CurateError(
            f"{where}: {len(missing)} training sample(s) have no score, e.g. {missing[:3]}; "
            "reshape needs the human score of every original sample"
        )
    return originals, selected


def _vectors(embeddings: Embeddings, ids: np.ndarray, what: str) -> np.ndarray:
    """Vectors of ``ids``: a view when the embeddings hold them in that order at the start or end
    (as ``reshape`` reads them), else a copy."""
    n = ids.size
    held = embeddings.ids
    for start in (0, held.size - n):
        if 0 <= start and start + n <= held.size and np.array_equal(held[start : start + n], ids):
            return embeddings.vectors[start : start + n]
    return embeddings.take(ids, what=what)


def _decision_frame(
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
    n = len(sample_id)
    frame = pd.DataFrame(
        {
            "sample_id": np.asarray(sample_id, dtype=object),
            "ref_id": np.asarray(ref_id, dtype=object),
            "origin": origin,
            "stage": np.broadcast_to(np.asarray(stage, dtype=object), (n,)),
            "kept": np.broadcast_to(np.asarray(kept, dtype=bool), (n,)),
            "reason": np.broadcast_to(np.asarray(reason, dtype=object), (n,)),
            "group_id": np.broadcast_to(np.asarray(group_id, dtype=np.int64), (n,)),
            "group_size": np.broadcast_to(np.asarray(group_size, dtype=np.int32), (n,)),
            "detail": np.broadcast_to(np.asarray(detail, dtype=object), (n,)),
        }
    )
    return frame


# --------------------------------------------------------------------------------------------
# DDCUp on tables


@dataclass
class _Upsample:
    selection: CandidateSelection
    candidate_decisions: pd.DataFrame
    rows: pd.DataFrame  # pool rows of kept candidates, selected types, every level (sorted by sample_id)
    required: np.ndarray  # [rows] bool: at a selected level (the paper's samples)
    label: np.ndarray  # [rows] float64 pseudo-label (NaN where none can be made)
    pseudo_refs: list[list[str] | None]
    pseudo_weights: list[list[float] | None]
    reason: np.ndarray  # [rows] decision reason
    extra_order: np.ndarray  # rows at other levels with a label, in the order a target size adds them
    kept_candidates: int


def _upsample(
    train: pd.DataFrame, train_emb: Embeddings, pool: _Pool, params: ReshapeParams, where: str
) -> _Upsample:
    frame = _sorted(pool.frame)
    pool_is_ref = frame["is_reference"].to_numpy(dtype=bool)
    candidates = frame[pool_is_ref].reset_index(drop=True)
    if candidates.empty:
        raise CurateError(
            f"{pool.where}: the pool has no reference images (is_reference); "
            "a pool is candidate references plus their distorted versions from 'curate synthesize'"
        )
    dup_ref = candidates["ref_id"].duplicated()
    if dup_ref.any():
        raise CurateError(
            f"{pool.where}: ref_id {candidates['ref_id'][dup_ref].iloc[0]!r} has two reference images"
        )
    train_refs = train[train["is_reference"].to_numpy(dtype=bool)].reset_index(drop=True)
    if len(train_refs) < 2:
        raise CurateError(
            f"{where}: DDCUp needs the training corpus's reference images (at least 2, is_reference), "
            f"found {len(train_refs)}"
        )
    ref_vectors = _vectors(train_emb, train_refs["sample_id"].to_numpy(dtype=object), "corpus references")
    cand_vectors = _vectors(
        pool.embeddings, candidates["sample_id"].to_numpy(dtype=object), "pool references"
    )
    selection = select_candidates(cand_vectors, ref_vectors, device=params.device)
    cand_ids = candidates["sample_id"].to_numpy(dtype=object)
    details = []
    for c in range(len(candidates)):
        text = f"nearest={selection.nearest_distance[c]:.6f};farthest={selection.farthest_distance[c]:.6f}"
        if selection.dropped_for[c] >= 0:
            text += f";too_close_to={cand_ids[selection.dropped_for[c]]}"
        details.append(text)
    candidate_decisions = _decision_frame(
        cand_ids,
        candidates["ref_id"],
        "upsampled",
        "ddc_select",
        selection.reason == CANDIDATE_KEPT,
        selection.reason,
        detail=np.asarray(details, dtype=object),
    )
    kept_idx = np.flatnonzero(selection.kept)
    neighbours = label_neighbours(
        cand_vectors[kept_idx], ref_vectors, weighting=params.weighting, device=params.device
    )

    # training scores by (ref_id, type, level)
    ref_ref_ids = train_refs["ref_id"].astype(str).to_numpy()
    # only the versions of references that label some kept candidate are looked up
    used_refs = {str(ref_ref_ids[k]) for idx in neighbours.index for k in idx}
    train_dist = train[
        ~train["is_reference"].to_numpy(dtype=bool) & train["ref_id"].astype(str).isin(used_refs).to_numpy()
    ]
    train_key = list(
        zip(
            train_dist["ref_id"].astype(str),
            train_dist["distortion"].astype("Int64").fillna(-1).astype(int),
            train_dist["level"].astype("Int64").fillna(-1).astype(int),
            strict=True,
        )
    )
    train_lookup: dict[tuple[str, int, int], tuple[str, float]] = {}
    ambiguous: set[tuple[str, int, int]] = set()
    for key, sid, score in zip(
        train_key,
        train_dist["sample_id"],
        train_dist["score"].astype("Float64").to_numpy(na_value=np.nan),
        strict=True,
    ):
        if key in train_lookup:
            ambiguous.add(key)
        train_lookup[key] = (str(sid), float(score))

    # pool rows of kept candidates at the selected types, every level
    kept_ref_ids = candidates["ref_id"].to_numpy(dtype=object)[kept_idx].astype(str)
    kept_pos = {r: k for k, r in enumerate(kept_ref_ids)}
    dist_rows = frame[~pool_is_ref]
    dist_type = dist_rows["distortion"].astype("Float64").to_numpy(na_value=np.nan)
    take = dist_rows["ref_id"].astype(str).isin(kept_pos).to_numpy() & np.isin(dist_type, params.types)
    rows = dist_rows[take].reset_index(drop=True)
    row_ref = rows["ref_id"].astype(str).to_numpy()
    row_type = rows["distortion"].astype("Int64").to_numpy().astype(int)
    row_level = rows["level"].astype("Int64").fillna(-1).to_numpy().astype(int)
    present: dict[tuple[str, int, int], int] = {}
    for k, key in enumerate(zip(row_ref, row_type, row_level, strict=True)):
        if key in present:
            raise CurateError(
                f"{pool.where}: {rows['sample_id'][present[key]]!r} and {rows['sample_id'][k]!r} are both "
                f"type {key[1]} level {key[2]} of ref {key[0]!r}"
            )
        present[key] = k
    for c, ref in enumerate(kept_ref_ids):
        for t in params.types:
            for lv in params.levels:
                if (ref, t, lv) not in present:
                    raise CurateError(
                        f"{pool.where}: kept candidate {cand_ids[kept_idx[c]]!r} (ref_id {str(ref)!r}) has no "
                        f"distorted image of type {t} level {lv}; run 'curate synthesize' on the pool "
                        f"references with --types {','.join(map(str, params.types))} "
                        f"--levels {','.join(map(str, params.levels))}"
                    )
    required = np.isin(row_level, params.levels)

    label = np.full(len(rows), np.nan)
    pseudo_refs: list[list[str] | None] = [None] * len(rows)
    pseudo_weights: list[list[float] | None] = [None] * len(rows)
    reason = np.where(required, DDC_ADDED, DDC_LEVEL_NOT_SELECTED).astype(object)
    for k in range(len(rows)):
        c = kept_pos[row_ref[k]]
        nbr = neighbours.index[c]
        weights = neighbours.weight[c]
        used: list[str] = []
        value = 0.0
        for ref_row, w in zip(nbr, weights, strict=True):
            key = (str(ref_ref_ids[ref_row]), int(row_type[k]), int(row_level[k]))
            if key not in train_lookup or np.isnan(train_lookup[key][1]) or key in ambiguous:
                used = []
                if required[k]:
                    problem = "two" if key in ambiguous else "no scored"
                    raise CurateError(
                        f"{where}: training reference {key[0]!r} (a label neighbour of candidate "
                        f"{cand_ids[kept_idx[c]]!r}) has {problem} version of type {key[1]} level {key[2]}; "
                        "its pseudo-label cannot be made"
                    )
                break
            sid, score = train_lookup[key]
            used.append(sid)
            value += float(w) * score
        if used:
            label[k] = value
            pseudo_refs[k] = used
            pseudo_weights[k] = [float(w) for w in weights]
        elif not required[k]:
            reason[k] = DDC_NO_LABEL
    # extra levels for a target size: labelled rows at other levels, lowest level first, then seed hash
    extra = np.flatnonzero(~required & ~np.isnan(label))
    keys = sample_keys(rows["sample_id"].to_numpy(dtype=object)[extra], params.seed)
    extra_order = extra[np.lexsort((extra, keys, row_level[extra]))]
    return _Upsample(
        selection,
        candidate_decisions,
        rows,
        required,
        label,
        pseudo_refs,
        pseudo_weights,
        reason,
        extra_order,
        int(kept_idx.size),
    )


def _summary(
    n_orig: int,
    kept: np.ndarray,
    drc: Any,
    up: _Upsample | None,
    up_take: np.ndarray,
    paper_size: int,
    params: ReshapeParams,
    n_unselected: int,
) -> dict[str, Any]:
    sizes = drc.group_size[drc.group_id >= 0]
    group_sizes = np.bincount(drc.group_id[drc.group_id >= 0]) if sizes.size else np.zeros(0, np.int64)
    summary: dict[str, Any] = {
        "original_in": n_orig,
        "original_out": int(kept.sum()),
        "not_selected": n_unselected,
        "groups": int(group_sizes.size),
        "largest_group": int(group_sizes.max()) if group_sizes.size else 0,
        "groups_over_cap": int((group_sizes > params.group_cap).sum()),
        "in_groups": int(sizes.size),
        "paper_size": paper_size,
        "target_size": params.target_size,
        "thresholds": None,
    }
    if up is not None:
        sel = up.selection
        summary.update(
            {
                "candidates_in": int(sel.kept.size),
                "candidates_eligible": int(sel.eligible.sum()),
                "candidates_kept": up.kept_candidates,
                "upsampled_out": int(up_take.sum()),
                "thresholds": {
                    "r": sel.thresholds.novelty_threshold,
                    "maxT_all": sel.thresholds.max_spread,
                },
            }
        )
    summary["manifest_rows"] = summary["original_out"] + summary.get("upsampled_out", 0)
    return summary


def format_summary(summary: dict[str, Any]) -> list[str]:
    """Short terminal lines for a reshape summary."""
    lines = [
        f"originals: {summary['original_in']} in, {summary['original_out']} out "
        f"({summary['not_selected']} of other types not considered)",
        f"redundancy groups: {summary['groups']} ({summary['in_groups']} samples), largest "
        f"{summary['largest_group']}, {summary['groups_over_cap']} over the cap",
    ]
    if summary.get("thresholds"):
        th = summary["thresholds"]
        lines.append(
            f"candidates: {summary['candidates_in']} in, {summary['candidates_eligible']} eligible, "
            f"{summary['candidates_kept']} kept (r = {th['r']:.5f}, maxT_all = {th['maxT_all']:.5f})"
        )
        lines.append(f"upsampled: {summary['upsampled_out']} rows")
    size = f"manifest: {summary['manifest_rows']} rows (paper rule: {summary['paper_size']})"
    lines.append(size)
    return lines
