"""Options a reader may take, gathered in one object so every reader has the same signature."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ReaderOptions:
    """Options of ``curate ingest``.

    ``source``: id prefix and ``source`` column (default: the format name; for ``csv`` and
    ``folder`` the root folder's name). ``labels``: label file to read instead of the format's
    default (relative to the dataset root, or absolute). ``images``: image folder under the root for
    formats whose image folder varies (KonIQ-10k ``512x384``/``1024x768``, SPAQ resized copies).
    The ``*_column`` options and ``lower_is_better`` map a user CSV (format ``csv``).
    """

    source: str | None = None
    labels: str | None = None
    images: str | None = None
    path_column: str | None = None
    score_column: str | None = None
    ref_column: str | None = None
    distortion_column: str | None = None
    level_column: str | None = None
    split_column: str | None = None
    lower_is_better: bool = False

    def given(self) -> dict[str, Any]:
        """Options set to something other than their default."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = value
        return out

    def label_path(self, root: Path, default: str | None = None) -> str | None:
        return self.labels if self.labels is not None else default
