"""The reference trainer (``curate train``): the paper's protocol, a head-only fast mode, metrics."""

from curate.train.loop import TrainConfig, summary_table, train
from curate.train.metrics import iqa_metrics

__all__ = ["TrainConfig", "iqa_metrics", "summary_table", "train"]
