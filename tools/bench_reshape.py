#!/usr/bin/env python
"""Benchmark ``curate reshape`` on synthetic KADID-like embeddings, next to the dense DRCDown.

Synthetic data with KADID's structure: references x 25 distortion types x 5 levels, 512-d unit
vectors. A distorted version drifts from its reference's content vector toward its type's
direction as the level grows (plus noise), and scores fall with the level, so low-level versions of
one reference form the dense redundant clusters DRCDown thins. Candidate pools mix candidates close
to a training reference (not novel), opposite ones (out of distribution) and families of new
contents (thinned to one or a few).

Each measurement runs in a fresh child process, which reports its wall time and peak resident
memory (VmHWM, imports included; the RSS right after the imports is printed beside it). Every
figure is measured twice in the same run: on the float32 path (``CURATE_CPU_BF16=0``, no cluster
pruning: numpy float32 products over the label band) and on the automatic path (cluster pruning
and bfloat16 screens where they pay); the output prints both, their ratio, whether the results are
identical (a digest of the pairs, or of the manifest and decisions tables without their metadata)
and which path each neighbour search took. ``--repeat N`` measures each figure N times (fresh
processes, the paths alternating) and reports the median with the range: on a shared 2-core machine
one run can be 30% off.

    python tools/bench_reshape.py                       # n = 10k, 100k; pools 1k, 100k; dense 5k, 10k
    python tools/bench_reshape.py --repeat 5            # medians of 5
    python tools/bench_reshape.py --large               # adds n = 700k (slow on 2 cores)
    python tools/bench_reshape.py --smoke               # tiny sizes, a few seconds
    python tools/bench_reshape.py --json figures.json   # also write the figures as JSON
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TYPES = 25
LEVELS = 5
DIM = 512
NOISE = 0.2  # per-sample noise norm; with it ~45% of samples fall in redundancy groups, like KADID
SHARD_ROWS = 50_000
LARGE_POOL_RUN_MAX = 200_000  # largest n also measured with the small pool


# --------------------------------------------------------------------------------------------
# Synthetic data


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def kadid_like(n_refs: int, *, dim: int = DIM, seed: int = 0, chunk_refs: int = 400):
    """Yield (ref_index, content [dim], distorted vectors [TYPES*LEVELS, dim], types, levels, scores)
    chunk by chunk, so 700k x 512 never has to exist twice."""
    rng = np.random.default_rng(seed)
    content = unit_rows(rng.standard_normal((n_refs, dim))).astype(np.float32)
    direction = unit_rows(rng.standard_normal((TYPES, dim))).astype(np.float32)
    types = np.repeat(np.arange(1, TYPES + 1), LEVELS)
    levels = np.tile(np.arange(1, LEVELS + 1), TYPES)
    mix = (0.12 * levels)[:, None].astype(np.float32)
    for r0 in range(0, n_refs, chunk_refs):
        r1 = min(n_refs, r0 + chunk_refs)
        noise = rng.standard_normal((r1 - r0, types.size, dim)).astype(np.float32) * (NOISE / np.sqrt(dim))
        vec = (1 - mix) * content[r0:r1, None, :] + mix * direction[types - 1][None] + noise
        vec /= np.linalg.norm(vec, axis=2, keepdims=True)
        score = 9.5 - 1.7 * levels + 0.3 * (types % 3) + rng.normal(0, 0.6, (r1 - r0, types.size))
        yield r0, r1, content[r0:r1], vec, types, levels, np.clip(score, 0, 10)


def write_training(folder: Path, n: int, dtype: str, seed: int = 0) -> dict:
    """corpus.parquet + emb/ (shards) + vectors.npy / scores.npy / refs.npy for the in-memory runs."""
    import pandas as pd

    from curate.schema import embeddings_table, make_metadata, write_parquet, write_table

    n_refs = max(2, n // (TYPES * LEVELS))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "emb").mkdir(exist_ok=True)
    emb_meta = make_metadata("embeddings", encoder={"name": "synthetic-kadid"}, dim=DIM, dtype=dtype)
    np_dtype = np.float16 if dtype == "float16" else np.float32
    total = n_refs * TYPES * LEVELS
    vectors = np.lib.format.open_memmap(folder / "vectors.npy", mode="w+", dtype=np_dtype, shape=(total, DIM))
    scores = np.empty(total)
    refs = np.empty((n_refs, DIM), np.float32)
    rows = []
    buf_ids: list[str] = []
    buf_vec: list[np.ndarray] = []
    shard = 0

    def flush() -> None:
        nonlocal shard, buf_ids, buf_vec
        if not buf_ids:
            return
        table = embeddings_table(buf_ids, np.concatenate(buf_vec).astype(np_dtype), dtype)
        write_parquet(table, folder / "emb" / f"part-{shard:05d}.parquet", emb_meta)
        shard += 1
        buf_ids, buf_vec = [], []

    pos = 0
    for r0, r1, content, vec, types, levels, score in kadid_like(n_refs, seed=seed):
        for r in range(r0, r1):
            ref = f"R{r:05d}"
            rows.append((f"syn/{ref}", f"{ref}.png", ref, True, None, None, None))
            buf_ids.append(f"syn/{ref}")
            buf_vec.append(content[r - r0][None])
            ids = [f"syn/{ref}_{t:02d}_{lv:02d}" for t, lv in zip(types, levels, strict=True)]
            for sid, t, lv, s in zip(ids, types, levels, score[r - r0], strict=True):
                rows.append((sid, sid[4:] + ".png", ref, False, int(t), int(lv), float(s)))
            buf_ids.extend(ids)
            buf_vec.append(vec[r - r0])
            vectors[pos : pos + ids.__len__()] = vec[r - r0]
            scores[pos : pos + len(ids)] = score[r - r0]
            refs[r] = content[r - r0]
            pos += len(ids)
            if len(buf_ids) >= SHARD_ROWS:
                flush()
    flush()
    vectors.flush()
    del vectors
    frame = pd.DataFrame(
        rows, columns=["sample_id", "path", "ref_id", "is_reference", "distortion", "level", "score"]
    )
    frame["score_raw"] = frame["score"]
    frame["source"] = "synthetic"
    frame["split"] = None
    write_table(frame, folder / "corpus.parquet", "corpus", make_metadata("corpus", root=str(folder)))
    np.save(folder / "scores.npy", scores)
    np.save(folder / "refs.npy", refs)
    return {"n": total, "refs": n_refs}


def write_pool(
    folder: Path, training: Path, m: int, types: list[int], levels: list[int], dtype: str, seed: int = 1
):
    """A pool corpus of m candidate references + their distorted versions, embeddings of the refs."""
    import pandas as pd

    from curate.schema import embeddings_table, make_metadata, write_parquet, write_table

    rng = np.random.default_rng(seed)
    refs = np.load(training / "refs.npy")
    kind = rng.choice(4, size=m, p=[0.7, 0.1, 0.1, 0.1])
    family_base = unit_rows(rng.standard_normal((m // 4 + 1, DIM))).astype(np.float32)
    vec = np.empty((m, DIM), np.float32)
    near = refs[rng.integers(0, len(refs), m)]
    noise = unit_rows(rng.standard_normal((m, DIM))).astype(np.float32)
    vec[kind == 0] = (near + 0.5 * noise)[kind == 0]  # close to a training reference: not novel
    vec[kind == 1] = (-near + 0.3 * noise)[kind == 1]  # opposite one: out of distribution
    fam = family_base[np.arange(m) // 4]
    vec[kind == 2] = (fam + 0.6 * noise)[kind == 2]  # families of related new contents: thinned
    vec[kind == 3] = noise[kind == 3]  # new contents
    vec = unit_rows(vec).astype(np.float16 if dtype == "float16" else np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for c in range(m):
        ref = f"C{c:06d}"
        rows.append((f"pool/{ref}", f"{ref}.png", ref, True, None, None))
        for t in types:
            for lv in levels:
                rows.append(
                    (f"pool/{ref}_{t:02d}_{lv:02d}", f"{ref}_{t:02d}_{lv:02d}.png", ref, False, t, lv)
                )
    frame = pd.DataFrame(rows, columns=["sample_id", "path", "ref_id", "is_reference", "distortion", "level"])
    frame["score"] = None
    frame["score_raw"] = None
    frame["source"] = "pool"
    frame["split"] = None
    write_table(frame, folder / "pool.parquet", "corpus", make_metadata("corpus", root=str(folder)))
    (folder / "emb").mkdir(exist_ok=True)
    table = embeddings_table([f"pool/C{c:06d}" for c in range(m)], vec, dtype)
    meta = make_metadata("embeddings", encoder={"name": "synthetic-kadid"}, dim=DIM, dtype=dtype)
    write_parquet(table, folder / "emb" / "part-00000.parquet", meta)
    return {"candidates": m, "pool_rows": len(frame)}


# --------------------------------------------------------------------------------------------
# The authors' approach, stated afresh: dense n x n matrices and union-find


def dense_drc_down(vectors: np.ndarray, scores: np.ndarray, seed: int = 0) -> np.ndarray:
    """DRCDown as the release computes it: full similarity and label-gap matrices, the index pairs
    of every redundant pair, union-find, then the keep rule. Returns the kept mask."""
    x = np.asarray(vectors, dtype=np.float32)
    n = len(x)
    similarity = x @ x.T
    gap = np.abs(scores[:, None] - scores[None, :])
    redundant = (similarity > 0.9) & (gap < 1.0)
    np.fill_diagonal(redundant, False)
    first, second = np.nonzero(np.triu(redundant))
    parent = np.arange(n)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(first.tolist(), second.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    roots = np.array([find(a) for a in range(n)])
    kept = np.ones(n, dtype=bool)
    rng = np.random.default_rng(seed)
    for root in np.unique(roots):
        members = np.flatnonzero(roots == root)
        if members.size > 20:
            keep = max(20, members.size // 2)
            kept[rng.permutation(members)[keep:]] = False
    return kept


# --------------------------------------------------------------------------------------------
# Children: one measurement each


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    """Peak resident memory of this process image (VmHWM). Not ``ru_maxrss``: Linux carries that
    over from the parent across fork + exec, so a child of a big parent would report the parent."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SearchLog(logging.Handler):
    """Collects the neighbour searches' own account of the path each one took."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def table_digest(path: Path) -> str:
    """sha256 of a Parquet table's contents, without its metadata (which holds the command line)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    sink = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(None), sink)
    return hashlib.sha256(sink.getvalue()).hexdigest()[:16]


def child(args: argparse.Namespace) -> None:
    from curate.reshape import neighbours
    from curate.reshape.downsample import drc_down
    from curate.reshape.params import ReshapeParams
    from curate.reshape.pipeline import decisions_path_for, reshape

    if args.path == "float32":  # today's path: no bfloat16 units, no cluster pruning
        os.environ[neighbours.CPU_BF16_ENV] = "0"
        neighbours.CLUSTER_MIN_N = sys.maxsize
    searches = SearchLog()
    logging.getLogger(neighbours.__name__).addHandler(searches)
    logging.getLogger(neighbours.__name__).setLevel(logging.INFO)
    import_rss = rss_mb()
    data = Path(args.data)
    out: dict = {"import_rss_mb": round(import_rss, 1)}
    start = time.perf_counter()
    if args.child == "reshape":
        result = reshape(
            data / "corpus.parquet",
            data / "emb",
            Path(args.out) / "manifest.parquet",
            pool=Path(args.pool) / "pool.parquet" if args.pool else None,
            pool_embeddings=Path(args.pool) / "emb" if args.pool else None,
            params=ReshapeParams(types=args.types, device=args.device),
        )
        out["wall_s"] = round(time.perf_counter() - start, 3)
        out["summary"] = {k: v for k, v in result.summary.items() if k != "thresholds"}
        out["thresholds"] = result.summary.get("thresholds")
        manifest = Path(args.out) / "manifest.parquet"
        out["digest"] = table_digest(manifest) + "/" + table_digest(decisions_path_for(manifest))
    elif args.child == "drc-core":
        vectors = np.load(data / "vectors.npy", mmap_mode="r")
        vectors = np.ascontiguousarray(vectors)
        scores = np.load(data / "scores.npy")
        ids = np.array([f"{k:07d}" for k in range(len(scores))], dtype=object)
        start = time.perf_counter()
        kept = drc_down(ids, vectors, scores, device=args.device)
        out["wall_s"] = round(time.perf_counter() - start, 3)
        out["kept"] = int(kept.kept.sum())
        pairs = kept.groups.pairs
        out["pairs"] = len(pairs)
        digest = hashlib.sha256(pairs.i.astype(np.int64).tobytes() + pairs.j.astype(np.int64).tobytes())
        out["digest"] = digest.hexdigest()[:16] + "/" + hashlib.sha256(kept.kept.tobytes()).hexdigest()[:8]
    elif args.child == "dense":
        vectors = np.load(data / "vectors.npy").astype(np.float32)
        scores = np.load(data / "scores.npy")
        start = time.perf_counter()
        out["kept"] = int(dense_drc_down(vectors, scores).sum())
        out["wall_s"] = round(time.perf_counter() - start, 3)
    out["peak_rss_mb"] = round(peak_mb(), 1)
    out["searches"] = summarise_searches(searches.lines)
    print(json.dumps(out))


def summarise_searches(lines: list[str]) -> list[str]:
    """The distinct paths taken, most products first (a reshape makes a handful of searches)."""
    seen: dict[str, int] = {}
    for line in lines:
        seen[line] = seen.get(line, 0) + 1
    return [f"{line}{f' (x{count})' if count > 1 else ''}" for line, count in seen.items()]


def measure(kind: str, data: Path, workdir: Path, **extra) -> dict:
    """One child process: ``kind`` on ``data`` with ``extra`` options (``path``: float32 or auto)."""
    cmd = [sys.executable, __file__, "--child", kind, "--data", str(data), "--out", str(workdir / "out")]
    for key, value in extra.items():
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    threads = str(extra.get("threads") or 2)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {
            "error": proc.stderr.strip().splitlines()[-1]
            if proc.stderr.strip()
            else f"exit {proc.returncode}"
        }
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_report() -> dict:
    """The CPU model, its bfloat16 instructions, and what torch makes of them."""
    model, flags = platform.processor() or "unknown", set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", ""):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    from curate.reshape.neighbours import cpu_bfloat16_matmul

    return {
        "model": model,
        "cores": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "bf16_units_by_torch": cpu_bfloat16_matmul(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000", help="training sizes n")
    parser.add_argument("--large", action="store_true", help="also n = 700,000 (slow on 2 cores)")
    parser.add_argument("--pools", default="1000,100000", help="candidate pool sizes")
    parser.add_argument("--dense-sizes", default="5000,10000", help="sizes for the dense baseline")
    parser.add_argument(
        "--dtype", default="float16", choices=["float16", "float32"], help="stored embeddings"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paths", default="float32,auto", help="paths to measure, the baseline first")
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="fresh processes per figure, the paths alternating; the median is reported with the range",
    )
    parser.add_argument("--workdir", default=None, help="where the synthetic data go (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="keep synthetic data already in --workdir")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that everything runs")
    # child mode
    parser.add_argument("--child", choices=["reshape", "drc-core", "dense"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--pool", help=argparse.SUPPRESS)
    parser.add_argument("--types", help=argparse.SUPPRESS)
    parser.add_argument("--path", default="auto", choices=["float32", "auto"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    sizes = [int(s) for s in args.sizes.split(",") if s]
    pools = [int(s) for s in args.pools.split(",") if s]
    dense_sizes = [int(s) for s in args.dense_sizes.split(",") if s]
    paths = [p for p in args.paths.split(",") if p]
    if args.large:
        sizes.append(700_000)
    if args.smoke:
        sizes, pools, dense_sizes = [1250], [60], [1250]
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_reshape_"))
    cpu = cpu_report()
    figures: dict = {"device": args.device, "dtype": args.dtype, "threads": args.threads, "cpu": cpu, "runs": []}
    print(
        f"CPU: {cpu['model']}, {cpu['cores']} cores; avx512_bf16 {cpu['avx512_bf16']}, amx_bf16 {cpu['amx_bf16']}; "
        f"torch reports bfloat16 units: {cpu['bf16_units_by_torch']}",
        flush=True,
    )

    def line(path: str, result: dict) -> str:
        if "error" in result:
            return f"   {path:<8} FAILED: {result['error']}"
        spread = ""
        if len(result.get("walls_s", [])) > 1:
            spread = f" (median of {len(result['walls_s'])}: {min(result['walls_s']):.2f}-{max(result['walls_s']):.2f})"
        return (
            f"   {path:<8} {result['wall_s']:>9.2f} s{spread}  peak {result['peak_rss_mb']:>7.0f} MB"
            f"  (after imports {result['import_rss_mb']:.0f} MB)"
        )

    def repeated(runs: list[dict]) -> dict:
        """The median run of several (by wall time), with every wall time and the largest peak."""
        if any("error" in r for r in runs):
            return next(r for r in runs if "error" in r)
        walls = [r["wall_s"] for r in runs]
        out = dict(sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2])
        out["wall_s"] = round(float(np.median(walls)), 3)
        out["walls_s"] = walls
        out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
        if len({r.get("digest") for r in runs}) > 1:
            out["digest"] = "differs between repeats"
        return out

    def compare(label: str, kind: str, data: Path, **extra: object) -> None:
        """The same measurement on each path, side by side, with the ratio to the first."""
        print(label, flush=True)
        runs: dict[str, list[dict]] = {path: [] for path in paths}
        for _ in range(max(1, args.repeat)):  # paths alternate, so slow spells hit both
            for path in paths:
                runs[path].append(
                    measure(kind, data, work, path=path, device=args.device, threads=args.threads, **extra)
                )
        results = {}
        for path in paths:
            results[path] = repeated(runs[path])
            print(line(path, results[path]), flush=True)
        run = {"label": label, "paths": results}
        base, *others = paths
        for other in others:
            a, b = results[base], results[other]
            if "error" in a or "error" in b:
                continue
            run[f"ratio_{base}_over_{other}"] = round(a["wall_s"] / max(b["wall_s"], 1e-9), 2)
            run["identical"] = a.get("digest") == b.get("digest")
            print(f"   ratio {base} / {other}: {run[f'ratio_{base}_over_{other}']:.2f}x; "
                  f"identical results: {run['identical']} ({a.get('digest')})", flush=True)
        for path in paths:
            for search in results[path].get("searches", []):
                print(f"     [{path}] {search}", flush=True)
        figures["runs"].append(run)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1, sort_keys=True))

    def training(n: int) -> tuple[Path, dict]:
        data = work / f"train_{n}"
        if args.reuse and (data / "scores.npy").exists():
            total = len(np.load(data / "scores.npy"))
            return data, {"n": total, "refs": len(np.load(data / "refs.npy"))}
        t0 = time.perf_counter()
        info = write_training(data, n, args.dtype)
        print(f"-- n = {info['n']} ({info['refs']} references), generated in {time.perf_counter() - t0:.0f} s")
        return data, info

    def pool(m: int, data: Path, types: list[int], name: str) -> Path:
        folder = work / name
        if not (args.reuse and (folder / "pool.parquet").exists()):
            t0 = time.perf_counter()
            info = write_pool(folder, data, m, types, [1, 3, 5], args.dtype)
            print(f"-- pool of {m} candidates ({info['pool_rows']} rows), generated in {time.perf_counter() - t0:.0f} s")
        return folder

    print(f"synthetic KADID-like data in {work} (machine shared: timings are noisy)", flush=True)
    for n in sorted(set(sizes) | set(dense_sizes)):
        data, info = training(n)
        if n in dense_sizes:
            dense = measure("dense", data, work, threads=args.threads)
            print(f"dense DRCDown (n x n), n={info['n']}\n{line('dense', dense)}", flush=True)
            figures["runs"].append({"label": f"dense DRCDown (n x n), n={info['n']}", "paths": {"dense": dense}})
            compare(f"sparse DRCDown core, n={info['n']}", "drc-core", data)
        if n in sizes:
            compare(f"reshape end to end, n={info['n']}, no pool", "reshape", data, types="all")
            if n > LARGE_POOL_RUN_MAX or not pools:  # at 700k the pool adds little and each run takes minutes
                continue
            small = min(pools)
            compare(
                f"reshape end to end, n={info['n']}, pool {small}", "reshape", data,
                types="all", pool=pool(small, data, list(range(1, TYPES + 1)), f"pool_{small}"),
            )
        shutil.rmtree(work / "out", ignore_errors=True)
    big_pools = [m for m in pools if m != min(pools)]
    if big_pools:
        data, _ = training(sorted(sizes)[0])
        livec = [1, 3, 10, 17, 18, 25]
        for m in big_pools:
            compare(
                f"reshape end to end, n={sorted(sizes)[0]} (livec), pool {m}", "reshape", data,
                types="livec", pool=pool(m, data, livec, f"pool_{m}_livec"),
            )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, sort_keys=True))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
