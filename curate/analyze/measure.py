"""The measures of an analysis, as pure functions of what :mod:`curate.analyze.inputs` read.

Content (DDCUp's thresholds, the pool's placement, the references behind a manifest), density
(PCA, HDBSCAN clusters, DRCDown's redundancy groups) per set, and the numbers of the report's
``summary.json``. Arrays the figures need travel in dataclasses, never through the summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from curate.analyze.content import ContentDistribution, content_distribution, content_summary, describe
from curate.analyze.density import (
    NO_DISTORTION,
    Projection,
    Redundancy,
    cluster_structure,
    find_clusters,
    fit_projection,
    redundancy_summary,
)
from curate.analyze.inputs import AnalysisInputs, SampleSet
from curate.analyze.params import AnalyzeParams
from curate.embed.config import FALLBACK_NOTE
from curate.errors import CurateError
from curate.reshape.downsample import keep_count, redundancy_groups
from curate.reshape.params import DRCParams
from curate.reshape.targetsize import TARGET_ADDED
from curate.sampling import subsample


@dataclass
class SetAnalysis:
    """Density measures of one set: the sampled rows, their PCA points and HDBSCAN labels."""

    sample: np.ndarray
    points: np.ndarray
    labels: np.ndarray
    clusters: dict[str, Any]
    redundancy: Redundancy | None
    redundancy_numbers: dict[str, Any] | None


@dataclass
class ContentAfter:
    """The references behind a manifest's rows: ``numbers`` for the summary and their
    ``nearest_distance`` [n_refs] for the figure (None, with a note in ``numbers``, when not measured)."""

    numbers: dict[str, Any]
    nearest_distance: np.ndarray | None = None

    @property
    def r(self) -> float | None:
        return self.numbers.get("r")


@dataclass
class Measures:
    """Everything an analysis measured."""

    content: ContentDistribution | None
    content_note: str | None
    content_after: ContentAfter | None
    projection: Projection
    before: SetAnalysis
    after: SetAnalysis | None


def measure_content(data: AnalysisInputs, where: str, device: str) -> tuple[ContentDistribution | None, str | None]:
    """DDCUp's thresholds on the corpus references and the pool's placement (or a note why not)."""
    refs = data.references
    if len(refs) < 2:
        if data.candidates is not None:
            raise CurateError(
                f"{where}: placing a pool needs at least 2 training references (is_reference rows); "
                f"found {len(refs)}"
            )
        return None, f"content distribution needs at least 2 reference images (is_reference); found {len(refs)}"
    candidate_ids = None if data.candidates is None else data.candidates["sample_id"].to_numpy(dtype=object)
    content = content_distribution(
        refs["sample_id"].to_numpy(dtype=object),
        data.reference_vectors,
        candidate_ids=candidate_ids,
        candidate_vectors=data.candidate_vectors,
        device=device,
    )
    return content, None


def content_after(content: ContentDistribution | None, data: AnalysisInputs, device: str) -> ContentAfter | None:
    """The references behind the manifest's rows (training references still used + new contents)."""
    manifest = data.manifest
    if content is None or manifest is None:
        return None
    origin = manifest["origin"].to_numpy(dtype=object)
    used_refs = set(manifest.loc[origin == "original", "ref_id"].astype(str))
    new_refs = set(manifest.loc[origin == "upsampled", "ref_id"].astype(str))
    refs = data.references
    kept = refs["ref_id"].astype(str).isin(used_refs).to_numpy()
    vectors = [data.reference_vectors[kept]]
    ids = [refs["sample_id"].to_numpy(dtype=object)[kept]]
    missing_new = len(new_refs)
    if new_refs:
        if data.candidates is None or data.pool_vectors is None:
            return ContentAfter({"note": "the manifest adds new contents; pass --pool to measure the content spread after"})
        new = data.candidates[data.candidates["ref_id"].astype(str).isin(new_refs)]
        new_ids = new["sample_id"].to_numpy(dtype=object)
        vectors.append(data.pool_vectors.take(new_ids, what="pool references"))
        ids.append(new_ids)
        missing_new = len(new_refs - set(new["ref_id"].astype(str)))
    all_ids = np.concatenate(ids)
    if all_ids.size < 2:
        return ContentAfter({"note": "fewer than 2 references behind the manifest"})
    after = content_distribution(all_ids, np.concatenate(vectors), device=device)
    numbers = {
        "references": int(all_ids.size),
        "training_references_used": int(kept.sum()),
        "new_contents": int(all_ids.size - kept.sum()),
        "new_contents_without_pool_reference": int(missing_new),
        "r": after.novelty_threshold,
        "maxT_all": after.max_spread,
        "nearest_distance": describe(after.nearest_distance),
    }
    return ContentAfter(numbers, after.nearest_distance)


def analyse_set(
    samples: SampleSet,
    sample: np.ndarray,
    projection: Projection,
    params: AnalyzeParams,
    redundancy: DRCParams,
) -> SetAnalysis:
    """PCA points and HDBSCAN clusters of the ``sample`` rows; redundancy groups of every scored row."""
    points = projection.transform(samples.vectors[sample])
    labels = find_clusters(points, params.min_cluster_size, params.min_samples, params.cluster_selection)
    clusters = cluster_structure(
        labels,
        samples.reference[sample],
        samples.distortion[sample],
        samples.level[sample],
        samples.score[sample],
    )
    scored = np.isfinite(samples.score)
    found = None
    numbers = None
    if scored.sum() >= 2:
        found = Redundancy.of(
            redundancy_groups(
                samples.ids[scored],
                samples.vectors[scored],
                samples.score[scored],
                similarity_threshold=redundancy.similarity_threshold,
                score_gap=redundancy.score_gap,
                device=params.device,
            )
        )
        numbers = redundancy_summary(found, group_cap=redundancy.group_cap, keep_fraction=redundancy.keep_fraction)
    return SetAnalysis(sample, points, labels, clusters, found, numbers)


def measure(data: AnalysisInputs, params: AnalyzeParams, redundancy: DRCParams, where: str) -> Measures:
    """Every measure of an analysis. One projection, fitted on the corpus sample, serves both sets,
    so their maps share axes."""
    content, note = measure_content(data, where, params.device)
    after_content = content_after(content, data, params.device)
    before_sample = subsample(data.before.ids, params.sample_cap, params.seed)
    if before_sample.size < 2:
        raise CurateError(f"{where}: at least 2 samples are needed for the density analysis")
    projection = fit_projection(data.before.vectors[before_sample], params.pca_dims, params.seed)
    before = analyse_set(data.before, before_sample, projection, params, redundancy)
    after = None
    if data.after is not None:
        after_sample = subsample(data.after.ids, params.sample_cap, params.seed)
        after = analyse_set(data.after, after_sample, projection, params, redundancy)
    return Measures(content, note, after_content, projection, before, after)


# --------------------------------------------------------------------------------------------
# The numbers of summary.json


def _counts(values: np.ndarray) -> dict[str, int]:
    keys, counts = np.unique(values, return_counts=True)
    return {str(k): int(c) for k, c in zip(keys, counts, strict=True)}


def _types(distortion: np.ndarray) -> list[int]:
    """The distortion codes present, ascending (references and untyped samples left out)."""
    return sorted({int(c) for c in distortion if int(c) != NO_DISTORTION})


def corpus_numbers(corpus: pd.DataFrame, before: SampleSet) -> dict[str, Any]:
    """Counts of the whole corpus beside those analysed: ``distorted`` (non-reference rows) and
    ``types`` (their distortion codes) against ``samples_analysed`` and ``types_analysed``."""
    distorted = corpus[~corpus["is_reference"].to_numpy(dtype=bool)]
    codes = distorted["distortion"].astype("Int64").fillna(NO_DISTORTION).to_numpy(np.int64)
    return {
        "rows": int(len(corpus)),
        "references": int(corpus["is_reference"].to_numpy(dtype=bool).sum()),
        "contents": int(corpus["ref_id"].nunique()),
        "distorted": int(len(distorted)),
        "types": _types(codes),
        "samples_analysed": len(before),
        "types_analysed": _types(before.distortion),
    }


def set_numbers(samples: SampleSet, result: SetAnalysis, sample_cap: int) -> dict[str, Any]:
    scored = np.isfinite(samples.score)
    clusters = {"sampled": int(result.sample.size), "of": len(samples), "cap": sample_cap, **result.clusters}
    return {
        "samples": len(samples),
        "types": _types(samples.distortion),
        "contents": int(np.unique(samples.reference).size),
        "scored": int(scored.sum()),
        "by_origin": _counts(samples.origin),
        "by_level": _counts(np.where(samples.level > 0, samples.level.astype(str), "none")),
        "by_distortion": _counts(np.where(samples.distortion >= 0, samples.distortion.astype(str), "none")),
        "score": describe(samples.score[scored]),
        "clusters": clusters,
        "redundancy": result.redundancy_numbers
        if result.redundancy_numbers is not None
        else {"note": "fewer than 2 scored samples; no redundancy groups"},
    }


def reshape_numbers(before: SampleSet, after: SampleSet, manifest: pd.DataFrame) -> dict[str, Any]:
    originals = after.ids[after.origin == "original"]
    before_ids = set(before.ids.tolist())
    original_ids = set(originals.tolist())
    kinds = manifest["label_kind"].to_numpy(dtype=object)
    return {
        "manifest_rows": len(after),
        "originals_kept": int(sum(1 for s in originals if s in before_ids)),
        "originals_removed": int(len(before_ids - original_ids)),
        "originals_outside_analysed_corpus": int(len(original_ids - before_ids)),
        "upsampled": int((after.origin == "upsampled").sum()),
        "pseudo_labelled": int((kinds == "pseudo").sum()),
        "new_contents": int(np.unique(after.reference[after.origin == "upsampled"]).size),
    }


def add_back_numbers(
    manifest: pd.DataFrame, manifest_params: dict[str, Any], decisions: pd.DataFrame | None
) -> dict[str, Any] | None:
    """With ``--target-size``: what adding rows back did to the reshape's redundancy groups.

    A group of ``L`` members keeps all of them up to the cap, else ``max(cap, floor(L *
    keep_fraction))`` under DRCDown (:func:`~curate.reshape.downsample.keep_count`, with the cap and
    fraction the manifest recorded): its *quota*. A group whose manifest rows exceed it is *over its
    quota*, which only the target size's add-back of removed originals makes happen. None when the
    manifest was not sized, or was reshaped without DRCDown.
    """
    target = manifest_params.get("target_size")
    if target is None or manifest_params.get("drc") is False:
        return None
    rule = DRCParams.from_record(manifest_params)
    cap, fraction = rule.group_cap, rule.keep_fraction
    rows = manifest[
        (manifest["origin"].to_numpy(dtype=object) == "original") & (manifest["group_id"].to_numpy(np.int64) >= 0)
    ]
    groups = rows.groupby("group_id", sort=True)["group_size"].agg(["size", "max"])
    kept = groups["size"].to_numpy(np.int64)
    allowed = np.array([keep_count(int(n), cap, fraction) for n in groups["max"].to_numpy(np.int64)], dtype=np.int64)
    over = kept > allowed
    out: dict[str, Any] = {
        "target_size": int(target),
        "group_cap": cap,
        "keep_fraction": fraction,
        "groups_over_quota": int(over.sum()),
        "rows_over_quota": int((kept - allowed)[over].sum()),
        "largest_excess": None,
        "added_back": None,
    }
    if over.any():
        k = int(np.argmax(np.where(over, kept - allowed, -1)))
        out["largest_excess"] = {
            "group_id": int(groups.index[k]),
            "group_size": int(groups["max"].iloc[k]),
            "kept": int(kept[k]),
            "allowed": int(allowed[k]),
        }
    if decisions is not None:
        added = decisions["reason"].to_numpy(dtype=object) == TARGET_ADDED
        origin = decisions["origin"].to_numpy(dtype=object)
        out["added_back"] = {
            "originals": int((added & (origin == "original")).sum()),
            "upsampled": int((added & (origin == "upsampled")).sum()),
        }
    return out


def encoder_warnings(encoder: dict[str, Any], notes: list[str]) -> list[dict[str, str]]:
    """What the report must say at the top about the features, each as ``{"kind", "message",
    "note"}``: ``random_weights`` (from the encoder identity) and ``fallback`` (an embeddings note
    saying so, which ``note`` repeats)."""
    out = []
    weights = encoder.get("weights")
    if isinstance(weights, dict) and weights.get("kind") == "random":
        out.append(
            {
                "kind": "random_weights",
                "message": f"The encoder ({encoder.get('name', '?')}) ran with random weights.",
                "note": "Its features carry no learned meaning: every distance, cluster and reshaping "
                "decision in this report is meaningless for curation.",
            }
        )
    for note in notes:
        if note.startswith(FALLBACK_NOTE):
            out.append(
                {
                    "kind": "fallback",
                    "message": f"The features come from a fallback encoder ({encoder.get('name', '?')}), "
                    "not the one asked for.",
                    "note": note,
                }
            )
    return out


def content_numbers(measures: Measures) -> dict[str, Any]:
    if measures.content is None:
        return {"note": measures.content_note}
    out = content_summary(measures.content)
    if measures.content_after is not None:
        out["after"] = measures.content_after.numbers
    return out


def summary_numbers(data: AnalysisInputs, measures: Measures, params: AnalyzeParams) -> dict[str, Any]:
    """The measured part of ``summary.json``: corpus, content, projection, before (and after, reshape)."""
    projection = measures.projection
    out: dict[str, Any] = {
        "encoder": data.encoder,
        "dim": data.dim,
        "encoder_notes": list(data.encoder_notes),
        "encoder_warnings": encoder_warnings(data.encoder, data.encoder_notes),
        "corpus": corpus_numbers(data.corpus, data.before),
        "content": content_numbers(measures),
        "projection": {
            "dims": projection.dims,
            "explained_variance": float(projection.explained_variance_ratio.sum()),
            "map_explained_variance": float(projection.explained_variance_ratio[:2].sum()),
            "fitted_on": int(measures.before.sample.size),
        },
        "before": set_numbers(data.before, measures.before, params.sample_cap),
    }
    if data.after is not None and measures.after is not None and data.manifest is not None:
        out["after"] = set_numbers(data.after, measures.after, params.sample_cap)
        out["reshape"] = reshape_numbers(data.before, data.after, data.manifest)
        sized = add_back_numbers(data.manifest, data.manifest_params or {}, data.decisions)
        if sized is not None:
            out["reshape"]["target_size"] = sized
    return out
