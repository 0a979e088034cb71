"""Benchmark `curate embed` on the CPU, in fp32 and in bf16 side by side in one run.

For each model (a tiny open_clip ViT built from a JSON config, ViT-B-32 with random weights, and the
packaged ImageNet EfficientNet-Lite0 through ``--encoder timm``) and each precision (fp32; bf16,
which casts model and batch: `--precision bf16`, opt-in on the CPU) it measures, on the
same images:

* decode: the reader alone (PNG decode, resize, crop -> uint8 batches), no model: can it keep up?
* bare forward: the mapper (normalise + image tower) on pre-decoded uint8 tensors (no files);
* pipeline: curate's reader -> mapper -> writer on the PNG files (model already loaded);
* end to end: the whole library call behind `curate embed` (corpus read, model load, shards) with
  its default loader (on the CPU: no worker process, each batch decoded on the model's threads
  between forward passes), the precisions alternating over ``--rounds`` (median and range);
* by operator: one batch under torch.profiler, its time in matrix products (what bfloat16 units
  speed up) and in the other operators (normalisation, activations, softmax, copies), so the bf16 /
  fp32 ratio of the matrix products shows how much casting can give on this CPU at most;

and prints images/s, the pipeline's scaling with loader workers, the ratio pipeline / bare over
alternating rounds, the bf16 / fp32 ratio of each figure, and the cosine between the bf16 and fp32
features of every image (min and mean), with the CPU model and which precision path ran. Usage::

    python tools/bench_embed.py [--images 128] [--tiny-images 768] [--lite0-images 128] [--rounds 3]
                                [--workers 0,1,2] [--skip-vit-b-32] [--skip-lite0] [--end-to-end-only]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 32},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
}


def synthetic_photo(seed: int, width: int, height: int) -> np.ndarray:
    """A photo-like uint8 [H, W, 3] image: smooth colour fields, edges and mild noise.

    PNG cost depends on content; noise-free gradients compress unrealistically well and pure noise
    unrealistically badly, so this mixes both.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, width / 2)
        colour = rng.uniform(0, 1, 3)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r**2
        image[mask] = 0.5 * image[mask] + 0.5 * colour
    for c in range(3):
        fx, fy = rng.uniform(0.002, 0.03, 2)
        image[..., c] += 0.25 * np.sin(xx * fx + yy * fy + rng.uniform(0, 6.3))
    image += rng.normal(0, 0.03, image.shape)
    return np.clip(image * 200 + 30, 0, 255).astype(np.uint8)


def _write_png(args: tuple[int, int, int, str]) -> None:
    from PIL import Image

    seed, width, height, path = args
    Image.fromarray(synthetic_photo(seed, width, height)).save(path)


def make_png_corpus(
    root: Path, count: int, width: int, height: int, *, unique: int | None = None, processes: int = 1
) -> Path:
    """``count`` PNG files (``unique`` distinct images, copied to fill) and a corpus table in ``root``."""
    import pandas as pd

    from curate.schema import make_metadata, write_table

    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    unique = min(count, unique or count)
    jobs = [(k, width, height, str(images / f"{k:06d}.png")) for k in range(unique)]
    if processes > 1:
        with ProcessPoolExecutor(processes) as pool:
            list(pool.map(_write_png, jobs, chunksize=8))
    else:
        for job in jobs:
            _write_png(job)
    for k in range(unique, count):
        shutil.copyfile(images / f"{k % unique:06d}.png", images / f"{k:06d}.png")
    frame = pd.DataFrame({"sample_id": [f"bench/{k:06d}" for k in range(count)],
                          "path": [f"images/{k:06d}.png" for k in range(count)]})
    frame["ref_id"] = frame["sample_id"]
    frame["is_reference"] = True
    frame["source"] = "bench"
    path = root / "corpus.parquet"
    write_table(frame, path, "corpus", make_metadata("corpus", root=str(root)))
    return path


def register_tiny(folder: Path) -> str:
    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench-tiny-vit.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(folder / "bench-tiny-vit.json")
    return "bench-tiny-vit"


def predecode(corpus: Path, preprocessing: Any) -> Any:
    """All images of ``corpus`` decoded and preprocessed: uint8 tensor [N, 3, S, S]."""
    import torch

    from curate.embed.reader import decode_one
    from curate.embed.runner import corpus_samples

    _, paths, _, _ = corpus_samples(corpus)
    arrays = [decode_one(p, preprocessing)[0] for p in paths]
    return torch.from_numpy(np.stack(arrays))


def bare_forward(mapper: Any, images: Any, batch_size: int, *, repeats: int = 1) -> float:
    """images/s of the mapper alone (normalise + tower) on pre-decoded uint8 tensors, each batch's
    features copied back to the host as a run does."""
    import torch

    batches = list(torch.split(images, batch_size))
    mapper(batches[0])  # warm-up (allocator, kernels)
    if mapper.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        for batch in batches:
            mapper.to_numpy(mapper(batch))
    if mapper.device.type == "cuda":
        torch.cuda.synchronize()
    return repeats * len(images) / (time.perf_counter() - started)


# Operators that multiply matrices (what bfloat16 units speed up); the rest is normalisation,
# activations, softmax, copies and casts.
MATRIX_OPS = ("mm", "addmm", "bmm", "baddbmm", "matmul", "convolution", "_convolution", "mkldnn_convolution",
              "conv2d", "linear", "_scaled_dot_product_flash_attention_for_cpu", "mkldnn_rnn_layer")


def op_split(mapper: Any, images: Any) -> dict[str, float]:
    """Milliseconds of one batch (``images``) in matrix products and in everything else, from
    torch.profiler's self times (one warm-up call first)."""
    from torch.profiler import ProfilerActivity, profile

    mapper.to_numpy(mapper(images))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            mapper.to_numpy(mapper(images))
    matrix = other = 0.0
    for event in prof.key_averages():
        name = event.key.split("::")[-1]
        if name in MATRIX_OPS:
            matrix += event.self_cpu_time_total
        else:
            other += event.self_cpu_time_total
    return {"matrix_ms": matrix / 1000.0, "other_ms": other / 1000.0}


def decode_only(corpus: Path, preprocessing: Any, *, batch_size: int, workers: int) -> float:
    """images/s of the reader alone: files -> uint8 batches, with ``workers`` decoding processes."""
    from curate.embed.local_engine import decode_threads
    from curate.embed.reader import make_loader, shard_aligned_batches
    from curate.embed.runner import corpus_samples

    _, paths, _, _ = corpus_samples(corpus)
    loader = make_loader(paths, preprocessing, shard_aligned_batches([len(paths)], batch_size),
                         workers=workers, pin_memory=False, threads=decode_threads())
    started = time.perf_counter()
    count = sum(len(batch) for batch in loader)
    return count / (time.perf_counter() - started)


def pipeline(corpus: Path, encoder: Any, mapper: Any, out: Path, *, batch_size: int, workers: int,
             shard_size: int = 10_000) -> float:
    """images/s of reader -> mapper -> writer over the corpus files, model already loaded."""
    import torch

    from curate.embed.local_engine import run_local
    from curate.embed.runner import corpus_samples
    from curate.embed.shards import corpus_identity, plan_shards
    from curate.embed.writer import ShardWriter
    from curate.schema import make_metadata

    ids, paths, rel, _ = corpus_samples(corpus)
    plan = plan_shards(ids, paths, rel, shard_size)
    shutil.rmtree(out, ignore_errors=True)
    meta = make_metadata("embeddings", encoder=encoder.identity, dim=encoder.dim, dtype="float32",
                         corpus=corpus_identity(ids, rel), shard_size=shard_size, device=mapper.describe())
    writer = ShardWriter(out, meta)
    if mapper.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    run_local(plan, encoder, mapper, writer, batch_size=batch_size, workers=workers, quiet=True)
    if mapper.device.type == "cuda":
        torch.cuda.synchronize()
    return len(ids) / (time.perf_counter() - started)


def end_to_end(corpus: Path, out: Path, **options: Any) -> float:
    """images/s of the whole `curate embed` library call (includes corpus read and model load)."""
    from curate.embed import embed_corpus

    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = embed_corpus(corpus, out, quiet=True, **options)
    return result.samples / (time.perf_counter() - started)


def load_encoder(spec: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return spec.load()


def bench_model(label: str, spec: Any, corpus: Path, work: Path, *, batch_size: int, workers: list[int],
                repeats: int, rounds: int, precisions: list[str], end_to_end_only: bool = False) -> dict[str, Any]:
    """Per precision (unless ``end_to_end_only``): decode alone, scaling with workers, then
    ``rounds`` alternating bare / pipeline measurements (the machine's load drifts, so each ratio
    compares two neighbouring measurements; the median is reported), and one batch by operator.
    Then ``rounds`` of the end-to-end call, the precisions alternating; bf16 / fp32 ratios (of
    medians) and the cosine between the precisions' end-to-end features."""
    import statistics

    import torch

    from curate.embed.config import EmbedConfig
    from curate.embed.mapper import Mapper
    from curate.schema import EmbeddingsFolder

    row: dict[str, Any] = {"model": label, "batch_size": batch_size, "torch_threads": torch.get_num_threads(),
                           "by_precision": {precision: {} for precision in precisions},
                           "default_workers": EmbedConfig().resolved_workers("cpu")}
    images = None if end_to_end_only else predecode(corpus, load_encoder(spec).preprocessing)
    for precision in [] if end_to_end_only else precisions:
        encoder = load_encoder(spec)  # a mapper casts its encoder's weights: a fresh one each
        mapper = Mapper(encoder, "cpu", precision)
        fig = row["by_precision"][precision]
        # Worker counts alternate over the rounds, so each is measured at every stage of the drift.
        by_workers: dict[int, list[float]] = {count: [] for count in workers}
        for _ in range(rounds):
            for count in workers:
                by_workers[count].append(
                    pipeline(corpus, encoder, mapper, work / "out", batch_size=batch_size, workers=count))
        scaling = {count: statistics.median(rates) for count, rates in by_workers.items()}
        best = max(scaling, key=scaling.get)  # type: ignore[arg-type]
        fig["pipeline_by_workers"] = scaling
        fig["pipeline_by_workers_rounds"] = by_workers
        fig["workers"] = best
        fig["decode"] = decode_only(corpus, encoder.preprocessing, batch_size=batch_size, workers=best)
        bare, piped, ratios = [], [], []
        for _ in range(rounds):
            bare.append(bare_forward(mapper, images, batch_size, repeats=repeats))
            piped.append(pipeline(corpus, encoder, mapper, work / "out", batch_size=batch_size, workers=best))
            ratios.append(piped[-1] / bare[-1])
        fig["bare_forward"] = bare
        fig["pipeline"] = piped
        fig["ratios"] = ratios
        fig["ratio_median"] = statistics.median(ratios)
        fig["op_split"] = op_split(mapper, images[:batch_size])
        del mapper, encoder
    # End to end, the precisions alternating round by round (the machine's speed drifts over minutes).
    for _ in range(rounds):
        for precision in precisions:
            row["by_precision"][precision].setdefault("end_to_end", []).append(end_to_end(
                corpus, work / f"e2e-{precision}", encoder=spec.name, model=spec.model, pretrained=spec.pretrained,
                device="cpu", batch_size=batch_size, precision=precision))
    features = {}
    for precision, fig in row["by_precision"].items():
        folder = EmbeddingsFolder(work / f"e2e-{precision}").load()
        fig["device"] = folder.meta["device"]
        features[precision] = folder.vectors
        row["images"] = len(folder.vectors)
        if "bare_forward" in fig:
            fig["ratio_end_to_end_over_median_bare"] = (
                statistics.median(fig["end_to_end"]) / statistics.median(fig["bare_forward"]))
    if "fp32" in features and "bf16" in features:
        cos = np.sum(features["fp32"] * features["bf16"], axis=1)
        row["cosine_bf16_fp32"] = {"min": float(cos.min()), "mean": float(cos.mean())}
        a, b = row["by_precision"]["fp32"], row["by_precision"]["bf16"]
        keys = [key for key in ("bare_forward", "pipeline", "end_to_end") if key in a]
        row["bf16_over_fp32"] = {key: statistics.median(b[key]) / statistics.median(a[key]) for key in keys}
        if "op_split" in a:
            row["bf16_over_fp32"].update({f"{part}_ops": a["op_split"][f"{part}_ms"] / max(b["op_split"][f"{part}_ms"], 1e-9)
                                          for part in ("matrix", "other")})
        row["bf16_over_fp32"]["end_to_end_rounds"] = [
            fast / slow for fast, slow in zip(b["end_to_end"], a["end_to_end"], strict=True)
        ]
    return row


def print_row(row: dict[str, Any]) -> None:
    import statistics

    print(f"{row['model']}: {row['images']} images, batch {row['batch_size']}, {row['torch_threads']} torch threads")
    for precision, fig in row["by_precision"].items():
        device = fig["device"]
        path = f"{device['precision']}" + (f" ({device['mode']})" if "mode" in device else "")
        print(f"  [{precision}] ran as {path} on {device['type']}")
        if "bare_forward" in fig:
            scaling = ", ".join(
                f"{w} workers {v:.1f} ({'/'.join(f'{r:.1f}' for r in fig['pipeline_by_workers_rounds'][w])})"
                for w, v in fig["pipeline_by_workers"].items())
            pairs = ", ".join(f"{b:.1f}/{p:.1f}" for b, p in zip(fig["bare_forward"], fig["pipeline"], strict=True))
            print(f"    decode alone ({fig['workers']} workers): {fig['decode']:.1f} images/s\n"
                  f"    loader scaling (pipeline images/s, median (rounds); 0 workers = decoding on the model's "
                  f"threads between batches): {scaling}\n"
                  f"    bare forward / pipeline ({fig['workers']} workers), alternating: {pairs}\n"
                  f"    ratio pipeline / bare: median {fig['ratio_median']:.2f} "
                  f"(rounds {', '.join(f'{r:.2f}' for r in fig['ratios'])})\n"
                  f"    one batch by operator (torch.profiler): matrix products {fig['op_split']['matrix_ms']:.0f} ms, "
                  f"other operators {fig['op_split']['other_ms']:.0f} ms")
        share = (f", {fig['ratio_end_to_end_over_median_bare']:.2f} of the median bare forward"
                 if "ratio_end_to_end_over_median_bare" in fig else "")
        print(f"    whole embed_corpus call (incl. model load; default loader, {row['default_workers']} workers), "
              f"alternating with the other precision: median {statistics.median(fig['end_to_end']):.1f} images/s "
              f"(rounds {', '.join(f'{v:.1f}' for v in fig['end_to_end'])}){share}", flush=True)
    if "bf16_over_fp32" in row:
        ratio = row["bf16_over_fp32"]
        cos = row["cosine_bf16_fp32"]
        rounds = ", ".join(f"{v:.2f}" for v in ratio["end_to_end_rounds"])
        parts = [f"{name} {ratio[key]:.2f}x" for key, name in (
            ("bare_forward", "bare forward"), ("pipeline", "pipeline")) if key in ratio]
        parts.append(f"end to end {ratio['end_to_end']:.2f}x (by round {rounds})")
        if "matrix_ops" in ratio:
            parts.append(f"matrix products alone {ratio['matrix_ops']:.2f}x, other operators {ratio['other_ops']:.2f}x")
        print(f"  bf16 / fp32: {'; '.join(parts)}; feature cosine bf16 vs fp32 (end-to-end shards): "
              f"min {cos['min']:.6f}, mean {cos['mean']:.6f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=128, help="PNGs for ViT-B-32")
    parser.add_argument("--tiny-images", type=int, default=768, help="PNGs for the tiny model")
    parser.add_argument("--lite0-images", type=int, default=128, help="PNGs for EfficientNet-Lite0")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", default="0,1,2", help="loader worker counts to compare")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/pipeline measurements")
    parser.add_argument("--precisions", default="fp32,bf16", help="precisions to compare, fp32 first")
    parser.add_argument("--skip-vit-b-32", action="store_true")
    parser.add_argument("--skip-lite0", action="store_true")
    parser.add_argument("--end-to-end-only", action="store_true",
                        help="only the alternating end-to-end rounds (and the features' cosine)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from curate.embed import EncoderSpec

    workers = [int(w) for w in args.workers.split(",")]
    precisions = [p for p in args.precisions.split(",") if p]
    from curate.reshape.neighbours import cpu_bfloat16_matmul

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown") if Path("/proc/cpuinfo").exists() else "unknown"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        work = Path(tmp)
        tiny = register_tiny(work / "configs")
        largest = max(args.images, args.tiny_images, args.lite0_images)
        corpus_all = make_png_corpus(work / "corpus", largest, args.width, args.height, unique=256)
        corpora = {}
        for label, count in (("tiny", args.tiny_images), ("ViT-B-32", args.images), ("lite0", args.lite0_images)):
            corpora[label] = subset(corpus_all, work / f"corpus-{label}", count)
        print(f"# CPU {cpu}, {os.cpu_count()} cores; bfloat16 matrix units (torch): {cpu_bfloat16_matmul()}; "
              f"PNGs {args.width}x{args.height}; batch {args.batch_size}; figures are images/s "
              "(a shared machine: expect noise)")
        specs = [("tiny (embed 32, width 64, 2 layers, patch 32)", EncoderSpec("clip", tiny, "random"),
                  corpora["tiny"], 3)]
        if not args.skip_vit_b_32:
            specs.append(("ViT-B-32 (random weights)", EncoderSpec("clip", "ViT-B-32", "random"), corpora["ViT-B-32"], 1))
        if not args.skip_lite0:
            specs.append(("EfficientNet-Lite0 (timm, packaged ImageNet weights)", EncoderSpec("timm"),
                          corpora["lite0"], 1))
        for label, spec, corpus, repeats in specs:
            row = bench_model(label, spec, corpus, work, batch_size=args.batch_size, workers=workers,
                              repeats=repeats, rounds=args.rounds, precisions=precisions,
                              end_to_end_only=args.end_to_end_only)
            rows.append(row)
            print_row(row)
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "rows": rows}, indent=2, default=str))


def subset(corpus: Path, root: Path, count: int) -> Path:
    """A corpus of the first ``count`` samples of ``corpus``, pointing at the same files."""
    from curate.schema import make_metadata, read_corpus, write_table

    frame, meta = read_corpus(corpus)
    frame = frame.sort_values("sample_id").head(count)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "corpus.parquet"
    write_table(frame, path, "corpus", make_metadata("corpus", root=meta["root"]))
    return path


if __name__ == "__main__":
    main()
