"""The reference trainer (``curate train``): the paper's protocol, a head-only fast mode, metrics.

Its settings are :class:`~curate.train.config.TrainConfig`. The names below load on first use
(the trainer imports torch), so the command line can read the settings without it.
"""

from __future__ import annotations

from curate.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "curate.train.config": ["TrainConfig"],
        "curate.train.metrics": ["iqa_metrics"],
        "curate.train.loop": ["summary_table", "train"],
    },
)
