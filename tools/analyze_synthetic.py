"""Build a synthetic KADID-like corpus (and pool and manifest), run ``curate analyze`` on it and print
its time and peak memory.

The embeddings follow the pattern the method targets: every sample mixes its reference's content
direction with its distortion type's direction, weighted by level, so mild levels cluster by
reference and strong levels by distortion type. Scores fall with level. Nothing is downloaded.

The manifest (and its decisions table) come from ``curate.reshape.pipeline.reshape`` on the corpus
and a pool of candidate references with their distorted versions at levels 1, 3, 5, so the
before/after parts of the report see what ``curate reshape`` writes.

    PYTHONPATH=. python tools/analyze_synthetic.py -o /tmp/synth --refs 40 --types 1,3,10,17,18,25
    PYTHONPATH=. python tools/analyze_synthetic.py -o /tmp/big --refs 800 --types all --no-manifest
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from curate.analyze import analyze
from curate.analyze.params import AnalyzeParams
from curate.distort.presets import parse_types
from curate.reshape.params import ReshapeParams
from curate.reshape.pipeline import reshape
from curate.schema import embeddings_table, make_metadata, write_parquet, write_table

ENCODER = {"name": "synthetic", "pretrained": "none"}


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class World:
    """Random directions for a global mean, content themes, distortion types."""

    def __init__(self, dim: int, n_themes: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.dim = dim
        self.common = _unit(self.rng.normal(size=dim))
        self.themes = _unit(self.rng.normal(size=(n_themes, dim)))
        self.types = _unit(self.rng.normal(size=(26, dim)))
        self.severity = self.rng.uniform(0.0, 1.5, size=26)

    def references(self, n: int, themes: np.ndarray) -> np.ndarray:
        theme = self.themes[self.rng.choice(themes, size=n)]
        return _unit(1.0 * self.common + 0.45 * theme + 0.75 * _unit(self.rng.normal(size=(n, self.dim))))

    def distorted(self, ref: np.ndarray, types: np.ndarray, levels: np.ndarray) -> np.ndarray:
        a = (0.16 * levels - 0.1)[:, None]
        noise = _unit(self.rng.normal(size=(len(levels), self.dim)))
        # noise grows with level: strong distortions of different contents still differ
        spread = (0.03 + 0.03 * levels)[:, None]
        return _unit(ref * (1 - a) + (self.common + self.types[types]) * a + spread * noise)

    def scores(self, types: np.ndarray, levels: np.ndarray) -> np.ndarray:
        s = 9.6 - 1.7 * (levels - 1) - self.severity[types] + self.rng.normal(0, 0.25, size=len(levels))
        return np.clip(s, 0.0, 10.0).astype(np.float32)


def _corpus_rows(
    prefix: str, source: str, ref_names: list[str], types: tuple[int, ...], levels: tuple[int, ...]
):
    rows = []
    for ref in ref_names:
        rows.append((f"{prefix}/{ref}", f"{ref}.png", ref, True, None, None))
        for t in types:
            for lv in levels:
                rows.append(
                    (f"{prefix}/{ref}_{t:02d}_{lv:02d}", f"{ref}_{t:02d}_{lv:02d}.png", ref, False, t, lv)
                )
    df = pd.DataFrame(rows, columns=["sample_id", "path", "ref_id", "is_reference", "distortion", "level"])
    df["source"] = source
    return df


def _embed(world: World, df: pd.DataFrame, ref_vectors: dict[str, np.ndarray]) -> np.ndarray:
    out = np.empty((len(df), world.dim), np.float32)
    is_ref = df["is_reference"].to_numpy(bool)
    refs = np.stack([ref_vectors[r] for r in df["ref_id"]])
    out[is_ref] = refs[is_ref]
    d = ~is_ref
    out[d] = world.distorted(refs[d], df.loc[d, "distortion"].to_numpy(int), df.loc[d, "level"].to_numpy(int))
    return out


def _write_embeddings(folder: Path, ids: np.ndarray, vectors: np.ndarray, shard_rows: int = 100_000) -> None:
    dim = vectors.shape[1]
    for k, s in enumerate(range(0, len(ids), shard_rows)):
        table = embeddings_table(ids[s : s + shard_rows], vectors[s : s + shard_rows])
        meta = make_metadata("embeddings", encoder=ENCODER, dim=dim, dtype="float32")
        write_parquet(table, folder / f"part-{k:05d}.parquet", meta)


def build(
    out: Path, n_refs: int, types: tuple[int, ...], n_pool: int, dim: int, seed: int, manifest: bool
) -> dict:
    world = World(dim, n_themes=8, seed=seed)
    levels = (1, 2, 3, 4, 5)
    names = [f"I{k:04d}" for k in range(n_refs)]
    ref_vectors = dict(zip(names, world.references(n_refs, np.arange(6)), strict=True))
    corpus = _corpus_rows("synthetic", "synthetic", names, types, levels)
    d = ~corpus["is_reference"].to_numpy(bool)
    corpus["score"] = np.nan
    corpus.loc[d, "score"] = world.scores(
        corpus.loc[d, "distortion"].to_numpy(int), corpus.loc[d, "level"].to_numpy(int)
    )
    vectors = _embed(world, corpus, ref_vectors)
    write_table(corpus, out / "corpus.parquet", "corpus", make_metadata("corpus", root="images"))
    _write_embeddings(out / "embeddings", corpus["sample_id"].to_numpy(object), vectors)
    paths = {"corpus": out / "corpus.parquet", "embeddings": out / "embeddings"}
    if not n_pool:
        return paths

    # pool: mostly known themes, some new ones (out of distribution), some near-copies (not novel)
    pnames = [f"P{k:04d}" for k in range(n_pool)]
    pool_refs = world.references(n_pool, np.arange(8))
    copies = np.arange(0, n_pool, 7)
    pool_refs[copies] = _unit(
        np.stack([ref_vectors[names[k % n_refs]] for k in copies])
        + 0.05 * world.rng.normal(size=(copies.size, dim))
    )
    pref = dict(zip(pnames, pool_refs, strict=True))
    pool = _corpus_rows("pool", "synthetic-pool", pnames, types, (1, 3, 5))
    pvec = _embed(world, pool, pref)
    write_table(pool, out / "pool.parquet", "corpus", make_metadata("corpus", root="pool-images"))
    _write_embeddings(out / "pool-embeddings", pool["sample_id"].to_numpy(object), pvec)
    paths.update(pool=out / "pool.parquet", pool_embeddings=out / "pool-embeddings")
    if not manifest:
        return paths

    # the manifest from the library's reshape (DRCDown on the originals + DDCUp from the pool)
    reshape(
        paths["corpus"],
        paths["embeddings"],
        out / "manifest.parquet",
        pool=paths["pool"],
        pool_embeddings=paths["pool_embeddings"],
        params=ReshapeParams(types=types, seed=seed, device="cpu"),
    )
    paths["manifest"] = out / "manifest.parquet"
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", type=Path, required=True, help="folder for the inputs and report/")
    ap.add_argument("--refs", type=int, default=40)
    ap.add_argument("--types", default="livec")
    ap.add_argument("--pool", type=int, default=120, help="pool candidates (0: no pool)")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample-cap", type=int, default=20_000)
    ap.add_argument("--no-manifest", action="store_true")
    ap.add_argument(
        "--trace-memory", action="store_true", help="also report tracemalloc's Python peak (slower)"
    )
    args = ap.parse_args(argv)
    types = parse_types(args.types)
    t0 = time.perf_counter()
    paths = build(args.out, args.refs, types, args.pool, args.dim, args.seed, not args.no_manifest)
    t1 = time.perf_counter()
    if args.trace_memory:
        tracemalloc.start()
    report = analyze(
        paths["corpus"],
        paths["embeddings"],
        args.out / "report",
        pool=paths.get("pool"),
        pool_embeddings=paths.get("pool_embeddings"),
        manifest=paths.get("manifest"),
        params=AnalyzeParams(types=types, seed=args.seed, sample_cap=args.sample_cap),
    )
    t2 = time.perf_counter()
    traced = tracemalloc.get_traced_memory()[1] if args.trace_memory else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s = report.summary
    print(f"samples analysed: {s['before']['samples']:,} ({args.dim}-d), sample cap {args.sample_cap:,}")
    print(
        f"build inputs: {t1 - t0:.1f} s; analyze: {t2 - t1:.1f} s; peak RSS (whole process): {rss:,.0f} MiB"
    )
    if traced is not None:
        print(f"tracemalloc peak during analyze: {traced / 2**20:,.0f} MiB")
    print(
        f"clusters: {s['before']['clusters']['found']}; redundancy groups: {s['before']['redundancy']['groups']}"
    )
    print(f"report: {report.out_dir / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
