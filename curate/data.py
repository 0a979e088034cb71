"""Loading manifests (and corpora) for training code: a pandas reader and a PyTorch Dataset.

A manifest row's ``path`` is relative to the image root recorded for its ``source`` in the
manifest metadata (``roots``: {source: absolute root}); a corpus records one ``root``. Both readers
resolve these to absolute paths, or against a ``root=`` override when the images have moved:

* a string or path: one root for every source;
* a mapping {source: root}: overrides for those sources, the recorded root for the rest; a
  source the table does not have is refused (:class:`~curate.errors.UsageError`), never ignored.

``manifests/USING.md`` shows each way to load a manifest in a few lines.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from curate.errors import CurateError, ImageError, TableError, UsageError
from curate.images import load_rgb
from curate.schema import corpus_root, read_frame

RootOverride = str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]] | None

# The column both readers add: the absolute path of each image.
IMAGE_PATH = "image_path"


def recorded_roots(meta: Mapping[str, Any], fmt: str, where: str) -> dict[str, str]:
    """{source: root} recorded in a manifest's (``roots``) or corpus's (``root``) metadata."""
    if fmt == "manifest":
        roots = meta.get("roots")
        if not isinstance(roots, Mapping):
            raise TableError(f"{where}: manifest metadata has no 'roots' mapping")
        return {str(k): str(v) for k, v in roots.items()}
    return {"*": str(corpus_root(meta, where))}


def resolve_roots(
    recorded: Mapping[str, str], sources: list[str], root: RootOverride, where: str
) -> dict[str, Path]:
    """The absolute root for each source: the override where given, else the recorded root."""
    out: dict[str, Path] = {}
    for source in sources:
        if root is not None and not isinstance(root, Mapping):
            chosen: str | os.PathLike[str] = root
        elif isinstance(root, Mapping) and source in root:
            chosen = root[source]
        elif source in recorded:
            chosen = recorded[source]
        elif "*" in recorded:
            chosen = recorded["*"]
        else:
            raise TableError(f"{where}: no image root for source {source!r}; pass root={{{source!r}: DIR}}")
        out[source] = Path(chosen).expanduser().absolute()
    return out


def check_root_sources(root: RootOverride, sources: Iterable[str], where: str) -> None:
    """Refuse a {source: root} override naming a source that is not among ``sources`` of ``where``.

    A mistyped source would otherwise be ignored and the images read from the recorded root.
    Raises :class:`~curate.errors.UsageError` naming the sources there are.
    """
    if not isinstance(root, Mapping):
        return
    known = sorted(set(sources))
    unknown = sorted(set(map(str, root)) - set(known))
    if unknown:
        raise UsageError(
            f"--root {unknown[0]}=DIR: {where} has no source {unknown[0]!r} (its sources: {', '.join(known)})"
        )


def read_samples(
    path: str | os.PathLike[str], root: RootOverride = None, *, check_root: bool = True
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a manifest or a corpus table with an added ``image_path`` column (absolute paths).

    Returns (frame, metadata); rows in file order (sorted by ``sample_id``). ``check_root``: refuse
    a {source: root} override for a source the table does not have (see :func:`check_root_sources`;
    off when the same override also serves other tables, whose caller checks them together).
    """
    frame, meta = read_frame(path, ("manifest", "corpus"))
    sources = sorted(frame["source"].astype(str).unique().tolist())
    if check_root:
        check_root_sources(root, sources, str(path))
    roots = resolve_roots(recorded_roots(meta, meta["format"], str(path)), sources, root, str(path))
    frame[IMAGE_PATH] = [str(roots[s] / p) for s, p in zip(frame["source"].astype(str), frame["path"].astype(str), strict=True)]
    return frame, meta


def read_manifest(path: str | os.PathLike[str], root: RootOverride = None) -> pd.DataFrame:
    """A manifest as a pandas DataFrame: every manifest column plus ``image_path`` (absolute)."""
    frame, meta = read_samples(path, root)
    if meta["format"] != "manifest":
        raise TableError(f"{path}: is a {meta['format']} table, expected manifest")
    return frame


class ManifestItem(NamedTuple):
    """One item of a :class:`ManifestDataset`; a DataLoader batches each field."""

    image: Any  # HxWx3 uint8 RGB array, or what ``transform`` made of it
    score: float  # 0-10, higher = better
    sample_id: str
    weight: float  # the manifest's ``weight`` column (1.0 for a corpus, which has none)


class ManifestDataset:
    """A PyTorch map-style Dataset over a manifest (or a corpus with scores).

    ``dataset[i]`` is a :class:`ManifestItem` ``(image, score, sample_id, weight)``: ``image`` is
    the HxWx3 uint8 RGB array from :func:`curate.images.load_rgb` (writable, so
    ``torch.from_numpy`` takes it without a warning) passed through ``transform`` when given (e.g.
    a torchvision ``v2`` transform, which accepts arrays), ``score`` a float on 0-10 (higher =
    better), ``sample_id`` a string and ``weight`` the row's sample weight (float; 1.0 for a
    corpus). The dataset pickles, so DataLoader workers may be started with any method
    (``multiprocessing_context="spawn"``) as long as ``transform`` pickles too (a module-level
    function or a torchvision transform, not a lambda).

    ``manifest`` is a path to a manifest/corpus Parquet file or a frame from :func:`read_manifest`.
    A missing or unreadable image raises :class:`~curate.errors.ImageError` naming the sample and path.
    """

    def __init__(
        self,
        manifest: str | os.PathLike[str] | pd.DataFrame,
        root: RootOverride = None,
        transform: Callable[[np.ndarray], Any] | None = None,
        *,
        check_root: bool = True,
    ) -> None:
        if isinstance(manifest, pd.DataFrame):
            if IMAGE_PATH not in manifest.columns:
                raise CurateError(f"ManifestDataset: a DataFrame needs an {IMAGE_PATH!r} column (use read_manifest)")
            frame, where = manifest, "DataFrame"
        else:
            frame, _ = read_samples(manifest, root, check_root=check_root)
            where = str(manifest)
        if frame["score"].isna().any():
            row = int(np.flatnonzero(frame["score"].isna().to_numpy())[0])
            raise TableError(f"{where}: row {row} ({frame['sample_id'].iloc[row]}): no score; cannot train or evaluate on it")
        self.frame = frame.reset_index(drop=True)
        self.sample_ids: list[str] = self.frame["sample_id"].astype(str).tolist()
        self.paths: list[str] = self.frame[IMAGE_PATH].astype(str).tolist()
        self.scores = self.frame["score"].to_numpy(dtype=np.float32)
        if "weight" in self.frame.columns:
            self.weights = self.frame["weight"].to_numpy(dtype=np.float32)
        else:
            self.weights = np.ones(len(self.frame), dtype=np.float32)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.sample_ids)

    def load(self, index: int) -> np.ndarray:
        """The image of row ``index`` as uint8 HxWx3, or an ImageError naming sample and path."""
        sample_id, path = self.sample_ids[index], self.paths[index]
        try:
            return load_rgb(path)
        except ImageError as exc:
            raise ImageError(f"sample {sample_id!r}: image {path}: {exc}") from None

    def __getitem__(self, index: int) -> ManifestItem:
        image = self.load(index)
        if self.transform is not None:
            image = self.transform(image)
        return ManifestItem(image, float(self.scores[index]), self.sample_ids[index], float(self.weights[index]))
