"""The written outcome of ``curate compare``: tidy results, the statistical summary, a figure, a page.

Headline figures use the validation-selected epoch of each run; the last epoch is tabulated beside
it, and the test-selected epoch only when asked for, labelled as the paper's optimistic protocol.
Every difference to ``original`` is paired (same seed, same test images) and carries a 95%
bootstrap interval over test references (:mod:`curate.compare.stats`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curate import __version__
from curate.compare.params import BASELINE, CONFIDENCE, VARIANTS
from curate.compare.stats import MIN_UNITS, srcc_interval, verdict
from curate.errors import CurateError
from curate.fsio import atomic_path, atomic_write_text, command_line

SUMMARY_FORMAT = "compare_summary"
SUMMARY_FORMAT_VERSION = 1
HEADLINE = "val_best"
RESULTS_FILE = "results.csv"
FIGURE_FILE = "comparison.png"
CURVES_FILE = "curves.png"
TEST_SELECTED_NOTE = (
    "test_best: the epoch with the best SRCC on the target itself, as the paper's protocol reports it; "
    "optimistic, never used for a conclusion here"
)


def write_report(
    out: Path,
    results: pd.DataFrame,
    runs: Sequence[Any],
    params: Any,
    inputs: Mapping[str, Any],
    leaks: pd.DataFrame | None,
    eval_frames: Mapping[str, pd.DataFrame],
    groups: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write results.csv, summary.json, the figures and index.html into ``out``; return the summary.

    ``groups``: test references resampled together (:func:`read_resample_groups`)."""
    atomic_write_text(out / RESULTS_FILE, results.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    predictions = _predictions(runs)
    targets: dict[str, Any] = {}
    for target in sorted(eval_frames):
        targets[target] = _target_summary(
            target, results, predictions, params, eval_frames[target], BASELINE, groups
        )
    summary: dict[str, Any] = {
        "format": SUMMARY_FORMAT,
        "format_version": SUMMARY_FORMAT_VERSION,
        "curate_version": __version__,
        "command": command_line(),
        "selection": HEADLINE,
        "confidence": CONFIDENCE,
        "params": params.identity() | {"resamples": params.resamples, "resample_groups": params.resample_groups},
        "inputs": dict(inputs),
        "variants": {
            name: {"description": VARIANTS[name].description, "pool": VARIANTS[name].pool,
                   "drc": VARIANTS[name].drc, "candidates": VARIANTS[name].candidates,
                   "sized": VARIANTS[name].sized}
            for name in params.variants
        },
        "targets": targets,
        "leaks": _leak_summary(leaks, params),
    }
    summary = _plain(summary)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True, allow_nan=False) + "\n")
    plot_comparison(out / FIGURE_FILE, summary)
    plot_curves(out / CURVES_FILE, runs)
    atomic_write_text(out / "index.html", render_page(summary, results))
    return summary


def _predictions(runs: Sequence[Any]) -> dict[tuple[str, int], pd.DataFrame]:
    from curate.train.loop import PREDICTIONS_VAL_BEST, read_predictions

    return {(run.variant.name, run.seed): read_predictions(run.run_dir / PREDICTIONS_VAL_BEST) for run in runs}


def _seed_matrix(
    predictions: Mapping[tuple[str, int], pd.DataFrame], variant: str, seeds: Sequence[int], target: str, ids: np.ndarray
) -> np.ndarray:
    """[n_seeds, n_images] predictions of one variant on one target, in ``ids`` order."""
    rows = []
    for seed in seeds:
        frame = predictions[(variant, seed)]
        part = frame[frame["set"] == target].set_index("sample_id")["prediction"]
        rows.append(part.reindex(ids).to_numpy(dtype=np.float64))
    return np.stack(rows)


def read_resample_groups(path: str | Path) -> dict[str, str]:
    """``--resample-groups``: a CSV of ``ref_id,group`` -> {ref_id: group}; a one-line error names
    the file and the first bad row."""
    where = Path(path)
    if not where.is_file():
        raise CurateError(f"--resample-groups {where}: no such file")
    try:
        frame = pd.read_csv(where, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise CurateError(f"{where}: not a readable CSV ({exc})") from None
    missing = [c for c in ("ref_id", "group") if c not in frame.columns]
    if missing:
        raise CurateError(f"{where}: needs columns ref_id and group (missing {', '.join(missing)})")
    groups: dict[str, str] = {}
    for row, (ref, group) in enumerate(zip(frame["ref_id"].str.strip(), frame["group"].str.strip(), strict=True)):
        if not ref or not group:
            raise CurateError(f"{where}: row {row + 1}: empty ref_id or group")
        if groups.setdefault(ref, group) != group:
            raise CurateError(f"{where}: row {row + 1}: ref_id {ref!r} is in two groups")
    return groups


def resample_units(references: np.ndarray, groups: Mapping[str, str] | None, target: str) -> np.ndarray:
    """Each test image's resampling unit: its reference's group where ``groups`` names the reference
    (by ref_id or its last part, e.g. ``I61``), else the reference itself."""
    if not groups:
        return references
    unique, inverse = np.unique(references, return_inverse=True)
    named = [groups.get(ref, groups.get(ref.rsplit("/", 1)[-1])) for ref in unique.tolist()]
    if all(g is None for g in named):
        raise CurateError(f"--resample-groups: names none of target {target!r}'s test references "
                          f"(e.g. {unique[0]!r})")
    units = np.array([ref if g is None else f"group:{g}" for ref, g in zip(unique.tolist(), named, strict=True)])
    return units[inverse]


def _target_summary(
    target: str,
    results: pd.DataFrame,
    predictions: Mapping[tuple[str, int], pd.DataFrame],
    params: Any,
    frame: pd.DataFrame,
    baseline: str,
    groups: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    ids = frame["sample_id"].astype(str).to_numpy()
    scores = frame["score"].to_numpy(dtype=np.float64)
    references = frame["ref_id"].astype(str).to_numpy()
    clusters = resample_units(references, groups, target)
    seeds = list(range(params.seeds))
    head = results[(results["target"] == target) & (results["selection"] == HEADLINE)]
    base_pred = _seed_matrix(predictions, baseline, seeds, target, ids)
    out: dict[str, Any] = {
        "n_images": int(ids.size),
        "n_references": int(np.unique(references).size),
        # what the bootstrap resamples: each reference, or the groups given with --resample-groups
        "resampled_units": int(np.unique(clusters).size),
        "resampled_by": "group" if groups else "reference",
        "variants": {},
    }
    for k, name in enumerate(params.variants):
        part = head[head["variant"] == name].sort_values("seed")
        pred = base_pred if name == baseline else _seed_matrix(predictions, name, seeds, target, ids)
        level = srcc_interval(pred, scores, clusters, resamples=params.resamples, seed=k)
        entry: dict[str, Any] = {
            "srcc_mean": float(part["srcc"].mean()),
            "srcc_sd": float(part["srcc"].std(ddof=1)) if len(part) > 1 else None,
            "plcc_mean": float(part["plcc"].mean()),
            "plcc_sd": float(part["plcc"].std(ddof=1)) if len(part) > 1 else None,
            "srcc_per_seed": part["srcc"].astype(float).tolist(),
            "epoch_per_seed": part["epoch"].astype(int).tolist(),
            "val_srcc_mean": float(part["val_srcc"].mean()),
            "rows_mean": float(part["rows"].mean()),
            "upsampled_mean": float(part["upsampled_rows"].mean()),
            "srcc_interval": [level.low, level.high],
        }
        if name != baseline:
            base_part = head[head["variant"] == baseline].sort_values("seed")
            per_seed = (part["srcc"].to_numpy(float) - base_part["srcc"].to_numpy(float)).tolist()
            diff = srcc_interval(
                pred, scores, clusters, baseline=base_pred, resamples=params.resamples, seed=100 + k
            )
            entry["difference"] = {
                "srcc": diff.estimate,
                "interval": [diff.low, diff.high],
                "per_seed": per_seed,
                "plcc": float(part["plcc"].mean() - base_part["plcc"].mean()),
                "verdict": verdict(diff, per_seed, out["resampled_units"]),
            }
        out["variants"][name] = entry
    out["sentence"] = _sentence(target, out, params, baseline)
    return out


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def in_table_order(variants: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A summary's variants in the ablation's table order (:data:`VARIANTS`), however its JSON was
    keyed (``summary.json`` is written with sorted keys)."""
    rank = {name: k for k, name in enumerate(VARIANTS)}
    return sorted(variants.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def _sentence(target: str, entry: Mapping[str, Any], params: Any, baseline: str) -> str:
    """One plain paragraph: the baseline's level, then each variant's difference and verdict."""
    base = entry["variants"][baseline]
    sd = "" if base["srcc_sd"] is None else f" +- {base['srcc_sd']:.3f}"
    units = entry.get("resampled_units", entry["n_references"])
    grouped = entry.get("resampled_by") == "group"
    resampled = f"; the intervals resample {units} groups of them" if grouped else ""
    text = (
        f"On {target} ({entry['n_images']} images of {entry['n_references']} test references{resampled}), "
        f"{baseline} reaches SRCC {base['srcc_mean']:.3f}{sd} (mean +- sd over {params.seeds} seed(s), "
        "validation-selected epoch)."
    )
    parts = []
    for name, v in in_table_order(entry["variants"]):
        if name == baseline:
            continue
        d = v["difference"]
        low, high = d["interval"]
        interval = "no interval" if low is None else f"95% CI [{_signed(low)}, {_signed(high)}]"
        if d["verdict"] == "within noise":
            words = "within noise"
            if low is not None and (low > 0 or high < 0):
                words += (
                    f" (the interval excludes 0, but {units} independent test units are too few for a verdict)"
                    if units < MIN_UNITS
                    else " (the interval excludes 0, but the seeds do not all agree in sign)"
                )
        else:
            words = f"{d['verdict']} than {baseline}, beyond noise"
        parts.append(f"{name} {_signed(d['srcc'])} ({interval}): {words}")
    if parts:
        text += " Differences in SRCC: " + "; ".join(parts) + "."
    if units < MIN_UNITS and base["srcc_interval"][0] is not None:
        width = (base["srcc_interval"][1] - base["srcc_interval"][0]) / 2
        what = "independent groups of test references" if grouped else "test references"
        text += (
            f" With only {units} {what} the intervals are wide (about +-{width:.2f} "
            "on the baseline's SRCC): this comparison cannot resolve small effects."
        )
    return text


def _leak_summary(leaks: pd.DataFrame | None, params: Any) -> dict[str, Any]:
    if leaks is None:
        return {"checked": False, "note": "skipped (--skip-leak-check)"}
    out: dict[str, Any] = {"checked": True, "threshold": params.leak_threshold, "excluded": params.exclude_leaks,
                           "targets": {}}
    for target, part in leaks.groupby("target", sort=True):
        flagged = part[part["leak"].astype(bool)]
        out["targets"][str(target)] = {
            "contents": int(len(part)),
            "above_threshold": int(len(flagged)),
            "test_images_affected": int(flagged["test_images"].sum()),
            "max_cosine": float(part["cosine"].max()),
            "leaked_training_contents": sorted(set(flagged["nearest_ref_id"].astype(str))),
            "closest": [
                {"sample_id": r.sample_id, "nearest_sample_id": r.nearest_sample_id, "cosine": float(r.cosine)}
                for r in part.head(3).itertuples()
            ],
        }
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# --------------------------------------------------------------------------------------------
# Terminal


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The table per target (mean +- sd, difference with interval, verdict) and its sentence."""
    lines: list[str] = []
    for target, entry in summary["targets"].items():
        grouped = f" in {entry['resampled_units']} groups" if entry.get("resampled_by") == "group" else ""
        lines.append(f"{target}: {entry['n_images']} images, {entry['n_references']} references{grouped} "
                     f"(SRCC, validation-selected epoch, {len(next(iter(entry['variants'].values()))['srcc_per_seed'])} seeds)")
        header = f"  {'variant':<15} {'rows':>7} {'SRCC mean':>9} {'sd':>6} {'PLCC mean':>9}  {'dSRCC':>7} {'95% CI':>17}  verdict"
        lines.append(header)
        for name, v in in_table_order(entry["variants"]):
            sd = "-" if v["srcc_sd"] is None else f"{v['srcc_sd']:.3f}"
            d = v.get("difference")
            if d is None:
                diff, ci, words = "", "", "(baseline)"
            else:
                low, high = d["interval"]
                diff = _signed(d["srcc"])
                ci = "-" if low is None else f"[{_signed(low)}, {_signed(high)}]"
                words = d["verdict"]
            lines.append(
                f"  {name:<15} {v['rows_mean']:>7.0f} {v['srcc_mean']:>9.3f} {sd:>6} {v['plcc_mean']:>9.3f}  "
                f"{diff:>7} {ci:>17}  {words}"
            )
        lines.append("  " + entry["sentence"])
    leaks = summary.get("leaks", {})
    if leaks.get("checked"):
        for target, part in leaks["targets"].items():
            action = "excluded" if leaks["excluded"] else "kept (use --exclude-leaks to drop them)"
            lines.append(
                f"leak check {target}: {part['above_threshold']} of {part['contents']} contents above cosine "
                f"{leaks['threshold']} (max {part['max_cosine']:.3f}, {part['test_images_affected']} test images); "
                f"leaked training contents {action}"
                if part["above_threshold"]
                else f"leak check {target}: no image above cosine {leaks['threshold']} (max {part['max_cosine']:.3f})"
            )
    else:
        lines.append("leak check: skipped")
    return lines


# --------------------------------------------------------------------------------------------
# Figures


def plot_comparison(path: Path, summary: Mapping[str, Any]) -> None:
    """Per target: SRCC per variant (seed points, mean, sd bars) and the paired difference with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(summary["targets"])
    fig, axes = plt.subplots(len(targets), 2, figsize=(11, 3.4 * len(targets)), squeeze=False)
    for row, target in enumerate(targets):
        entry = summary["targets"][target]
        names = [name for name, _ in in_table_order(entry["variants"])]
        ax_level, ax_diff = axes[row]
        for k, name in enumerate(names):
            v = entry["variants"][name]
            seeds = v["srcc_per_seed"]
            ax_level.scatter(np.full(len(seeds), k) + np.linspace(-0.12, 0.12, len(seeds)), seeds, s=14,
                             color="#9e9e9e", zorder=2)
            ax_level.errorbar(k, v["srcc_mean"], yerr=v["srcc_sd"] or 0.0, fmt="o", color="#1f4e79", capsize=4, zorder=3)
        ax_level.set_xticks(range(len(names)), names, rotation=20)
        ax_level.set(ylabel="test SRCC", title=f"{target}: SRCC per variant (mean ± sd over seeds; dots: seeds)")
        diffs = [n for n in names if "difference" in entry["variants"][n]]
        for k, name in enumerate(diffs):
            d = entry["variants"][name]["difference"]
            low, high = d["interval"]
            colour = {"better": "#2e7d32", "worse": "#c62828"}.get(d["verdict"], "#616161")
            if low is not None:
                ax_diff.errorbar(k, d["srcc"], yerr=[[d["srcc"] - low], [high - d["srcc"]]], fmt="o", color=colour, capsize=4)
            else:
                ax_diff.plot(k, d["srcc"], "o", color=colour)
        ax_diff.axhline(0.0, color="#333", lw=0.8)
        # The verdict under each variant, so the figure alone cannot be read as more than it shows.
        ax_diff.set_xticks(range(len(diffs)), [f"{n}\n{entry['variants'][n]['difference']['verdict']}" for n in diffs],
                           rotation=20)
        title = "paired difference to original, 95% bootstrap CI"
        units = entry.get("resampled_units")
        if units is not None and units < MIN_UNITS:
            title += f"\nonly {units} independent test units (need {MIN_UNITS}): no verdict"
        ax_diff.set_ylabel("SRCC - original")
        ax_diff.set_title(title, color="#8a1c1c" if "\n" in title else "black", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def plot_curves(path: Path, runs: Sequence[Any]) -> None:
    """Validation and target SRCC per epoch, averaged over seeds, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, dict[str, list[list[float]]]] = {}
    for run in runs:
        lines = (run.run_dir / "metrics.jsonl").read_text().splitlines()
        records = [json.loads(x) for x in lines if x.strip()]
        entry = curves.setdefault(run.variant.name, {})
        entry.setdefault("validation", []).append([(r.get("val") or {}).get("srcc") for r in records])
        for target in sorted({t for r in records for t in r.get("eval", {})}):
            entry.setdefault(target, []).append([(r.get("eval", {}).get(target) or {}).get("srcc") for r in records])
    panels = sorted({p for entry in curves.values() for p in entry}, key=lambda p: (p != "validation", p))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for name, entry in curves.items():
            series = entry.get(panel)
            if not series:
                continue
            width = min(len(s) for s in series)
            values = np.array([[np.nan if v is None else v for v in s[:width]] for s in series], dtype=float)
            ax.plot(np.arange(1, width + 1), np.nanmean(values, axis=0), marker=".", label=name)
        title = "validation SRCC (selects the epoch)" if panel == "validation" else f"{panel} SRCC (not used to select)"
        ax.set(xlabel="epoch", ylabel="SRCC (mean over seeds)", title=title)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# HTML


def _num(value: Any, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def comparison_html(summary: Mapping[str, Any], prefix: str = "") -> str:
    """The comparison as an HTML fragment (tables, sentences, figures); ``prefix`` is the relative
    folder of the compare output from the page that includes it."""
    parts: list[str] = []
    for target, entry in summary["targets"].items():
        grouped = f" in {entry['resampled_units']} groups" if entry.get("resampled_by") == "group" else ""
        parts.append(
            f"<h3>{escape(target)}: {entry['n_images']} images, {entry['n_references']} test references{grouped}</h3>"
        )
        parts.append(
            "<table><tr><th>variant</th><th>rows</th><th>upsampled</th><th>SRCC mean</th><th>sd</th>"
            "<th>95% CI</th><th>PLCC mean</th><th>ΔSRCC vs original</th><th>95% CI</th><th>verdict</th></tr>"
        )
        for name, v in in_table_order(entry["variants"]):
            d = v.get("difference") or {}
            ci = v["srcc_interval"]
            dci = d.get("interval") or [None, None]
            parts.append(
                f"<tr><td>{escape(name)}</td><td class=num>{v['rows_mean']:.0f}</td>"
                f"<td class=num>{v['upsampled_mean']:.0f}</td><td class=num>{_num(v['srcc_mean'])}</td>"
                f"<td class=num>{_num(v['srcc_sd'])}</td><td class=num>[{_num(ci[0])}, {_num(ci[1])}]</td>"
                f"<td class=num>{_num(v['plcc_mean'])}</td>"
                f"<td class=num>{_num(d.get('srcc'), signed=True) if d else '(baseline)'}</td>"
                f"<td class=num>{'' if not d else f'[{_num(dci[0], signed=True)}, {_num(dci[1], signed=True)}]'}</td>"
                f"<td>{escape(d.get('verdict', ''))}</td></tr>"
            )
        parts.append("</table>")
        parts.append(f"<p>{escape(entry['sentence'])}</p>")
    leaks = summary.get("leaks", {})
    if leaks.get("checked"):
        items = []
        for target, part in leaks["targets"].items():
            closest = ", ".join(f"{c['sample_id']} ~ {c['nearest_sample_id']} ({c['cosine']:.3f})" for c in part["closest"])
            items.append(
                f"<li>{escape(target)}: {part['above_threshold']} of {part['contents']} contents above cosine "
                f"{leaks['threshold']} ({part['test_images_affected']} test images); closest pairs: {escape(closest)}</li>"
            )
        action = "dropped from training" if leaks["excluded"] else "kept in training"
        parts.append(f"<p>Leak check (near-duplicate content between targets and training; leaked contents {action}):</p>"
                     f"<ul>{''.join(items)}</ul>")
    else:
        parts.append("<p class=note>Leak check skipped.</p>")
    parts.append(
        f"<figure><img src='{escape(prefix + FIGURE_FILE)}' alt='comparison'><figcaption><b>Comparison.</b> Left: test SRCC "
        "of each variant at the validation-selected epoch (dots: seeds; bars: sd). Right: paired difference to "
        "original with a 95% bootstrap interval over test references; green/red only when the interval excludes "
        f"zero, every seed agrees in sign and at least {MIN_UNITS} independent test units were resampled; "
        "each variant's verdict is written under its name, and a red title says when the units were too few."
        "</figcaption></figure>"
    )
    parts.append(
        f"<figure><img src='{escape(prefix + CURVES_FILE)}' alt='training curves'><figcaption><b>Training curves.</b> "
        "Validation SRCC (held-out training references, which select the epoch) and each target's SRCC per epoch, "
        "mean over seeds. Target curves are shown for information only.</figcaption></figure>"
    )
    return "\n".join(parts)


def render_page(summary: Mapping[str, Any], results: pd.DataFrame) -> str:
    from curate.analyze.html import STYLE

    variants = "".join(
        f"<li><b>{escape(name)}</b>: {escape(v['description'])}</li>" for name, v in in_table_order(summary["variants"])
    )
    p = summary["params"]
    trainer = p["trainer"] + (" with online DRCDown" if p.get("online_drc") else "")
    validation = (
        f"fixed references {', '.join(p['val_refs'])}" if p.get("val_refs") else f"{p['val_fraction']:.0%} of the "
        "training references per seed, held out before reshaping"
    )
    test_best = ""
    if (results["selection"] == "test_best").any():
        tb = results[results["selection"] == "test_best"].groupby(["target", "variant"], sort=False)["srcc"].mean()
        rows = "".join(f"<tr><td>{escape(t)}</td><td>{escape(v)}</td><td class=num>{s:.3f}</td></tr>" for (t, v), s in tb.items())
        test_best = (f"<h2>Test-selected epoch (optimistic)</h2><p class=note>{escape(TEST_SELECTED_NOTE)}</p>"
                     f"<table><tr><th>target</th><th>variant</th><th>SRCC mean</th></tr>{rows}</table>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>curate compare</title><style>{STYLE}</style></head>
<body>
<h1>Does reshaping help on this data?</h1>
<p class=note>curate {escape(summary['curate_version'])}; trainer {escape(trainer)}; {p['seeds']} seed(s); validation: {escape(validation)};
types {escape(','.join(map(str, p['types'])))}. Every figure is measured at the validation-selected epoch; no run selects on a target set.</p>
<ul>{variants}</ul>
<h2>Results</h2>
{comparison_html(summary)}
{test_best}
<p class=note>Per-run numbers: <code>{RESULTS_FILE}</code>; every number and setting: <code>summary.json</code>.</p>
</body></html>
"""
