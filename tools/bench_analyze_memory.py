#!/usr/bin/env python
"""Peak memory of ``curate analyze`` on a large corpus and a pool of a million rows and more.

``analyze`` uses the training corpus's samples and references, the pool's candidate references
and the manifest's rows; of a pool of distorted candidates it needs only the few rows a manifest
upsampled. This benchmark builds (once, cached in ``--work``) a KADID-like corpus of ``--samples``
distorted images, a pool of ``--pool-refs`` candidate references with ``--pool-versions`` distorted
versions each, their embeddings, and a reshaped-looking manifest, then runs ``curate analyze`` on
them in a child process per code tree and reports the child's wall time and peak resident memory
(``ru_maxrss`` of that process, imports included), next to the bytes of the vectors analyze uses
and the bytes of the whole pool's vectors.

The inputs are built in a child process too, and every child runs in the work folder: a child
forked from a parent that holds gigabytes reports the parent's pages in its own peak, and a child
started in a checkout would import that checkout's ``curate`` instead of the tree asked for.

    python tools/bench_analyze_memory.py                               # this checkout
    python tools/bench_analyze_memory.py --baseline-code ../other-tree # and another one, as baseline
    python tools/bench_analyze_memory.py --smoke                       # tiny sizes, a few seconds
    python tools/bench_analyze_memory.py --json figures.json           # also write the figures
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TYPES = (1, 3, 10, 17)
LEVELS = (1, 2, 3, 4, 5)
SHARD_ROWS = 50_000


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _rows(prefix: str, source: str, refs: list[str], types: tuple[int, ...], levels: tuple[int, ...],
          scores: np.ndarray | None) -> dict[str, list]:
    """Columns of a corpus table: each reference, then its types x levels versions."""
    n_ver = len(types) * len(levels)
    cols: dict[str, list] = {k: [] for k in ("sample_id", "path", "ref_id", "is_reference", "distortion",
                                             "level", "score", "score_raw", "source", "split")}
    for r, ref in enumerate(refs):
        names = [ref] + [f"{ref}_{t:02d}_{lv:02d}" for t in types for lv in levels]
        cols["sample_id"] += [f"{prefix}/{n}" for n in names]
        cols["path"] += [f"{n}.png" for n in names]
        cols["ref_id"] += [ref] * (n_ver + 1)
        cols["is_reference"] += [True] + [False] * n_ver
        cols["distortion"] += [None] + [t for t in types for _ in levels]
        cols["level"] += [None] + [lv for _ in types for lv in levels]
        if scores is None:
            cols["score"] += [None] * (n_ver + 1)
        else:
            cols["score"] += [None] + scores[r].tolist()
        cols["score_raw"] += [None] * (n_ver + 1)
        cols["source"] += [source] * (n_ver + 1)
        cols["split"] += [None] * (n_ver + 1)
    return cols


def _vectors(n_refs: int, n_ver: int, dim: int, rng: np.random.Generator, spread: float) -> np.ndarray:
    """[n_refs * (1 + n_ver), dim] float32: each reference then its versions drifting from it."""
    refs = unit_rows(rng.standard_normal((n_refs, dim))).astype(np.float32)
    out = np.empty((n_refs, 1 + n_ver, dim), np.float32)
    out[:, 0] = refs
    drift = spread * (1 + np.arange(n_ver) % len(LEVELS)) / len(LEVELS)
    noise = rng.standard_normal((n_refs, n_ver, dim)).astype(np.float32) / np.sqrt(dim)
    out[:, 1:] = refs[:, None, :] + drift[None, :, None] * noise
    flat = out.reshape(-1, dim)
    return unit_rows(flat).astype(np.float32)


def _write_embeddings(folder: Path, ids: list[str], vectors: np.ndarray) -> None:
    from curate.schema import embeddings_table, make_metadata, write_parquet

    folder.mkdir(parents=True, exist_ok=True)
    meta = make_metadata("embeddings", encoder={"name": "bench-encoder"}, dim=int(vectors.shape[1]),
                         dtype="float32")
    for k, start in enumerate(range(0, len(ids), SHARD_ROWS)):
        part = slice(start, start + SHARD_ROWS)
        write_parquet(embeddings_table(ids[part], vectors[part]), folder / f"part-{k:05d}.parquet", meta)


def build(work: Path, samples: int, pool_refs: int, pool_versions: int, dim: int, upsampled_refs: int) -> dict:
    """Write the corpus, pool, embeddings and manifest under ``work`` (skipped when already there)."""
    import pandas as pd

    from curate.schema import make_metadata, write_table

    done = work / "inputs.json"
    if done.is_file():
        return json.loads(done.read_text())
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n_ver = len(TYPES) * len(LEVELS)
    n_refs = max(2, samples // n_ver)
    refs = [f"I{k:06d}" for k in range(n_refs)]
    scores = np.clip(9.5 - 1.8 * np.tile(np.array(LEVELS * len(TYPES), float), (n_refs, 1))
                     + rng.normal(0, 0.4, (n_refs, n_ver)), 0, 10)
    corpus = pd.DataFrame(_rows("train", "train", refs, TYPES, LEVELS, scores))
    write_table(corpus, work / "corpus.parquet", "corpus", make_metadata("corpus", root=str(work)))
    vectors = _vectors(n_refs, n_ver, dim, rng, spread=0.9)
    _write_embeddings(work / "emb", corpus["sample_id"].tolist(), vectors)
    del vectors

    pool_types = TYPES[: max(1, pool_versions // len(LEVELS))]
    cands = [f"P{k:07d}" for k in range(pool_refs)]
    pool = pd.DataFrame(_rows("pool", "pool", cands, pool_types, LEVELS, None))
    write_table(pool, work / "pool.parquet", "corpus", make_metadata("corpus", root=str(work / "pool")))
    pool_vectors = _vectors(pool_refs, len(pool_types) * len(LEVELS), dim, rng, spread=0.9)
    _write_embeddings(work / "pool_emb", pool["sample_id"].tolist(), pool_vectors)
    pool_rows = len(pool)
    del pool_vectors

    originals = corpus[~corpus["is_reference"]].iloc[::2]
    originals = originals.assign(origin="original", label_kind="human", pseudo_refs=None, pseudo_weights=None)
    chosen = set(cands[:upsampled_refs])
    up = pool[pool["ref_id"].isin(chosen) & ~pool["is_reference"] & pool["level"].isin([1, 3, 5])].copy()
    up = up.assign(origin="upsampled", label_kind="pseudo", score=5.0)
    up["pseudo_refs"] = [["train/I000000_01_01"]] * len(up)
    up["pseudo_weights"] = [[1.0]] * len(up)
    manifest = pd.concat([originals, up], ignore_index=True).assign(group_id=-1, group_size=1, weight=1.0)
    roots = {"train": str(work), "pool": str(work / "pool")}
    write_table(manifest, work / "manifest.parquet", "manifest", make_metadata("manifest", roots=roots))
    info = {
        "samples": int((~corpus["is_reference"]).sum()),
        "references": n_refs,
        "pool_rows": pool_rows,
        "pool_refs": pool_refs,
        "manifest_rows": len(manifest),
        "upsampled_rows": len(up),
        "dim": dim,
    }
    done.write_text(json.dumps(info))
    return info


def run_analyze(code: Path, work: Path, out: Path, device: str) -> dict:
    """``curate analyze`` in a child process with ``code`` first on the path: wall time, peak RSS."""
    args = [
        sys.executable, "-m", "curate", "analyze",
        "--corpus", str(work / "corpus.parquet"), "--embeddings", str(work / "emb"),
        "--pool", str(work / "pool.parquet"), "--pool-embeddings", str(work / "pool_emb"),
        "--manifest", str(work / "manifest.parquet"), "--device", device, "-o", str(out),
    ]
    env = dict(os.environ, PYTHONPATH=str(code), HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    child = subprocess.Popen(args, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    stdout, stderr = child.stdout.read(), child.stderr.read()  # type: ignore[union-attr]
    code_rc = os.waitstatus_to_exitcode(status)
    if code_rc:
        raise SystemExit(f"analyze failed with {code} ({code_rc}): {stderr.strip()[-2000:]}")
    return {"code": str(code), "seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": stdout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("bench-analyze-work"), help="Cache of the inputs.")
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--pool-refs", type=int, default=52_500)
    parser.add_argument("--pool-versions", type=int, default=20, help="Distorted rows per candidate.")
    parser.add_argument("--upsampled-refs", type=int, default=200)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baseline-code", type=Path, default=None, help="Another curate tree to measure first.")
    parser.add_argument("--smoke", action="store_true", help="Tiny sizes.")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.samples, args.pool_refs, args.upsampled_refs, args.dim = 400, 300, 5, 16
        args.work = args.work.with_name(args.work.name + "-smoke")
    args.work = args.work.resolve()
    sizes = (args.work, args.samples, args.pool_refs, args.pool_versions, args.dim, args.upsampled_refs)
    if args.build_only:
        build(*sizes)
        return
    if not (args.work / "inputs.json").is_file():
        child_args = [a for a in sys.argv[1:] if a != "--smoke"] + ["--build-only", "--work", str(args.work)]
        for name in ("samples", "pool_refs", "pool_versions", "dim", "upsampled_refs"):
            child_args += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
        subprocess.run([sys.executable, __file__, *child_args], check=True)
    info = build(*sizes)
    bytes_per_row = 4 * info["dim"]
    used_rows = info["samples"] + info["references"] + info["pool_refs"] + info["upsampled_rows"]
    figures = {
        "inputs": info,
        "vectors_used_mb": used_rows * bytes_per_row / 2**20,
        "pool_vectors_mb": info["pool_rows"] * bytes_per_row / 2**20,
        "runs": [],
    }
    print(
        f"corpus {info['samples']:,} samples + {info['references']:,} references; pool {info['pool_rows']:,} rows "
        f"({info['pool_refs']:,} candidate references); manifest {info['manifest_rows']:,} rows "
        f"({info['upsampled_rows']:,} upsampled); {info['dim']}-d float32"
    )
    print(f"vectors analyze uses: {figures['vectors_used_mb']:.0f} MB; the whole pool's vectors: "
          f"{figures['pool_vectors_mb']:.0f} MB")
    trees = ([("baseline", args.baseline_code.resolve())] if args.baseline_code else []) + [("this tree", ROOT)]
    for label, code in trees:
        run = run_analyze(code, args.work, args.work / f"report-{label.replace(' ', '-')}", args.device)
        run["label"] = label
        figures["runs"].append(run)
        print(f"{label:>10}: {run['seconds']:7.1f} s, peak RSS {run['peak_rss_mb']:8.0f} MB  ({code})")
    if len(figures["runs"]) == 2:
        base, this = figures["runs"]
        figures["rss_ratio"] = this["peak_rss_mb"] / base["peak_rss_mb"]
        figures["time_ratio"] = this["seconds"] / base["seconds"]
        print(f"ratio this/baseline: peak RSS {figures['rss_ratio']:.2f}x, time {figures['time_ratio']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
