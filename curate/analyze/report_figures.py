"""The report's figures: which are drawn, from what, and with what caption.

Each builder takes the measures and returns its figure (a matplotlib figure from
:mod:`curate.analyze.figures`) with its :class:`~curate.analyze.html.Figure` (file name, section,
title, caption); :func:`report_figures` yields them in page order, and the report writes each one
before the next is drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from curate.analyze import figures as fig
from curate.analyze.examples import (
    SELECTED,
    CandidateExamples,
    Examples,
    GalleryChoice,
    GroupExample,
    Thumb,
    ThumbnailReader,
)
from curate.analyze.html import Figure
from curate.analyze.inputs import AnalysisInputs, SampleSet
from curate.analyze.measure import Measures, SetAnalysis

POOL_TABLE = "pool_placement.csv"
# Pixels per gallery cell: one block of rows, or two side by side (more types than ONE_BLOCK_TYPES).
GALLERY_CELL_WIDTH = (160, 120)
MISSING = "image missing"
TITLES = {"before": "corpus", "after": "manifest (after reshape)"}

Built = tuple[Any, Figure]
Sets = list[tuple[SampleSet, SetAnalysis]]


def _level_names(levels: np.ndarray) -> np.ndarray:
    return np.array([f"level {v}" if v > 0 else "no level" for v in levels], dtype=object)


def _map_note(summary: dict[str, Any]) -> str:
    expl = summary["projection"]["map_explained_variance"]
    return (
        f"PCA to 2-D ({expl:.0%} of the variance), fitted on the corpus sample; at most "
        f"{summary['params']['sample_cap']:,} points per panel (seeded sample)."
    )


def map_level(sets: Sets, summary: dict[str, Any], seed: int) -> Built:
    levels = sorted({int(v) for s, r in sets for v in s.level[r.sample]})
    panels = [fig.MapPanel(TITLES[s.name], r.points[:, :2], _level_names(s.level[r.sample])) for s, r in sets]
    drawn = fig.plot_map(
        panels, fig.level_palette(levels), title="Embeddings by distortion level", legend_title="level", seed=seed
    )
    return drawn, Figure(
        "map_level.png",
        "density",
        "2-D map by distortion level",
        "Each point is a sample. Mild levels tend to sit near their reference's content; "
        "strong levels drift towards their distortion type. " + _map_note(summary),
    )


def map_distortion(sets: Sets, summary: dict[str, Any], seed: int) -> Built:
    codes = sorted({int(v) for s, r in sets for v in s.distortion[r.sample]}, key=lambda c: (c < 0, c))
    names = [fig.distortion_label(c) for c in codes]
    colours = dict(zip(names, fig.category_palette(len(names)), strict=True))
    if "none" in colours:
        colours["none"] = fig.NONE_COLOUR
    panels = [
        fig.MapPanel(
            TITLES[s.name],
            r.points[:, :2],
            np.array([fig.distortion_label(int(c)) for c in s.distortion[r.sample]], dtype=object),
        )
        for s, r in sets
    ]
    drawn = fig.plot_map(
        panels, colours, title="Embeddings by distortion type", legend_title="distortion type", seed=seed
    )
    return drawn, Figure(
        "map_distortion.png",
        "density",
        "2-D map by distortion type",
        "The same points coloured by distortion type. " + _map_note(summary),
    )


def map_clusters(sets: Sets, summary: dict[str, Any], seed: int) -> Built:
    k_max = max(int(r.labels.max()) + 1 for _, r in sets)
    cluster_names = ["noise"] + [f"cluster {k}" for k in range(k_max)]
    colours = dict(zip(cluster_names[1:], fig.category_palette(max(k_max, 11))[:k_max], strict=True))
    colours = {"noise": "#d9d9d9", **colours}
    panels = [
        fig.MapPanel(
            f"{TITLES[s.name]}: {r.clusters['found']} clusters",
            r.points[:, :2],
            np.where(r.labels >= 0, np.char.add("cluster ", r.labels.astype(str)), "noise").astype(object),
        )
        for s, r in sets
    ]
    drawn = fig.plot_map(
        panels,
        colours,
        title="HDBSCAN clusters (grey: noise)",
        legend_title=None,
        seed=seed,
        legend=False,
        background="noise",
    )
    p = summary["params"]
    return drawn, Figure(
        "map_clusters.png",
        "density",
        "HDBSCAN clusters on the map",
        f"HDBSCAN (min cluster size {p['min_cluster_size']}, {p['cluster_selection']} selection) on "
        f"{summary['projection']['dims']} "
        "PCA dimensions, drawn on the 2-D map; colours repeat when there are many clusters.",
    )


def purity_by_level(sets: Sets) -> Built | None:
    if not any(row["reference_purity"] is not None for _, r in sets for row in r.clusters["purity_by_level"]):
        return None
    drawn = fig.plot_purity_by_level(
        {s.name: r.clusters["purity_by_level"] for s, r in sets}, title="What the clusters are made of, per level"
    )
    return drawn, Figure(
        "purity_by_level.png",
        "density",
        "Cluster purity by level",
        "For the clustered samples of each level: the mean share of their cluster that "
        "comes from the cluster's main reference (solid) or main distortion type (dashed). "
        "High reference purity at mild levels and high type purity at strong levels is the "
        "clustered-features pattern of synthetic IQA data.",
    )


def cluster_sizes(sets: Sets) -> Built:
    drawn = fig.plot_group_sizes(
        {s.name: np.array([row["size"] for row in r.clusters["table"]], dtype=np.int64) for s, r in sets},
        cap=0,
        title="HDBSCAN cluster sizes",
        what="clusters",
    )
    return drawn, Figure(
        "cluster_sizes.png",
        "density",
        "Cluster sizes",
        "Left: how many clusters have each size; right: how many samples sit in clusters of "
        "that size (log-spaced bins).",
    )


def redundancy_groups(sets: Sets, summary: dict[str, Any]) -> Built | None:
    groups = {s.name: r.redundancy.group_sizes() for s, r in sets if r.redundancy is not None}
    if not groups:
        return None
    p = summary["params"]
    cap = p["group_cap"]
    drawn = fig.plot_group_sizes(
        groups,
        cap=cap,
        title=f"Redundancy groups (cos > {p['similarity_threshold']}, score gap < {p['score_gap']})",
        what="groups",
    )
    return drawn, Figure(
        "redundancy_groups.png",
        "redundancy",
        "Redundancy group sizes",
        "Groups of samples that are near-identical in features and label (DRCDown's graph, "
        f"exact, all scored samples). DRCDown thins groups above the cap of {cap}; the right "
        "panel shows how many samples sit in groups of each size.",
    )


def scores(before: SampleSet, after: SampleSet | None) -> Built:
    after_scores = None
    if after is not None:
        scored = np.isfinite(after.score)
        after_scores = {o: after.score[scored & (after.origin == o)] for o in ("original", "upsampled")}
    drawn = fig.plot_scores(before.score[np.isfinite(before.score)], after_scores)
    return drawn, Figure(
        "scores.png",
        "labels",
        "Score distribution",
        "Scores on 0-10 (higher = better)"
        + ("; manifest rows stacked by origin (upsampled rows carry pseudo-labels)." if after else "."),
    )


def nn_distances(measures: Measures) -> Built | None:
    content = measures.content
    if content is None:
        return None
    outline = measures.content_after is not None and measures.content_after.nearest_distance is not None
    drawn = fig.plot_nn_distances(
        content.nearest_distance,
        content.novelty_threshold,
        content.max_spread,
        after=measures.content_after.nearest_distance if measures.content_after is not None else None,
        r_after=measures.content_after.r if measures.content_after is not None else None,
    )
    return drawn, Figure(
        "nn_distances.png",
        "content",
        "Reference nearest-neighbour distances",
        "Distance from each training reference to its nearest other reference. Its median is "
        "DDCUp's novelty threshold r"
        + ("; the outline shows the references behind the manifest." if outline else "."),
    )


def pool_placement(measures: Measures, seed: int) -> Built | None:
    content = measures.content
    if content is None or content.pool is None:
        return None
    p = content.pool
    drawn = fig.plot_pool_placement(
        p.nearest_distance,
        p.farthest_distance,
        p.novel,
        p.in_distribution,
        content.novelty_threshold,
        content.max_spread,
        seed=seed,
    )
    return drawn, Figure(
        "pool_placement.png",
        "content",
        "Where the pool falls",
        "Each pool candidate by its distance to the nearest and the farthest training "
        "reference. Eligible for DDCUp (shaded): novel (right of r) and in distribution "
        "(below maxT_all), before DDCUp's greedy thinning.",
        data=POOL_TABLE,
    )


def map_origin(data: AnalysisInputs, measures: Measures, summary: dict[str, Any], seed: int) -> Built | None:
    before, after = data.before, data.after
    before_result, after_result = measures.before, measures.after
    if after is None or after_result is None:
        return None
    kept_ids = set(after.ids[after.origin == "original"].tolist())
    b_ids = before.ids[before_result.sample]
    b_status = np.array(
        ["kept original" if s in kept_ids else "removed by reshape" for s in b_ids], dtype=object
    )
    a_status = np.where(after.origin[after_result.sample] == "upsampled", "upsampled", "kept original")
    removed = int((b_status == "removed by reshape").sum())
    added = int((a_status == "upsampled").sum())
    drawn = fig.plot_map(
        [
            fig.MapPanel(f"corpus: {removed:,} removed", before_result.points[:, :2], b_status),
            fig.MapPanel(f"manifest: {added:,} upsampled", after_result.points[:, :2], a_status.astype(object)),
        ],
        fig.ORIGIN_COLOURS,
        title="What reshaping did",
        legend_title="origin",
        seed=seed,
        foreground=("removed by reshape", "upsampled"),
    )
    return drawn, Figure(
        "map_origin.png",
        "reshape",
        "What reshaping did",
        "Left: the corpus samples, those the manifest no longer holds drawn on top. Right: the manifest's "
        "rows, the upsampled ones (new contents with pseudo-labels) drawn on top. Counts are of the "
        "points drawn. " + _map_note(summary),
    )


def gallery(choice: GalleryChoice | None, reader: ThumbnailReader) -> Built | None:
    """One reference under every analysed type and level, from the corpus's own images."""
    if choice is None:
        return None
    from curate.distort.gallery import ONE_BLOCK_TYPES, gallery_sheet

    reference = reader.read(choice.reference)
    images = {cell: reader.read(thumb) for cell, thumb in choice.cells.items()}
    unreadable = sum(1 for image in images.values() if image is None) + (reference is None)
    absent = len(choice.types) * len(choice.levels) - len(choice.cells)
    sheet = gallery_sheet(
        reference,
        images,
        types=choice.types,
        levels=choice.levels,
        title=f"{choice.reference.sample_id}: the corpus's own images, analysed types x levels",
        cell_width=GALLERY_CELL_WIDTH[len(choice.types) > ONE_BLOCK_TYPES],
        missing_label=MISSING,
    )
    notes = []
    if absent:
        notes.append(f"{absent} blank cell(s): the corpus has no image of this reference at that type and level.")
    if unreadable:
        notes.append(f"{unreadable} image(s) could not be read (grey, labelled); see summary.json.")
    return sheet, Figure(
        "gallery.png",
        "distortions",
        "The distortion types analysed",
        f"Reference {choice.reference.sample_id} (the reference with the most analysed images; ties by a "
        "seeded hash) under each analysed type (rows) and level (columns), taken from the corpus itself: "
        "these are the pixels the numbers below describe. " + " ".join(notes),
    )


def _cell(thumb: Thumb, reader: ThumbnailReader, frame: str | None) -> fig.ImageCell:
    return fig.ImageCell(reader.read(thumb), thumb.caption, frame, MISSING)


def candidate_thumbnails(examples: CandidateExamples, reader: ThumbnailReader, r: float | None) -> Built | None:
    """The candidates of one DDCUp reason beside their nearest training references."""
    if not examples.rows:
        return None
    kept = examples.reason == SELECTED
    rows = []
    for row in examples.rows:
        cells = [_cell(row.candidate, reader, "kept" if kept else "dropped")]
        cells += [_cell(ref, reader, None) for ref in row.references]
        if row.rival is not None:
            cells.append(_cell(row.rival, reader, "kept"))
        rows.append(cells)
    shown = len(examples.rows)
    drawn = fig.plot_image_grid(
        rows, title=f"Pool candidates {examples.words}: {shown} of {examples.total:,} shown"
    )
    threshold = "" if r is None else f" (r = {r:.4f})"
    why = {
        SELECTED: "DDCUp kept these: novel (nearest training reference farther than r) and in distribution, "
        "and not too close to another kept candidate; their distorted versions join the manifest.",
        "ddc_not_novel": f"Refused: a training reference lies within r{threshold}; the content is already there.",
        "ddc_out_of_distribution": "Refused: novel, but at least maxT_all from some training reference, "
        "outside the spread of the training contents.",
        "ddc_too_close_to_kept": "Refused by the greedy thinning: eligible, but closer than r to the kept "
        "candidate shown last in its row.",
    }[examples.reason]
    if examples.every_candidate:
        why = ("The manifest was reshaped with --candidates all (an ablation): every pool candidate was added, "
               "with no DDCUp selection; their distorted versions join the manifest.")
    suffix = examples.reason.removeprefix("ddc_")
    return drawn, Figure(
        f"candidates_{suffix}.png",
        "candidates",
        f"Candidates {examples.words}",
        f"{why} Each row: the candidate (frame: green kept, red refused), then its nearest training "
        "references with their cosine distance d. Shown: a fixed number per reason, chosen by a seeded "
        "hash of sample_id.",
    )


def group_thumbnails(group: GroupExample | None, reader: ThumbnailReader) -> Built | None:
    """Kept and dropped members of the reshape's largest redundancy group."""
    if group is None:
        return None
    rows = [[_cell(t, reader, "kept") for t in group.kept], [_cell(t, reader, "dropped") for t in group.dropped]]
    labels = [f"kept\n{len(group.kept)} of {group.kept_total:,}", f"dropped\n{len(group.dropped)} of {group.dropped_total:,}"]
    if not group.dropped:
        rows, labels = rows[:1], labels[:1]
    drawn = fig.plot_image_grid(
        rows,
        title=f"The reshape's largest redundancy group ({group.size:,} members): "
        f"{group.kept_total:,} kept, {group.dropped_total:,} dropped",
        row_labels=labels,
    )
    rule = (
        f"DRCDown keeps {group.allowed:,} of a group of {group.size:,}: all up to cap {group.cap}, "
        f"else max(cap, floor({group.size:,} x {group.keep_fraction:g}))"
    )
    return drawn, Figure(
        "largest_group.png",
        "redundancy",
        "The largest redundancy group, kept and dropped",
        f"Members of group {group.group_id} of the manifest's decisions table: samples near-identical in features "
        f"and label. {rule}; a later --target-size may trim or add back members (the reason under each). "
        "Shown: at most a fixed number of each, chosen by a seeded hash of sample_id."
        + ("" if group.dropped else " No member was dropped."),
    )


def report_figures(
    data: AnalysisInputs,
    measures: Measures,
    summary: dict[str, Any],
    seed: int,
    examples: Examples | None = None,
    reader: ThumbnailReader | None = None,
) -> Iterator[Built]:
    """Every figure of the report, in page order, drawn one at a time; ``examples`` are the
    pictures (their images read through ``reader``)."""
    sets: Sets = [(data.before, measures.before)]
    if data.after is not None and measures.after is not None:
        sets.append((data.after, measures.after))
    builders = (
        lambda: map_level(sets, summary, seed),
        lambda: map_distortion(sets, summary, seed),
        lambda: map_clusters(sets, summary, seed),
        lambda: purity_by_level(sets),
        lambda: cluster_sizes(sets),
        lambda: redundancy_groups(sets, summary),
        lambda: scores(data.before, data.after),
        lambda: nn_distances(measures),
        lambda: pool_placement(measures, seed),
        lambda: map_origin(data, measures, summary, seed),
    )
    if examples is not None:
        reader = reader or ThumbnailReader()
        r = measures.content.novelty_threshold if measures.content is not None else None
        builders += (
            lambda: gallery(examples.gallery, reader),
            *(lambda ex=ex: candidate_thumbnails(ex, reader, r) for ex in examples.candidates),
            lambda: group_thumbnails(examples.group, reader),
        )
    for build in builders:
        built = build()
        if built is not None:
            yield built
