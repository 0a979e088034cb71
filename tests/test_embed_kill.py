"""A run killed with SIGKILL mid-way, then rerun, equals an uninterrupted run; no partial shard looks done."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from curate.embed import embed_corpus
from curate.schema import EmbeddingsFolder, read_metadata
from tests.embed_helpers import build_corpus, build_tiny_weights

# Slow every rename (the moment a finished temporary file becomes a shard) so the parent can kill
# the child while shards are being written. Everything else is the normal library call.
CHILD = """
import os, sys, time
real_replace = os.replace
def slow_replace(src, dst):
    time.sleep(0.3)
    real_replace(src, dst)
os.replace = slow_replace
from curate.embed import embed_corpus
embed_corpus(sys.argv[1], sys.argv[2], pretrained="local-dir:" + sys.argv[3], shard_size=2, workers=0,
             batch_size=2, quiet=True)
"""

SHARD_SIZE = 2


def _shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*.parquet"))


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    weights = build_tiny_weights(tmp_path / "weights")
    corpus = build_corpus(tmp_path / "corpus", 20)
    local = f"local-dir:{weights['local_dir']}"
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(corpus), str(killed), str(weights["local_dir"])],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while len(_shards(killed)) < 3:
            assert child.poll() is None, child.stderr.read().decode()[-2000:] if child.stderr else ""
            assert time.monotonic() < deadline, "the child run never wrote 3 shards"
            time.sleep(0.02)
        # Kill while the next shard sits under its temporary name (the rename sleeps 0.3 s).
        time.sleep(0.15)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    written = _shards(killed)
    assert 3 <= len(written) < 10  # stopped part-way (10 shards in all)
    for shard in written:  # every file under a shard name is complete
        meta = read_metadata(shard)
        assert pq.ParquetFile(shard).metadata.num_rows == meta["shard"]["count"] == SHARD_SIZE
    leftovers = [p for p in killed.iterdir() if p.name.startswith(".part-")]
    assert all(".tmp-" in p.name for p in leftovers)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        resumed = embed_corpus(corpus, killed, pretrained=local, shard_size=SHARD_SIZE, workers=0, batch_size=2,
                               quiet=True)
        embed_corpus(corpus, tmp_path / "whole", pretrained=local, shard_size=SHARD_SIZE, workers=0, batch_size=2,
                     quiet=True)
    assert resumed.shards_skipped == len(written) and resumed.shards_written == 10 - len(written)
    assert not [p for p in killed.iterdir() if ".tmp-" in p.name]
    a, b = EmbeddingsFolder(killed).load(), EmbeddingsFolder(tmp_path / "whole").load()
    assert a.ids.tolist() == b.ids.tolist() and len(a.ids) == 20
    assert np.array_equal(a.vectors, b.vectors)
