"""Time `ingest kadis700k` on a KADIS-shaped layout of empty files (no pixels are read by ingest).

    python tools/bench_ingest.py [--refs 140000] [--keep DIR]

Builds ``kadis700k_ref_imgs.csv``, ``ref_imgs/`` (N files) and ``dist_imgs/`` (5 N files) in a
temporary folder, then reports: wall time and peak RSS of the ingest (reading, listing, building and
writing the corpus), rows per second, and as a baseline measured in the same run, the time to check
the same files one by one with ``os.path.exists`` (what a per-row check would cost).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.corpus import ingest  # noqa: E402


def build(root: Path, refs: int) -> None:
    (root / "ref_imgs").mkdir(parents=True)
    (root / "dist_imgs").mkdir()
    lines = ["ref_im,dist_type"]
    for i in range(refs):
        name = f"pixabay-{i:07d}"
        t = i % 25 + 1
        lines.append(f"{name}.png,{t}")
        open(root / "ref_imgs" / f"{name}.png", "wb").close()
        for lev in range(1, 6):
            open(root / "dist_imgs" / f"{name}_{t:02d}_{lev:02d}.bmp", "wb").close()
    (root / "kadis700k_ref_imgs.csv").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", type=int, default=140_000)
    parser.add_argument("--keep", type=Path, help="build the layout here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "kadis700k"
        t0 = time.perf_counter()
        if not (root / "kadis700k_ref_imgs.csv").exists():
            build(root, args.refs)
        print(f"layout: {args.refs} refs + {5 * args.refs} distorted (built in {time.perf_counter() - t0:.1f} s)")

        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        result = ingest("kadis700k", root, Path(tmp) / "corpus.parquet")
        elapsed = time.perf_counter() - t0
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rows = len(result.frame)
        print(f"ingest: {rows} rows in {elapsed:.2f} s ({rows / elapsed:,.0f} rows/s), "
              f"peak RSS {rss1 / 1024:.0f} MiB (+{(rss1 - rss0) / 1024:.0f} MiB), "
              f"file {result.path.stat().st_size / 2**20:.1f} MiB")

        t0 = time.perf_counter()
        found = sum(os.path.exists(root / p) for p in result.frame["path"])
        baseline = time.perf_counter() - t0
        print(f"baseline: per-row os.path.exists of the same {found} files: {baseline:.2f} s "
              f"({baseline / elapsed:.2f}x the whole ingest)")


if __name__ == "__main__":
    main()
