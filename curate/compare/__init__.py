"""``curate compare``: the SynDR-IQA ablation on a user's data, with honest statistics.

Its settings are :class:`~curate.compare.params.CompareParams`. The names below load on first use,
so the command line can read the settings without pandas or torch.
"""

from __future__ import annotations

from curate.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "curate.compare.params": ["VARIANTS", "CompareParams", "parse_variants"],
        "curate.compare.runner": ["CompareResult", "compare"],
    },
)
