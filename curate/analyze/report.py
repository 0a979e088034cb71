"""``curate analyze``: read a corpus (and optionally a pool and a reshaped manifest), measure its
content distribution and density structure, and write a report folder.

The report folder holds ``summary.json`` (every number, with inputs and parameters), PNG figures and
``index.html``. It is built in a hidden temporary folder beside the target and renamed into place,
so a killed run never leaves a report that looks complete.

What is exact and what is sampled: the content thresholds, pool placement and redundancy groups use
every sample (blocked kNN and sparse graphs). PCA, HDBSCAN and the 2-D maps use at most
``sample_cap`` samples per set (default 20,000), chosen by a seeded hash of ``sample_id``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curate import __version__
from curate.analyze import figures as fig
from curate.analyze.content import ContentDistribution, content_distribution, content_summary, describe
from curate.analyze.density import (
    CLUSTER_SELECTIONS,
    DEFAULT_CLUSTER_SELECTION,
    DEFAULT_MIN_CLUSTER_SIZE,
    DEFAULT_PCA_DIMS,
    DEFAULT_SAMPLE_CAP,
    NO_DISTORTION,
    Projection,
    Redundancy,
    cluster_structure,
    find_clusters,
    find_redundancy,
    fit_projection,
    redundancy_summary,
)
from curate.analyze.html import Figure, render_index
from curate.errors import CurateError
from curate.fsio import atomic_write_text, command_line, fingerprint, temporary_name
from curate.progress import Progress
from curate.reshape.params import GROUP_CAP, KEEP_FRACTION, SCORE_GAP, SIMILARITY_THRESHOLD
from curate.sampling import subsample
from curate.schema import Embeddings, EmbeddingsFolder, read_corpus, read_frame, same_encoder

REPORT_FORMAT = "analyze_report"
REPORT_FORMAT_VERSION = 1
POOL_TABLE = "pool_placement.csv"


@dataclass(frozen=True)
class SampleSet:
    """The samples of one side of the comparison (``before``: corpus, ``after``: manifest).

    Rows are sorted by ``sample_id``. ``vectors`` [n, dim] L2-normalised; ``distortion`` int
    (:data:`NO_DISTORTION` when none); ``level`` int (0 when none); ``score`` float (NaN when none);
    ``origin`` ``original`` | ``upsampled``.
    """

    name: str
    ids: np.ndarray
    vectors: np.ndarray
    reference: np.ndarray
    distortion: np.ndarray
    level: np.ndarray
    score: np.ndarray
    origin: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.size)


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
class Report:
    """What :func:`analyze` wrote: the folder, its ``summary`` and the figure files."""

    out_dir: Path
    summary: dict[str, Any]
    figures: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A short terminal summary of the key numbers."""
        s = self.summary
        out = [f"report: {self.out_dir / 'index.html'} ({len(self.figures)} figures, summary.json)"]
        content = s["content"]
        if "novelty_threshold_r" in content:
            text = (
                f"content: {content['references']} references, r = {content['novelty_threshold_r']:.4f}, "
                f"maxT_all = {content['max_spread']:.4f}"
            )
            pool = content.get("pool")
            if pool:
                text += (
                    f"; pool {pool['candidates']}: novel {pool['novel']}, in distribution "
                    f"{pool['in_distribution']}, eligible {pool['eligible']}"
                )
            out.append(text)
        else:
            out.append(f"content: {content['note']}")
        for name in ("before", "after"):
            if name not in s:
                continue
            part = s[name]
            c = part["clusters"]
            text = (
                f"{name}: {part['samples']:,} samples; {c['found']} clusters on {c['sampled']:,} sampled "
                f"(noise {c['noise_share']:.0%})"
            )
            r = part["redundancy"]
            if "groups" in r:
                text += (
                    f"; {r['groups']:,} redundancy groups, largest {r['largest_group']:,}, "
                    f"{r['share_above_cap']:.1%} of samples above the cap"
                )
            out.append(text)
        return out


def analyze(
    corpus: str | os.PathLike[str],
    embeddings: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    pool: str | os.PathLike[str] | None = None,
    pool_embeddings: str | os.PathLike[str] | None = None,
    manifest: str | os.PathLike[str] | None = None,
    types: Sequence[int] | None = None,
    seed: int = 0,
    sample_cap: int = DEFAULT_SAMPLE_CAP,
    pca_dims: int = DEFAULT_PCA_DIMS,
    min_cluster_size: int = DEFAULT_MIN_CLUSTER_SIZE,
    min_samples: int | None = None,
    cluster_selection: str = DEFAULT_CLUSTER_SELECTION,
    similarity_threshold: float = SIMILARITY_THRESHOLD,
    max_score_gap: float = SCORE_GAP,
    group_cap: int = GROUP_CAP,
    keep_fraction: float = KEEP_FRACTION,
    device: str = "auto",
    quiet: bool = False,
) -> Report:
    """Analyse a corpus (and pool / manifest) and write the report folder ``out_dir``.

    ``types``: restrict the corpus samples to these distortion types (as ``curate reshape
    --types``); ``None`` keeps every non-reference sample. The manifest, when given, is analysed
    whole. Same inputs + seed give byte-identical ``summary.json``, figures and ``index.html``.
    """
    if sample_cap < 2:
        raise CurateError(f"--sample-cap {sample_cap}: must be at least 2")
    if pca_dims < 2:
        raise CurateError(f"--pca-dims {pca_dims}: must be at least 2 (the map uses two components)")
    if min_cluster_size < 2:
        raise CurateError(f"--min-cluster-size {min_cluster_size}: must be at least 2")
    if cluster_selection not in CLUSTER_SELECTIONS:
        raise CurateError(
            f"--cluster-selection {cluster_selection!r}: one of {', '.join(CLUSTER_SELECTIONS)}"
        )
    if pool is not None and pool_embeddings is None:
        raise CurateError("--pool needs --pool-embeddings (the pool candidates' embeddings)")
    out = Path(out_dir)
    _check_output_dir(out)
    params = {
        "types": list(types) if types is not None else None,
        "sample_cap": sample_cap,
        "pca_dims": pca_dims,
        "min_cluster_size": min_cluster_size,
        "min_samples": min_samples,
        "cluster_selection": cluster_selection,
        "similarity_threshold": similarity_threshold,
        "max_score_gap": max_score_gap,
        "group_cap": group_cap,
        "keep_fraction": keep_fraction,
        "map": "pca",
    }
    cluster_args = {
        "min_cluster_size": min_cluster_size,
        "min_samples": min_samples,
        "selection": cluster_selection,
    }
    redundancy_args = {
        "similarity_threshold": similarity_threshold,
        "max_score_gap": max_score_gap,
        "group_cap": group_cap,
        "keep_fraction": keep_fraction,
        "device": device,
    }
    with Progress(6, "analyze", "step", quiet=quiet) as steps:
        data = _read_inputs(corpus, embeddings, pool, pool_embeddings, manifest, types)
        steps.update()

        content, content_note = _measure_content(data, corpus, device)
        content_after = _content_after(content, data, device)
        steps.update()

        # one projection, fitted on the corpus sample, for both sets: their maps share axes
        before_sample = subsample(data.before.ids, sample_cap, seed)
        if before_sample.size < 2:
            raise CurateError(f"{corpus}: at least 2 samples are needed for the density analysis")
        projection = fit_projection(data.before.vectors[before_sample], pca_dims, seed)
        before_result = _analyse_set(data.before, before_sample, projection, cluster_args, redundancy_args)
        steps.update()
        after_result = None
        if data.after is not None:
            after_sample = subsample(data.after.ids, sample_cap, seed)
            after_result = _analyse_set(data.after, after_sample, projection, cluster_args, redundancy_args)
        steps.update()

        inputs = {
            name: {"path": str(path), **fingerprint(path)}
            for name, path in (
                ("corpus", corpus),
                ("embeddings", embeddings),
                ("pool", pool),
                ("pool_embeddings", pool_embeddings),
                ("manifest", manifest),
            )
            if path is not None
        }
        summary: dict[str, Any] = {
            "format": REPORT_FORMAT,
            "format_version": REPORT_FORMAT_VERSION,
            "curate_version": __version__,
            "command": command_line(),
            "seed": seed,
            "params": params,
            "inputs": inputs,
            "encoder": data.emb.encoder,
            "dim": data.emb.dim,
            "corpus": _corpus_numbers(data.corpus_df, data.before),
            "content": _content_numbers(content, content_after, content_note),
            "projection": {
                "dims": projection.dims,
                "explained_variance": float(projection.explained_variance_ratio.sum()),
                "map_explained_variance": float(projection.explained_variance_ratio[:2].sum()),
                "fitted_on": int(before_sample.size),
            },
            "before": _set_numbers(data.before, before_result, sample_cap),
        }
        if data.after is not None and after_result is not None and data.manifest_df is not None:
            summary["after"] = _set_numbers(data.after, after_result, sample_cap)
            summary["reshape"] = _reshape_numbers(data.before, data.after, data.manifest_df)
        summary = _plain(summary)

        # build the whole folder beside the target, then swap it in
        tmp = temporary_name(out)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            if content is not None and content.pool is not None and data.candidates_df is not None:
                _write_pool_table(tmp / POOL_TABLE, content, data.candidates_df)
            figures = _draw_figures(
                tmp,
                summary,
                data.before,
                before_result,
                data.after,
                after_result,
                content,
                content_after,
                seed,
            )
            text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
            atomic_write_text(tmp / "summary.json", text)
            atomic_write_text(tmp / "index.html", render_index(summary, figures))
            _publish(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        steps.update()
    return Report(out, summary, [f.file for f in figures])


# --------------------------------------------------------------------------------------------
# Inputs


def _ids(frame: pd.DataFrame) -> np.ndarray:
    return frame["sample_id"].to_numpy(dtype=object)


def _sample_set(name: str, frame: pd.DataFrame, vectors: np.ndarray, origin: Any) -> SampleSet:
    n = len(frame)
    origins = (
        np.asarray(origin, dtype=object) if not isinstance(origin, str) else np.full(n, origin, dtype=object)
    )
    return SampleSet(
        name=name,
        ids=_ids(frame),
        vectors=vectors,
        reference=frame["ref_id"].to_numpy(dtype=object).astype(str),
        distortion=frame["distortion"].astype("Int64").fillna(NO_DISTORTION).to_numpy(np.int64),
        level=frame["level"].astype("Int64").fillna(0).to_numpy(np.int64),
        score=frame["score"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan),
        origin=origins,
    )


def _manifest_set(
    manifest: str | os.PathLike[str], frame: pd.DataFrame, emb: Embeddings, pool_emb: Embeddings | None
) -> SampleSet:
    """The manifest rows with their embeddings: originals from the corpus, upsampled from the pool."""
    origin = frame["origin"].to_numpy(dtype=object)
    upsampled = origin == "upsampled"
    ids = _ids(frame)
    vectors = np.empty((len(frame), emb.dim), dtype=np.float32)
    vectors[~upsampled] = emb.take(ids[~upsampled], what=f"manifest {manifest} (original rows)")
    if upsampled.any():
        if pool_emb is None:
            raise CurateError(
                f"{manifest}: {int(upsampled.sum())} upsampled row(s) need --pool-embeddings "
                "(their embeddings come from the pool)"
            )
        vectors[upsampled] = pool_emb.take(ids[upsampled], what=f"manifest {manifest} (upsampled rows)")
    return _sample_set("after", frame, vectors, origin)


@dataclass
class _Inputs:
    """Everything read from disk, rows sorted by sample_id."""

    corpus_df: pd.DataFrame
    refs_df: pd.DataFrame
    before: SampleSet
    emb: Embeddings
    pool_emb: Embeddings | None
    pool_df: pd.DataFrame | None
    candidates_df: pd.DataFrame | None
    manifest_df: pd.DataFrame | None
    after: SampleSet | None


def _read_inputs(
    corpus: str | os.PathLike[str],
    embeddings: str | os.PathLike[str],
    pool: str | os.PathLike[str] | None,
    pool_embeddings: str | os.PathLike[str] | None,
    manifest: str | os.PathLike[str] | None,
    types: Sequence[int] | None,
) -> _Inputs:
    """Read and check the tables and embeddings; refuse mixed encoders and uncovered samples."""
    corpus_df, _ = read_corpus(corpus)
    corpus_df = corpus_df.sort_values("sample_id", kind="stable").reset_index(drop=True)
    emb = EmbeddingsFolder(embeddings).load()
    pool_emb = None
    if pool_embeddings is not None:
        pool_emb = EmbeddingsFolder(pool_embeddings).load()
        same_encoder(emb, pool_emb)
    is_ref = corpus_df["is_reference"].to_numpy(dtype=bool)
    selected = ~is_ref
    if types is not None:
        dist = corpus_df["distortion"].astype("Int64").fillna(NO_DISTORTION).to_numpy(np.int64)
        selected &= np.isin(dist, np.asarray(list(types), dtype=np.int64))
    if not selected.any():
        what = f" of types {','.join(map(str, types))}" if types is not None else ""
        raise CurateError(f"{corpus}: no non-reference samples{what} to analyse")
    before_df = corpus_df[selected]
    before = _sample_set("before", before_df, emb.take(_ids(before_df), what="corpus"), "original")

    pool_df = candidates_df = None
    if pool is not None:
        pool_df, _ = read_corpus(pool)
        pool_df = pool_df.sort_values("sample_id", kind="stable").reset_index(drop=True)
        candidates_df = pool_df[pool_df["is_reference"].to_numpy(dtype=bool)]
        if candidates_df.empty:
            raise CurateError(f"{pool}: the pool has no reference images (is_reference); nothing to place")

    manifest_df = after = None
    if manifest is not None:
        manifest_df, _ = read_frame(manifest, "manifest")
        manifest_df = manifest_df.sort_values("sample_id", kind="stable").reset_index(drop=True)
        after = _manifest_set(manifest, manifest_df, emb, pool_emb)
    return _Inputs(
        corpus_df, corpus_df[is_ref], before, emb, pool_emb, pool_df, candidates_df, manifest_df, after
    )


def _measure_content(
    data: _Inputs, corpus: str | os.PathLike[str], device: str
) -> tuple[ContentDistribution | None, str | None]:
    """DDCUp's thresholds on the corpus references and the pool's placement (or a note why not)."""
    refs = data.refs_df
    if len(refs) < 2:
        if data.candidates_df is not None:
            raise CurateError(
                f"{corpus}: placing a pool needs at least 2 training references (is_reference rows); "
                f"found {len(refs)}"
            )
        return (
            None,
            f"content distribution needs at least 2 reference images (is_reference); found {len(refs)}",
        )
    candidate_ids = candidate_vectors = None
    if data.candidates_df is not None:
        assert data.pool_emb is not None
        candidate_ids = _ids(data.candidates_df)
        candidate_vectors = data.pool_emb.take(candidate_ids, what="pool references")
    content = content_distribution(
        _ids(refs),
        data.emb.take(_ids(refs), what="corpus references"),
        candidate_ids=candidate_ids,
        candidate_vectors=candidate_vectors,
        device=device,
    )
    return content, None


def _content_after(content: ContentDistribution | None, data: _Inputs, device: str) -> dict[str, Any] | None:
    """The references behind the manifest's rows (training references still used + new contents)."""
    manifest_df = data.manifest_df
    if content is None or manifest_df is None:
        return None
    origin = manifest_df["origin"].to_numpy(dtype=object)
    used_refs = set(manifest_df.loc[origin == "original", "ref_id"].astype(str))
    new_refs = set(manifest_df.loc[origin == "upsampled", "ref_id"].astype(str))
    kept = data.refs_df[data.refs_df["ref_id"].astype(str).isin(used_refs)]
    vectors = [data.emb.take(_ids(kept), what="corpus references")]
    ids = [_ids(kept)]
    missing_new = len(new_refs)
    if new_refs:
        if data.pool_df is None or data.pool_emb is None:
            return {"note": "the manifest adds new contents; pass --pool to measure the content spread after"}
        pool_df = data.pool_df
        is_new = pool_df["is_reference"].to_numpy(dtype=bool) & pool_df["ref_id"].astype(str).isin(new_refs)
        pool_refs = pool_df[is_new]
        vectors.append(data.pool_emb.take(_ids(pool_refs), what="pool references"))
        ids.append(_ids(pool_refs))
        missing_new = len(new_refs - set(pool_refs["ref_id"].astype(str)))
    all_ids = np.concatenate(ids)
    if all_ids.size < 2:
        return {"note": "fewer than 2 references behind the manifest"}
    after = content_distribution(all_ids, np.concatenate(vectors), device=device)
    return {
        "references": int(all_ids.size),
        "training_references_used": int(len(kept)),
        "new_contents": int(all_ids.size - len(kept)),
        "new_contents_without_pool_reference": int(missing_new),
        "novelty_threshold_r": after.novelty_threshold,
        "max_spread": after.max_spread,
        "nearest_distance": describe(after.nearest_distance),
        "_nearest": after.nearest_distance,
    }


# --------------------------------------------------------------------------------------------
# Measures


def _analyse_set(
    samples: SampleSet,
    sample: np.ndarray,
    projection: Projection,
    cluster_args: dict[str, Any],
    redundancy_args: dict[str, Any],
) -> SetAnalysis:
    points = projection.transform(samples.vectors[sample])
    labels = find_clusters(points, **cluster_args)
    clusters = cluster_structure(
        labels,
        samples.reference[sample],
        samples.distortion[sample],
        samples.level[sample],
        samples.score[sample],
    )
    scored = np.isfinite(samples.score)
    redundancy = None
    numbers = None
    if scored.sum() >= 2:
        redundancy = find_redundancy(
            samples.ids[scored],
            samples.vectors[scored],
            samples.score[scored],
            similarity_threshold=redundancy_args["similarity_threshold"],
            score_gap=redundancy_args["max_score_gap"],
            device=redundancy_args["device"],
        )
        numbers = redundancy_summary(
            redundancy, group_cap=redundancy_args["group_cap"], keep_fraction=redundancy_args["keep_fraction"]
        )
    return SetAnalysis(sample, points, labels, clusters, redundancy, numbers)


def _counts(values: np.ndarray) -> dict[str, int]:
    keys, counts = np.unique(values, return_counts=True)
    return {str(k): int(c) for k, c in zip(keys, counts, strict=True)}


def _corpus_numbers(corpus_df: pd.DataFrame, before: SampleSet) -> dict[str, Any]:
    return {
        "rows": int(len(corpus_df)),
        "references": int(corpus_df["is_reference"].to_numpy(dtype=bool).sum()),
        "contents": int(corpus_df["ref_id"].nunique()),
        "samples_analysed": len(before),
    }


def _set_numbers(samples: SampleSet, result: SetAnalysis, sample_cap: int) -> dict[str, Any]:
    scored = np.isfinite(samples.score)
    clusters = dict(result.clusters)
    clusters = {"sampled": int(result.sample.size), "of": len(samples), "cap": sample_cap, **clusters}
    return {
        "samples": len(samples),
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


def _reshape_numbers(before: SampleSet, after: SampleSet, manifest_df: pd.DataFrame) -> dict[str, Any]:
    originals = after.ids[after.origin == "original"]
    before_ids = set(before.ids.tolist())
    original_ids = set(originals.tolist())
    kinds = manifest_df["label_kind"].to_numpy(dtype=object)
    return {
        "manifest_rows": len(after),
        "originals_kept": int(sum(1 for s in originals if s in before_ids)),
        "originals_removed": int(len(before_ids - original_ids)),
        "originals_outside_analysed_corpus": int(len(original_ids - before_ids)),
        "upsampled": int((after.origin == "upsampled").sum()),
        "pseudo_labelled": int((kinds == "pseudo").sum()),
        "new_contents": int(np.unique(after.reference[after.origin == "upsampled"]).size),
    }


def _content_numbers(
    content: ContentDistribution | None, after: dict[str, Any] | None, note: str | None
) -> dict[str, Any]:
    if content is None:
        return {"note": note}
    out = content_summary(content)
    if after is not None:
        out["after"] = {k: v for k, v in after.items() if not k.startswith("_")}
    return out


def _plain(value: Any) -> Any:
    """JSON-able copy: numpy scalars to Python, NaN to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return None  # arrays are kept for figures only, never in the summary
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


# --------------------------------------------------------------------------------------------
# Figures


def _draw_figures(
    folder: Path,
    summary: dict[str, Any],
    before: SampleSet,
    before_result: SetAnalysis,
    after: SampleSet | None,
    after_result: SetAnalysis | None,
    content: ContentDistribution | None,
    content_after: dict[str, Any] | None,
    seed: int,
) -> list[Figure]:
    out: list[Figure] = []
    sets = [(before, before_result)] + ([(after, after_result)] if after is not None and after_result else [])
    titles = {"before": "corpus", "after": "manifest (after reshape)"}
    expl = summary["projection"]["map_explained_variance"]
    map_note = (
        f"PCA to 2-D ({expl:.0%} of the variance), fitted on the corpus sample; at most "
        f"{summary['params']['sample_cap']:,} points per panel (seeded sample)."
    )

    levels = sorted({int(v) for s, r in sets for v in s.level[r.sample]})
    colours = fig.level_palette(levels)
    panels = [fig.MapPanel(titles[s.name], r.points[:, :2], _level_names(s.level[r.sample])) for s, r in sets]
    fig.plot_map(
        folder / "map_level.png",
        panels,
        colours,
        title="Embeddings by distortion level",
        legend_title="level",
        seed=seed,
    )
    out.append(
        Figure(
            "map_level.png",
            "density",
            "2-D map by distortion level",
            "Each point is a sample. Mild levels tend to sit near their reference's content; "
            "strong levels drift towards their distortion type. " + map_note,
        )
    )

    codes = sorted({int(v) for s, r in sets for v in s.distortion[r.sample]}, key=lambda c: (c < 0, c))
    names = [fig.distortion_label(c) for c in codes]
    colours = dict(zip(names, fig.category_palette(len(names)), strict=True))
    if "none" in colours:
        colours["none"] = fig.NONE_COLOUR
    panels = [
        fig.MapPanel(
            titles[s.name],
            r.points[:, :2],
            np.array([fig.distortion_label(int(c)) for c in s.distortion[r.sample]], dtype=object),
        )
        for s, r in sets
    ]
    fig.plot_map(
        folder / "map_distortion.png",
        panels,
        colours,
        title="Embeddings by distortion type",
        legend_title="distortion type",
        seed=seed,
    )
    out.append(
        Figure(
            "map_distortion.png",
            "density",
            "2-D map by distortion type",
            "The same points coloured by distortion type. " + map_note,
        )
    )

    k_max = max(int(r.labels.max()) + 1 for _, r in sets)
    cluster_names = ["noise"] + [f"cluster {k}" for k in range(k_max)]
    colours = dict(zip(cluster_names[1:], fig.category_palette(max(k_max, 11))[:k_max], strict=True))
    colours = {"noise": "#d9d9d9", **colours}
    panels = [
        fig.MapPanel(
            f"{titles[s.name]}: {r.clusters['found']} clusters",
            r.points[:, :2],
            np.where(r.labels >= 0, np.char.add("cluster ", r.labels.astype(str)), "noise").astype(object),
        )
        for s, r in sets
    ]
    fig.plot_map(
        folder / "map_clusters.png",
        panels,
        colours,
        title="HDBSCAN clusters (grey: noise)",
        legend_title=None,
        seed=seed,
        legend=False,
        background="noise",
    )
    p = summary["params"]
    out.append(
        Figure(
            "map_clusters.png",
            "density",
            "HDBSCAN clusters on the map",
            f"HDBSCAN (min cluster size {p['min_cluster_size']}, {p['cluster_selection']} selection) on "
            f"{summary['projection']['dims']} "
            "PCA dimensions, drawn on the 2-D map; colours repeat when there are many clusters.",
        )
    )

    if any(row["reference_purity"] is not None for _, r in sets for row in r.clusters["purity_by_level"]):
        fig.plot_purity_by_level(
            folder / "purity_by_level.png",
            {s.name: r.clusters["purity_by_level"] for s, r in sets},
            title="What the clusters are made of, per level",
        )
        out.append(
            Figure(
                "purity_by_level.png",
                "density",
                "Cluster purity by level",
                "For the clustered samples of each level: the mean share of their cluster that "
                "comes from the cluster's main reference (solid) or main distortion type (dashed). "
                "High reference purity at mild levels and high type purity at strong levels is the "
                "clustered-features pattern of synthetic IQA data.",
            )
        )

    fig.plot_group_sizes(
        folder / "cluster_sizes.png",
        {s.name: np.array([row["size"] for row in r.clusters["table"]], dtype=np.int64) for s, r in sets},
        cap=0,
        title="HDBSCAN cluster sizes",
        what="clusters",
    )
    out.append(
        Figure(
            "cluster_sizes.png",
            "density",
            "Cluster sizes",
            "Left: how many clusters have each size; right: how many samples sit in clusters of "
            "that size (log-spaced bins).",
        )
    )

    groups = {s.name: r.redundancy.group_sizes() for s, r in sets if r.redundancy is not None}
    if groups:
        cap = p["group_cap"]
        fig.plot_group_sizes(
            folder / "redundancy_groups.png",
            groups,
            cap=cap,
            title=f"Redundancy groups (cos > {p['similarity_threshold']}, score gap < {p['max_score_gap']})",
            what="groups",
        )
        out.append(
            Figure(
                "redundancy_groups.png",
                "redundancy",
                "Redundancy group sizes",
                "Groups of samples that are near-identical in features and label (DRCDown's graph, "
                f"exact, all scored samples). DRCDown thins groups above the cap of {cap}; the right "
                "panel shows how many samples sit in groups of each size.",
            )
        )

    after_scores = None
    if after is not None:
        scored = np.isfinite(after.score)
        after_scores = {o: after.score[scored & (after.origin == o)] for o in ("original", "upsampled")}
    fig.plot_scores(folder / "scores.png", before.score[np.isfinite(before.score)], after_scores)
    out.append(
        Figure(
            "scores.png",
            "labels",
            "Score distribution",
            "Scores on 0-10 (higher = better)"
            + ("; manifest rows stacked by origin (upsampled rows carry pseudo-labels)." if after else "."),
        )
    )

    if content is not None:
        fig.plot_nn_distances(
            folder / "nn_distances.png",
            content.nearest_distance,
            content.novelty_threshold,
            content.max_spread,
            after=None if not content_after or "_nearest" not in content_after else content_after["_nearest"],
            r_after=None if not content_after else content_after.get("novelty_threshold_r"),
        )
        out.append(
            Figure(
                "nn_distances.png",
                "content",
                "Reference nearest-neighbour distances",
                "Distance from each training reference to its nearest other reference. Its median is "
                "DDCUp's novelty threshold r"
                + (
                    "; the outline shows the references behind the manifest."
                    if content_after and "_nearest" in content_after
                    else "."
                ),
            )
        )
        if content.pool is not None:
            fig.plot_pool_placement(
                folder / "pool_placement.png",
                content.pool.min_distance,
                content.pool.max_distance,
                content.novelty_threshold,
                content.max_spread,
                seed=seed,
            )
            out.append(
                Figure(
                    "pool_placement.png",
                    "content",
                    "Where the pool falls",
                    "Each pool candidate by its distance to the nearest and the farthest training "
                    "reference. Eligible for DDCUp (shaded): novel (right of r) and in distribution "
                    "(below maxT_all), before DDCUp's greedy thinning.",
                    data=POOL_TABLE,
                )
            )

    if after is not None and after_result is not None:
        _origin_map(folder, before, before_result, after, after_result, map_note, seed, out)
    return out


def _origin_map(
    folder: Path,
    before: SampleSet,
    before_result: SetAnalysis,
    after: SampleSet,
    after_result: SetAnalysis,
    map_note: str,
    seed: int,
    out: list[Figure],
) -> None:
    kept_ids = set(after.ids[after.origin == "original"].tolist())
    b_ids = before.ids[before_result.sample]
    b_status = np.array(
        ["kept original" if s in kept_ids else "removed by reshape" for s in b_ids], dtype=object
    )
    a_status = np.where(after.origin[after_result.sample] == "upsampled", "upsampled", "kept original")
    removed = int((b_status == "removed by reshape").sum())
    added = int((a_status == "upsampled").sum())
    fig.plot_map(
        folder / "map_origin.png",
        [
            fig.MapPanel(f"corpus: {removed:,} removed", before_result.points[:, :2], b_status),
            fig.MapPanel(
                f"manifest: {added:,} upsampled", after_result.points[:, :2], a_status.astype(object)
            ),
        ],
        fig.ORIGIN_COLOURS,
        title="What reshaping did",
        legend_title="origin",
        seed=seed,
        foreground=("removed by reshape", "upsampled"),
    )
    out.append(
        Figure(
            "map_origin.png",
            "reshape",
            "What reshaping did",
            "Left: the corpus samples, those the manifest no longer holds drawn on top. Right: the manifest's "
            "rows, the upsampled ones (new contents with pseudo-labels) drawn on top. Counts are of the "
            "points drawn. " + map_note,
        )
    )


def _write_pool_table(path: Path, content: ContentDistribution, candidates_df: pd.DataFrame) -> None:
    """One row per pool candidate: its distances to the training references and the two tests."""
    p = content.pool
    assert p is not None
    table = pd.DataFrame(
        {
            "sample_id": p.candidate_ids,
            "ref_id": candidates_df["ref_id"].to_numpy(dtype=object),
            "min_distance": p.min_distance,
            "max_distance": p.max_distance,
            "novel": p.novel,
            "in_distribution": p.in_distribution,
            "eligible": p.eligible,
        }
    )
    atomic_write_text(path, table.to_csv(index=False, float_format="%.8f", lineterminator="\n"))


def _level_names(levels: np.ndarray) -> np.ndarray:
    return np.array([f"level {v}" if v > 0 else "no level" for v in levels], dtype=object)


# --------------------------------------------------------------------------------------------
# The output folder


def _check_output_dir(out: Path) -> None:
    """Refuse to replace anything but an earlier report (or an empty folder)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise CurateError(f"-o {out}: exists and is not a folder")
    if not any(out.iterdir()):
        return
    summary = out / "summary.json"
    try:
        previous = json.loads(summary.read_text())
    except (OSError, ValueError):
        previous = None
    if not isinstance(previous, dict) or previous.get("format") != REPORT_FORMAT:
        raise CurateError(f"-o {out}: folder is not empty and holds no curate analyze report; choose another")


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished folder into place, replacing an earlier report only once the new one is whole."""
    if out.exists():
        _check_output_dir(out)
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        try:
            os.replace(tmp, out)
        except BaseException:
            os.replace(old, out)
            raise
        with contextlib.suppress(OSError):
            shutil.rmtree(old)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
