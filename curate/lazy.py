"""Package names loaded on first use.

A package's ``__init__`` lists, per module, the public names it defines (:func:`lazy_exports`), so
importing the package stays cheap: the command line reads the parameter modules when it starts
without importing torch, the image filters or the analysis.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(package: str, modules: Mapping[str, Sequence[str]]) -> tuple[list[str], Callable[[str], Any]]:
    """``(__all__, __getattr__)`` for ``package``: each name of ``modules[module]`` is imported from
    ``module`` when it is first asked for."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return sorted(where), __getattr__
