"""Benchmark the KADID distortions at KADID's size (512 x 384).

Prints, for one 512 x 384 photo shipped with scikit-image:

* images per second of every distortion type (all five levels, in this process), slowest first;
* wall time of ``curate synthesize`` making the whole 25 x 5 set of that reference (PNG writing
  included) with 1 worker and with ``--workers`` N, and the speed-up of N over 1 measured in the
  same run; target: the whole set in under 10 s on 2 cores;
* peak resident memory of this process and of its worker processes.

Usage: ``python tools/bench_distort.py [--workers 2] [--repeats 2] [--json OUT.json]``
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.distort import DISTORTIONS, LEVELS, distortion_rng  # noqa: E402
from curate.distort.synthesize import synthesize  # noqa: E402

WIDTH, HEIGHT = 512, 384


def reference() -> np.ndarray:
    image = Image.fromarray(data.astronaut()).resize((WIDTH, WIDTH), Image.Resampling.LANCZOS)
    top = (WIDTH - HEIGHT) // 2
    return np.ascontiguousarray(np.asarray(image)[top : top + HEIGHT])


def per_type(image: np.ndarray, repeats: int) -> list[dict[str, float]]:
    rows = []
    for number, distortion in DISTORTIONS.items():
        distortion(image, 1, distortion_rng(0, "warm", number, 1))  # first-call imports and caches
        start = time.perf_counter()
        for r in range(repeats):
            for level in LEVELS:
                distortion(image, level, distortion_rng(r, "bench", number, level))
        elapsed = time.perf_counter() - start
        count = repeats * len(LEVELS)
        rows.append({"type": number, "name": distortion.name, "seconds_per_image": elapsed / count,
                     "images_per_second": count / elapsed})
    return rows


def whole_set(image: np.ndarray, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        refs = Path(tmp) / "refs"
        refs.mkdir()
        Image.fromarray(image).save(refs / "I01.png")
        start = time.perf_counter()
        summary = synthesize(refs, Path(tmp) / "out", workers=workers, quiet=True)
        elapsed = time.perf_counter() - start
        assert summary.distorted == 125 and summary.rejected == 0
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs of the five levels per type")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    image = reference()
    rows = per_type(image, args.repeats)
    total = sum(r["seconds_per_image"] for r in rows) * len(LEVELS)
    print(f"per type at {WIDTH}x{HEIGHT}, {args.repeats} x 5 levels each, one process (slowest first):")
    for r in sorted(rows, key=lambda r: -r["seconds_per_image"]):
        print(f"  {r['type']:2d} {r['name']:30s} {r['images_per_second']:7.1f} img/s  "
              f"{1000 * r['seconds_per_image']:7.1f} ms/img")
    print(f"sum over the 125 images (distortion only, one process): {total:.2f} s")

    one = whole_set(image, 1)
    many = whole_set(image, args.workers)
    print(f"whole 25 x 5 set of one {WIDTH}x{HEIGHT} reference, PNGs written: "
          f"1 worker {one:.2f} s, {args.workers} workers {many:.2f} s (speed-up {one / many:.2f}x; target < 10 s)")
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: this process {self_mb:.0f} MB, largest worker {child_mb:.0f} MB")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "size": [WIDTH, HEIGHT], "per_type": rows, "whole_set_seconds": {"1": one, str(args.workers): many},
            "peak_rss_mb": {"self": self_mb, "children": child_mb},
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
