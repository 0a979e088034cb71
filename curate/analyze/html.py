"""``index.html`` of a report: one self-contained page (inline style, no scripts, relative image links)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from curate.analyze.figures import distortion_label
from curate.compare.report import comparison_html

SECTIONS = (
    ("distortions", "Distortion types analysed"),
    ("content", "Content distribution"),
    ("candidates", "Pool candidates: kept and refused"),
    ("density", "Density structure"),
    ("redundancy", "Redundancy"),
    ("labels", "Labels"),
    ("reshape", "What reshaping did"),
)
# Where a list of notes is too long to read on the page, the rest stay in summary.json.
NOTES_SHOWN = 5

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1180px;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.92rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.2rem 0 1.8rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #444; max-width: 60rem; }
figcaption b { color: #222; }
.note { color: #666; font-size: 0.9rem; }
tr.sub td { background: #fafafa; font-weight: 600; color: #555; font-size: 0.85rem; }
.tables { display: flex; flex-wrap: wrap; gap: 0 2.5rem; align-items: flex-start; }
.tables > div > p.note { max-width: 32rem; }
code { font-size: 0.88rem; }
.banner { background: #fff3cd; border: 2px solid #c98a00; border-radius: 4px; padding: 0.7rem 1rem;
          margin: 1rem 0; font-weight: 600; color: #5c3d00; }
.banner p { margin: 0.2rem 0; }
.warn { background: #fdecea; border-left: 4px solid #c62828; padding: 0.4rem 0.8rem; color: #5a1a1a;
        font-size: 0.92rem; }
"""


@dataclass(frozen=True)
class Figure:
    """A figure file (relative to the report folder), its section, title and caption."""

    file: str
    section: str
    title: str
    caption: str
    data: str | None = None


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return escape(str(value))


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100.0 * float(value):.1f}%"


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _key_numbers(summary: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(label, before, after) rows of the key-numbers table; after is None without a manifest.

    A label starting with ``#`` is a sub-heading row.
    """
    has_after = "after" in summary
    rows: list[tuple[str, str, str | None]] = []

    def row(label: str, path: tuple[str, ...], pct: bool = False) -> None:
        fmt = _pct if pct else _fmt
        after = fmt(_get(summary.get("after"), *path)) if has_after else None
        rows.append((label, fmt(_get(summary["before"], *path)), after))

    def heading(label: str) -> None:
        rows.append(("#" + label, "", "" if has_after else None))

    rows.append(
        (
            "distortion types",
            _types(_get(summary, "before", "types")),
            _types(_get(summary, "after", "types")) if has_after else None,
        )
    )
    row("samples", ("samples",))
    row("contents (distinct references)", ("contents",))
    row("scored samples", ("scored",))
    row("mean score", ("score", "mean"))
    content = summary.get("content", {})
    if "r" in content:
        heading("Content (exact)")
        after = content.get("after", {}) if has_after else None
        for label, key in (
            ("novelty threshold r", "r"),
            ("max spread maxT_all", "maxT_all"),
        ):
            rows.append((label, _fmt(content.get(key)), _fmt(after.get(key)) if after is not None else None))
    heading("HDBSCAN clusters (sampled)")
    row("samples given to HDBSCAN", ("clusters", "sampled"))
    row("clusters found", ("clusters", "found"))
    row("noise share", ("clusters", "noise_share"), pct=True)
    row("purity by reference", ("clusters", "reference_purity"), pct=True)
    row("purity by distortion type", ("clusters", "distortion_purity"), pct=True)
    row("cluster size Gini", ("clusters", "size_gini"))
    heading("Redundancy groups (exact)")
    row("redundant pairs", ("redundancy", "pairs"))
    row("groups", ("redundancy", "groups"))
    row("samples in groups", ("redundancy", "in_groups_share"), pct=True)
    row("largest group", ("redundancy", "largest_group"))
    row("groups above the cap", ("redundancy", "groups_above_cap"))
    row("samples in groups above the cap", ("redundancy", "share_above_cap"), pct=True)
    row("group size Gini (singletons included)", ("redundancy", "size_gini"))
    row("sample-weighted group size", ("redundancy", "sample_weighted_group_size"))
    row("DRCDown would remove", ("redundancy", "drcdown_would_remove"))
    return rows


def _types(codes: Any) -> str:
    return "–" if not codes else escape(", ".join(map(str, codes)))


def types_note(summary: dict[str, Any]) -> str:
    """Which samples the "before" column counts: the analysed types, of how many in the corpus."""
    corpus = summary["corpus"]
    analysed, every = corpus.get("types_analysed", []), corpus.get("types", [])
    if summary["params"].get("types") is not None:
        which = (
            f"of the analysed distortion types only ({_types(analysed)}, <code>--types</code>; the corpus has "
            f"{len(every)} type(s))"
        )
    else:
        which = f"of every distortion type of the corpus ({len(every)})"
    return (
        f'<p class="note">The corpus (before) column counts the distorted samples {which}: '
        f"{_fmt(corpus['samples_analysed'])} of its {_fmt(corpus.get('distorted'))} distorted images. "
        f"Its {_fmt(corpus['references'])} reference images are not samples.</p>"
    )


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str | None]],
    numeric_from: int = 1,
    text_columns: Sequence[int] = (),
) -> str:
    """An HTML table; cells from column ``numeric_from`` on (except ``text_columns``) are right-aligned;
    None cells are left out."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for r in rows:
        first = r[0] or ""
        if first.startswith("#"):
            span = sum(1 for cell in r if cell is not None)
            body.append(f'<tr class="sub"><td colspan="{span}">{escape(first[1:])}</td></tr>')
            continue
        cells = []
        for k, cell in enumerate(r):
            if cell is None:
                continue
            cls = ' class="num"' if k >= numeric_from and k not in text_columns else ""
            cells.append(f"<td{cls}>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _clusters_table(summary: dict[str, Any], name: str, top: int = 10) -> str:
    table = _get(summary, name, "clusters", "table") or []
    if not table:
        return '<p class="note">No clusters found.</p>'
    rows = [
        (
            _fmt(c["cluster"]),
            _fmt(c["size"]),
            _fmt(c["references"]),
            _fmt(c["top_reference"]),
            _pct(c["reference_purity"]),
            "–" if c["top_distortion"] is None else escape(distortion_label(int(c["top_distortion"]))),
            _pct(c["distortion_purity"]),
            _fmt(c["mean_level"]),
            _fmt(c["mean_score"]),
        )
        for c in table[:top]
    ]
    header = [
        "cluster",
        "size",
        "references",
        "main reference",
        "share",
        "main type",
        "share",
        "mean level",
        "mean score",
    ]
    more = f'<p class="note">{len(table) - top:,} more in summary.json.</p>' if len(table) > top else ""
    return _table(header, rows, text_columns=(3, 5)) + more


def _param(name: str, value: Any) -> str:
    if name == "types" and value is None:
        return "all"
    if name == "min_samples" and value is None:
        return "= min_cluster_size"
    if isinstance(value, list):
        return escape(",".join(map(str, value)))
    return _fmt(value)


def _source(source: str | None) -> str:
    """Where a DRCDown threshold came from, after its value."""
    words = {"manifest": "from the manifest", "given": "given", "default": "default"}
    return "" if source is None else f' <span class="note">({words.get(source, escape(source))})</span>'


def _data_link(figure: Figure) -> str:
    if figure.data is None:
        return ""
    return f' Data: <a href="{escape(figure.data)}">{escape(figure.data)}</a>.'


def add_back_note(sized: Mapping[str, Any]) -> str:
    """What ``--target-size`` did to the reshape's redundancy groups (a warning when some now keep
    more members than DRCDown allows)."""
    added = sized.get("added_back")
    back = (
        f" added back {_fmt(added['originals'])} original(s) and {_fmt(added['upsampled'])} upsampled row(s);"
        if added
        else ""
    )
    rule = f"quota (all members up to cap {sized['group_cap']}, else max(cap, floor(size x {sized['keep_fraction']:g})))"
    if not sized["groups_over_quota"]:
        return (
            f'<p class="note">--target-size {_fmt(sized["target_size"])}:{back} no redundancy group keeps more '
            f"members than DRCDown's {rule}.</p>"
        )
    largest = sized["largest_excess"]
    return (
        f'<p class="warn">--target-size {_fmt(sized["target_size"])}:{back} '
        f"{_fmt(sized['groups_over_quota'])} redundancy group(s) now keep more members than DRCDown's "
        f"{rule} ({_fmt(sized['rows_over_quota'])} rows over it; most in group {largest['group_id']}: "
        f"{_fmt(largest['kept'])} of {_fmt(largest['group_size'])} kept where DRCDown keeps "
        f"{_fmt(largest['allowed'])}). Reaching the target size this way undoes part of DRCDown's thinning.</p>"
    )


def _banner(summary: dict[str, Any]) -> str:
    warnings = summary.get("encoder_warnings") or []
    if not warnings:
        return ""
    lines = (f"<p><b>{escape(w['message'])}</b> {escape(w['note'])}</p>" for w in warnings)
    return '<div class="banner">' + "".join(lines) + "</div>"


def _outcome(summary: dict[str, Any], comparison: Mapping[str, Any]) -> str:
    """The comparison section: compare's own fragment, with its figures copied under ``compare/``."""
    entry = summary["compare"]
    parts = ["<h2>Outcome: does reshaping help? (curate compare)</h2>"]
    if entry.get("same_corpus") is False:
        parts.append(
            '<p class="warn">This comparison was run on another corpus than the one analysed here '
            "(its recorded corpus fingerprint differs).</p>"
        )
    parts.append(comparison_html(comparison, entry["folder"] + "/"))
    parts.append(
        f'<p class="note">From <code>{escape(str(summary["input_paths"]["compare"]))}</code>; copied here: '
        + ", ".join(f'<a href="{escape(f)}">{escape(f)}</a>' for f in entry["files"])
        + ".</p>"
    )
    return "\n".join(parts)


def _example_notes(summary: dict[str, Any]) -> str:
    examples = summary.get("examples") or {}
    items = [escape(str(n)) for n in examples.get("notes", [])]
    missing = examples.get("missing_images", [])
    if missing:
        listed = "; ".join(escape(f"{m['sample_id']} ({m['message']})") for m in missing[:NOTES_SHOWN])
        more = f"; {len(missing) - NOTES_SHOWN:,} more in summary.json" if len(missing) > NOTES_SHOWN else ""
        items.append(f"{len(missing):,} image(s) could not be read and are shown as labelled blanks: {listed}{more}")
    if not items:
        return ""
    return '<p class="note">' + "<br>".join(items) + "</p>"


def render_index(
    summary: dict[str, Any], figures: Sequence[Figure], comparison: Mapping[str, Any] | None = None
) -> str:
    """The report page: a banner when the features are suspect, the comparison (given a compare
    summary), inputs and key numbers, then the figures by section with captions."""
    has_after = "after" in summary
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>curate analyze report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>curate analyze report</h1>",
        f'<p class="note">curate {escape(str(summary["curate_version"]))} · seed {summary["seed"]} · '
        f"encoder {escape(str(summary['encoder'].get('name', '?')))} ({summary['dim']}-d)</p>",
        _banner(summary),
    ]
    if comparison is not None and "compare" in summary:
        parts.append(_outcome(summary, comparison))
    parts.append("<h2>Key numbers</h2>")
    parts.append('<div class="tables"><div>')
    header = ["measure", "corpus (before)"] + (["manifest (after)"] if has_after else [])
    parts.append(_table(header, _key_numbers(summary)))
    parts.append(types_note(summary))
    parts.append("</div><div>")
    pool = _get(summary, "content", "pool")
    if pool:
        parts.append(
            _table(
                ["pool candidates", ""],
                [
                    ("candidates (pool references)", _fmt(pool["candidates"])),
                    ("novel: nearest distance &gt; r", _fmt(pool["novel"])),
                    ("in distribution: farthest distance &lt; maxT_all", _fmt(pool["in_distribution"])),
                    ("eligible (both), before thinning", _fmt(pool["eligible"])),
                ],
            )
        )
    reshape = summary.get("reshape")
    if reshape:
        parts.append(
            _table(
                ["reshape", "rows"],
                [(escape(k.replace("_", " ")), _fmt(v)) for k, v in reshape.items() if not isinstance(v, dict)],
            )
        )
        sized = reshape.get("target_size")
        if sized:
            parts.append(add_back_note(sized))
    note = _get(summary, "content", "note")
    if note:
        parts.append(f'<p class="note">{escape(str(note))}</p>')
    inputs = [(escape(name), escape(str(path))) for name, path in summary["input_paths"].items()]
    parts.append(_table(["input", "path"], inputs, numeric_from=2))
    warned = {w["note"] for w in summary.get("encoder_warnings") or []}
    notes = [n for n in summary.get("encoder_notes") or [] if n not in warned]
    if notes:
        parts.append('<p class="note">Embeddings notes: ' + "<br>".join(escape(n) for n in notes) + "</p>")
    parts.append("</div></div>")
    parts.append(_example_notes(summary))

    for section, heading in SECTIONS:
        chosen = [f for f in figures if f.section == section]
        if not chosen:
            continue
        parts.append(f"<h2>{escape(heading)}</h2>")
        for f in chosen:
            parts.append(
                f'<figure><img src="{escape(f.file)}" alt="{escape(f.title)}">'
                f"<figcaption><b>{escape(f.title)}.</b> {escape(f.caption)}{_data_link(f)}</figcaption></figure>"
            )
        if section == "density":
            for name in ("before", "after"):
                share = _get(summary, name, "clusters", "largest_share")
                if share is not None and share > 0.5:
                    parts.append(
                        f'<p class="note">{"corpus" if name == "before" else "manifest"}: one cluster holds '
                        f"{_pct(share)} of the clustered samples; with <code>eom</code> selection try "
                        "<code>--cluster-selection leaf</code> or a smaller <code>--min-cluster-size</code>.</p>"
                    )
            parts.append("<h3>Largest clusters: corpus</h3>" + _clusters_table(summary, "before"))
            if has_after:
                parts.append("<h3>Largest clusters: manifest</h3>" + _clusters_table(summary, "after"))

    p = summary["params"]
    source = summary.get("thresholds_source", {})
    parts.append("<h2>Parameters</h2>")
    parts.append(
        _table(
            ["parameter", "value"],
            [(escape(k), _param(k, v) + _source(source.get(k))) for k, v in p.items()],
        )
    )
    parts.append(
        '<p class="note">Exact on every sample: reference distances, thresholds, pool placement, redundancy '
        "groups. Sampled (at most sample_cap per set, seeded hash of sample_id): PCA, HDBSCAN, the maps. "
        "All numbers are in summary.json.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
