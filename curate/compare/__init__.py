"""``curate compare``: the SynDR-IQA ablation on a user's data, with honest statistics."""

from curate.compare.runner import VARIANTS, CompareParams, CompareResult, compare, parse_variants

__all__ = ["VARIANTS", "CompareParams", "CompareResult", "compare", "parse_variants"]
