"""Training throughput of ``curate train`` against a plain fp32 loop like the authors', same run.

Usage (from the repository root):

    python tools/gpu_train.py OUT_DIR             # on a CUDA machine: ResNet-50, batch 32, 224 crops
    python tools/gpu_train.py OUT_DIR --smoke     # on the CPU, tiny: checks that the script works

It writes a synthetic corpus (PNG images it generates, KADID-sized 512x384 by default) and a
manifest, then measures, on the same images, with the same number of loader processes:

* ``curate``: the reference trainer's own loop (``curate.train.train``: uint8 crops, normalisation
  on the device, AMP bf16/fp16, channels-last, fused Adam), mean images/s of its epochs after the
  first (which also pays for worker start-up and cuDNN autotuning);
* ``baseline``: a plain loop as in the authors' release: PIL -> RandomCrop -> ToTensor ->
  Normalize in the workers, fp32, default memory format, ``loss.item()`` every step, same model,
  optimizer and loss; mean images/s of its epochs after the first.

It also times the model step alone on device-resident tensors (no data loading) for both settings,
to show whether a figure is bound by the model or by image decoding. Figures go to
``OUT_DIR/gpu_train.json`` and are printed. Target: curate / baseline >= 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

TARGET_RATIO = 2.0


# ------------------------------------------------------------------------------------------------
# Synthetic corpus


def _write_one(task: tuple[str, int, int, int]) -> None:
    from PIL import Image

    path, index, width, height = task
    rng = np.random.default_rng(index)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    f = rng.uniform(0.01, 0.08, size=3)
    base = np.stack([np.sin(xx * f[0] + yy * f[1]), np.cos(yy * f[2]), np.sin((xx + yy) * f[1])], axis=2)
    image = (base * 90 + 128 + rng.normal(0, 4 + index % 5 * 6, size=base.shape)).clip(0, 255).astype(np.uint8)
    Image.fromarray(image).save(path, compress_level=1)


def make_corpus(folder: Path, count: int, size: tuple[int, int], workers: int) -> Path:
    """``count`` PNGs under folder/images and a manifest over them; returns the manifest path."""
    import pandas as pd

    from curate.schema import make_metadata, write_table

    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    width, height = size
    tasks = [(str(images / f"S{i:05d}.png"), i, width, height) for i in range(count)]
    todo = [t for t in tasks if not Path(t[0]).is_file()]
    with Pool(max(1, workers)) as pool:
        pool.map(_write_one, todo, chunksize=16)
    rows = [
        {
            "sample_id": f"synth/S{i:05d}",
            "path": f"S{i:05d}.png",
            "ref_id": f"synth/R{i // 25:04d}",
            "is_reference": False,
            "distortion": 1 + i % 25,
            "level": 1 + i % 5,
            "score": float(10 - 2 * (i % 5)),
            "score_raw": float(i % 5),
            "source": "synth",
            "origin": "original",
            "label_kind": "human",
            "group_id": -1,
            "group_size": 1,
            "weight": 1.0,
        }
        for i in range(count)
    ]
    manifest = folder / "manifest.parquet"
    write_table(pd.DataFrame(rows), manifest, "manifest", make_metadata("manifest", roots={"synth": str(images)}))
    return manifest


# ------------------------------------------------------------------------------------------------
# The plain fp32 loop


class PlainDataset(torch.utils.data.Dataset):
    def __init__(self, paths: list[str], scores: np.ndarray, crop: int) -> None:
        import torchvision.transforms as T

        self.paths = paths
        self.scores = scores
        self.transform = T.Compose(
            [T.RandomCrop(crop), T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        with Image.open(self.paths[i]) as img:
            x = self.transform(img.convert("RGB"))
        return x, torch.tensor(self.scores[i], dtype=torch.float32)


def plain_model(arch: str) -> torch.nn.Module:
    import torchvision

    net = torchvision.models.get_model(arch, weights=None)
    net.fc = torch.nn.Linear(net.fc.in_features, 1)
    return net


def plain_optimizer(net: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    head = list(net.fc.parameters())
    ids = {id(p) for p in head}
    body = [p for p in net.parameters() if id(p) not in ids]
    return torch.optim.Adam([{"params": body, "lr": lr}, {"params": head, "lr": lr * 10}], weight_decay=5e-4)


def run_baseline(manifest: Path, *, arch: str, crop: int, batch: int, epochs: int, workers: int, device: str) -> dict:
    from curate.data import read_manifest

    frame = read_manifest(manifest)
    data = PlainDataset(frame["image_path"].tolist(), frame["score"].to_numpy(np.float32), crop)
    loader = torch.utils.data.DataLoader(
        data, batch_size=batch, shuffle=True, num_workers=workers, pin_memory=device == "cuda", drop_last=True
    )
    torch.manual_seed(123)
    net = plain_model(arch).to(device)
    opt = plain_optimizer(net, 2e-5)
    rates = []
    for _ in range(epochs):
        net.train()
        losses = []
        _sync(device)
        start = time.perf_counter()
        seen = 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = torch.nn.functional.l1_loss(net(x).squeeze(-1), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            seen += x.shape[0]
        _sync(device)
        rates.append(seen / (time.perf_counter() - start))
    return {"images_per_s_per_epoch": rates, "images_per_s": _steady(rates), "final_loss": float(np.mean(losses))}


# ------------------------------------------------------------------------------------------------
# curate's loop


def run_curate(manifest: Path, out: Path, *, arch: str, crop: int, batch: int, epochs: int, workers: int,
               device: str) -> dict:
    from curate.train import train

    summary = train(
        manifest, out, arch=arch, weights="none", crop=crop, batch_size=batch, epochs=epochs, workers=workers,
        device=device, quiet=True,
    )
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["train_images_per_s"] for r in records]
    return {"images_per_s_per_epoch": rates, "images_per_s": _steady(rates), "final_loss": records[-1]["train_loss"],
            "epochs_run": summary["epochs_run"]}


# ------------------------------------------------------------------------------------------------
# The model step alone


def step_rate(arch: str, batch: int, crop: int, device: str, *, amp: bool, channels_last: bool, steps: int) -> dict:
    from curate.train.model import build_image_model

    torch.manual_seed(0)
    model = build_image_model(arch, "none").to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = plain_optimizer_for(model)
    x = torch.randint(0, 256, (batch, 3, crop, crop), dtype=torch.uint8, device=device).contiguous(memory_format=fmt)
    y = torch.rand(batch, device=device) * 10
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def one() -> None:
        with torch.autocast(device, dtype=dtype, enabled=amp):
            loss = torch.nn.functional.l1_loss(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(max(2, steps // 5)):
        one()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        one()
    _sync(device)
    seconds = time.perf_counter() - start
    out = {"images_per_s": steps * batch / seconds, "amp": amp, "channels_last": channels_last,
           "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}
    if device == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def plain_optimizer_for(model: torch.nn.Module) -> torch.optim.Optimizer:
    head = list(model.head.parameters())
    ids = {id(p) for p in head}
    body = [p for p in model.parameters() if id(p) not in ids]
    return torch.optim.Adam([{"params": body, "lr": 2e-5}, {"params": head, "lr": 2e-4}], weight_decay=5e-4)


def _steady(rates: list[float]) -> float:
    """Mean images/s over the epochs after the first (which pays for start-up and autotuning)."""
    return float(np.mean(rates[1:] if len(rates) > 1 else rates))


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: check the script only")
    parser.add_argument("--images", type=int, default=None, help="synthetic corpus size [4096; smoke 24]")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per loop; all but the first are averaged")
    parser.add_argument("--workers", type=int, default=None, help="loader processes [CPU cores - 2]")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    missing = [m for m in ("pandas", "pyarrow", "scipy", "PIL", "safetensors", "torchvision")
               if importlib.util.find_spec(m) is None]
    if missing:
        print(f"error: missing Python packages: {', '.join(missing)} (install them, e.g. from wheels)", file=sys.stderr)
        return 1
    smoke = args.smoke
    device = "cpu" if smoke else "cuda"
    if not smoke and not torch.cuda.is_available():
        print("error: no CUDA device; use --smoke for a CPU check", file=sys.stderr)
        return 1
    arch, crop = ("resnet18", 32) if smoke else ("resnet50", 224)
    size = (64, 48) if smoke else (512, 384)
    count = args.images or (12 if smoke else 4096)
    batch = 4 if smoke else args.batch_size
    workers = args.workers if args.workers is not None else (0 if smoke else max(1, (os.cpu_count() or 4) - 2))
    out = args.out_dir.absolute()
    out.mkdir(parents=True, exist_ok=True)
    # Scratch images and the run folder stay outside OUT_DIR, which holds only the figures.
    work = Path(tempfile.mkdtemp(prefix="curate-gpu-train-"))

    result: dict = {
        "mode": "smoke (CPU, tiny: figures are not meaningful)" if smoke else "gpu",
        "device": torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "arch": arch, "crop": crop, "batch_size": batch, "images": count, "image_size": list(size),
        "epochs_per_loop": args.epochs, "loader_workers": workers, "cpu_cores": os.cpu_count(),
        "target_ratio": TARGET_RATIO,
    }
    start = time.perf_counter()
    manifest = make_corpus(work / "corpus", count, size, max(1, workers))
    result["corpus_seconds"] = time.perf_counter() - start

    result["baseline"] = run_baseline(manifest, arch=arch, crop=crop, batch=batch, epochs=args.epochs,
                                      workers=workers, device=device)
    result["curate"] = run_curate(manifest, work / "run", arch=arch, crop=crop, batch=batch, epochs=args.epochs,
                                  workers=workers, device=device)
    result["ratio"] = result["curate"]["images_per_s"] / result["baseline"]["images_per_s"]
    result["target_met"] = bool(result["ratio"] >= TARGET_RATIO)
    steps = 2 if smoke else 60
    result["model_step_only"] = {
        "fp32": step_rate(arch, batch, crop, device, amp=False, channels_last=False, steps=steps),
        "amp_channels_last": step_rate(arch, batch, crop, device, amp=device == "cuda", channels_last=True, steps=steps),
    }
    shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=2, sort_keys=True)
    (out / "gpu_train.json").write_text(text + "\n")
    print(text)
    print(
        f"curate {result['curate']['images_per_s']:.1f} img/s vs baseline {result['baseline']['images_per_s']:.1f} "
        f"img/s: {result['ratio']:.2f}x (target {TARGET_RATIO}x) on {result['device']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
