"""``curate ingest-refset``: the SynDR-IQA release's reference features -> embeddings + candidate order.

The authors' release ships ``RefSet/train_ref.pkl`` (the 81 KADID-10k references) and
``RefSet/additional_ref.pkl`` (the 81 candidate references of its ``kadid_add81`` set). Each is a
pickled tuple ``(names, features)``: ``names`` a list of image file names (``I01.png``), ``features``
a list of float32 numpy arrays of shape [1, 2048] (or [2048]), one per name: ImageNet ResNet-50
(torchvision ``IMAGENET1K_V1``) global-average-pooled features of the 224 x 224 centre crop of
each image, not resized, ImageNet-normalised.

A pickle can run any code when it is loaded, so these files are read with a restricted unpickler
(:func:`load_refset_pickle`): it builds only what a numpy array pickle needs (numpy's array and
scalar reconstructors, ``numpy.ndarray``, ``numpy.dtype``) besides strings, numbers and builtin
containers, and refuses every other reference (a function, a class, ``os.system``) before anything
is called, naming it.

:func:`ingest_refset` matches the names to the reference rows of a training corpus and of a pool
corpus by file stem (``I01.png`` -> the reference row whose ``path`` has stem ``I01``, compared
case-insensitively) and writes, under the output folder:

* ``train/``: an embeddings folder of the training references (the corpus's ``sample_id`` values);
* ``pool/``: an embeddings folder of the candidate references (the pool's ``sample_id`` values);
* ``candidate_order.txt``: the candidates' ``ref_id`` in the order of ``additional_ref.pkl``, the
  order in which the release's greedy thinning breaks ties (:mod:`curate.reshape.candidate_order`).

Vectors are L2-normalised (cosine distances are unchanged). Both folders record one encoder
identity, the release's ResNet-50 features with the sha256 of both pickles, so they can be used
together and with nothing else.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from curate.embed.config import DEFAULT_SHARD_SIZE
from curate.embed.shards import Shard, corpus_identity, plan_shards
from curate.embed.writer import REJECT_STAGE, ShardWriter
from curate.errors import CurateError
from curate.fsio import fingerprint, folder_lock
from curate.reshape.candidate_order import ORDER_FILE_NAME, write_candidate_order
from curate.schema import (
    EMBEDDING_SHARD_GLOB,
    REJECTS_NAME,
    corpus_root,
    make_metadata,
    read_corpus,
    read_metadata,
    write_rejects,
)

TRAIN_FILE = "train_ref.pkl"
CANDIDATES_FILE = "additional_ref.pkl"
TRAIN_FOLDER = "train"
POOL_FOLDER = "pool"
ENCODER_NAME = "syndr-refset"
DTYPE = "float32"


class RefusedPickle(CurateError):
    """A RefSet file references something other than numpy arrays, names and builtin containers."""


# --------------------------------------------------------------------------------------------
# The restricted unpickler


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """How pickle protocols 0-2 spell a bytes object: ``_codecs.encode(text, 'latin1')``."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _numpy_reconstructors() -> dict[str, Any]:
    # Taken from numpy's own pickling (not imported by a private module path), so they are the
    # functions this numpy's arrays and scalars are rebuilt with, whatever its version calls them.
    array = np.zeros(1, dtype=np.float32)
    return {
        "_reconstruct": array.__reduce__()[0],
        "_frombuffer": array.__reduce_ex__(5)[0],
        "scalar": np.float32(0).__reduce__()[0],
    }


def _admitted() -> Mapping[tuple[str, str], Any]:
    numpy_parts = _numpy_reconstructors()
    admitted: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_bytes,
    }
    # numpy 1.x writes numpy.core.*, numpy 2.x numpy._core.*
    for package in ("numpy.core", "numpy._core"):
        admitted[(f"{package}.multiarray", "_reconstruct")] = numpy_parts["_reconstruct"]
        admitted[(f"{package}.multiarray", "scalar")] = numpy_parts["scalar"]
        admitted[(f"{package}.numeric", "_frombuffer")] = numpy_parts["_frombuffer"]
    for container in (list, tuple, dict, set, frozenset):
        admitted[("builtins", container.__name__)] = container  # protocols 0-3 spell sets this way
    return MappingProxyType(admitted)


ADMITTED = _admitted()


class _RefSetUnpickler(pickle.Unpickler):
    """Builds only the objects in :data:`ADMITTED`; any other global is refused before it is loaded."""

    def __init__(self, data: bytes, where: str) -> None:
        super().__init__(io.BytesIO(data))
        self.where = where

    def find_class(self, module: str, name: str) -> Any:
        found = ADMITTED.get((module, name))
        if found is None:
            dotted = f"{module}.{name}"
            shown = dotted if dotted.isprintable() else repr(dotted)  # the message stays one line
            raise RefusedPickle(
                f"{self.where}: refused to unpickle {shown}: a RefSet file holds only names and "
                "numpy float32 arrays; nothing in the file was run"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickle(f"{self.where}: refused a persistent id ({type(pid).__name__}); nothing in the file was run")


@dataclass(frozen=True)
class RefSetFeatures:
    """One RefSet file: ``names`` [n] (image file names, as in the file), ``vectors`` float32 [n, dim]
    (as stored, not normalised), ``sha256`` of the file's bytes, ``file`` its path."""

    names: list[str]
    vectors: np.ndarray
    sha256: str
    file: str


def load_refset_pickle(path: str | os.PathLike[str]) -> RefSetFeatures:
    """Read one RefSet pickle with the restricted unpickler and check what it holds.

    Raises :class:`CurateError` (one line, naming the file) for a missing or unreadable file, a
    refused type (:class:`RefusedPickle`) or contents that are not ``(names, float32 features)``.
    """
    file = Path(path)
    where = str(file)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise CurateError(f"{where}: no such file") from None
    except OSError as exc:
        raise CurateError(f"{where}: cannot read ({exc.strerror})") from None
    try:
        obj = _RefSetUnpickler(data, where).load()
    except RefusedPickle:
        raise
    except MemoryError:
        raise CurateError(f"{where}: not a RefSet pickle (it asks for more memory than there is)") from None
    except Exception as exc:  # a malformed pickle fails in many ways (EOFError, ValueError, ...)
        raise CurateError(f"{where}: not a readable pickle ({type(exc).__name__}: {exc})") from None
    names, vectors = refset_contents(obj, where)
    return RefSetFeatures(names=names, vectors=vectors, sha256=hashlib.sha256(data).hexdigest(), file=where)


def refset_contents(obj: Any, where: str) -> tuple[list[str], np.ndarray]:
    """Check an unpickled RefSet object; return (names [n], float32 features [n, dim]).

    Expected: a tuple (or list) of two: a list of n distinct, non-empty names and a list of n
    float32 arrays, each of shape [dim] or [1, dim] with one dim for all, finite and not all zero.
    """
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise CurateError(f"{where}: expected a pair (names, features), found {_describe(obj)}")
    names_raw, features = obj
    if not isinstance(names_raw, (list, tuple)) or not isinstance(features, (list, tuple)):
        raise CurateError(
            f"{where}: expected two lists (names, features), found {_describe(names_raw)} and {_describe(features)}"
        )
    if not names_raw:
        raise CurateError(f"{where}: the file holds no names")
    if len(names_raw) != len(features):
        raise CurateError(f"{where}: {len(names_raw)} names but {len(features)} feature arrays")
    names: list[str] = []
    for k, name in enumerate(names_raw):
        if not isinstance(name, str) or not name.strip():
            raise CurateError(f"{where}: name {k} is {_describe(name)}, expected an image file name")
        names.append(str(name))
    seen: dict[str, int] = {}
    for k, name in enumerate(names):
        if name in seen:
            raise CurateError(f"{where}: name {name!r} appears twice (entries {seen[name]} and {k})")
        seen[name] = k
    dim: int | None = None
    rows: list[np.ndarray] = []
    for k, (name, array) in enumerate(zip(names, features, strict=True)):
        label = f"feature {k} ({name!r})"
        if type(array) is not np.ndarray:
            raise CurateError(f"{where}: {label} is {_describe(array)}, expected a numpy float32 array")
        if array.dtype != np.float32:
            raise CurateError(f"{where}: {label} has dtype {array.dtype}, expected float32")
        if array.ndim == 2 and array.shape[0] == 1:
            array = array[0]
        if array.ndim != 1 or array.shape[0] < 1:
            raise CurateError(f"{where}: {label} has shape {tuple(features[k].shape)}, expected [dim] or [1, dim]")
        if dim is None:
            dim = int(array.shape[0])
        elif array.shape[0] != dim:
            raise CurateError(f"{where}: {label} has {array.shape[0]} values but the first feature has {dim}")
        if not np.isfinite(array).all():
            raise CurateError(f"{where}: {label} holds NaN or inf")
        if not np.any(array):
            raise CurateError(f"{where}: {label} is all zeros (no direction to compare)")
        rows.append(array)
    return names, np.stack(rows).astype(np.float32, copy=False)


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array {value.dtype} {tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


# --------------------------------------------------------------------------------------------
# Matching names to corpus rows


def match_by_stem(names: Sequence[str], sample_ids: Sequence[str], paths: Sequence[str], *, where: str) -> np.ndarray:
    """For each name, the index of the row whose ``path`` has the same file stem: int64 [len(names)].

    Stems are compared case-insensitively. Refused with :class:`CurateError`, naming them: names
    that match no row, names that match several rows, rows matched by several names, and rows that
    no name matches (each row must get exactly one feature).
    """
    rows_by_stem: dict[str, list[int]] = {}
    for row, path in enumerate(paths):
        rows_by_stem.setdefault(PurePosixPath(str(path)).stem.casefold(), []).append(row)
    matched = np.full(len(names), -1, dtype=np.int64)
    unmatched: list[str] = []
    ambiguous: list[str] = []
    for k, name in enumerate(names):
        rows = rows_by_stem.get(PurePosixPath(name).stem.casefold(), [])
        if not rows:
            unmatched.append(repr(name))
        elif len(rows) > 1:
            ambiguous.append(f"{name!r} ({', '.join(repr(str(sample_ids[r])) for r in rows[:3])})")
        else:
            matched[k] = rows[0]
    if unmatched:
        raise CurateError(f"{where}: {len(unmatched)} name(s) match no reference row by file stem: {_listing(unmatched)}")
    if ambiguous:
        raise CurateError(f"{where}: {len(ambiguous)} name(s) match several reference rows: {_listing(ambiguous)}")
    by_row: dict[int, list[str]] = {}
    for name, row in zip(names, matched.tolist(), strict=True):
        by_row.setdefault(row, []).append(name)
    twice = [f"{sample_ids[row]!r} ({', '.join(map(repr, hits))})" for row, hits in by_row.items() if len(hits) > 1]
    if twice:
        raise CurateError(f"{where}: {len(twice)} reference row(s) matched by several names: {_listing(twice)}")
    missing = [repr(str(sample_ids[row])) for row in range(len(paths)) if row not in by_row]
    if missing:
        raise CurateError(f"{where}: {len(missing)} reference row(s) have no feature in the file: {_listing(missing)}")
    return matched


def _listing(items: list[str], shown: int = 10) -> str:
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f" and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------------------------
# Writing


def release_encoder(train: RefSetFeatures, candidates: RefSetFeatures) -> dict[str, Any]:
    """The encoder identity both embeddings folders record: the release's features, by file hash."""
    return {
        "name": ENCODER_NAME,
        "library": "SynDR-IQA release (precomputed features)",
        "model": "resnet50",
        "weights": {
            "kind": "precomputed",
            "tag": "IMAGENET1K_V1",
            "files": {TRAIN_FILE: train.sha256, CANDIDATES_FILE: candidates.sha256},
        },
        "preprocessing": {
            "size": 224,
            "resize": None,
            "crop": "center",
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
        },
        "preprocessing_source": "the release's feature script: centre crop 224 of the full image, ImageNet mean/std",
        "output": "global average pool (before fc)",
    }


@dataclass(frozen=True)
class _Target:
    """One corpus's reference rows and the features matched to them."""

    corpus: Path
    sample_ids: list[str]
    ref_ids: list[str]
    rel_paths: list[str]
    abs_paths: list[str]
    vectors: np.ndarray  # float32 [n, dim], L2-normalised, row k for sample_ids[k]
    row_of_name: np.ndarray  # int64 [n]: the row each name of the file (in file order) matched


def _reference_rows(corpus: Path) -> tuple[pd.DataFrame, Path]:
    frame, meta = read_corpus(corpus)
    refs = frame[frame["is_reference"].fillna(False).to_numpy(dtype=bool)].reset_index(drop=True)
    if refs.empty:
        raise CurateError(f"{corpus}: the corpus has no reference rows (is_reference) to match RefSet names to")
    return refs, corpus_root(meta, corpus)


def _match(features: RefSetFeatures, corpus: Path) -> _Target:
    refs, root = _reference_rows(corpus)
    ids = refs["sample_id"].astype(str).tolist()
    paths = refs["path"].astype(str).tolist()
    rows = match_by_stem(features.names, ids, paths, where=f"{features.file} against {corpus}")
    vectors = np.empty((len(ids), features.vectors.shape[1]), dtype=np.float32)
    raw = features.vectors.astype(np.float64)
    vectors[rows] = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
    ref_ids = refs["ref_id"].astype(str).tolist()
    return _Target(corpus, ids, ref_ids, paths, [str(root / p) for p in paths], vectors, rows)


@dataclass(frozen=True)
class _FolderPlan:
    """One embeddings folder to write: its shards, their writer and the rows' vectors."""

    folder: Path
    target: _Target
    writer: ShardWriter
    shards: list[Shard]
    rejects_meta: dict[str, Any]


def _plan_folder(folder: Path, target: _Target, features: RefSetFeatures, encoder: dict[str, Any]) -> _FolderPlan:
    """The shards of ``folder``; refuses a folder holding shards this run would not write the same way."""
    run_meta = make_metadata(
        "embeddings",
        params={"refset_file": Path(features.file).name},
        inputs={"corpus": fingerprint(target.corpus), "refset": fingerprint(features.file)},
        encoder=encoder,
        dim=int(target.vectors.shape[1]),
        dtype=DTYPE,
        corpus=corpus_identity(target.sample_ids, target.rel_paths),
        shard_size=DEFAULT_SHARD_SIZE,
        notes=[
            f"features precomputed by the SynDR-IQA release ({Path(features.file).name}, sha256 {features.sha256}), "
            "read with a restricted unpickler and L2-normalised; not computed by curate"
        ],
    )
    shards = plan_shards(target.sample_ids, target.abs_paths, target.rel_paths, DEFAULT_SHARD_SIZE)
    writer = ShardWriter(folder, run_meta)
    planned = {shard.name for shard in shards}
    for existing in sorted(folder.glob(EMBEDDING_SHARD_GLOB)):
        if existing.name not in planned:
            raise CurateError(f"{existing}: a shard this run would not write; use a new output folder")
        writer.check_compatible(existing, read_metadata(existing))
    rejects_meta = make_metadata(
        "rejects", params=run_meta["params"], inputs=run_meta["inputs"], encoder=encoder, corpus=run_meta["corpus"]
    )
    return _FolderPlan(folder, target, writer, shards, rejects_meta)


def _write_folder(plan: _FolderPlan) -> Path:
    """Write every shard (atomically, one file each) and an empty rejects table."""
    row_of = {sid: k for k, sid in enumerate(plan.target.sample_ids)}
    for shard in plan.shards:
        rows = [row_of[sid] for sid in shard.sample_ids]
        plan.writer.write(shard, list(shard.sample_ids), plan.target.vectors[rows], [])
    write_rejects([], plan.folder / REJECTS_NAME, REJECT_STAGE, plan.rejects_meta)
    return plan.folder


@dataclass(frozen=True)
class RefSetIngest:
    """What :func:`ingest_refset` wrote: the two embeddings folders, the order file and counts."""

    train_embeddings: Path
    pool_embeddings: Path
    candidate_order: Path
    train_references: int
    candidates: int
    dim: int
    encoder: dict[str, Any]


def ingest_refset(
    refset: str | os.PathLike[str],
    corpus: str | os.PathLike[str],
    pool: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
) -> RefSetIngest:
    """Turn the release's ``RefSet`` folder into embeddings folders and a candidate order file.

    ``refset``: the folder holding ``train_ref.pkl`` and ``additional_ref.pkl``; ``corpus``: the
    training corpus (its reference rows get ``train_ref.pkl``'s features); ``pool``: the candidate
    pool corpus (its reference rows get ``additional_ref.pkl``'s). Writes ``out_dir/train/``,
    ``out_dir/pool/`` and ``out_dir/candidate_order.txt`` (each atomically; a second run into the
    same folder at the same time is refused, and a folder holding other embeddings is not touched).
    """
    folder = Path(refset)
    if not folder.is_dir():
        raise CurateError(f"{folder}: no such RefSet folder (it holds {TRAIN_FILE} and {CANDIDATES_FILE})")
    train = load_refset_pickle(folder / TRAIN_FILE)
    candidates = load_refset_pickle(folder / CANDIDATES_FILE)
    if train.vectors.shape[1] != candidates.vectors.shape[1]:
        raise CurateError(
            f"{candidates.file}: features have {candidates.vectors.shape[1]} values but those of "
            f"{train.file} have {train.vectors.shape[1]}"
        )
    train_target = _match(train, Path(corpus))
    pool_target = _match(candidates, Path(pool))
    clash = sorted(set(train_target.sample_ids) & set(pool_target.sample_ids))
    if clash:
        raise CurateError(f"{pool}: sample_id {clash[0]!r} is also a reference of {corpus}; ids must be unique")
    encoder = release_encoder(train, candidates)
    out = Path(out_dir)
    order_names = [pool_target.ref_ids[row] for row in pool_target.row_of_name.tolist()]
    with folder_lock(out, "ingest-refset"):
        # both folders are checked before either is written
        plans = [
            _plan_folder(out / TRAIN_FOLDER, train_target, train, encoder),
            _plan_folder(out / POOL_FOLDER, pool_target, candidates, encoder),
        ]
        train_dir, pool_dir = (_write_folder(plan) for plan in plans)
        order_file = write_candidate_order(
            out / ORDER_FILE_NAME,
            order_names,
            header=f"candidate order of {CANDIDATES_FILE} (sha256 {candidates.sha256}): ref_id, first to last",
        )
    return RefSetIngest(
        train_embeddings=train_dir,
        pool_embeddings=pool_dir,
        candidate_order=order_file,
        train_references=len(train_target.sample_ids),
        candidates=len(pool_target.sample_ids),
        dim=int(train.vectors.shape[1]),
        encoder=encoder,
    )


__all__ = [
    "ADMITTED",
    "RefSetFeatures",
    "RefSetIngest",
    "RefusedPickle",
    "ingest_refset",
    "load_refset_pickle",
    "match_by_stem",
    "refset_contents",
    "release_encoder",
]
