"""The report's plots (matplotlib, Agg). Each ``plot_*`` function draws one figure from plain
arrays and returns it; :func:`save_png` writes it (or an image sheet drawn with Pillow).

Figures are drawn with fixed sizes, fonts and seeded point order, so the same data gives the same
PNG bytes. Scatter maps draw points in a seeded random order so that no class hides the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.distort.registry import DISTORTIONS

DPI = 100
NONE_COLOUR = "#b0b0b0"
SET_COLOURS = {"before": "#4c72b0", "after": "#dd8452"}
ORIGIN_COLOURS = {
    "kept original": "#9ab7d8",
    "removed by reshape": "#c0392b",
    "upsampled": "#f08c00",
}
ROW_ORIGIN_COLOURS = {"original": "#4c72b0", "upsampled": "#e1812c"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"font.size": 10, "axes.titlesize": 11, "legend.fontsize": 8, "svg.hashsalt": "curate"}
    )
    return plt


def save_png(fig: Any, path: Path) -> None:
    """Write ``fig`` (a matplotlib figure, or a Pillow image sheet) as PNG and close it. No
    timestamp or version in the PNG, so identical data gives identical bytes across releases."""
    from PIL import Image

    if isinstance(fig, Image.Image):
        from curate.distort.gallery import save_sheet

        save_sheet(fig, path)
        return
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    _pyplot().close(fig)


def distortion_label(code: int) -> str:
    """Legend text for a KADID type number: ``"10 JPEG"``; ``"none"`` for a negative code (references)."""
    if code < 0:
        return "none"
    distortion = DISTORTIONS.get(code)
    return f"{code} {distortion.label}" if distortion else f"type {code}"


def category_palette(n: int) -> list[Any]:
    """``n`` distinguishable colours (tab20, then tab20b/tab20c for more)."""
    plt = _pyplot()
    base = list(plt.get_cmap("tab10").colors)
    if n > len(base):
        base = (
            list(plt.get_cmap("tab20").colors)
            + list(plt.get_cmap("tab20b").colors)
            + list(plt.get_cmap("tab20c").colors)
        )
    return [base[i % len(base)] for i in range(n)]


def level_palette(levels: Sequence[int]) -> dict[str, Any]:
    """Levels 1.. on a sequential scale (light = mild, dark = strong); no level -> grey."""
    plt = _pyplot()
    cmap = plt.get_cmap("viridis_r")
    lv = sorted(int(v) for v in levels if int(v) > 0)
    span = max(1, len(lv) - 1)
    out = {f"level {v}": cmap(0.1 + 0.85 * k / span) for k, v in enumerate(lv)}
    if any(int(v) <= 0 for v in levels):
        out["no level"] = NONE_COLOUR
    return out


@dataclass(frozen=True)
class MapPanel:
    """One scatter panel: ``xy`` [n, 2] map coordinates and a category name per point."""

    title: str
    xy: np.ndarray
    category: np.ndarray


def plot_map(
    panels: Sequence[MapPanel],
    colours: Mapping[str, Any],
    *,
    title: str,
    legend_title: str | None,
    seed: int,
    legend: bool = True,
    background: str | None = None,
    foreground: Sequence[str] = (),
) -> Any:
    """Scatter maps side by side (shared axes), points coloured by category.

    ``colours`` maps category -> colour; its order is the legend order. ``background`` names a
    category drawn first, small and faint (noise); ``foreground`` categories are drawn last, on top
    (what a reader must not miss: removed or added samples). Others are drawn in a seeded order.
    """
    plt = _pyplot()
    width = 5.2 * len(panels) + (1.8 if legend else 0.2)
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 5.0), sharex=True, sharey=True, squeeze=False)
    rng = np.random.default_rng(seed)
    for ax, panel in zip(axes[0], panels, strict=True):
        n = panel.xy.shape[0]
        size = float(np.clip(1500.0 / max(n, 1) ** 0.75, 2.0, 24.0))
        order = rng.permutation(n)
        cat = np.asarray(panel.category, dtype=object)[order]
        xy = panel.xy[order]
        if background is not None:
            bg = cat == background
            ax.scatter(
                xy[bg, 0],
                xy[bg, 1],
                s=size * 0.6,
                c=[colours[background]],
                alpha=0.5,
                linewidths=0,
                rasterized=True,
            )
            xy, cat = xy[~bg], cat[~bg]
        if foreground:
            # stable sort: foreground categories last, the seeded order kept within each layer
            layer = np.isin(cat, list(foreground)).astype(np.int8)
            last = np.argsort(layer, kind="stable")
            xy, cat = xy[last], cat[last]
        lookup = {name: k for k, name in enumerate(colours)}
        palette = np.array([_rgba(colours[name]) for name in colours]).reshape(-1, 4)
        codes = np.fromiter((lookup[c] for c in cat), dtype=np.int64, count=cat.size)
        ax.scatter(xy[:, 0], xy[:, 1], s=size, c=palette[codes], alpha=0.75, linewidths=0, rasterized=True)
        ax.set_title(f"{panel.title} (n = {n:,})")
        ax.set_xlabel("PC 1")
        ax.grid(True, lw=0.3, alpha=0.5)
    axes[0][0].set_ylabel("PC 2")
    fig.suptitle(title)
    right = 1.0 - 0.2 / width
    if legend:
        handles = [
            plt.Line2D([], [], marker="o", ls="", markersize=6, color=colours[name], label=name)
            for name in colours
            if any((np.asarray(p.category, dtype=object) == name).any() for p in panels)
        ]
        ncol = 1 if len(handles) <= 16 else 2
        leg = fig.legend(
            handles=handles,
            title=legend_title,
            loc="center right",
            ncol=ncol,
            frameon=False,
            fontsize=8 if ncol == 1 else 7,
            title_fontsize=9,
        )
        # leave exactly the legend's width (plus a little) to its left
        legend_width = leg.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi
        right = 1.0 - (legend_width + 0.15) / width
    fig.tight_layout(rect=(0, 0, right, 0.96))
    return fig


def _rgba(colour: Any) -> tuple[float, float, float, float]:
    from matplotlib.colors import to_rgba

    return to_rgba(colour)


def _log_bins(smallest: int, largest: int) -> np.ndarray:
    """Integer bin edges, log-spaced from ``smallest`` to ``largest`` (each size in exactly one bin)."""
    lo, hi = max(1, int(smallest)), max(int(smallest) + 1, int(largest))
    edges = np.unique(np.round(np.logspace(np.log10(lo), np.log10(hi + 1), 24)).astype(int))
    return np.unique(np.r_[lo, edges, hi + 1]) - 0.5


def _thousands() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.0f}")


def _compact(value: float) -> str:
    if value < 1:
        return ""
    if value < 1000:
        return f"{value:.0f}"
    if value < 1_000_000:
        return f"{value / 1000:g}k"
    return f"{value / 1_000_000:g}M"


def _integer_log_axis(ax: Any, largest: int) -> None:
    """Log x axis with plain, short tick labels (1, 2, 5, 10, ..., 1k); fewer ticks for wide ranges."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    subs = (1.0, 2.0, 5.0) if largest <= 2000 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _compact(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_group_sizes(sets: Mapping[str, np.ndarray], *, cap: int, title: str, what: str) -> Any:
    """Two panels: how many groups have each size, and how many samples sit in groups of that size.

    ``sets`` maps a set name (before / after) to its group sizes [n_groups]; log-spaced size bins.
    """
    plt = _pyplot()
    fig, (ax_groups, ax_samples) = plt.subplots(1, 2, figsize=(11, 4.4))
    present = [s for s in sets.values() if s.size]
    smallest = min([int(s.min()) for s in present] + ([cap] if cap else []) + [10**9])
    largest = max([int(s.max()) for s in present] + [cap + 1 if cap else 2])
    bins = _log_bins(min(smallest, largest - 1), largest)
    for name, sizes in sets.items():
        colour = SET_COLOURS.get(name, None)
        ax_groups.hist(
            sizes, bins=bins, histtype="step", lw=1.8, color=colour, label=f"{name}: {sizes.size:,} {what}"
        )
        ax_samples.hist(
            sizes,
            bins=bins,
            weights=sizes,
            histtype="step",
            lw=1.8,
            color=colour,
            label=f"{name}: {int(sizes.sum()):,} samples",
        )
    for ax, ylabel in ((ax_groups, f"number of {what}"), (ax_samples, "samples in them")):
        _integer_log_axis(ax, largest)
        ax.yaxis.set_major_formatter(_thousands())
        ax.set_xlabel(f"{what[:-1]} size (members, log scale)")
        ax.set_ylabel(ylabel)
        if cap:
            ax.axvline(cap + 0.5, color="#c44e52", ls="--", lw=1.2, label=f"cap {cap}")
        ax.grid(True, lw=0.3, alpha=0.5)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def plot_purity_by_level(sets: Mapping[str, Sequence[Mapping[str, Any]]], *, title: str) -> Any:
    """Mean cluster purity by reference (solid) and by distortion type (dashed) per level."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for name, rows in sets.items():
        rows = [r for r in rows if r["reference_purity"] is not None]
        if not rows:
            continue
        lv = [r["level"] for r in rows]
        colour = SET_COLOURS.get(name)
        ax.plot(lv, [r["reference_purity"] for r in rows], "-o", color=colour, label=f"{name}: by reference")
        ax.plot(
            lv,
            [r["distortion_purity"] for r in rows],
            "--s",
            color=colour,
            label=f"{name}: by distortion type",
        )
    ax.set_xlabel("distortion level (1 = mildest)")
    ax.set_ylabel("mean purity of the samples' clusters")
    ax.set_ylim(0, 1.05)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_nn_distances(
    before: np.ndarray,
    r: float,
    max_spread: float,
    *,
    after: np.ndarray | None = None,
    r_after: float | None = None,
) -> Any:
    """Histogram of each reference's distance to its nearest other reference, with r (and after)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.2))
    values = np.concatenate([before] + ([after] if after is not None else []) + [np.array([r])])
    lo, hi = float(values.min()), float(values.max())
    pad = max(0.05 * (hi - lo), 1e-3)
    bins = np.linspace(max(0.0, lo - pad), hi + pad, 41)
    ax.hist(
        before,
        bins=bins,
        color=SET_COLOURS["before"],
        alpha=0.55,
        label=f"training references ({before.size:,})",
    )
    ax.axvline(r, color=SET_COLOURS["before"], lw=2, ls="--", label=f"r = median = {r:.4f}")
    if after is not None and r_after is not None:
        ax.hist(
            after,
            bins=bins,
            histtype="step",
            lw=2,
            color=SET_COLOURS["after"],
            label=f"references behind\nthe manifest ({after.size:,})",
        )
        ax.axvline(r_after, color=SET_COLOURS["after"], lw=2, ls=":", label=f"their median = {r_after:.4f}")
    ax.set_xlabel("cosine distance to the nearest other reference")
    ax.set_ylabel("references")
    ax.set_title(f"Content spread of the references (largest pairwise distance maxT_all = {max_spread:.4f})")
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def plot_pool_placement(
    min_distance: np.ndarray,
    max_distance: np.ndarray,
    novel: np.ndarray,
    inside: np.ndarray,
    r: float,
    max_spread: float,
    *,
    seed: int,
) -> Any:
    """Pool candidates by distance to their nearest (x) and farthest (y) training reference,
    coloured by DDCUp's tests (``novel``, ``inside``: the distribution) as placed by
    :func:`curate.reshape.upsample.place_candidates`."""
    plt = _pyplot()
    status = np.where(
        novel & inside,
        "eligible",
        np.where(
            novel,
            "novel, out of distribution",
            np.where(inside, "not novel", "neither novel nor in distribution"),
        ),
    )
    colours = {
        "eligible": "#55a868",
        "not novel": "#8c8c8c",
        "novel, out of distribution": "#c44e52",
        "neither novel nor in distribution": "#8172b3",
    }
    fig, ax = plt.subplots(figsize=(8, 5.2))
    x_lo = min(float(min_distance.min()), r) - 0.02
    x_hi = max(float(min_distance.max()), r) + 0.02
    y_lo = min(float(max_distance.min()), max_spread) - 0.02
    y_hi = max(float(max_distance.max()), max_spread) + 0.02
    ax.axvspan(r, x_hi, ymin=0, ymax=(max_spread - y_lo) / (y_hi - y_lo), color="#55a868", alpha=0.08, lw=0)
    order = np.random.default_rng(seed).permutation(status.size)
    size = float(np.clip(3000.0 / max(status.size, 1) ** 0.75, 2.0, 40.0))
    for name, colour in colours.items():
        sel = order[status[order] == name]
        if sel.size:
            ax.scatter(
                min_distance[sel],
                max_distance[sel],
                s=size,
                color=colour,
                alpha=0.8,
                linewidths=0,
                label=f"{name} ({sel.size:,})",
                rasterized=True,
            )
    ax.axvline(r, color="black", ls="--", lw=1.2)
    ax.axhline(max_spread, color="black", ls=":", lw=1.2)
    ax.annotate(f"r = {r:.4f}", (r, y_lo), xytext=(4, 6), textcoords="offset points", fontsize=9)
    ax.annotate(
        f"maxT_all = {max_spread:.4f}",
        (x_lo, max_spread),
        xytext=(4, 4),
        textcoords="offset points",
        fontsize=9,
    )
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel("distance to the nearest training reference (novel when > r)")
    ax.set_ylabel("distance to the farthest training reference\n(in distribution when < maxT_all)")
    ax.set_title(f"Where the {status.size:,} pool candidates fall")
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def plot_scores(before: np.ndarray, after: Mapping[str, np.ndarray] | None) -> Any:
    """Score histograms: the corpus samples, and the manifest's rows stacked by origin."""
    plt = _pyplot()
    panels = 1 if after is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.0), sharex=True, sharey=True, squeeze=False)
    all_scores = [before] + (list(after.values()) if after else [])
    lo = min([float(v.min()) for v in all_scores if v.size] + [0.0])
    hi = max([float(v.max()) for v in all_scores if v.size] + [10.0])
    bins = np.linspace(lo, hi, 41)
    ax = axes[0][0]
    ax.hist(before, bins=bins, color=SET_COLOURS["before"], alpha=0.8)
    ax.set_title(f"corpus samples (n = {before.size:,})")
    ax.set_ylabel("samples")
    ax.yaxis.set_major_formatter(_thousands())
    if after is not None:
        ax = axes[0][1]
        names = [k for k, v in after.items() if v.size]
        ax.hist(
            [after[k] for k in names],
            bins=bins,
            stacked=True,
            label=names,
            color=[ROW_ORIGIN_COLOURS.get(k, SET_COLOURS["after"]) for k in names],
            alpha=0.85,
        )
        ax.set_title(f"manifest rows (n = {sum(v.size for v in after.values()):,})")
        ax.legend(loc="upper right")
    for ax in axes[0]:
        ax.set_xlabel("score (0-10, higher = better)")
        ax.grid(True, lw=0.3, alpha=0.5)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Image grids (thumbnails)

MISSING_FACE = "#ececec"
FRAME_COLOURS = {"kept": "#2e7d32", "dropped": "#c62828", "candidate": "#1f4e79", None: "#cccccc"}


@dataclass(frozen=True)
class ImageCell:
    """One thumbnail: ``image`` HxWx3 uint8 (None: a labelled blank saying ``missing``), its
    ``caption`` (lines) and a ``frame`` kind (a key of :data:`FRAME_COLOURS`)."""

    image: np.ndarray | None
    caption: str
    frame: str | None = None
    missing: str = "image missing"


def plot_image_grid(
    rows: Sequence[Sequence[ImageCell | None]],
    *,
    title: str,
    row_labels: Sequence[str] | None = None,
    cell_width: float = 1.9,
) -> Any:
    """Thumbnails in rows, laid out at fixed positions; a None cell is left empty.

    Every image keeps its aspect inside a cell ``cell_width`` inches wide (cells as tall as the
    images' median aspect makes them), its caption below it and a frame coloured by kind;
    ``row_labels`` are written left of the rows.
    """
    plt = _pyplot()
    cells = [c for r in rows for c in r if c is not None]
    aspects = [c.image.shape[0] / c.image.shape[1] for c in cells if c.image is not None]
    aspect = float(np.clip(np.median(aspects), 0.5, 1.5)) if aspects else 0.75
    image_h = cell_width * aspect
    line = 0.15  # inches per caption line (8 pt)
    gap, top, side = 0.12, 0.45, 0.1
    label_w = 1.0 if row_labels else 0.0
    n_cols = max(1, max((len(r) for r in rows), default=1))
    captions = [max((c.caption.count("\n") + 1 for c in r if c is not None), default=1) for r in rows]
    heights = [image_h + line * n + 0.1 for n in captions]
    width = side * 2 + label_w + n_cols * cell_width + (n_cols - 1) * gap
    height = top + sum(heights) + gap * max(0, len(rows) - 1) + side
    fig = plt.figure(figsize=(width, height))
    fig.suptitle(title, fontsize=10, y=1 - 0.12 / height, va="top")
    y = height - top
    for i, row in enumerate(rows):
        y_image = y - image_h
        if row_labels is not None and i < len(row_labels):
            fig.text(side / width, (y_image + image_h / 2) / height, row_labels[i], fontsize=8,
                     fontweight="bold", va="center", ha="left")
        for j, cell in enumerate(row):
            if cell is None:
                continue
            x = side + label_w + j * (cell_width + gap)
            ax = fig.add_axes((x / width, y_image / height, cell_width / width, image_h / height))
            ax.set_xticks([])
            ax.set_yticks([])
            if cell.image is not None:
                ax.imshow(cell.image, interpolation="lanczos")
            else:
                ax.set_facecolor(MISSING_FACE)
                ax.text(0.5, 0.5, cell.missing, ha="center", va="center", fontsize=8, color="#555555",
                        transform=ax.transAxes)
            colour = FRAME_COLOURS.get(cell.frame, FRAME_COLOURS[None])
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(2.0 if cell.frame else 0.8)
            fig.text((x + cell_width / 2) / width, (y_image - 0.04) / height, cell.caption, fontsize=8,
                     ha="center", va="top", linespacing=1.15)
        y -= heights[i] + gap
    return fig
