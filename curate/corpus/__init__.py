"""Readers that turn native IQA dataset layouts into the corpus table (one module per format)."""
