"""Benchmark `curate embed` on the CPU: end-to-end images/s against the bare model forward.

For each model (a tiny open_clip ViT built from a JSON config, ViT-B-32 with random weights, and the
packaged ImageNet EfficientNet-Lite0 through ``--encoder timm``) it measures, in one run on the same
images:

* bare forward: the image tower on pre-decoded, pre-normalised tensors (no files, no loader);
* pipeline: curate's reader -> mapper -> writer on the PNG files (model already loaded);
* end to end: the whole library call behind `curate embed` (corpus read, model load, shards);

and prints images/s, the pipeline's scaling with loader workers, and the ratio pipeline / bare
(what decoding, batching and writing cost) over alternating rounds. Usage::

    python tools/bench_embed.py [--images 128] [--tiny-images 768] [--lite0-images 128] [--rounds 3]
                                [--workers 0,1,2] [--skip-vit-b-32] [--skip-lite0]
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
    """images/s of the image tower alone on pre-normalised tensors already on the device."""
    import torch

    device = mapper.device
    x = torch.addcmul(mapper.shift, images.to(device).float(), mapper.scale)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mapper.precision)
    batches = list(torch.split(x, batch_size))

    def one_pass() -> None:
        with torch.inference_mode():
            for batch in batches:
                if dtype is not None:
                    with torch.autocast(device.type, dtype=dtype):
                        mapper.module(batch)
                else:
                    mapper.module(batch)

    with torch.inference_mode():  # warm-up (allocator, kernels)
        mapper.module(batches[0])
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(repeats):
            one_pass()
        end.record()
        torch.cuda.synchronize()
        seconds = start.elapsed_time(end) / 1000.0
    else:
        started = time.perf_counter()
        for _ in range(repeats):
            one_pass()
        seconds = time.perf_counter() - started
    return repeats * len(images) / seconds


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


def bench_model(label: str, spec: Any, corpus: Path, work: Path, *, batch_size: int, workers: list[int],
                repeats: int, rounds: int) -> dict[str, Any]:
    """Scaling with workers, then ``rounds`` alternating bare / pipeline measurements (the machine's
    load drifts, so each ratio compares two neighbouring measurements; the median is reported)."""
    import statistics

    import torch

    from curate.embed.mapper import Mapper

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        encoder = spec.load()
    mapper = Mapper(encoder, "cpu", "fp32")
    images = predecode(corpus, encoder.preprocessing)
    row: dict[str, Any] = {"model": label, "images": len(images), "batch_size": batch_size,
                           "torch_threads": torch.get_num_threads()}
    scaling = {}
    for count in workers:
        scaling[count] = pipeline(corpus, encoder, mapper, work / "out", batch_size=batch_size, workers=count)
    best = max(scaling, key=scaling.get)  # type: ignore[arg-type]
    row["pipeline_by_workers"] = scaling
    row["workers"] = best
    bare, piped, ratios = [], [], []
    for _ in range(rounds):
        bare.append(bare_forward(mapper, images, batch_size, repeats=repeats))
        piped.append(pipeline(corpus, encoder, mapper, work / "out", batch_size=batch_size, workers=best))
        ratios.append(piped[-1] / bare[-1])
    row["bare_forward"] = bare
    row["pipeline"] = piped
    row["ratios"] = ratios
    row["ratio_median"] = statistics.median(ratios)
    row["end_to_end"] = end_to_end(corpus, work / "e2e", encoder=spec.name, model=spec.model,
                                   pretrained=spec.pretrained, device="cpu", batch_size=batch_size, workers=best)
    row["ratio_end_to_end_over_median_bare"] = row["end_to_end"] / statistics.median(bare)
    return row


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
    parser.add_argument("--skip-vit-b-32", action="store_true")
    parser.add_argument("--skip-lite0", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from curate.embed import EncoderSpec

    workers = [int(w) for w in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        work = Path(tmp)
        tiny = register_tiny(work / "configs")
        largest = max(args.images, args.tiny_images, args.lite0_images)
        corpus_all = make_png_corpus(work / "corpus", largest, args.width, args.height, unique=256)
        corpora = {}
        for label, count in (("tiny", args.tiny_images), ("ViT-B-32", args.images), ("lite0", args.lite0_images)):
            corpora[label] = subset(corpus_all, work / f"corpus-{label}", count)
        print(f"# {os.cpu_count()} CPU cores; PNGs {args.width}x{args.height}; batch {args.batch_size}; "
              "figures are images/s (a shared machine: expect noise)")
        specs = [("tiny (embed 32, width 64, 2 layers, patch 32)", EncoderSpec("clip", tiny, "random"),
                  corpora["tiny"], 3)]
        if not args.skip_vit_b_32:
            specs.append(("ViT-B-32 (random weights)", EncoderSpec("clip", "ViT-B-32", "random"), corpora["ViT-B-32"], 1))
        if not args.skip_lite0:
            specs.append(("EfficientNet-Lite0 (timm, packaged ImageNet weights)", EncoderSpec("timm"),
                          corpora["lite0"], 1))
        for label, spec, corpus, repeats in specs:
            row = bench_model(label, spec, corpus, work, batch_size=args.batch_size, workers=workers,
                              repeats=repeats, rounds=args.rounds)
            rows.append(row)
            scaling = ", ".join(f"{w} workers {v:.1f}" for w, v in row["pipeline_by_workers"].items())
            pairs = ", ".join(f"{b:.1f}/{p:.1f}" for b, p in zip(row["bare_forward"], row["pipeline"], strict=True))
            print(f"{label}: {row['images']} images, batch {row['batch_size']}, "
                  f"{row['torch_threads']} torch threads\n"
                  f"  loader scaling (pipeline images/s): {scaling}\n"
                  f"  bare forward / pipeline ({row['workers']} workers), alternating: {pairs}\n"
                  f"  ratio pipeline / bare: median {row['ratio_median']:.2f} "
                  f"(rounds {', '.join(f'{r:.2f}' for r in row['ratios'])})\n"
                  f"  whole embed_corpus call (incl. model load): {row['end_to_end']:.1f} images/s, "
                  f"{row['ratio_end_to_end_over_median_bare']:.2f} of the median bare forward", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))


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
