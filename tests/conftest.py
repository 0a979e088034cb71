"""Shared test set-up: offline, deterministic, small."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The same exact float32 paths on every machine; tests that exercise bfloat16 set it themselves.
os.environ.setdefault("CURATE_CPU_BF16", "0")
