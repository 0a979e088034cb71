"""``curate train``: the reference trainer, with the paper's protocol as its defaults.

Protocol (METHOD.md, "Training and evaluation protocol"): ResNet-50 + one linear unit on the
2048-d pooled feature, L1 loss on 0-10 labels, Adam (backbone lr 2e-5, head 10x, weight decay
5e-4, no schedule), 24 epochs, batch 32, one random 224 crop per image per epoch, 5 random crops
at test (mean prediction), seed 123. Reported: SRCC, PLCC, KRCC and PLCC after a 4-parameter
logistic fit, for the last epoch and (with ``val_fraction``) the validation-selected epoch; the
test-selected figure only when asked for, labelled as optimistic.

The loss is the mean absolute error, weighted by the manifest's ``weight`` column when it holds
anything but 1.0.

Run folder (``out_dir``): ``metrics.jsonl`` (one line per epoch), ``summary.json``, ``curves.png``,
``model.safetensors`` (last epoch), ``model_val_best.safetensors`` (with a validation split),
``predictions_last.parquet`` and ``predictions_val_best.parquet`` (each evaluation and validation
image's prediction at that epoch: what a paired comparison of runs resamples), and
``checkpoint.json`` -> ``ckpt-NNN/`` (weights as safetensors, optimizer state loaded with
``weights_only=True``, the history as JSON). Rerunning the same command resumes from the last
checkpoint and gives the same result as an uninterrupted run (on the CPU; cuDNN kernels on a GPU
are not bit-reproducible).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from torch import nn

from curate.data import ManifestDataset, RootOverride, check_root_sources, read_samples
from curate.devices import pick_device
from curate.errors import CurateError, ImageError
from curate.fsio import atomic_path, atomic_write_text
from curate.jsonio import json_text, plain
from curate.progress import Progress
from curate.provenance import input_fingerprints, provenance
from curate.reshape import downsample
from curate.reshape.params import ResolvedDRC, resolve_drc
from curate.schema import EmbeddingsFolder, read_metadata, same_encoder
from curate.train.config import TrainConfig
from curate.train.data import (
    EVAL,
    FEATURES,
    TRAIN,
    EmbeddingSource,
    ImageSource,
    Samples,
    check_images_exist,
    samples_of,
    split_by_reference,
)
from curate.train.metrics import iqa_metrics
from curate.train.model import EmbeddingRegressor, build_image_model

CHECKPOINT_POINTER = "checkpoint.json"
PREDICTIONS_LAST = "predictions_last.parquet"
PREDICTIONS_VAL_BEST = "predictions_val_best.parquet"
VALIDATION_SET = "(validation)"
# Settings that may change between a run and its resumption without changing its results' meaning.
RESUMABLE_CHANGES = ("epochs", "device", "workers", "report_test_best")
TEST_SELECTED_NOTE = "selected on the test set itself: optimistic, not an estimate of generalisation"


# ------------------------------------------------------------------------------------------------
# Small pieces


def batch_chunks(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split ``order`` into batches; a trailing batch of one joins the previous (BatchNorm needs 2)."""
    chunks = [order[s : s + batch_size] for s in range(0, order.size, batch_size)]
    if len(chunks) > 1 and chunks[-1].size == 1:
        last = chunks.pop()
        chunks[-1] = np.concatenate([chunks[-1], last])
    return chunks


def _batches(
    source: ImageSource | EmbeddingSource, order: np.ndarray, *, epoch: int, batch_size: int, mode: str
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    chunks = batch_chunks(np.asarray(order, dtype=np.int64), batch_size)
    try:
        yield from source.batches(chunks, epoch=epoch, mode=mode)
    except ImageError as exc:
        # a loader worker wraps the message in its traceback; keep the one line that names the image
        lines = [line for line in str(exc).splitlines() if line.strip()]
        raise ImageError(lines[-1].split("ImageError: ", 1)[-1] if lines else str(exc)) from None


class Runner:
    """Holds the model, optimizer and inputs of one run; ``run()`` trains and evaluates."""

    def __init__(
        self,
        config: TrainConfig,
        out_dir: Path,
        train_source: ImageSource | EmbeddingSource,
        eval_sources: Mapping[str, ImageSource | EmbeddingSource],
        model: nn.Module,
        identity: dict[str, Any],
        quiet: bool,
        val_source: ImageSource | EmbeddingSource | None = None,
        drc: ResolvedDRC | None = None,
    ) -> None:
        self.config = config
        self.drc = drc or resolve_drc(config.redundancy, None)
        self.out_dir = out_dir
        self.train_source = train_source
        self.eval_sources = dict(eval_sources)
        self.identity = identity
        self.quiet = quiet
        self.device = pick_device(config.device)
        self.is_image = isinstance(train_source, ImageSource)
        self.amp_dtype: torch.dtype | None = None
        if self.device.type == "cuda" and config.amp:
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.channels_last = self.is_image and self.device.type == "cuda" and config.channels_last
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        lr = config.resolved_lr()
        head_lr = lr if config.head_only else lr * config.head_lr_mult
        head_params = list(self.model.head.parameters())
        head_ids = {id(p) for p in head_params}
        body_params = [p for p in self.model.parameters() if id(p) not in head_ids]
        groups = [{"params": head_params, "lr": head_lr}]
        if body_params:
            groups.insert(0, {"params": body_params, "lr": lr})
        # the fused CUDA kernel: one launch per step instead of several per parameter tensor
        self.optimizer = torch.optim.Adam(
            groups, lr=lr, weight_decay=config.weight_decay, fused=True if self.device.type == "cuda" else None
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        samples = train_source.samples
        self.scores = torch.from_numpy(samples.scores.astype(np.float32))
        self.weights = torch.from_numpy(samples.weights.astype(np.float32))
        self.weighted = bool((samples.weights != 1.0).any())
        if val_source is None:  # validation references split off the training table
            is_val = split_by_reference(samples.ref_ids, config.val_fraction, config.seed)
            self.val_source = train_source
        else:  # a validation table of its own (held-out training references, human labels)
            is_val = np.zeros(len(train_source), dtype=bool)
            self.val_source = val_source
        self.train_rows = np.flatnonzero(~is_val)
        self.val_rows = np.flatnonzero(is_val) if val_source is None else np.arange(len(val_source))
        self.history: list[dict[str, Any]] = []
        self.predictions: dict[str, tuple[Samples, np.ndarray, np.ndarray]] = {}

    # -- device helpers --------------------------------------------------------------------------

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # -- passes ----------------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, source: ImageSource | EmbeddingSource, rows: np.ndarray) -> np.ndarray:
        """Mean prediction over the test crops for ``rows`` (float64 [len(rows)])."""
        self.model.eval()
        out = np.empty(len(rows), dtype=np.float64)
        position = {int(r): k for k, r in enumerate(rows)}
        for x, idx in _batches(source, rows, epoch=0, batch_size=self.config.batch_size, mode=EVAL):
            x = self._to_device(x)
            with self._autocast():
                if x.dim() == 5:  # [B, crops, 3, h, w]
                    b, k = x.shape[:2]
                    pred = self.model(self._to_device(x.flatten(0, 1))).float().view(b, k).mean(1)
                else:
                    pred = self.model(x).float()
            for i, p in zip(idx.tolist(), pred.cpu().tolist(), strict=True):
                out[position[i]] = p
        return out

    @torch.no_grad()
    def features(self, rows: np.ndarray, epoch: int) -> np.ndarray:
        """Penultimate features of ``rows`` (centre crop), L2-normalised float32 [len(rows), D]."""
        self.model.eval()
        chunks: list[np.ndarray] = []
        for x, _ in _batches(self.train_source, rows, epoch=epoch, batch_size=self.config.batch_size, mode=FEATURES):
            with self._autocast():
                f = self.model.features(self._to_device(x)).float()
            chunks.append(torch.nn.functional.normalize(f, dim=1).cpu().numpy())
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 0), np.float32)

    def epoch_rows(self, epoch: int) -> tuple[np.ndarray, int]:
        """Training rows of this epoch (after online DRCDown when on) and how many DRCDown removed."""
        rows = self.train_rows
        if not self.config.online_drc:
            return rows, 0
        samples = self.train_source.samples
        originals = rows[samples.origins[rows] == "original"]
        others = rows[samples.origins[rows] != "original"]
        if originals.size == 0:
            return rows, 0
        feats = self.features(originals, epoch)
        result = downsample.drc_down(
            samples.sample_ids[originals],
            feats,
            samples.scores[originals].astype(np.float64),
            **self.drc.params.as_dict(),
            seed=self.config.seed + epoch,
            device="cuda" if self.device.type == "cuda" else "cpu",
        )
        kept = originals[np.asarray(result.kept, dtype=bool)]
        return np.sort(np.concatenate([kept, others])), int(originals.size - kept.size)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        rows, removed = self.epoch_rows(epoch)
        generator = torch.Generator().manual_seed(self.config.seed + epoch)
        order = rows[torch.randperm(rows.size, generator=generator).numpy()]
        self.model.train()
        # summed on the device: reading the loss every step would stall the GPU queue
        loss_sum, seen = torch.zeros((), device=self.device), 0
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with Progress(order.size, f"epoch {epoch + 1}/{self.config.epochs}", "img", quiet=self.quiet) as bar:
            for x, idx in _batches(self.train_source, order, epoch=epoch, batch_size=self.config.batch_size, mode=TRAIN):
                x = self._to_device(x)
                y = self.scores[idx].to(self.device, non_blocking=True)
                with self._autocast():
                    pred = self.model(x).float()
                if self.weighted:  # the manifest's per-sample weights: a weighted mean of |error|
                    w = self.weights[idx].to(self.device, non_blocking=True)
                    loss = ((pred - y).abs() * w).sum() / w.sum().clamp_min(1e-12)
                else:
                    loss = torch.nn.functional.l1_loss(pred, y)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                loss_sum += loss.detach() * idx.numel()
                seen += idx.numel()
                bar.update(idx.numel())
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        return {
            "epoch": epoch + 1,
            "train_loss": float(loss_sum) / max(seen, 1),
            "n_train": int(seen),
            "drc_removed": removed,
            "train_seconds": seconds,
            "train_images_per_s": seen / seconds if seconds > 0 else None,
        }

    def evaluate(self) -> dict[str, Any]:
        """Metrics of this epoch; the predictions behind them are kept in ``self.predictions``."""
        record: dict[str, Any] = {}
        self.predictions = {}
        if self.val_rows.size:
            pred = self.predict(self.val_source, self.val_rows)
            record["val"] = iqa_metrics(pred, self.val_source.samples.scores[self.val_rows])
            self.predictions[VALIDATION_SET] = (self.val_source.samples, self.val_rows, pred)
        record["eval"] = {}
        for name, source in self.eval_sources.items():
            rows = np.arange(len(source))
            pred = self.predict(source, rows)
            record["eval"][name] = iqa_metrics(pred, source.samples.scores)
            self.predictions[name] = (source.samples, rows, pred)
        return record

    def save_predictions(self, name: str, epoch: int) -> None:
        """This epoch's predictions as a Parquet table (see :func:`predictions_table`)."""
        write_predictions(self.out_dir / name, self.predictions, epoch)

    # -- checkpoints -----------------------------------------------------------------------------

    def save_checkpoint(self, epoch: int) -> None:
        from safetensors.torch import save_file

        name = f"ckpt-{epoch:03d}"
        with atomic_path(self.out_dir / name) as tmp:
            tmp.mkdir()
            save_file(_cpu_state(self.model), str(tmp / "model.safetensors"))
            torch.save(
                {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()},
                tmp / "optimizer.pt",
            )
            (tmp / "state.json").write_text(
                json_text({"epoch": epoch, "identity": self.identity, "history": self.history}, sort_keys=True)
            )
        atomic_write_text(self.out_dir / CHECKPOINT_POINTER, json_text({"epoch": epoch, "dir": name}, sort_keys=True))
        for old in self.out_dir.glob("ckpt-*"):
            if old.name != name and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self) -> int:
        """Restore the last checkpoint in ``out_dir`` if any; returns the number of epochs done."""
        pointer = self.out_dir / CHECKPOINT_POINTER
        if not pointer.is_file():
            return 0
        from safetensors.torch import load_file

        info = json.loads(pointer.read_text())
        folder = self.out_dir / str(info["dir"])
        state = json.loads((folder / "state.json").read_text())
        _check_same_run(state["identity"], self.identity, self.out_dir)
        self.model.load_state_dict(load_file(str(folder / "model.safetensors"), device=str(self.device)))
        extra = torch.load(folder / "optimizer.pt", map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(extra["optimizer"])
        self.scaler.load_state_dict(extra["scaler"])
        self.history = list(state["history"])
        return int(state["epoch"])

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        done = self.load_checkpoint()
        if done > self.config.epochs:
            raise CurateError(
                f"{self.out_dir}: already holds {done} epochs, more than --epochs {self.config.epochs}; "
                "use a new -o folder"
            )
        if done and not self.quiet:
            print(f"resuming {self.out_dir} after epoch {done}", file=sys.stderr, flush=True)
        best_val = _best_val(self.history)
        for epoch in range(done, self.config.epochs):
            record = self.train_epoch(epoch)
            record.update(self.evaluate())
            self.history.append(plain(record))
            if not self.quiet:
                print(_epoch_line(record), file=sys.stderr, flush=True)
            val = record.get("val", {}).get("srcc")
            if val is not None and math.isfinite(val) and (best_val is None or val > best_val):
                best_val = val
                self.save_weights("model_val_best.safetensors")
                self.save_predictions(PREDICTIONS_VAL_BEST, epoch + 1)
            self.save_checkpoint(epoch + 1)
            atomic_write_text(
                self.out_dir / "metrics.jsonl", "".join(json_text(r, sort_keys=True, style="line") + "\n" for r in self.history)
            )
        self.save_weights("model.safetensors")
        if done < self.config.epochs or not (self.out_dir / PREDICTIONS_LAST).is_file():
            if not self.predictions and self.history:  # resumed after the last epoch: evaluate again
                self.evaluate()
            if self.predictions:
                self.save_predictions(PREDICTIONS_LAST, len(self.history))
        summary = make_summary(
            self.config, self.identity, self.history, self.val_rows.size, self.train_rows.size, self.drc
        )
        atomic_write_text(self.out_dir / "summary.json", json_text(summary, sort_keys=True))
        plot_curves(self.history, self.out_dir / "curves.png")
        return summary

    def save_weights(self, name: str) -> None:
        from safetensors.torch import save_file

        with atomic_path(self.out_dir / name) as tmp:
            save_file(_cpu_state(self.model), str(tmp))


def predictions_table(predictions: Mapping[str, tuple[Samples, np.ndarray, np.ndarray]], epoch: int) -> pa.Table:
    """One row per evaluated image: ``set`` (an evaluation set's name, or ``(validation)``),
    ``sample_id``, ``ref_id``, ``score`` (the human label, 0-10), ``prediction`` and ``epoch``;
    rows sorted by (set, sample_id)."""
    columns: dict[str, list[Any]] = {k: [] for k in ("set", "sample_id", "ref_id", "score", "prediction")}
    for name in sorted(predictions):
        samples, rows, pred = predictions[name]
        order = np.argsort(samples.sample_ids[rows].astype(str), kind="stable")
        columns["set"] += [name] * rows.size
        columns["sample_id"] += samples.sample_ids[rows][order].astype(str).tolist()
        columns["ref_id"] += samples.ref_ids[rows][order].astype(str).tolist()
        columns["score"] += samples.scores[rows][order].astype(np.float64).tolist()
        columns["prediction"] += np.asarray(pred, dtype=np.float64)[order].tolist()
    n = len(columns["set"])
    return pa.table(
        {
            "set": pa.array(columns["set"], pa.string()),
            "sample_id": pa.array(columns["sample_id"], pa.string()),
            "ref_id": pa.array(columns["ref_id"], pa.string()),
            "score": pa.array(columns["score"], pa.float64()),
            "prediction": pa.array(columns["prediction"], pa.float64()),
            "epoch": pa.array(np.full(n, epoch, dtype=np.int32)),
        }
    )


def write_predictions(
    path: Path, predictions: Mapping[str, tuple[Samples, np.ndarray, np.ndarray]], epoch: int
) -> None:
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(predictions_table(predictions, epoch), tmp, compression="zstd")


def read_predictions(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A run's predictions table (``predictions_last.parquet`` / ``predictions_val_best.parquet``)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowInvalid) as exc:
        raise CurateError(f"{path}: not a readable predictions table ({exc})") from None


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def _check_same_run(saved: Mapping[str, Any], current: Mapping[str, Any], out_dir: Path) -> None:
    differ = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            differ += [f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            differ.append(key)
    if differ:
        raise CurateError(
            f"{out_dir}: holds a checkpoint of a different run (differs in {', '.join(differ)}); "
            "use a new -o folder or delete this one"
        )


def _best_val(history: list[dict[str, Any]]) -> float | None:
    values = [r.get("val", {}).get("srcc") for r in history]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _epoch_line(record: Mapping[str, Any]) -> str:
    parts = [f"epoch {record['epoch']}: loss {record['train_loss']:.4f} on {record['n_train']}"]
    if record.get("drc_removed"):
        parts.append(f"drc -{record['drc_removed']}")
    if "val" in record:
        parts.append(f"val srcc {_fmt(record['val']['srcc'])}")
    for name, m in record.get("eval", {}).items():
        parts.append(f"{name} srcc {_fmt(m['srcc'])} plcc {_fmt(m['plcc'])}")
    return ", ".join(parts)


def _fmt(value: float | None) -> str:
    return "nan" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _selected(history: list[dict[str, Any]], index: int, how: str) -> dict[str, Any]:
    record = history[index]
    return {"epoch": record["epoch"], "selected_by": how, "val": record.get("val"), "eval": record.get("eval", {})}


def make_summary(
    config: TrainConfig,
    identity: Mapping[str, Any],
    history: list[dict[str, Any]],
    n_val: int,
    n_train: int,
    drc: ResolvedDRC | None = None,
) -> dict[str, Any]:
    """The run's summary: settings, sizes, last epoch, validation-best epoch, and (if asked) test-best.

    With online DRCDown, the thresholds it used and where each came from (``thresholds_source``).
    """
    summary: dict[str, Any] = {
        **provenance(
            params=asdict(config) | {"lr": config.resolved_lr()}, seed=config.seed, inputs=identity.get("inputs", {})
        ),
        "n_train_rows": int(n_train),
        "n_val_rows": int(n_val),
        "epochs_run": len(history),
    }
    if config.online_drc and drc is not None:
        summary["drc_thresholds"] = drc.params.as_dict()
        summary["thresholds_source"] = drc.source
    if not history:
        return summary
    summary["last"] = _selected(history, len(history) - 1, "last epoch")
    vals = [(r.get("val") or {}).get("srcc") for r in history]
    if any(v is not None for v in vals):
        best = max(range(len(vals)), key=lambda k: (vals[k] if vals[k] is not None else -math.inf, -k))
        summary["val_best"] = _selected(history, best, "best validation SRCC (split by reference)")
    if config.report_test_best:
        test_best: dict[str, Any] = {"note": TEST_SELECTED_NOTE}
        names = sorted({n for r in history for n in r.get("eval", {})})
        for name in names:
            srccs = [(r.get("eval", {}).get(name) or {}).get("srcc") for r in history]
            best = max(range(len(srccs)), key=lambda k: (srccs[k] if srccs[k] is not None else -math.inf, -k))
            test_best[name] = {"epoch": history[best]["epoch"], **history[best]["eval"][name]}
        summary["test_selected"] = test_best
    return summary


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """A PNG of training loss and SRCC per epoch (validation and each evaluation set)."""
    try:
        import matplotlib
    except ImportError:  # a declared dependency; a bare environment still gets its metrics
        print(f"warning: matplotlib is not installed; {path.name} not written", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_srcc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="L1 loss (train)", title="training loss")
    series: dict[str, list[float]] = {}
    if any("val" in r for r in history):
        series["validation"] = [(r.get("val") or {}).get("srcc") for r in history]
    for name in sorted({n for r in history for n in r.get("eval", {})}):
        series[name] = [(r.get("eval", {}).get(name) or {}).get("srcc") for r in history]
    for name, values in series.items():
        ax_srcc.plot(epochs, [np.nan if v is None else v for v in values], marker="o", label=name)
    ax_srcc.set(xlabel="epoch", ylabel="SRCC", title="SRCC per epoch")
    for ax in (ax_loss, ax_srcc):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if series:
        ax_srcc.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


# ------------------------------------------------------------------------------------------------
# Entry point


def train(
    manifest_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    eval_sets: Mapping[str, str | os.PathLike[str]] | None = None,
    head_only: bool = False,
    embeddings: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    eval_embeddings: Mapping[str, str | os.PathLike[str]] | None = None,
    val_set: str | os.PathLike[str] | None = None,
    root: RootOverride = None,
    model_factory: Callable[[], nn.Module] | None = None,
    quiet: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """Train on a manifest and evaluate on ``eval_sets`` ({name: corpus or manifest Parquet}).

    ``settings`` are :class:`TrainConfig` fields (``epochs``, ``batch_size``, ``lr``, ``weights``,
    ``online_drc``, ``val_fraction``, ...). ``head_only=True`` trains a small regressor on the
    precomputed ``embeddings`` folder or folders (eval sets take theirs from ``eval_embeddings[name]``, else
    from ``embeddings`` when it covers them). ``model_factory`` replaces the torchvision backbone
    (a module with ``features``, ``head`` and ``forward`` as in :class:`ImageRegressor`).
    Returns the summary dict also written to ``out_dir/summary.json``.
    """
    unknown = sorted(set(settings) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise CurateError(f"train: unknown setting(s) {unknown}")
    config = TrainConfig(head_only=head_only, **settings)
    if val_set is not None and config.val_fraction > 0:
        raise CurateError("--val and --val-fraction exclude each other: give one validation set")
    eval_sets = dict(eval_sets or {})
    torch.manual_seed(config.seed)

    images = ManifestDataset(manifest_path, root=root, check_root=False)
    if not len(images):
        raise CurateError(f"{manifest_path}: the manifest has no rows")
    # A {source: root} override also serves the eval sets' sources; a single root is the manifest's.
    eval_root = root if isinstance(root, Mapping) else None
    eval_images = {name: eval_dataset(path, eval_root) for name, path in eval_sets.items()}
    val_images = None if val_set is None else eval_dataset(val_set, eval_root)
    if val_images is not None and not len(val_images):
        raise CurateError(f"{val_set}: the validation set has no scored rows")
    tables = (images, *eval_images.values(), *([val_images] if val_images is not None else []))
    sources = {s for ds in tables for s in ds.frame["source"].astype(str).unique()}
    check_root_sources(root, sources, str(manifest_path) + (" or its --eval sets" if eval_sets else ""))
    # The run folder is made by the run's first file (the checkpoint after the first epoch), so a
    # run that fails before that (bad input, device or weights) leaves no folder behind.
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CurateError(f"{out}: exists and is not a folder (-o names the run folder)")
    read: dict[str, Any] = {"manifest": manifest_path, **{f"eval:{name}": p for name, p in eval_sets.items()}}
    if val_set is not None:
        read["val"] = val_set
    device = pick_device(config.device)
    pin = device.type == "cuda"

    if head_only:
        if embeddings is None:
            raise CurateError("--head-only needs --embeddings EMB_DIR (from 'curate embed')")
        emb = EmbeddingsFolder(embeddings)
        read["embeddings"] = list(embeddings) if isinstance(embeddings, (list, tuple)) else [embeddings]
        vectors = emb.load(images.sample_ids, what=f"manifest {manifest_path}").vectors
        train_source: ImageSource | EmbeddingSource = EmbeddingSource(
            samples_of(images), vectors.astype(np.float32, copy=False)
        )
        eval_sources: dict[str, ImageSource | EmbeddingSource] = {}
        for name, ds in eval_images.items():
            where = (eval_embeddings or {}).get(name)
            eval_emb = EmbeddingsFolder(where) if where is not None else emb
            same_encoder(emb, eval_emb)
            read[f"eval_embeddings:{name}"] = where
            what = f"eval set {name!r} (pass --eval-embeddings {name}=DIR)"
            vectors = eval_emb.load(ds.sample_ids, what=what).vectors
            eval_sources[name] = EmbeddingSource(samples_of(ds), vectors.astype(np.float32, copy=False))
        val_source: ImageSource | EmbeddingSource | None = None
        if val_images is not None:
            vectors = emb.load(val_images.sample_ids, what=f"validation set {val_set}").vectors
            val_source = EmbeddingSource(samples_of(val_images), vectors.astype(np.float32, copy=False))
        model: nn.Module = model_factory() if model_factory else EmbeddingRegressor(emb.dim, config.hidden)
    else:
        check_images_exist(images, str(manifest_path))
        for name, ds in eval_images.items():
            check_images_exist(ds, f"eval set {name!r}")

        def source(ds: ManifestDataset) -> ImageSource:
            return ImageSource(
                ds, crop=config.crop, n_crops=config.test_crops, seed=config.seed, workers=config.resolved_workers(), pin_memory=pin
            )

        train_source = source(images)
        eval_sources = {name: source(ds) for name, ds in eval_images.items()}
        val_source = None
        if val_images is not None:
            check_images_exist(val_images, f"validation set {val_set}")
            val_source = source(val_images)
        model = model_factory() if model_factory else build_image_model(config.arch, config.weights)

    drc = resolve_drc(config.redundancy, read_metadata(manifest_path).get("params"))
    settings_identity = {k: v for k, v in asdict(config).items() if k not in RESUMABLE_CHANGES}
    if config.online_drc:
        settings_identity["drc_thresholds"] = drc.params.as_dict()
    identity = {
        "settings": settings_identity,
        "inputs": input_fingerprints(read),
        "model_factory": getattr(model_factory, "__qualname__", None),
    }
    runner = Runner(
        config, out, train_source, eval_sources, model, plain(identity), quiet, val_source=val_source, drc=drc
    )
    return runner.run()


def eval_dataset(path: str | os.PathLike[str], root: RootOverride = None) -> ManifestDataset:
    """An evaluation set: its scored rows. Unscored pristine references of a synthetic corpus are
    not test samples and are left out; any other unscored row is an error (ManifestDataset)."""
    frame, _ = read_samples(path, root, check_root=False)
    pristine = frame["is_reference"].fillna(False).astype(bool) & frame["score"].isna()
    return ManifestDataset(frame.loc[~pristine].reset_index(drop=True), root=None)


def summary_table(summary: Mapping[str, Any]) -> str:
    """A plain-text table of a run summary: one line per (selection, evaluation set)."""
    lines = [f"{'selection':<16} {'epoch':>5} {'set':<16} {'SRCC':>7} {'PLCC':>7} {'KRCC':>7} {'PLCC-fit':>8} {'n':>6}"]
    for key in ("last", "val_best"):
        chosen = summary.get(key)
        if not chosen:
            continue
        sets = dict(chosen.get("eval") or {})
        if chosen.get("val"):
            sets = {"(validation)": chosen["val"], **sets}
        for name, m in sets.items():
            lines.append(
                f"{key:<16} {chosen['epoch']:>5} {name:<16} {_fmt(m.get('srcc')):>7} {_fmt(m.get('plcc')):>7} "
                f"{_fmt(m.get('krcc')):>7} {_fmt(m.get('plcc_logistic')):>8} {m.get('n', 0):>6}"
            )
    selected = summary.get("test_selected")
    if selected:
        for name, m in selected.items():
            if name == "note":
                continue
            lines.append(
                f"{'test_selected*':<16} {m['epoch']:>5} {name:<16} {_fmt(m.get('srcc')):>7} {_fmt(m.get('plcc')):>7} "
                f"{_fmt(m.get('krcc')):>7} {_fmt(m.get('plcc_logistic')):>8} {m.get('n', 0):>6}"
            )
        lines.append(f"* {selected['note']}")
    return "\n".join(lines)
