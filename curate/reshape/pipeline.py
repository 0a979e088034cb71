"""``curate reshape``: corpus + embeddings [+ pool] -> manifest.parquet + decisions.parquet.

The paper's rule (METHOD.md) as stages, each taking plain tables and arrays and returning a
decisions frame: the originals of the selected types (:func:`select_stage`), DRCDown
(:func:`~curate.reshape.downsample.downsample_stage`), DDCUp with a pool
(:func:`~curate.reshape.upsample.upsample_stage`) and, with a target size, the size policy
(:func:`~curate.reshape.targetsize.target_size_stage`). :func:`reshape_tables` joins them into
the manifest and decisions tables in memory; :func:`reshape` reads the inputs, only the embeddings
that the stages switched on need, runs it and writes both tables.

Every decision is keyed by ``sample_id``: inputs are sorted by it first, so the row order of the
inputs never matters, and the same inputs + seed give byte-identical outputs.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curate.errors import CurateError
from curate.fsio import fingerprint
from curate.inputs import load_inputs
from curate.reshape.candidate_order import CandidateOrder, read_candidate_order
from curate.reshape.decisions import decision_frame, join_decisions
from curate.reshape.downsample import DRCStage, downsample_stage
from curate.reshape.params import ReshapeParams
from curate.reshape.targetsize import SizeBounds, size_bounds, target_size_stage
from curate.reshape.upsample import DDCStage, pool_candidates, training_references, upsample_stage
from curate.schema import Embeddings, corpus_root, make_metadata, sorted_by_id, write_table

TYPE_NOT_SELECTED = "type_not_selected"


@dataclass
class ReshapeResult:
    """What a reshape produced: the two tables (as written), the sizes the inputs allow, and a
    summary for the terminal."""

    manifest: pd.DataFrame
    decisions: pd.DataFrame
    bounds: SizeBounds
    summary: dict[str, Any] = field(default_factory=dict)
    manifest_path: Path | None = None
    decisions_path: Path | None = None


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



# --------------------------------------------------------------------------------------------
# The plan: inputs sorted and checked, types resolved, and which embeddings the stages need


@dataclass(frozen=True)
class EmbeddingNeed:
    """Rows of one embeddings input (``corpus`` or ``pool``) that a stage needs, and why."""

    source: str
    ids: np.ndarray
    what: str


@dataclass(frozen=True)
class ReshapePlan:
    """A reshape's tables before any vector is read: sorted, checked, types resolved."""

    params: ReshapeParams
    training: pd.DataFrame
    originals: pd.DataFrame
    unselected: pd.DataFrame
    references: pd.DataFrame | None
    pool: pd.DataFrame | None
    candidates: pd.DataFrame | None
    candidate_order: CandidateOrder | None = None

    @property
    def compares_originals(self) -> bool:
        """Whether a stage switched on compares the originals' features: DRCDown, or a target
        size (which may trim)."""
        return self.params.drc or self.params.target_size is not None

    def needs(self) -> list[EmbeddingNeed]:
        """The embedding rows of each stage switched on, in reading order (originals first)."""
        out = []
        originals = self.originals["sample_id"].to_numpy(dtype=object)
        if self.params.drc:
            out.append(EmbeddingNeed("corpus", originals, "selected originals DRCDown compares"))
        elif self.params.target_size is not None:
            out.append(EmbeddingNeed("corpus", originals, "selected originals --target-size may trim"))
        if self.references is not None and self.candidates is not None:
            refs = self.references["sample_id"].to_numpy(dtype=object)
            out.append(EmbeddingNeed("corpus", refs, "corpus references DDCUp measures candidates against"))
            cands = self.candidates["sample_id"].to_numpy(dtype=object)
            out.append(EmbeddingNeed("pool", cands, "pool references DDCUp chooses from"))
        return out

    def ids(self, source: str) -> np.ndarray:
        """Every row of ``source`` some stage needs, once, in reading order."""
        parts = [n.ids for n in self.needs() if n.source == source]
        if not parts:
            return np.zeros(0, dtype=object)
        ids = np.concatenate(parts)
        _, first = np.unique(ids.astype(str), return_index=True)
        return ids[np.sort(first)]


def select_stage(training: pd.DataFrame, types: tuple[int, ...], where: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The original samples reshape works on: distorted rows of the selected types, all scored.

    ``training`` sorted by sample_id. Returns (originals, decisions of the distorted rows of other
    types: stage ``select``, not kept).
    """
    is_ref = training["is_reference"].to_numpy(dtype=bool)
    distortion = training["distortion"].astype("Float64").to_numpy(na_value=np.nan)
    selected = ~is_ref & np.isin(distortion, np.asarray(types, dtype=float))
    if not selected.any():
        raise CurateError(f"{where}: no distorted samples of the selected types {list(types)}")
    originals = training[selected].reset_index(drop=True)
    scores = originals["score"].astype("Float64").to_numpy(na_value=np.nan)
    if np.isnan(scores).any():
        missing = originals["sample_id"][np.isnan(scores)].tolist()
        raise CurateError(
            f"{where}: {len(missing)} training sample(s) have no score, e.g. {missing[:3]}; "
            "reshape needs the human score of every original sample"
        )
    other = training[~is_ref & ~selected]
    decisions = decision_frame(other["sample_id"], other["ref_id"], "original", "select", False, TYPE_NOT_SELECTED)
    return originals, decisions


def plan_reshape(
    corpus: pd.DataFrame,
    pool: pd.DataFrame | None,
    params: ReshapeParams,
    *,
    where: str = "corpus",
    pool_where: str = "pool",
) -> ReshapePlan:
    """Sort and check the tables, resolve ``types`` (None: every type of the corpus)."""
    training = sorted_by_id(corpus)
    if params.types is None:
        present = training["distortion"][~training["is_reference"].astype(bool)].dropna()
        params = params.with_types(tuple(sorted({int(t) for t in present})))
    assert params.types is not None
    originals, unselected = select_stage(training, params.types, where)
    references = candidates = pool_sorted = None
    if pool is not None:
        pool_sorted = sorted_by_id(pool)
        candidates = pool_candidates(pool_sorted, pool_where)
        references = training_references(training, where)
    return ReshapePlan(params, training, originals, unselected, references, pool_sorted, candidates)


def with_candidate_order(plan: ReshapePlan, path: str | os.PathLike[str]) -> ReshapePlan:
    """The plan with the candidate order read from ``path`` (:mod:`curate.reshape.candidate_order`)."""
    if plan.candidates is None:
        raise CurateError(f"--candidate-order {path}: orders pool candidates; give --pool and --pool-embeddings")
    order = read_candidate_order(
        path, plan.candidates["ref_id"].astype(str).tolist(), plan.candidates["path"].astype(str).tolist()
    )
    return dataclasses.replace(plan, candidate_order=order)


# --------------------------------------------------------------------------------------------
# The stages joined, in memory


def reshape_tables(
    corpus: pd.DataFrame,
    embeddings: Embeddings,
    pool: pd.DataFrame | None = None,
    pool_embeddings: Embeddings | None = None,
    params: ReshapeParams | None = None,
    *,
    where: str = "corpus",
    pool_where: str = "pool",
) -> ReshapeResult:
    """The reshape itself, on tables in memory: a corpus frame and its embeddings (ids + vectors),
    optionally a pool and its embeddings. Returns the manifest and decisions frames."""
    plan = plan_reshape(corpus, pool, params or ReshapeParams(), where=where, pool_where=pool_where)
    if plan.params.candidate_order is not None:
        plan = with_candidate_order(plan, plan.params.candidate_order)
    return run_stages(plan, embeddings, pool_embeddings)


def run_stages(plan: ReshapePlan, embeddings: Embeddings, pool_embeddings: Embeddings | None) -> ReshapeResult:
    """Run the stages of ``plan`` on the vectors in ``embeddings`` / ``pool_embeddings``."""
    p = plan.params
    assert p.types is not None
    originals = plan.originals
    vectors = (
        embeddings.take(originals["sample_id"].to_numpy(dtype=object), what="selected originals")
        if plan.compares_originals
        else None
    )
    drc = downsample_stage(originals, vectors, p.redundancy, enabled=p.drc, seed=p.seed, device=p.device)
    ddc = None
    if plan.pool is not None:
        assert plan.references is not None and plan.candidates is not None and pool_embeddings is not None
        ref_vectors = embeddings.take(
            plan.references["sample_id"].to_numpy(dtype=object), what="corpus references"
        )
        cand_vectors = pool_embeddings.take(
            plan.candidates["sample_id"].to_numpy(dtype=object), what="pool references"
        )
        ddc = upsample_stage(
            plan.training,
            plan.references,
            ref_vectors,
            plan.pool,
            plan.candidates,
            cand_vectors,
            types=p.types,
            levels=p.levels,
            weighting=p.weighting,
            candidates=p.candidates,
            order=None if plan.candidate_order is None else plan.candidate_order.order,
            seed=p.seed,
            device=p.device,
        )
    bounds = size_bounds(drc, ddc)
    updates = None
    if p.target_size is not None:
        updates = target_size_stage(p.target_size, drc, ddc, vectors, seed=p.seed, device=p.device)
    stages = [plan.unselected, drc.decisions] + ([ddc.decisions] if ddc is not None else [])
    decisions = join_decisions(stages, updates)
    manifest = _manifest(decisions, originals, drc, ddc)
    summary = _summary(decisions, drc, ddc, bounds, p, len(plan.unselected))
    return ReshapeResult(manifest, decisions, bounds, summary)


def _manifest(decisions: pd.DataFrame, originals: pd.DataFrame, drc: DRCStage, ddc: DDCStage | None) -> pd.DataFrame:
    """The manifest rows: every kept original and every kept DDCUp version, sorted by sample_id."""
    kept = pd.Series(decisions["kept"].to_numpy(dtype=bool), index=decisions["sample_id"])
    take = kept.reindex(originals["sample_id"]).to_numpy(dtype=bool)
    rows = originals[take].copy()
    rows["origin"] = "original"
    rows["label_kind"] = "human"
    rows["pseudo_refs"] = None
    rows["pseudo_weights"] = None
    rows["group_id"] = drc.groups.group_id[take]
    rows["group_size"] = drc.groups.group_size[take]
    rows["weight"] = 1.0
    parts = [rows]
    if ddc is not None:
        take_up = kept.reindex(ddc.versions["sample_id"]).to_numpy(dtype=bool)
        if take_up.any():
            up = ddc.versions[take_up].copy()
            up["origin"] = "upsampled"
            up["label_kind"] = "pseudo"
            up["score_raw"] = np.nan
            up["group_id"] = -1
            up["group_size"] = 1
            up["weight"] = 1.0
            parts.append(up)
    manifest = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return sorted_by_id(manifest)


def _summary(
    decisions: pd.DataFrame,
    drc: DRCStage,
    ddc: DDCStage | None,
    bounds: SizeBounds,
    params: ReshapeParams,
    n_unselected: int,
) -> dict[str, Any]:
    kept = decisions["kept"].to_numpy(dtype=bool)
    origin = decisions["origin"].to_numpy(dtype=object)
    stage = decisions["stage"].to_numpy(dtype=object)
    groups = drc.groups
    sizes = groups.group_size[groups.group_id >= 0]
    group_sizes = np.bincount(groups.group_id[groups.group_id >= 0]) if sizes.size else np.zeros(0, np.int64)
    summary: dict[str, Any] = {
        "original_in": len(drc.decisions),
        "original_out": int((kept & (origin == "original")).sum()),
        "not_selected": n_unselected,
        "drc": params.drc,
        "groups": int(group_sizes.size),
        "largest_group": int(group_sizes.max()) if group_sizes.size else 0,
        "groups_over_cap": int((group_sizes > params.redundancy.group_cap).sum()),
        "in_groups": int(sizes.size),
        "paper_size": bounds.paper,
        "size_bounds": [bounds.minimum, bounds.maximum],
        "target_size": params.target_size,
        "thresholds": None,
    }
    if ddc is not None:
        summary.update(ddc.counts)
        summary["candidates"] = params.candidates
        summary["upsampled_out"] = int((kept & (origin == "upsampled") & (stage != "ddc_select")).sum())
        summary["thresholds"] = ddc.thresholds
    summary["manifest_rows"] = summary["original_out"] + summary.get("upsampled_out", 0)
    return summary


def format_summary(summary: dict[str, Any]) -> list[str]:
    """Short terminal lines for a reshape summary."""
    lines = [
        f"originals: {summary['original_in']} in, {summary['original_out']} out "
        f"({summary['not_selected']} of other types not considered)",
    ]
    if summary["drc"]:
        lines.append(
            f"redundancy groups: {summary['groups']} ({summary['in_groups']} samples), largest "
            f"{summary['largest_group']}, {summary['groups_over_cap']} over the cap"
        )
    else:
        lines.append("redundancy groups: DRCDown off (--no-drc)")
    if "candidates_in" in summary:
        th = summary["thresholds"]
        if th is not None:
            lines.append(
                f"candidates: {summary['candidates_in']} in, {summary['candidates_eligible']} eligible, "
                f"{summary['candidates_kept']} kept (r = {th['r']:.5f}, maxT_all = {th['maxT_all']:.5f})"
            )
        else:
            lines.append(f"candidates: all {summary['candidates_in']} added without selection (--candidates all)")
        lines.append(f"upsampled: {summary['upsampled_out']} rows")
    low, high = summary["size_bounds"]
    lines.append(
        f"manifest: {summary['manifest_rows']} rows (paper rule: {summary['paper_size']}; "
        f"--target-size from {low} to {high})"
    )
    return lines


# --------------------------------------------------------------------------------------------
# Files


def reshape(
    corpus: str | os.PathLike[str],
    embeddings: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    pool: str | os.PathLike[str] | None = None,
    pool_embeddings: str | os.PathLike[str] | None = None,
    params: ReshapeParams | None = None,
) -> ReshapeResult:
    """Read the inputs, reshape with ``params`` (default: the paper's), write ``output`` (manifest)
    and the decisions table beside it.

    Only the embedding rows the stages switched on need are read (:meth:`ReshapePlan.needs`); rows
    they need and the embeddings lack are refused, naming the stage that needs them.
    """
    if (pool is None) != (pool_embeddings is None):
        raise CurateError("--pool and --pool-embeddings go together (the pool corpus and its embeddings)")
    data = load_inputs(corpus=corpus, embeddings=embeddings, pool=pool, pool_embeddings=pool_embeddings)
    assert data.corpus is not None and data.embeddings is not None
    plan = plan_reshape(data.corpus, data.pool, params or ReshapeParams(), where=str(corpus), pool_where=str(pool))
    if plan.params.candidate_order is not None:
        plan = with_candidate_order(plan, plan.params.candidate_order)
    needs = plan.needs()
    train_emb = data.embeddings.load(
        plan.ids("corpus"), needs=[(n.ids, n.what) for n in needs if n.source == "corpus"]
    )
    pool_emb = None
    roots = _roots(data.corpus_meta, data.corpus, str(corpus))
    if data.pool is not None and data.pool_embeddings is not None:
        pool_emb = data.pool_embeddings.load(
            plan.ids("pool"), needs=[(n.ids, n.what) for n in needs if n.source == "pool"]
        )
        for source, root in _roots(data.pool_meta, data.pool, str(pool)).items():
            if roots.get(source, root) != root:
                raise CurateError(
                    f"{pool}: source {source!r} has root {root} but the corpus gives it {roots[source]}; "
                    "one source must have one image root"
                )
            roots[source] = root
    result = run_stages(plan, train_emb, pool_emb)
    used_sources = sorted(str(s) for s in result.manifest["source"].unique())
    extra = {
        "roots": {s: roots[s] for s in used_sources},
        "thresholds": result.summary.get("thresholds"),
        "weighting": plan.params.weighting,
        "encoder": data.embeddings.encoder,
    }
    recorded = plan.params.as_dict()
    inputs = data.fingerprints()
    if plan.candidate_order is not None:
        extra["candidate_order"] = plan.candidate_order.metadata()
        inputs["candidate_order"] = fingerprint(plan.params.candidate_order)
    manifest_meta = make_metadata("manifest", params=recorded, seed=plan.params.seed, inputs=inputs, **extra)
    decisions_meta = make_metadata("decisions", params=recorded, seed=plan.params.seed, inputs=inputs, **extra)
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
    return {str(source): str(path) for source in sorted(frame["source"].unique())}
