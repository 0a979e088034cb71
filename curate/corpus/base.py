"""What every native-format reader shares: the reader result, file look-up, label reading, scores.

A reader gets the dataset root as the user unpacked it and returns an :class:`Ingested`: the corpus
rows (one per image, columns of :data:`curate.schema.CORPUS_FIELDS` except ``score``) and the facts
needed to normalise scores. :func:`normalise_scores` then maps the raw scores of the whole corpus to
0-10, higher = better.

Files are looked up by listing each image folder once into a dictionary keyed by the lower-cased
name (cheap even for 700k files, and it absorbs case quirks such as TID2013's ``i25.bmp``); no file
is stat-ed one by one.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curate.errors import CurateError, CurateWarning
from curate.fsio import fingerprint

IMAGE_EXTENSIONS = frozenset({".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".gif"})

# Corpus columns a reader fills; ``score`` is added by normalise_scores.
READER_COLUMNS = (
    "sample_id",
    "path",
    "ref_id",
    "is_reference",
    "distortion",
    "level",
    "score_raw",
    "source",
    "split",
)


class IngestError(CurateError):
    """The dataset on disk does not have the layout its reader expects."""


@dataclass
class Ingested:
    """A reader's result.

    ``rows``: one row per image with :data:`READER_COLUMNS` (``score_raw`` null where unscored).
    ``higher_is_better``: direction of ``score_raw`` (None when nothing is scored).
    ``inputs``: fingerprints of the label files and listings read, keyed by path relative to root.
    ``facts``: reader-specific notes stored in metadata (e.g. which label file was used).
    """

    rows: pd.DataFrame
    root: Path
    higher_is_better: bool | None
    inputs: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Locating the dataset and its files


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise IngestError(f"{path}: expected {what} folder is missing")
    return path


def require_file(root: Path, relative: str, what: str) -> Path:
    path = root / relative
    if not path.is_file():
        raise IngestError(f"{path}: expected {what} is missing")
    return path


def first_existing(root: Path, candidates: Sequence[str], what: str) -> Path:
    """The first of ``candidates`` (relative to root) that is a file; else name them all."""
    for name in candidates:
        if (root / name).is_file():
            return root / name
    listed = ", ".join(candidates)
    raise IngestError(f"{root}: expected {what} is missing (looked for {listed})")


def dataset_root(root: Path, marker: str | Sequence[str], nested: Sequence[str] = ()) -> Path:
    """The folder that holds ``marker`` (or any of several): ``root`` itself, or one of its
    ``nested`` sub-folders. Archives unpack either as the dataset folder or as a parent holding it;
    both are accepted. When neither holds it, ``root`` (the reader then names the missing file).
    """
    root = Path(root)
    if not root.is_dir():
        raise IngestError(f"{root}: dataset root is not a folder")
    markers = [marker] if isinstance(marker, str) else list(marker)
    for folder in [root, *(root / name for name in nested)]:
        if any((folder / m).exists() for m in markers):
            return folder.resolve()
    return root.resolve()


class FileIndex:
    """Files under one folder, listed once, looked up by lower-cased name.

    ``recursive=True`` also lists sub-folders (hidden entries are skipped). Paths are relative to
    ``root`` in POSIX form. A name present twice (in different sub-folders or differing only in
    case) is ambiguous and refused when looked up.
    """

    def __init__(self, root: Path, folder: str = "", *, recursive: bool = False, images_only: bool = True):
        self.root = Path(root)
        self.folder = folder.strip("/")
        base = self.root / self.folder if self.folder else self.root
        if not base.is_dir():
            raise IngestError(f"{base}: expected image folder is missing")
        self.base = base
        self.by_name: dict[str, str] = {}
        self.ambiguous: dict[str, list[str]] = {}
        prefix = f"{self.folder}/" if self.folder else ""
        by_name, ambiguous = self.by_name, self.ambiguous
        for rel in walk_files(base, recursive):
            key = rel.rpartition("/")[2].lower()
            if images_only and key[key.rfind("."):] not in IMAGE_EXTENSIONS:
                continue
            full = prefix + rel
            if key in by_name:
                ambiguous.setdefault(key, [by_name[key]]).append(full)
            else:
                by_name[key] = full

    def __len__(self) -> int:
        return len(self.by_name)

    def paths(self) -> list[str]:
        """Every listed path, sorted (ambiguous duplicates included)."""
        extra = [p for dup in self.ambiguous.values() for p in dup[1:]]
        return sorted([*self.by_name.values(), *extra])

    def resolve(self, names: Iterable[str], *, label_file: Path, row_labels: Sequence[str]) -> list[str]:
        """Relative paths of ``names`` (matched case-insensitively by file name).

        A name not found raises :class:`IngestError` naming the label file, the row and the folder.
        """
        names = list(names)
        keys = pd.Series(names, dtype=object).map(lambda n: str(n).replace("\\", "/").rsplit("/", 1)[-1].lower())
        found = keys.map(self.by_name)
        missing = found.isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise IngestError(
                f"{label_file}: {row_labels[i]} names image {names[i]!r}, which is not in {self.base} "
                f"({int(missing.sum())} listed image(s) missing in all)"
            )
        if self.ambiguous:
            hit = keys[keys.isin(list(self.ambiguous))]
            if len(hit):
                key = hit.iloc[0]
                raise IngestError(
                    f"{self.base}: image name {key!r} is ambiguous: {', '.join(self.ambiguous[key][:3])}"
                )
        return found.tolist()

    def listing_fingerprint(self) -> dict[str, Any]:
        """A cheap fingerprint of the listing (names only): detects added, removed or renamed files."""
        return listing_fingerprint(self.paths())


def walk_files(base: Path, recursive: bool) -> list[str]:
    """Files under ``base`` (relative POSIX paths, sorted), skipping hidden entries; one scandir per folder.

    Symbolic links are followed wherever they point (a dataset is often a farm of links into
    shared storage); paths are recorded as seen under ``base``, so they never leave it. A link to
    a folder that contains it (a loop) and a link whose target does not exist are skipped, each
    with a :class:`~curate.errors.CurateWarning` naming it.
    """
    out: list[str] = []
    top = os.stat(base)
    stack = [("", str(base), frozenset({(top.st_dev, top.st_ino)}))]
    while stack:
        rel_dir, abs_dir, ancestors = stack.pop()
        try:
            with os.scandir(abs_dir) as listing:
                entries = list(listing)
        except OSError as exc:
            raise IngestError(f"{abs_dir}: cannot list this folder ({exc.strerror or exc})") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = f"{rel_dir}{entry.name}"
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError:  # a link to itself, or a chain of links too long to follow
                is_dir = is_file = False
            if is_dir:
                if not recursive:
                    continue
                info = entry.stat()
                key = (info.st_dev, info.st_ino)
                if key in ancestors:
                    warnings.warn(
                        f"{entry.path}: symbolic link loop (it leads to {os.path.realpath(entry.path)}, "
                        "a folder that contains it); skipped",
                        CurateWarning,
                        stacklevel=2,
                    )
                    continue
                stack.append((rel + "/", entry.path, ancestors | {key}))
            elif is_file:
                out.append(rel)
            elif entry.is_symlink():
                warnings.warn(
                    f"{entry.path}: broken symbolic link (its target {os.readlink(entry.path)!r} "
                    "cannot be reached); skipped",
                    CurateWarning,
                    stacklevel=2,
                )
    out.sort()
    return out


def listing_fingerprint(paths: Sequence[str]) -> dict[str, Any]:
    digest = hashlib.sha256()
    for p in sorted(paths):
        digest.update(p.encode())
        digest.update(b"\n")
    return {"kind": "listing", "files": len(paths), "sha256": digest.hexdigest()}


def input_fingerprints(root: Path, files: Iterable[Path]) -> dict[str, Any]:
    """Fingerprints of label files, keyed by their path relative to ``root``."""
    out: dict[str, Any] = {}
    for f in files:
        try:
            key = Path(f).resolve().relative_to(root).as_posix()
        except ValueError:
            key = str(Path(f).resolve())
        out[key] = fingerprint(f)
    return out


# --------------------------------------------------------------------------------------------
# Reading label files


def read_csv_labels(path: Path, required: Sequence[str], **kwargs: Any) -> pd.DataFrame:
    """Read a CSV label file and check it has ``required`` columns (names stripped of blanks)."""
    try:
        df = pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise IngestError(f"{path}: cannot read as CSV ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise IngestError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))} (found {', '.join(map(repr, df.columns))})"
        )
    if df.empty:
        raise IngestError(f"{path}: has no rows")
    return df


def read_spreadsheet(path: Path, sheet: str | int | None = None) -> dict[str, pd.DataFrame]:
    """All sheets (or one) of an .xls/.xlsx/.csv file, without interpreting any header row."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return {"csv": pd.read_csv(path, header=None, dtype=object)}
        if suffix == ".xls":
            sheets = _read_xls(path, sheet)
        elif suffix in (".xlsx", ".xlsm"):
            sheets = pd.read_excel(path, sheet_name=sheet, header=None, engine="openpyxl")
        else:
            raise IngestError(f"{path}: not a spreadsheet (.xls, .xlsx or .csv)")
    except IngestError:
        raise
    except Exception as exc:  # the spreadsheet libraries raise many types on corrupt files
        raise IngestError(f"{path}: cannot read spreadsheet ({type(exc).__name__}: {exc})") from None
    if isinstance(sheets, pd.DataFrame):
        return {str(sheet): sheets}
    return {str(k): v for k, v in sheets.items()}


def _read_xls(path: Path, sheet: str | int | None) -> dict[str, pd.DataFrame]:
    """Legacy Excel (.xls) through xlrd directly (pandas is retiring its xlrd engine)."""
    import xlrd

    book = xlrd.open_workbook(str(path), on_demand=True)
    try:
        names = book.sheet_names()
        if sheet is not None:
            names = [names[sheet]] if isinstance(sheet, int) else [sheet]
        out = {}
        for name in names:
            table = book.sheet_by_name(name)
            rows = [[None if v == "" else v for v in table.row_values(r)] for r in range(table.nrows)]
            out[name] = pd.DataFrame(rows)
        return out
    finally:
        book.release_resources()


def header_table(raw: pd.DataFrame, wanted: Sequence[str], where: str, scan_rows: int = 10) -> tuple[pd.DataFrame, int]:
    """Find the header row (the first of ``scan_rows`` whose cells include all ``wanted`` names,
    case-insensitively) and return (table with those headers, 1-based sheet row of the header).
    Column names are lower-cased and stripped."""
    wanted_l = [w.lower() for w in wanted]
    for i in range(min(scan_rows, len(raw))):
        cells = [str(c).strip().lower() for c in raw.iloc[i].tolist()]
        if all(w in cells for w in wanted_l):
            table = raw.iloc[i + 1 :].copy()
            table.columns = cells
            table = table.dropna(how="all")
            return table, i + 1
    raise IngestError(f"{where}: no header row with column(s) {', '.join(map(repr, wanted))} in the first {scan_rows} rows")


def load_mat(path: Path, variables: Sequence[str]) -> dict[str, np.ndarray]:
    """Named variables of a MATLAB .mat file (v4-v7.2; not v7.3/HDF5), refusing missing ones."""
    import scipy.io

    try:
        data = scipy.io.loadmat(path, variable_names=list(variables))
    except NotImplementedError:
        raise IngestError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; re-save with -v7") from None
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError on corrupt files
        raise IngestError(f"{path}: cannot read .mat file ({type(exc).__name__}: {exc})") from None
    missing = [v for v in variables if v not in data]
    if missing:
        raise IngestError(f"{path}: missing variable(s) {', '.join(map(repr, missing))}")
    return {v: data[v] for v in variables}


def mat_strings(value: np.ndarray) -> list[str]:
    """A MATLAB cell array of strings (any shape) as a flat list of str, in MATLAB order."""
    out = []
    for cell in np.asarray(value, dtype=object).flatten(order="F"):
        while isinstance(cell, np.ndarray) and cell.dtype == object and cell.size == 1:
            cell = cell.flat[0]
        if isinstance(cell, np.ndarray):
            cell = "".join(cell.flatten().tolist()) if cell.size else ""
        out.append(str(cell).strip())
    return out


def cell_text(value: Any) -> str:
    """A label-file cell as a message shows it: ``'abc'``, ``'inf'``, or ``empty`` (blank or NaN)."""
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return "empty"
    text = str(value.item() if isinstance(value, np.generic) else value).strip()
    return repr(text) if text else "empty"


def to_float(values: pd.Series, where: str, column: str, row_labels: Sequence[str]) -> np.ndarray:
    """Numeric scores, or an error naming the first row that is not a finite number."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        cell = cell_text(values.iloc[i])
        what = f"{column} is empty or NaN" if cell in ("empty", "'nan'", "'NaN'") else f"{column} {cell}"
        raise IngestError(f"{where}: {row_labels[i]}: {what}, not a finite number")
    return numbers


def line_labels(n: int, first_line: int = 2) -> list[str]:
    """Row names for error messages: ``line N`` of a text/CSV file (header on line 1)."""
    return [f"line {first_line + i}" for i in range(n)]


def stem(name: str) -> str:
    """File name without folder and extension (``a/b.c.png`` -> ``b.c``)."""
    base = name.replace("\\", "/").rpartition("/")[2]
    head, dot, _ = base.rpartition(".")
    return head if dot and head else base


def without_extension(path: str) -> str:
    return os.path.splitext(path)[0]


_SOURCE_RE = re.compile(r"[^A-Za-z0-9._-]+")


def source_name(name: str) -> str:
    """A source name usable as an id prefix: letters, digits, ``._-``."""
    cleaned = _SOURCE_RE.sub("-", name).strip("-.")
    if not cleaned:
        raise IngestError(f"source name {name!r} has no usable characters")
    return cleaned


# --------------------------------------------------------------------------------------------
# Building rows and normalising scores


def make_rows(
    *,
    source: str,
    sample_ids: Sequence[str],
    paths: Sequence[str],
    ref_ids: Sequence[str],
    is_reference: bool | Sequence[bool],
    distortion: Sequence[Any] | None = None,
    level: Sequence[Any] | None = None,
    score_raw: Sequence[float] | np.ndarray | None = None,
    split: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Corpus rows from column sequences (ids already prefixed with ``source/``)."""
    n = len(sample_ids)
    ref_flags = [bool(is_reference)] * n if isinstance(is_reference, bool) else list(is_reference)
    return pd.DataFrame(
        {
            "sample_id": pd.array(list(sample_ids), dtype=object),
            "path": pd.array(list(paths), dtype=object),
            "ref_id": pd.array(list(ref_ids), dtype=object),
            "is_reference": ref_flags,
            "distortion": pd.array([None] * n if distortion is None else list(distortion), dtype="Int16"),
            "level": pd.array([None] * n if level is None else list(level), dtype="Int8"),
            "score_raw": np.full(n, np.nan) if score_raw is None else np.asarray(score_raw, dtype=np.float64),
            "source": [source] * n,
            "split": pd.array([None] * n if split is None else list(split), dtype=object),
        }
    )


def reference_rows(source: str, ref_ids: Sequence[str], paths: Sequence[str]) -> pd.DataFrame:
    """Rows of pristine references: each is its own ``ref_id``, unscored, with no distortion."""
    ids = list(ref_ids)
    return make_rows(source=source, sample_ids=ids, paths=paths, ref_ids=ids, is_reference=True)


def concat_rows(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return make_rows(source="", sample_ids=[], paths=[], ref_ids=[], is_reference=[])
    out = pd.concat(frames, ignore_index=True)
    out["distortion"] = out["distortion"].astype("Int16")
    out["level"] = out["level"].astype("Int8")
    return out


def normalise_scores(raw: np.ndarray, higher_is_better: bool | None) -> tuple[np.ndarray, dict[str, Any]]:
    """Min-max map raw scores (NaN = unscored) to 0-10, higher = better, over the whole corpus.

    Returns (scores as float64 with NaN where unscored, the ``score_normalization`` metadata:
    ``method``, ``raw_min``, ``raw_max``, ``higher_is_better``). When every scored row has the same
    raw value there is no range to map; all get 5.0 (``method`` ``constant``).
    """
    raw = np.asarray(raw, dtype=np.float64)
    present = ~np.isnan(raw)
    if not present.any():
        return raw.copy(), {"method": "none", "raw_min": None, "raw_max": None, "higher_is_better": None}
    if higher_is_better is None:
        raise IngestError("scores are present but their direction (higher or lower = better) is unknown")
    lo, hi = float(raw[present].min()), float(raw[present].max())
    facts = {"method": "min-max", "raw_min": lo, "raw_max": hi, "higher_is_better": bool(higher_is_better)}
    scores = np.full_like(raw, np.nan)
    if hi == lo:
        scores[present] = 5.0
        facts["method"] = "constant"
        return scores, facts
    unit = (raw[present] - lo) / (hi - lo)
    scores[present] = 10.0 * (unit if higher_is_better else 1.0 - unit)
    return scores, facts


def merged_params(options: Mapping[str, Any]) -> dict[str, Any]:
    """Reader options as stored in metadata: only those set, paths as strings."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(options.items()) if v is not None}


def relative_name(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` when inside it (as recorded in metadata), else absolute."""
    path = Path(path).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
