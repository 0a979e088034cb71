"""A ``curate compare`` folder included in the report: read, checked, and copied beside the page.

The page shows the comparison with :func:`curate.compare.report.comparison_html` (the renderer
``curate compare`` itself uses), reading the figures from a ``compare/`` sub-folder of the report,
so the report folder stays self-contained when moved.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.compare.report import (
    CURVES_FILE,
    FIGURE_FILE,
    RESULTS_FILE,
    SUMMARY_FORMAT,
    SUMMARY_FORMAT_VERSION,
)
from curate.errors import CurateError

REPORT_SUBFOLDER = "compare"
SUMMARY_FILE = "summary.json"
# Copied into the report: the page shows the figures and links the tables.
COPIED = (SUMMARY_FILE, RESULTS_FILE, FIGURE_FILE, CURVES_FILE)


@dataclass(frozen=True)
class Comparison:
    """A finished comparison: its folder as given and its ``summary.json``."""

    folder: Path
    summary: dict[str, Any]


def read_comparison(folder: str | os.PathLike[str]) -> Comparison:
    """Read a ``curate compare -o`` folder; refuse one that is not a finished comparison."""
    where = Path(folder)
    if not where.is_dir():
        raise CurateError(f"--compare {where}: not a folder")
    path = where / SUMMARY_FILE
    if not path.is_file():
        raise CurateError(f"--compare {where}: no {SUMMARY_FILE}; is it a finished 'curate compare' folder?")
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CurateError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(summary, dict) or summary.get("format") != SUMMARY_FORMAT:
        raise CurateError(f"{path}: not a curate compare summary (format {SUMMARY_FORMAT!r})")
    if summary.get("format_version") != SUMMARY_FORMAT_VERSION:
        raise CurateError(
            f"{path}: compare summary format_version {summary.get('format_version')!r} is not one this "
            f"curate reads ({SUMMARY_FORMAT_VERSION})"
        )
    if not isinstance(summary.get("targets"), dict) or not summary["targets"]:
        raise CurateError(f"{path}: the comparison has no target results")
    for name in COPIED:
        if not (where / name).is_file():
            raise CurateError(f"--compare {where}: {name} is missing (an unfinished comparison?); rerun curate compare")
    return Comparison(where, summary)


def copy_comparison(comparison: Comparison, report_dir: Path) -> list[str]:
    """Copy the comparison's summary, table and figures into ``report_dir/compare/``; return the
    copied names relative to ``report_dir``."""
    dest = report_dir / REPORT_SUBFOLDER
    dest.mkdir()
    for name in COPIED:
        shutil.copyfile(comparison.folder / name, dest / name)
    return [f"{REPORT_SUBFOLDER}/{name}" for name in COPIED]


def comparison_numbers(comparison: Comparison, corpus_fingerprint: Any) -> dict[str, Any]:
    """``summary.json``'s ``compare`` entry: the copied files, each target's sentence, and whether
    the comparison was run on the corpus this report analyses."""
    recorded = (comparison.summary.get("inputs") or {}).get("corpus")
    same = None if recorded is None else recorded == corpus_fingerprint
    return {
        "folder": REPORT_SUBFOLDER,
        "files": [f"{REPORT_SUBFOLDER}/{name}" for name in COPIED],
        "targets": {
            name: {"sentence": entry.get("sentence"), "n_images": entry.get("n_images"),
                   "n_references": entry.get("n_references")}
            for name, entry in comparison.summary["targets"].items()
        },
        "same_corpus": same,
    }
