"""The candidate order file: which member of a close pair DDCUp's greedy thinning drops.

A UTF-8 text file, one pool candidate per line, first to last: the candidate's ``ref_id``, the file
name of its reference image (``beach-1230729.png``) or that name's stem (``beach-1230729``). Blank
lines and lines starting with ``#`` are skipped; spaces around a name are ignored. A name that is
some candidate's ``ref_id`` means that candidate, else a file name, else a stem. Every candidate
reference of the pool must be listed exactly once, and every name must match exactly one
candidate; otherwise the file is refused, naming the names at fault.

Of the closest pair of candidates, the thinning drops the one listed first (the release's rule with
its file order); see :func:`curate.reshape.upsample.select_candidates`. ``curate ingest-refset``
writes such a file in the order of the release's ``additional_ref.pkl``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from curate.errors import CurateError
from curate.fsio import atomic_write_text

ORDER_FILE_NAME = "candidate_order.txt"
COMMENT = "#"
# How many names an error message lists before "and N more".
SHOWN_NAMES = 10


@dataclass(frozen=True)
class CandidateOrder:
    """A candidate order read from ``file``: ``order`` [m] int64, candidate indices first to last
    (what ``select_candidates(order=...)`` takes); ``sha256`` of the file's bytes."""

    order: np.ndarray
    file: str
    sha256: str

    def metadata(self) -> dict[str, Any]:
        """What a manifest records about the order: the file's name and its sha256."""
        return {"file": Path(self.file).name, "sha256": self.sha256}


def format_candidate_order(names: Sequence[str], *, header: str | None = None) -> str:
    """The text of an order file listing ``names`` in order (``header``: a comment line on top)."""
    for name in names:
        text = str(name)
        if text != text.strip() or not text or "\n" in text or "\r" in text or text.startswith(COMMENT):
            raise ValueError(f"{text!r} cannot be written as a line of a candidate order file")
    lines = [f"{COMMENT} {header}"] if header else []
    return "\n".join([*lines, *map(str, names)]) + "\n"


def write_candidate_order(path: str | os.PathLike[str], names: Sequence[str], *, header: str | None = None) -> Path:
    """Write an order file listing ``names`` first to last, atomically."""
    atomic_write_text(path, format_candidate_order(names, header=header))
    return Path(path)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def parse_candidate_order(
    lines: Sequence[str], ref_ids: Sequence[str], paths: Sequence[str], *, where: str = "candidate order"
) -> np.ndarray:
    """Candidate indices in the order the ``lines`` list them: int64 [m], a permutation of ``0..m-1``.

    Candidate ``c`` is named by ``ref_ids[c]``, by the file name of ``paths[c]`` (its reference
    image, relative to the pool's root) or by that name's stem; a name that is some candidate's
    ref_id means that candidate, else a file name, else a stem. Raises :class:`CurateError` naming
    the names that match no candidate, match several, or repeat a candidate, and the candidates
    that are not listed.
    """
    if len(ref_ids) != len(paths):
        raise ValueError("ref_ids and paths must have one entry per candidate")
    # a name is looked up as a ref_id first, then as a file name, then as a stem
    tiers: list[dict[str, set[int]]] = [{}, {}, {}]
    for c, (ref_id, path) in enumerate(zip(ref_ids, paths, strict=True)):
        name = PurePosixPath(str(path))
        for tier, key in zip(tiers, (str(ref_id), name.name, name.stem), strict=True):
            tier.setdefault(key, set()).add(c)
    listed: list[int] = []
    line_of: dict[int, int] = {}
    unknown: list[str] = []
    ambiguous: list[str] = []
    repeated: list[str] = []
    for number, raw in enumerate(lines, start=1):
        name = raw.strip()
        if not name or name.startswith(COMMENT):
            continue
        hits = next((tier[name] for tier in tiers if name in tier), set())
        if not hits:
            unknown.append(f"{name!r} (line {number})")
        elif len(hits) > 1:
            which = sorted(str(ref_ids[c]) for c in hits)
            ambiguous.append(f"{name!r} (line {number}: {', '.join(which[:3])}{', ...' if len(which) > 3 else ''})")
        else:
            (c,) = hits
            if c in line_of:
                repeated.append(f"{name!r} (line {number}, candidate {ref_ids[c]!r} already on line {line_of[c]})")
            else:
                line_of[c] = number
                listed.append(c)
    if unknown:
        raise CurateError(f"{where}: {len(unknown)} name(s) match no pool candidate: {_listing(unknown)}")
    if ambiguous:
        raise CurateError(
            f"{where}: {len(ambiguous)} name(s) match several pool candidates (use their ref_id): {_listing(ambiguous)}"
        )
    if repeated:
        raise CurateError(f"{where}: {len(repeated)} candidate(s) listed twice: {_listing(repeated)}")
    missing = [repr(str(ref_ids[c])) for c in range(len(ref_ids)) if c not in line_of]
    if missing:
        raise CurateError(
            f"{where}: {len(missing)} pool candidate(s) are not listed (every candidate needs a place): "
            f"{_listing(missing)}"
        )
    return np.asarray(listed, dtype=np.int64)


def read_candidate_order(
    path: str | os.PathLike[str], ref_ids: Sequence[str], paths: Sequence[str]
) -> CandidateOrder:
    """Read an order file for the candidates (``ref_ids``, ``paths``: see :func:`parse_candidate_order`)."""
    file = Path(path)
    try:
        raw = file.read_bytes()
        text = raw.decode("utf-8-sig")
    except FileNotFoundError:
        raise CurateError(f"{file}: no such candidate order file") from None
    except IsADirectoryError:
        raise CurateError(f"{file}: is a folder, expected a candidate order file") from None
    except UnicodeDecodeError as exc:
        raise CurateError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise CurateError(f"{file}: cannot read ({exc.strerror})") from None
    order = parse_candidate_order(text.splitlines(), ref_ids, paths, where=str(file))
    return CandidateOrder(order=order, file=str(file), sha256=hashlib.sha256(raw).hexdigest())
