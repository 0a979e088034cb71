"""GPU benchmark of `curate embed`: ViT-B-32 and ViT-L-14 (random weights), fp16/bf16, batch sizes.

Usage::

    python tools/gpu_embed.py OUT_DIR            # on a CUDA machine, about 2-4 minutes on an H100
    python tools/gpu_embed.py OUT_DIR --smoke    # tiny sizes on the CPU: checks that the script works

It generates photo-like 512x384 PNGs, then measures, in one run:

* ``decode_only``: the reader alone (DataLoader workers decoding + resizing, no model): the CPU
  ceiling of any end-to-end figure;
* ``bare_forward``: the image tower on pre-decoded tensors already on the GPU, per precision and
  batch size (timed with CUDA events);
* ``pipeline``: curate's reader -> mapper -> writer over the PNG files (model loaded once);
* ``curate_embed_call``: one whole ``embed_corpus`` call for ViT-B-32 (model load included);

and writes everything to ``OUT_DIR/gpu_embed.json`` (rewritten after every step, so a timeout
still leaves the figures measured so far). Target: ViT-B-32 end to end at 3,000+ images/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_embed import bare_forward, decode_only, make_png_corpus, pipeline, predecode, subset  # noqa: E402

FULL = {
    "device": "cuda",
    "images": 16384,
    "unique_images": 1024,
    "width": 512,
    "height": 384,
    "models": {"ViT-B-32": {"batch_sizes": [64, 128, 256, 512], "pipeline_batches": [128, 256],
                            "pipeline_images": 16384},
               "ViT-L-14": {"batch_sizes": [64, 128, 256], "pipeline_batches": [64, 128], "pipeline_images": 4096}},
    "precisions": ["fp16", "bf16"],
    "bare_images": 1024,
    "min_seconds": 1.0,
}
SMOKE = {  # every code path once, on the CPU, in well under a minute (ViT-L-14 is only built)
    "device": "cpu",
    "images": 6,
    "unique_images": 3,
    "width": 128,
    "height": 96,
    "models": {"ViT-B-32": {"batch_sizes": [2], "pipeline_batches": [4], "pipeline_images": 6}},
    "build_only": ["ViT-L-14"],
    "precisions": ["fp32"],
    "bare_images": 2,
    "min_seconds": 0.0,
}
TARGET_VIT_B_32 = 3000.0


class Report:
    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / "gpu_embed.json"
        self.data: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "errors": []}

    def save(self) -> None:
        from curate.fsio import atomic_write_text

        atomic_write_text(self.path, json.dumps(self.data, indent=2, default=str))


def environment(workers: int, device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "loader_workers": workers,
        "device": device,
    }
    try:
        import open_clip

        info["open_clip"] = open_clip.__version__
    except ImportError:
        info["open_clip"] = None
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
    return info


def run(out_dir: Path, cfg: dict[str, Any]) -> Report:
    import torch

    from curate.embed import EncoderSpec, embed_corpus
    from curate.embed.mapper import Mapper

    report = Report(out_dir)
    device = cfg["device"]
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --smoke to check the script on the CPU")
    workers = max(1, (os.cpu_count() or 2) - 1) if device == "cuda" else 1
    report.data["config"] = cfg
    report.data["environment"] = environment(workers, device)
    report.save()
    with tempfile.TemporaryDirectory(prefix="gpu-embed-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        corpus = make_png_corpus(work / "corpus", cfg["images"], cfg["width"], cfg["height"],
                                 unique=cfg["unique_images"], processes=max(1, workers))
        report.data["corpus"] = {"images": cfg["images"], "unique": cfg["unique_images"],
                                 "size": f"{cfg['width']}x{cfg['height']}", "seconds": time.perf_counter() - started}
        results: list[dict[str, Any]] = []
        report.data["results"] = results
        for model, mcfg in cfg["models"].items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    encoder = EncoderSpec("clip", model, "random").load()
                pp = encoder.preprocessing
                if "decode_only" not in report.data:
                    # The loader alone, with all cores or all but one decoding: the CPU ceiling.
                    rates = {}
                    for count in sorted({workers, os.cpu_count() or 1}):
                        rates[count] = decode_only(corpus, pp, batch_size=128, workers=count)
                        print(f"decode only ({count} workers): {rates[count]:.1f} images/s", flush=True)
                    workers = max(rates, key=rates.get)  # type: ignore[arg-type]
                    report.data["decode_only"] = {"images_per_s_by_workers": rates, "chosen_workers": workers}
                    report.save()
                model_corpus = subset(corpus, work / f"corpus-{model}", mcfg["pipeline_images"])
                images = predecode(subset(corpus, work / "bare", cfg["bare_images"]), pp)
                for precision in cfg["precisions"]:
                    row: dict[str, Any] = {"model": model, "precision": precision, "bare_forward": {}}
                    results.append(row)
                    mapper = Mapper(encoder, device, precision)
                    for batch_size in mcfg["batch_sizes"]:
                        repeats, rate = 1, bare_forward(mapper, images, batch_size, repeats=1)
                        if cfg["min_seconds"] > 0:
                            repeats = max(1, int(cfg["min_seconds"] * rate / len(images)) + 1)
                            rate = bare_forward(mapper, images, batch_size, repeats=repeats)
                        row["bare_forward"][batch_size] = rate
                        print(f"{model} {precision} bare forward batch {batch_size}: {rate:.1f} images/s", flush=True)
                        report.save()
                    row["pipeline"] = {}
                    for batch in mcfg["pipeline_batches"]:
                        rate = pipeline(model_corpus, encoder, mapper, work / "out", batch_size=batch,
                                        workers=workers)
                        bare = row["bare_forward"].get(batch, max(row["bare_forward"].values()))
                        row["pipeline"][batch] = {"images_per_s": rate, "workers": workers,
                                                  "images": mcfg["pipeline_images"], "ratio_over_bare": rate / bare}
                        print(f"{model} {precision} pipeline (PNG -> shards) batch {batch}: {rate:.1f} images/s "
                              f"(ratio to bare {rate / bare:.2f})", flush=True)
                        report.save()
                del encoder, mapper, images
                if device == "cuda":
                    torch.cuda.empty_cache()
            except Exception as exc:  # keep measuring the other models; the error goes in the report
                report.data["errors"].append({"model": model, "error": repr(exc), "trace": traceback.format_exc()})
                print(f"{model}: FAILED {exc!r}", flush=True)
                report.save()
        for model in cfg.get("build_only", []):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    built = EncoderSpec("clip", model, "random").load()
                report.data.setdefault("built_only", {})[model] = {"dim": built.dim,
                                                                   "preprocessing": built.identity["preprocessing"]}
                del built
            except Exception as exc:
                report.data["errors"].append({"model": model, "error": repr(exc), "trace": traceback.format_exc()})
            report.save()
        try:
            first = next(iter(cfg["models"]))
            mcfg = cfg["models"][first]
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                result = embed_corpus(subset(corpus, work / "call", mcfg["pipeline_images"]), work / "call-out",
                                      model=first, pretrained="random", device=device,
                                      batch_size=mcfg["pipeline_batches"][0], workers=workers, quiet=True)
            seconds = time.perf_counter() - started
            report.data["curate_embed_call"] = {
                "model": first, "images": result.samples, "seconds": seconds,
                "images_per_s_incl_model_load": result.samples / seconds, "device": result.device,
            }
            print(f"embed_corpus({first}) whole call: {result.samples / seconds:.1f} images/s incl. model load",
                  flush=True)
        except Exception as exc:
            report.data["errors"].append({"model": "embed_corpus call", "error": repr(exc),
                                          "trace": traceback.format_exc()})
    vit_b = [p["images_per_s"] for r in results if r["model"] == "ViT-B-32" for p in r.get("pipeline", {}).values()]
    report.data["target"] = {
        "vit_b_32_end_to_end_images_per_s": max(vit_b) if vit_b else None,
        "goal": TARGET_VIT_B_32,
        "met": bool(vit_b) and max(vit_b) >= TARGET_VIT_B_32 and device == "cuda",
    }
    report.data["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report.save()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="GPU embedding benchmark; figures as JSON in OUT_DIR")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (checks the script runs)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    report = run(args.out_dir, SMOKE if args.smoke else FULL)
    print(f"wrote {report.path}")
    if report.data["errors"]:
        print(f"{len(report.data['errors'])} step(s) failed; see the JSON", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
