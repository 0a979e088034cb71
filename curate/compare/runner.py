"""``curate compare``: the method's ablation on a user's own data, run and reported honestly.

For every seed ``s`` of ``--seeds N`` and every variant (see :data:`VARIANTS`):

1. **Validation references** are split off the training corpus before anything else sees them
   (``--val-fraction`` of its reference contents by a hash of ``(s, ref_id)``, or the fixed
   ``--val-refs``). Neither reshaping nor training ever sees them; every variant of seed ``s`` is
   selected on the same validation images, and no run ever selects on a target set.
2. The variant's **manifest** is reshaped from the remaining corpus (``reshape`` with the variant's
   stages, seed ``s``).
3. The **trainer** (head-only regressor on the embeddings, or the bundled image trainer with the
   paper's protocol) trains on it with seed ``train_seed + s``, selecting the epoch on the
   validation set, and predicts every target image.

Before any training, every target set is checked for near-duplicate content on the training side
(:mod:`curate.compare.leaks`); ``--exclude-leaks`` drops the leaked contents.

The output folder holds ``compare.json`` (inputs, settings), ``leaks.csv``, ``data/seed-S/``
(training and validation corpora of each seed), ``runs/VARIANT/seed-S/`` (manifest, decisions, the
run folder), ``results.csv`` (one row per variant, seed, target and selection), ``summary.json``
(mean +- sd over seeds, paired differences to ``original`` with 95% bootstrap intervals over test
references, a verdict per difference), ``comparison.png`` and ``index.html``. A killed compare
reruns only the runs that did not finish; the same inputs and seeds give the same table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curate.compare import leaks
from curate.compare.params import BASELINE, HEAD_ONLY, TRAIN_SEED, VARIANTS, CompareParams, Variant
from curate.errors import CurateError
from curate.fsio import atomic_write_text, command_line, fingerprint, folder_lock

COMPARE_FORMAT = "compare"
COMPARE_FORMAT_VERSION = 1


@dataclass
class CompareResult:
    """What a comparison wrote: the folder, its tidy results and the summary."""

    out_dir: Path
    results: pd.DataFrame
    summary: dict[str, Any]
    leaks: pd.DataFrame | None = None

    def lines(self) -> list[str]:
        from curate.compare.report import summary_lines

        return summary_lines(self.summary)


# --------------------------------------------------------------------------------------------


def compare(
    corpus: str | os.PathLike[str],
    embeddings: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    eval_sets: Mapping[str, str | os.PathLike[str]],
    params: CompareParams,
    pool: str | os.PathLike[str] | None = None,
    pool_embeddings: str | os.PathLike[str] | None = None,
    eval_embeddings: Mapping[str, str | os.PathLike[str]] | None = None,
    root: Any = None,
    quiet: bool = False,
) -> CompareResult:
    """Run the comparison into ``out_dir`` (resuming a killed one) and write its report."""
    from curate.compare.report import read_resample_groups, write_report

    if not eval_sets:
        raise CurateError("compare needs at least one target set: --eval NAME=CORPUS")
    if (pool is None) != (pool_embeddings is None):
        raise CurateError("--pool and --pool-embeddings go together")
    eval_embeddings = dict(eval_embeddings or {})
    unknown = sorted(set(eval_embeddings) - set(eval_sets))
    if unknown:
        raise CurateError(f"--eval-embeddings {unknown[0]}: no --eval set of that name")
    if params.trainer == HEAD_ONLY:
        missing = sorted(set(eval_sets) - set(eval_embeddings))
        if missing:
            raise CurateError(f"--trainer head-only needs --eval-embeddings {missing[0]}=DIR for each target set")
    if params.leak_check:
        missing = sorted(set(eval_sets) - set(eval_embeddings))
        if missing:
            raise CurateError(
                f"target set {missing[0]!r}: the leak check needs its embeddings (--eval-embeddings "
                f"{missing[0]}=DIR, same encoder as the corpus), or --skip-leak-check"
            )
    out = Path(out_dir)
    groups = read_resample_groups(params.resample_groups) if params.resample_groups else None
    inputs = _fingerprints(corpus, embeddings, pool, pool_embeddings, eval_sets, eval_embeddings)
    with folder_lock(out, "compare"):
        data = _Inputs.read(corpus, pool, eval_sets, params.types)
        params = params.resolved(corpus_types=data.corpus_types, have_pool=pool is not None)
        _check_identity(out, params, inputs)
        matches = None
        if params.leak_check:
            _say(f"leak check: {len(eval_sets)} target set(s) against the training side", quiet)
            matches = _leak_check(data, embeddings, pool_embeddings, eval_embeddings, params)
            atomic_write_text(out / "leaks.csv", matches.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
        excluded = leaks.leaked_contents(matches) if matches is not None and params.exclude_leaks else {}
        runs: list[_Run] = []
        for seed in range(params.seeds):
            split = _split(data, params, seed, excluded, out / "data" / f"seed-{seed}")
            original_rows: int | None = None
            for name in params.variants:
                run = _Run(VARIANTS[name], seed, out / "runs" / name / f"seed-{seed}")
                _say(f"seed {seed}: {name}", quiet)
                rows = _reshape(run, split, embeddings, pool_embeddings, params, original_rows)
                if name == BASELINE:
                    original_rows = rows
                _train(run, split, embeddings, pool_embeddings, eval_sets, eval_embeddings, params, root, quiet)
                runs.append(run)
        results = _results(runs, params)
        summary = write_report(out, results, runs, params, inputs, matches, data.eval_frames, groups)
    return CompareResult(out, results, summary, matches)


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        import click

        click.echo(message, err=True)


def _fingerprints(
    corpus: Any, embeddings: Any, pool: Any, pool_embeddings: Any, eval_sets: Mapping[str, Any], eval_emb: Mapping[str, Any]
) -> dict[str, Any]:
    inputs: dict[str, Any] = {"corpus": fingerprint(corpus), "embeddings": fingerprint(embeddings)}
    if pool is not None:
        inputs["pool"] = fingerprint(pool)
        inputs["pool_embeddings"] = fingerprint(pool_embeddings)
    for name in sorted(eval_sets):
        inputs[f"eval:{name}"] = fingerprint(eval_sets[name])
        if name in eval_emb:
            inputs[f"eval_embeddings:{name}"] = fingerprint(eval_emb[name])
    return inputs


def _check_identity(out: Path, params: CompareParams, inputs: Mapping[str, Any]) -> None:
    """Write ``compare.json``, or refuse a folder that holds another comparison."""
    path = out / "compare.json"
    identity = {"format": COMPARE_FORMAT, "format_version": COMPARE_FORMAT_VERSION,
                "params": params.identity(), "inputs": dict(inputs)}
    text = json.dumps(identity, indent=2, sort_keys=True, default=list) + "\n"
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError):
            previous = None
        if previous != json.loads(text):
            differ = sorted(k for k in identity if not isinstance(previous, dict) or previous.get(k) != json.loads(text)[k])
            raise CurateError(
                f"{out}: holds a comparison of other inputs or settings (differs in {', '.join(differ) or 'format'}); "
                "use a new -o folder"
            )
        return
    if out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".")):
        raise CurateError(f"-o {out}: folder is not empty and holds no curate comparison; choose another")
    atomic_write_text(path, text)
    atomic_write_text(out / "command.json", json.dumps({"command": command_line()}, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# Inputs and the validation split


@dataclass
class _Inputs:
    corpus_path: Path
    corpus: pd.DataFrame  # sorted by sample_id
    corpus_meta: dict[str, Any]
    pool_path: Path | None
    pool: pd.DataFrame | None
    pool_meta: dict[str, Any] | None
    eval_frames: dict[str, pd.DataFrame]  # scored rows of each target set
    eval_paths: dict[str, Path]
    corpus_types: tuple[int, ...]

    @classmethod
    def read(
        cls, corpus: Any, pool: Any, eval_sets: Mapping[str, Any], types: Sequence[int] | None
    ) -> _Inputs:
        from curate.schema import read_corpus
        from curate.train.loop import eval_dataset

        frame, meta = read_corpus(corpus)
        frame = frame.sort_values("sample_id", kind="stable").reset_index(drop=True)
        distortion = frame["distortion"].astype("Float64").to_numpy(na_value=np.nan)
        distorted = ~frame["is_reference"].to_numpy(dtype=bool) & ~np.isnan(distortion)
        present = tuple(sorted({int(t) for t in distortion[distorted]}))
        if types is not None and not (distorted & np.isin(distortion, np.asarray(types, float))).any():
            raise CurateError(f"{corpus}: no distorted samples of the selected types {list(types)}")
        if not present:
            raise CurateError(f"{corpus}: no distorted samples to train on")
        pool_frame = pool_meta = None
        if pool is not None:
            pool_frame, pool_meta = read_corpus(pool)
            pool_frame = pool_frame.sort_values("sample_id", kind="stable").reset_index(drop=True)
        evals = {}
        for name, path in eval_sets.items():
            frame_e = eval_dataset(path).frame
            if frame_e.empty:
                raise CurateError(f"--eval {name}={path}: no scored rows to test on")
            evals[name] = frame_e.sort_values("sample_id", kind="stable").reset_index(drop=True)
        paths = {name: Path(path) for name, path in eval_sets.items()}
        return cls(
            Path(corpus), frame, meta, None if pool is None else Path(pool), pool_frame, pool_meta, evals, paths, present
        )


@dataclass
class _Split:
    seed: int
    folder: Path
    train_corpus: Path
    val_corpus: Path
    pool: Path | None
    val_refs: list[str]


def validation_refs(ref_ids: Sequence[str], fraction: float, seed: int) -> list[str]:
    """The reference contents held out for validation: ``round(n * fraction)`` of them (at least
    1, leaving at least 2 for DDCUp), ranked by a hash of ``(seed, ref_id)``; independent of order."""
    from curate.reshape.downsample import sample_keys

    unique = np.unique(np.asarray(ref_ids, dtype=object).astype(str))
    if unique.size < 3:
        raise CurateError(
            f"the training corpus has {unique.size} reference content(s); a validation split needs at least 3"
        )
    n_val = int(min(max(round(unique.size * fraction), 1), unique.size - 2))
    order = np.lexsort((unique, sample_keys(unique, seed)))
    return sorted(unique[order[:n_val]].tolist())


def _match_refs(wanted: Sequence[str], available: Sequence[str]) -> list[str]:
    """``--val-refs`` names (a ref_id, or its last path part such as ``I06``) -> ref_ids."""
    by_name: dict[str, list[str]] = {}
    for ref in available:
        for key in {ref, ref.rsplit("/", 1)[-1]}:
            by_name.setdefault(key, []).append(ref)
    out = []
    for name in wanted:
        hits = sorted(set(by_name.get(name, [])))
        if len(hits) != 1:
            problem = "matches no" if not hits else f"matches {len(hits)}"
            raise CurateError(f"--val-refs {name!r}: {problem} reference content of the training corpus")
        out.append(hits[0])
    return sorted(set(out))


def _split(
    data: _Inputs, params: CompareParams, seed: int, excluded: Mapping[str, list[str]], folder: Path
) -> _Split:
    """Write this seed's training corpus (validation and leaked contents removed) and validation corpus."""
    frame = data.corpus
    refs = frame["ref_id"].astype(str)
    distortion = frame["distortion"].astype("Float64").to_numpy(na_value=np.nan)
    scored_types = ~frame["is_reference"].to_numpy(dtype=bool) & np.isin(distortion, np.asarray(params.types, float))
    leaked = set(excluded.get("corpus", []))
    contents = sorted(set(refs[scored_types]) - leaked)
    if params.val_refs:
        val = _match_refs(params.val_refs, contents)
    else:
        val = validation_refs(contents, params.val_fraction, seed)
    is_val = refs.isin(val).to_numpy()
    is_leaked = refs.isin(leaked).to_numpy()
    train_frame = frame[~is_val & ~is_leaked]
    val_frame = frame[is_val & scored_types]
    train_path, val_path = folder / "train_corpus.parquet", folder / "val_corpus.parquet"
    note = {"compare_split": {"seed": seed, "validation_refs": val, "excluded_leaked_refs": sorted(leaked)}}
    _write_derived(train_frame, train_path, data.corpus_meta, data.corpus_path, note)
    _write_derived(val_frame, val_path, data.corpus_meta, data.corpus_path, note)
    pool_path = None
    if data.pool is not None and data.pool_path is not None and data.pool_meta is not None:
        pool_leaked = set(excluded.get("pool", []))
        if pool_leaked:
            kept = data.pool[~data.pool["ref_id"].astype(str).isin(pool_leaked)]
            pool_path = folder / "pool_corpus.parquet"
            pool_note = {"compare_split": {"excluded_leaked_refs": sorted(pool_leaked)}}
            _write_derived(kept, pool_path, data.pool_meta, data.pool_path, pool_note)
        else:
            pool_path = data.pool_path
    return _Split(seed, folder, train_path, val_path, pool_path, val)


def _write_derived(
    frame: pd.DataFrame, path: Path, meta: Mapping[str, Any], source: Path, note: Mapping[str, Any]
) -> None:
    """A subset of a corpus as a corpus table of its own (same image root and score scale).

    Written once: a resumed compare keeps the file (its identity was checked in compare.json)."""
    from curate.schema import corpus_root, make_metadata, write_table

    if path.is_file():
        return
    keep = {k: v for k, v in meta.items() if k not in ("format", "format_version", "curate_version", "command", "inputs")}
    keep["root"] = str(corpus_root(meta, source))
    params = dict(keep.pop("params", {}) or {})
    seed = keep.pop("seed", None)
    new = make_metadata("corpus", params=params, seed=seed, inputs={"corpus": fingerprint(source)}, **keep, **note)
    write_table(frame.reset_index(drop=True), path, "corpus", new)


# --------------------------------------------------------------------------------------------
# Leak check


def _content_rows(frame: pd.DataFrame, types: Sequence[int] | None) -> pd.DataFrame:
    """The rows that stand for each content: the pristine reference images when the table has them
    (distorted versions of different contents look alike at strong levels, so they would flag
    distortions, not content), else every row (of ``types``, when given)."""
    is_ref = frame["is_reference"].to_numpy(dtype=bool)
    if is_ref.any():
        return frame[is_ref]
    if types is None:
        return frame
    distortion = frame["distortion"].astype("Float64").to_numpy(na_value=np.nan)
    return frame[np.isin(distortion, np.asarray(types, float)) | np.isnan(distortion)]


def _leak_check(
    data: _Inputs,
    embeddings: Any,
    pool_embeddings: Any,
    eval_embeddings: Mapping[str, Any],
    params: CompareParams,
) -> pd.DataFrame:
    """Each target content against the training side's contents (see :mod:`curate.compare.leaks`)."""
    from curate.schema import EmbeddingsFolder, read_corpus, same_encoder

    sides = [("corpus", data.corpus, embeddings)]
    if data.pool is not None and pool_embeddings is not None:
        sides.append(("pool", data.pool, pool_embeddings))
    ids, refs, names, vectors = [], [], [], []
    first = None
    for side, frame, folder in sides:
        rows = _content_rows(frame, params.types)
        emb = EmbeddingsFolder(folder).load(rows["sample_id"].to_numpy(dtype=object), what=f"{side} (leak check)")
        if first is None:
            first = emb
        else:
            same_encoder(first, emb)
        ids.append(rows["sample_id"].to_numpy(dtype=object))
        refs.append(rows["ref_id"].to_numpy(dtype=object))
        names.append(np.full(len(rows), side, dtype=object))
        vectors.append(np.asarray(emb.vectors, dtype=np.float32))
    assert first is not None
    training = leaks.TrainingSide(np.concatenate(ids), np.concatenate(refs), np.concatenate(names), np.concatenate(vectors))
    parts = []
    for name in sorted(data.eval_frames):
        target, _ = read_corpus(data.eval_paths[name])
        rows = _content_rows(target, None)
        emb = EmbeddingsFolder(eval_embeddings[name]).load(
            rows["sample_id"].to_numpy(dtype=object), what=f"target set {name!r} (leak check)"
        )
        same_encoder(first, emb)
        matches = leaks.nearest_training(
            name,
            rows["sample_id"].to_numpy(dtype=object),
            rows["ref_id"].to_numpy(dtype=object),
            np.asarray(emb.vectors, dtype=np.float32),
            training,
            threshold=params.leak_threshold,
            device=params.device,
        )
        scored = data.eval_frames[name]["ref_id"].astype(str).value_counts()
        matches["test_images"] = matches["ref_id"].map(scored).fillna(0).astype(int)
        parts.append(matches)
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Runs


@dataclass
class _Run:
    variant: Variant
    seed: int
    folder: Path
    manifest_rows: int = 0
    upsampled_rows: int = 0

    @property
    def manifest(self) -> Path:
        return self.folder / "manifest.parquet"

    @property
    def run_dir(self) -> Path:
        return self.folder / "run"


def _reshape(
    run: _Run, split: _Split, embeddings: Any, pool_embeddings: Any, params: CompareParams, original_rows: int | None
) -> int:
    """Write the variant's manifest (once; a resumed compare keeps it) and return its row count."""
    from curate.schema import read_frame

    if not run.manifest.is_file():
        from curate.reshape.params import ReshapeParams
        from curate.reshape.pipeline import reshape

        variant = run.variant
        # with online DRCDown the trainer thins redundant clusters each epoch; sizing trims offline
        drc = variant.drc and (variant.sized or not params.online_drc)
        if variant.sized and original_rows is None:
            raise CurateError("the sized variant needs the original manifest of the same seed")
        reshape_params = ReshapeParams(
            types=params.types,
            seed=split.seed,
            drc=drc,
            candidates=variant.candidates,
            target_size=original_rows if variant.sized else None,
            device=params.device,
        )
        reshape(
            split.train_corpus,
            embeddings,
            run.manifest,
            pool=split.pool if variant.pool else None,
            pool_embeddings=pool_embeddings if variant.pool else None,
            params=reshape_params,
        )
    frame, _ = read_frame(run.manifest, "manifest")
    run.manifest_rows = len(frame)
    run.upsampled_rows = int((frame["origin"] == "upsampled").sum())
    return run.manifest_rows


def _train(
    run: _Run,
    split: _Split,
    embeddings: Any,
    pool_embeddings: Any,
    eval_sets: Mapping[str, Any],
    eval_embeddings: Mapping[str, Any],
    params: CompareParams,
    root: Any,
    quiet: bool,
) -> None:
    """Train the run (skipped when its run folder is complete; a killed run resumes)."""
    from curate.train import train
    from curate.train.loop import PREDICTIONS_VAL_BEST, TrainConfig

    settings = dict(params.train)
    epochs = TrainConfig(**settings).epochs
    summary_path = run.run_dir / "summary.json"
    if summary_path.is_file() and (run.run_dir / PREDICTIONS_VAL_BEST).is_file():
        if json.loads(summary_path.read_text()).get("epochs_run") == epochs:
            return
    online = params.online_drc and run.variant.drc and not run.variant.sized
    folders = [embeddings] + ([pool_embeddings] if run.variant.pool and pool_embeddings is not None else [])
    train(
        run.manifest,
        run.run_dir,
        eval_sets=dict(eval_sets),
        head_only=params.trainer == HEAD_ONLY,
        embeddings=folders if params.trainer == HEAD_ONLY else None,
        eval_embeddings=dict(eval_embeddings) if params.trainer == HEAD_ONLY else None,
        val_set=split.val_corpus,
        root=root,
        quiet=True if params.trainer == HEAD_ONLY else quiet,
        seed=TRAIN_SEED + run.seed,
        online_drc=online,
        report_test_best=params.report_test_best,
        device=params.device,
        **settings,
    )


def _results(runs: Sequence[_Run], params: CompareParams) -> pd.DataFrame:
    """The tidy table: one row per (variant, seed, target, selection)."""
    rows: list[dict[str, Any]] = []
    for run in runs:
        summary = json.loads((run.run_dir / "summary.json").read_text())
        selections = [("val_best", summary.get("val_best")), ("last", summary.get("last"))]
        for selection, chosen in selections:
            if not chosen:
                continue
            for target, metrics in sorted((chosen.get("eval") or {}).items()):
                rows.append(_result_row(run, target, selection, chosen["epoch"], metrics, (chosen.get("val") or {}).get("srcc")))
        tested = summary.get("test_selected") or {}
        for target, metrics in sorted(tested.items()):
            if target == "note":
                continue
            rows.append(_result_row(run, target, "test_best", metrics["epoch"], metrics, None))
    frame = pd.DataFrame(rows)
    order = {name: k for k, name in enumerate(VARIANTS)}
    selection_order = {"val_best": 0, "last": 1, "test_best": 2}
    frame = frame.assign(_v=frame["variant"].map(order), _s=frame["selection"].map(selection_order))
    frame = frame.sort_values(["target", "_s", "_v", "seed"], kind="stable").drop(columns=["_v", "_s"])
    return frame.reset_index(drop=True)


def _result_row(
    run: _Run, target: str, selection: str, epoch: int, metrics: Mapping[str, Any], val_srcc: float | None
) -> dict[str, Any]:
    return {
        "variant": run.variant.name,
        "seed": run.seed,
        "target": target,
        "selection": selection,
        "epoch": int(epoch),
        "srcc": metrics.get("srcc"),
        "plcc": metrics.get("plcc"),
        "krcc": metrics.get("krcc"),
        "val_srcc": val_srcc,
        "n_test": metrics.get("n"),
        "rows": run.manifest_rows,
        "upsampled_rows": run.upsampled_rows,
    }
