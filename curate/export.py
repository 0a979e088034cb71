"""``curate export``: a manifest as pyiqa (IQA-PyTorch) meta-info CSV + dataset options, or a plain CSV.

pyiqa's ``GeneralNRDataset`` reads its meta-info CSV with pandas and uses columns by position:
column 0 is the image name, joined to ``dataroot_target`` with ``os.path.join``; column 1 is the
score. Any column whose header contains ``split`` holds ``train``/``val``/``test`` per row and is
chosen with the ``split_index`` option (its column name).

A manifest may span several image roots (one per source). The export writes every name relative to
the deepest folder that contains all of them (their common ancestor) and sets ``dataroot_target`` to
that folder, so the YAML loads as written. When the roots share no ancestor but the filesystem
root, names are effectively absolute; ``os.path.join`` handles that too. Scores are the manifest's
0-10 scale, higher = better (pyiqa's ``lower_better: false``).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curate.data import IMAGE_PATH, RootOverride, read_manifest
from curate.errors import CurateError
from curate.fsio import atomic_write_text

FORMATS = ("pyiqa", "csv")

# Name of the by-reference validation split column written with ``val_fraction``.
REF_SPLIT_COLUMN = "split_by_ref"


def _csv_text(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL, float_format="%.6g")
    return buffer.getvalue()


def common_root(paths: list[str]) -> Path:
    """The deepest folder containing every path (the filesystem root if nothing else)."""
    return Path(os.path.commonpath([os.path.dirname(p) for p in paths]))


def pyiqa_frame(manifest: pd.DataFrame, dataroot: Path, split_column: pd.Series | None) -> pd.DataFrame:
    """pyiqa's NR meta-info columns: ``name, mos`` first, then identifying columns and splits."""
    names = [Path(p).relative_to(dataroot).as_posix() for p in manifest[IMAGE_PATH]]
    out = pd.DataFrame(
        {
            "name": names,
            "mos": manifest["score"].astype(float).to_numpy(),
            "sample_id": manifest["sample_id"].astype(str).to_numpy(),
            "ref_id": manifest["ref_id"].astype(str).to_numpy(),
            "source": manifest["source"].astype(str).to_numpy(),
            "origin": manifest["origin"].astype(str).to_numpy(),
            "weight": manifest["weight"].astype(float).to_numpy(),
        }
    )
    if manifest["split"].notna().any():
        out["split"] = manifest["split"].astype(object).where(manifest["split"].notna(), "").to_numpy()
    if split_column is not None:
        out[REF_SPLIT_COLUMN] = split_column.to_numpy()
    return out


def pyiqa_yaml(name: str, dataroot: Path, meta_info: Path, split_names: list[str]) -> str:
    """A pyiqa ``datasets:`` options block for the exported CSV (one entry per phase)."""
    import yaml

    def entry(phase: str, split: str | None) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "name": name,
            "type": "GeneralNRDataset",
            "dataroot_target": str(dataroot),
            "meta_info_file": str(meta_info),
            "phase": phase,
            "mos_range": [0, 10],
            "lower_better": False,
        }
        if split is not None:
            opts["split_index"] = split
        return opts

    if split_names:
        split = split_names[-1]
        datasets = {"train": entry("train", split), "val": entry("val", split)}
    else:
        datasets = {"train": entry("train", None)}
    header = (
        "# pyiqa dataset options for a curate manifest (GeneralNRDataset).\n"
        "# Names in the meta-info CSV are relative to dataroot_target; scores are 0-10, higher = better.\n"
    )
    return header + yaml.safe_dump({"datasets": datasets}, sort_keys=False)


def export_manifest(
    manifest_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fmt: str = "pyiqa",
    *,
    root: RootOverride = None,
    val_fraction: float = 0.0,
    seed: int = 123,
) -> dict[str, str]:
    """Write ``out`` (a CSV) from a manifest; for ``pyiqa`` also ``out`` with suffix ``.yml``.

    ``val_fraction`` > 0 adds a ``split_by_ref`` column (train/val), split by reference content
    with the trainer's rule. Returns {"csv": path, "yaml": path (pyiqa only)}. Writes are atomic.
    """
    if fmt not in FORMATS:
        raise CurateError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    frame = read_manifest(manifest_path, root)
    if not len(frame):
        raise CurateError(f"{manifest_path}: the manifest has no rows")
    out_path = Path(out).expanduser().absolute()
    split_column = None
    if val_fraction > 0:
        from curate.train.data import split_by_reference

        is_val = split_by_reference(frame["ref_id"].astype(str).to_numpy(), val_fraction, seed)
        split_column = pd.Series(np.where(is_val, "val", "train"))
    if fmt == "csv":
        plain = frame.copy()
        for name in ("pseudo_refs", "pseudo_weights"):
            plain[name] = [";".join(str(v) for v in x) if isinstance(x, (list, np.ndarray)) else "" for x in plain[name]]
        if split_column is not None:
            plain[REF_SPLIT_COLUMN] = split_column.to_numpy()
        atomic_write_text(out_path, _csv_text(plain))
        return {"csv": str(out_path)}
    dataroot = common_root(frame[IMAGE_PATH].tolist())
    table = pyiqa_frame(frame, dataroot, split_column)
    splits = [c for c in table.columns if "split" in c]
    yaml_path = out_path.with_suffix(".yml")
    atomic_write_text(out_path, _csv_text(table))
    atomic_write_text(yaml_path, pyiqa_yaml(Path(manifest_path).stem, dataroot, out_path, splits))
    return {"csv": str(out_path), "yaml": str(yaml_path)}
