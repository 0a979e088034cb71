"""The one JSON helper: plain JSON-able data from numpy values, and deterministic text.

Summaries, metadata and run records hold numbers computed with numpy; :func:`plain` turns them into
Python values (numpy scalars and arrays to numbers and lists, non-finite floats to ``null``, paths
to strings), and :func:`json_text` writes the same text for the same data every time.
"""

from __future__ import annotations

import json
import math
from pathlib import PurePath
from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """A JSON-able copy of ``value``: dict keys as strings, NaN and inf as None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, PurePath):
        return str(value)
    return value


def json_text(value: Any, *, sort_keys: bool = False, style: str = "indented") -> str:
    """``value`` as JSON text (via :func:`plain`): ``indented`` (two spaces, a final newline),
    ``line`` (one line, as in a JSON-lines file, without the newline) or ``compact`` (one line, no
    spaces: what table metadata stores)."""
    data = plain(value)
    if style == "compact":
        return json.dumps(data, sort_keys=sort_keys, separators=(",", ":"), allow_nan=False)
    if style == "line":
        return json.dumps(data, sort_keys=sort_keys, allow_nan=False)
    if style == "indented":
        return json.dumps(data, sort_keys=sort_keys, indent=2, allow_nan=False) + "\n"
    raise ValueError(f"JSON style {style!r}: expected indented, line or compact")
