#!/usr/bin/env python
"""Reshape on a GPU: timings at KADIS-700k scale and a CPU/GPU agreement check, written as JSON.

    python tools/gpu_reshape.py OUT_DIR            # on a CUDA machine: n = 700k, pool of 100k
    python tools/gpu_reshape.py OUT_DIR --smoke    # tiny sizes on the CPU: checks the script runs

Measured (each after a warm-up, with ``torch.cuda.synchronize`` around it):

* ``drc_down``: DRCDown on n synthetic KADID-like 512-d samples (the same generator as
  ``tools/bench_reshape.py``), exact (float32 products, float64 checks at the boundary);
* DDCUp selection (eligibility + greedy thinning) and pseudo-label neighbours for a pool of
  candidates against the training references;
* the density-first trim of ``--target-size`` on the kept originals of a smaller corpus;
* ``reshape`` end to end from files (corpus, embeddings, pool) at a smaller n;
* agreement: the same DRCDown and DDCUp selection on the CPU and on the device give the same result.

Figures go to ``OUT_DIR/gpu_reshape.json`` (wall seconds, peak device memory, peak host RSS).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (ROOT, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_reshape import (  # noqa: E402
    DIM,
    LEVELS,
    TYPES,
    kadid_like,
    unit_rows,
    write_pool,
    write_training,
)


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ids, vectors float16 [n, 512], scores [n], reference vectors [n_refs, 512])."""
    n_refs = max(2, n // (TYPES * LEVELS))
    vectors = np.empty((n_refs * TYPES * LEVELS, DIM), np.float16)
    scores = np.empty(n_refs * TYPES * LEVELS)
    refs = np.empty((n_refs, DIM), np.float32)
    per = TYPES * LEVELS
    for r0, r1, content, vec, _, _, score in kadid_like(n_refs, seed=seed):
        vectors[r0 * per : r1 * per] = vec.reshape(-1, DIM)
        scores[r0 * per : r1 * per] = score.ravel()
        refs[r0:r1] = content
    ids = np.array([f"syn/{k:07d}" for k in range(len(scores))], dtype=object)
    return ids, vectors, scores, refs


def candidates(m: int, refs: np.ndarray, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kind = rng.choice(4, size=m, p=[0.7, 0.1, 0.1, 0.1])
    near = refs[rng.integers(0, len(refs), m)]
    noise = unit_rows(rng.standard_normal((m, DIM))).astype(np.float32)
    family = unit_rows(rng.standard_normal((m // 4 + 1, DIM))).astype(np.float32)[np.arange(m) // 4]
    vec = np.where((kind == 0)[:, None], near + 0.5 * noise, noise)
    vec = np.where((kind == 1)[:, None], -near + 0.3 * noise, vec)
    vec = np.where((kind == 2)[:, None], family + 0.6 * noise, vec)
    return unit_rows(vec).astype(np.float32)


class Timer:
    """Wall time of a block, synchronising the device before and after."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")

    def __enter__(self) -> Timer:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            self.peak_device_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self.peak_device_mb = 0.0
        self.seconds = time.perf_counter() - self.start


def host_peak_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out_dir")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--n", type=int, default=700_000, help="training samples for DRCDown")
    parser.add_argument("--pool", type=int, default=100_000, help="candidates for DDCUp")
    parser.add_argument("--trim-n", type=int, default=100_000, help="corpus size for the target-size trim")
    parser.add_argument("--e2e-n", type=int, default=100_000, help="corpus size for reshape from files")
    parser.add_argument("--check-n", type=int, default=20_000, help="corpus size for the CPU/GPU agreement")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --smoke)")
    args = parser.parse_args()
    if args.smoke:
        args.n, args.pool, args.trim_n, args.e2e_n, args.check_n = 2500, 300, 2500, 1250, 1250
    device = args.device or ("cpu" if args.smoke else "cuda")

    import torch

    from curate.reshape.downsample import drc_down
    from curate.reshape.params import ReshapeParams
    from curate.reshape.pipeline import reshape
    from curate.reshape.targetsize import trim_order
    from curate.reshape.upsample import content_thresholds, label_neighbours, select_candidates
    from curate.sampling import sample_keys

    if device.startswith("cuda") and not torch.cuda.is_available():
        print("error: CUDA is not available (use --smoke for a CPU check)", file=sys.stderr)
        return 1
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: dict = {
        "device": device,
        "device_name": torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor(),
        "torch": torch.__version__,
        "smoke": args.smoke,
        "results": {},
    }
    results = figures["results"]

    def save() -> None:
        (out_dir / "gpu_reshape.json").write_text(json.dumps(figures, indent=1, sort_keys=True))

    def record(name: str, timer: Timer, **extra: object) -> None:
        results[name] = {
            "seconds": round(timer.seconds, 3),
            "peak_device_mb": round(timer.peak_device_mb, 1),
            "host_peak_rss_mb": round(host_peak_mb(), 1),
            **extra,
        }
        print(
            f"{name:<28} {timer.seconds:8.2f} s  device peak {timer.peak_device_mb:8.0f} MB  {extra}",
            flush=True,
        )
        save()

    # warm-up: CUDA context, kernels
    ids, vectors, scores, refs = synthetic(2500)
    drc_down(ids, vectors, scores, device=device)

    # 1. agreement between the CPU and the device
    ids, vectors, scores, refs = synthetic(args.check_n, seed=3)
    cpu = drc_down(ids, vectors, scores, seed=7, device="cpu")
    dev = drc_down(ids, vectors, scores, seed=7, device=device)
    pool = candidates(max(200, args.pool // 20), refs, seed=4)
    sel_cpu = select_candidates(pool, refs, device="cpu")
    sel_dev = select_candidates(pool, refs, device=device)
    agree = {
        "drc_groups_equal": bool(np.array_equal(cpu.group_id, dev.group_id)),
        "drc_kept_equal": bool(np.array_equal(cpu.kept, dev.kept)),
        "ddc_kept_equal": bool(np.array_equal(sel_cpu.kept, sel_dev.kept)),
        "ddc_drop_order_equal": bool(np.array_equal(sel_cpu.drop_order, sel_dev.drop_order)),
        "n": int(len(ids)),
        "candidates": int(len(pool)),
    }
    results["agreement"] = agree
    print("agreement", agree, flush=True)
    save()

    # 2. DRCDown at scale
    ids, vectors, scores, refs = synthetic(args.n)
    with Timer(device) as t:
        drc = drc_down(ids, vectors, scores, device=device)
    record(
        "drc_down",
        t,
        n=int(len(ids)),
        pairs=int(len(drc.groups.pairs)),
        groups=int(drc.groups.n_groups),
        kept=int(drc.kept.sum()),
    )

    # 3. DDCUp selection and pseudo-label neighbours
    pool = candidates(args.pool, refs)
    with Timer(device) as t:
        thresholds = content_thresholds(refs, device=device)
        sel = select_candidates(pool, refs, thresholds=thresholds, device=device)
        nb = label_neighbours(pool[sel.kept], refs, device=device)
    record(
        "ddc_select",
        t,
        candidates=int(len(pool)),
        eligible=int(sel.eligible.sum()),
        kept=int(sel.kept.sum()),
        refs=int(len(refs)),
        r=thresholds.novelty_threshold,
        with_labels=len(nb.index),
    )
    del vectors, drc

    # 4. density-first trim: remove 30% of the kept originals (into the nearest-pair phase)
    ids, vectors, scores, refs = synthetic(args.trim_n, seed=5)
    drc = drc_down(ids, vectors, scores, device=device)
    remove = int(0.3 * drc.kept.sum())
    keys = sample_keys(ids, 0)
    with Timer(device) as t:
        order = trim_order(vectors, drc.groups.pairs, drc.kept, remove, keys, device=device)
    record("target_size_trim", t, n=int(len(ids)), removed=int(order.size), kept_before=int(drc.kept.sum()))
    del vectors, drc

    # 5. reshape end to end from files
    work = Path(tempfile.mkdtemp(prefix="gpu_reshape_", dir=out_dir))
    try:
        train = work / "train"
        info = write_training(train, args.e2e_n, "float16")
        write_pool(work / "pool", train, 1000, list(range(1, TYPES + 1)), [1, 3, 5], "float16")
        with Timer(device) as t:
            result = reshape(
                train / "corpus.parquet",
                train / "emb",
                work / "out" / "manifest.parquet",
                pool=work / "pool" / "pool.parquet",
                pool_embeddings=work / "pool" / "emb",
                params=ReshapeParams(types="all", device=device),
            )
        record("reshape_end_to_end", t, n=info["n"], pool=1000, rows=int(result.summary["manifest_rows"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {out_dir / 'gpu_reshape.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
