"""What every output records about how it was made: one builder for tables, reports and runs.

:func:`provenance` gives the curate version, the command line, the parameters, the seed and the
fingerprints of the inputs (:func:`input_fingerprints`), in that order. Table metadata
(:func:`curate.schema.make_metadata`), the analyze report's ``summary.json`` and a training run's
``summary.json`` are built from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from curate import __version__
from curate.fsio import command_line, fingerprint

InputPath = str | os.PathLike[str]


def input_fingerprints(paths: Mapping[str, InputPath | Sequence[InputPath] | None]) -> dict[str, Any]:
    """``{name: fingerprint}`` of the files and folders a step read (:func:`curate.fsio.fingerprint`);
    a list of fingerprints for an input given several times; ``None`` entries are left out."""
    out: dict[str, Any] = {}
    for name, value in paths.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            out[name] = [fingerprint(v) for v in value]
        else:
            out[name] = fingerprint(value)
    return out


def provenance(
    *,
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``curate_version``, ``command``, ``seed``, ``params`` and ``inputs`` of an output."""
    return {
        "curate_version": __version__,
        "command": command_line(),
        "seed": seed,
        "params": dict(params or {}),
        "inputs": dict(inputs or {}),
    }
