"""curate embed: encoders, preprocessing, shards, resume, rejects, errors and the CLI verb."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

from curate.cli import cli
from curate.embed import EncoderSpec, embed_corpus
from curate.embed.encoders import _cached_tag_file
from curate.embed.imagestats import ImageStats
from curate.embed.preprocess import Preprocessing
from curate.embed.reader import shard_aligned_batches
from curate.embed.shards import plan_shards
from curate.embed.weights import require_download_possible
from curate.errors import CurateError
from curate.schema import EmbeddingsFolder, read_metadata, read_table
from tests.embed_helpers import TINY_MODEL, build_corpus, build_tiny_weights, synthetic_image

BAD_REJECTED = {
    "bad/corrupt.png": "unreadable",
    "bad/truncated.png": "truncated",
    "bad/empty.png": "empty",
    "bad/bomb.png": "too_large",
    "bad/missing.png": "missing",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("embed")
    found = build_tiny_weights(base / "weights")
    found["corpus"] = build_corpus(base / "corpus", 14, bad=True)
    found["base"] = base
    return found


def _run(tiny: dict[str, Path], out: Path, **kwargs):
    options = {"model": TINY_MODEL, "pretrained": str(tiny["file"]), "shard_size": 5, "workers": 0, "quiet": True}
    options.update(kwargs)
    if str(options.get("pretrained", "")).startswith("local-dir:"):
        options.pop("model", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return embed_corpus(tiny["corpus"], out, **options)


def _direct_clip(model_ref: str, pretrained: str | None, image_path: Path) -> np.ndarray:
    """The reference: open_clip's own eval transform and encode_image on one image."""
    import open_clip

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model, _, preprocess = open_clip.create_model_and_transforms(model_ref, pretrained=pretrained)
    model.eval()
    with torch.inference_mode():
        x = preprocess(Image.open(image_path).convert("RGB"))[None]
        return F.normalize(model.encode_image(x), dim=-1)[0].numpy()


# ---------------------------------------------------------------------------------------------


def test_preprocessing_matches_open_clip_transform(tiny: dict[str, Path]) -> None:
    import open_clip

    pp = Preprocessing(64, 64, "shortest", "bicubic", (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    transform = open_clip.image_transform(64, is_train=False, mean=pp.mean, std=pp.std)
    mean, std = np.array(pp.mean)[:, None, None], np.array(pp.std)[:, None, None]
    for width, height in ((96, 72), (72, 96), (64, 200), (301, 64), (64, 64), (40, 30)):
        rgb = synthetic_image(width * height, width, height)
        ours = (pp.apply(rgb) / 255.0 - mean) / std
        reference = transform(Image.fromarray(rgb)).numpy()
        assert ours.shape == reference.shape == (3, 64, 64)
        np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_clip_file_embeddings_match_direct_model_call(tiny: dict[str, Path], tmp_path: Path) -> None:
    result = _run(tiny, tmp_path / "emb")
    emb = EmbeddingsFolder(tmp_path / "emb").load()
    assert result.embedded == 16 and result.rejected == len(BAD_REJECTED)
    assert emb.vectors.shape == (16, 32)
    for sid, rel in (("toy/0000", "images/img0000.png"), ("toy/0003", "images/img0003.png"),
                     ("bad/cmyk.jpg", "images/cmyk.jpg")):
        expected = _direct_clip(TINY_MODEL, str(tiny["file"]), tiny["corpus"].parent / rel)
        np.testing.assert_allclose(emb.take([sid])[0], expected, atol=2e-5)
    encoder = emb.meta["encoder"]
    assert encoder["name"] == "clip" and encoder["model"] == TINY_MODEL
    assert encoder["weights"]["kind"] == "file"
    assert encoder["weights"]["sha256"] == __import__("hashlib").sha256(tiny["file"].read_bytes()).hexdigest()
    assert encoder["preprocessing"]["size"] == 64 and encoder["preprocessing"]["interpolation"] == "bicubic"
    assert encoder["activation"]["name"] == "gelu" and "assumed" in encoder["activation"]["source"]
    assert emb.meta["dim"] == 32 and emb.meta["dtype"] == "float32" and emb.meta["device"]["type"] == "cpu"
    assert "device" not in encoder


def test_local_dir_and_pt_file_load_through_open_clip(tiny: dict[str, Path], tmp_path: Path) -> None:
    local = f"local-dir:{tiny['local_dir']}"
    _run(tiny, tmp_path / "local", pretrained=local)
    emb = EmbeddingsFolder(tmp_path / "local").load()
    expected = _direct_clip(local, None, tiny["corpus"].parent / "images/img0001.png")
    np.testing.assert_allclose(emb.take(["toy/0001"])[0], expected, atol=2e-5)
    weights = emb.meta["encoder"]["weights"]
    assert weights["kind"] == "local-dir" and weights["file"] == "open_clip_model.safetensors"
    assert emb.meta["encoder"]["preprocessing_source"] == "model/tag config"
    # The same weights as a torch file (loaded with weights_only=True) give the same vectors.
    _run(tiny, tmp_path / "pt", pretrained=str(tiny["pt"]))
    np.testing.assert_allclose(EmbeddingsFolder(tmp_path / "pt").load().vectors, emb.vectors, atol=1e-6)


def test_bare_weights_file_warns_about_activation_and_preprocessing(tiny: dict[str, Path]) -> None:
    with pytest.warns(UserWarning, match="QuickGELU"):
        encoder = EncoderSpec("clip", TINY_MODEL, str(tiny["file"])).load()
    assert encoder.identity["preprocessing_source"] == "open_clip defaults (assumed)"


def test_same_input_gives_byte_identical_shards(
    tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from curate.embed import local_engine

    _run(tiny, tmp_path / "a", workers=1, batch_size=3)
    _run(tiny, tmp_path / "b", workers=1, batch_size=3)
    # No worker process: this process decodes each batch on its own threads (3, whatever the cores).
    monkeypatch.setattr(local_engine, "decode_threads", lambda: 3)
    _run(tiny, tmp_path / "c", workers=0, batch_size=3)
    names = sorted(p.name for p in (tmp_path / "a").glob("*.parquet"))
    assert names == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet",
                     "part-00003.parquet", "part-00004.parquet", "rejects.parquet"]
    assert sorted(p.name for p in (tmp_path / "c").glob("*.parquet")) == names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
        # The same rows, bit for bit; only the run's recorded settings (workers) differ.
        assert pq.read_table(tmp_path / "a" / name).equals(pq.read_table(tmp_path / "c" / name)), name


def test_threaded_batches_equal_one_at_a_time_decoding(tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle
    import threading

    from curate.embed import reader
    from curate.schema import read_corpus

    frame, meta = read_corpus(tiny["corpus"])
    paths = [str(Path(meta["root"]) / rel) for rel in frame["path"]]
    pp = Preprocessing(64, 64, "shortest", "bicubic", (0.5, 0.5, 0.5), (0.2, 0.2, 0.2))
    serial = reader.ImageFiles(paths, pp)
    threaded = reader.ImageFiles(paths, pp, threads=3)
    decoded_by: list[str] = []
    original = reader.decode_one

    def recording(*args, **kwargs):
        decoded_by.append(threading.current_thread().name)
        return original(*args, **kwargs)

    order = list(range(len(paths)))[::-1]  # any order the sampler asks for comes back in that order
    expected = serial.__getitems__(order)
    monkeypatch.setattr(reader, "decode_one", recording)
    got = threaded.__getitems__(order)
    assert len(decoded_by) == len(paths) and all(name.startswith("curate-decode") for name in decoded_by)
    assert [g[0] for g in got] == order
    for (i, a, ra, ma), (j, b, rb, mb) in zip(expected, got, strict=True):
        assert (i, ra, ma) == (j, rb, mb)
        assert (a is None and b is None) or np.array_equal(a, b)
    assert {r for _, img, r, _ in got if img is None} == set(BAD_REJECTED.values())
    # A worker process receives the settings, never the threads; close() stops them.
    assert pickle.loads(pickle.dumps(threaded))._pool is None
    threaded.close()
    assert threaded._pool is None and not any(t.name.startswith("curate-decode") for t in threading.enumerate())


def test_bad_images_are_recorded_as_rejects(tiny: dict[str, Path], tmp_path: Path) -> None:
    _run(tiny, tmp_path / "emb", encoder="imagestats", model=None, pretrained=None)
    table, meta = read_table(tmp_path / "emb" / "rejects.parquet", "rejects")
    found = dict(zip(table.column("sample_id").to_pylist(), table.column("reason").to_pylist(), strict=True))
    assert found == BAD_REJECTED
    assert set(table.column("stage").to_pylist()) == {"embed"}
    ids = set(EmbeddingsFolder(tmp_path / "emb").load().ids.tolist())
    assert {"bad/cmyk.jpg", "bad/grey16.png"} <= ids  # converted to RGB, not rejected
    assert not ids & set(BAD_REJECTED)
    # Each reject is also recorded in the metadata of the shard it belongs to.
    recorded = [r["sample_id"] for p in sorted((tmp_path / "emb").glob("part-*.parquet"))
                for r in read_metadata(p)["shard"]["rejects"]]
    assert sorted(recorded) == sorted(BAD_REJECTED)


def test_run_fails_past_max_rejects_and_keeps_the_record(tiny: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(CurateError, match="more than --max-rejects 2"):
        _run(tiny, tmp_path / "emb", encoder="imagestats", model=None, pretrained=None, max_rejects=2)
    table, _ = read_table(tmp_path / "emb" / "rejects.parquet", "rejects")
    assert table.num_rows >= 3
    # Allowing more rejects resumes and finishes.
    result = _run(tiny, tmp_path / "emb", encoder="imagestats", model=None, pretrained=None, max_rejects=10)
    assert result.rejected == len(BAD_REJECTED) and result.shards_skipped >= 1


def test_resume_skips_finished_shards_and_equals_a_fresh_run(tiny: dict[str, Path], tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    _run(tiny, fresh)
    resumed = tmp_path / "resumed"
    _run(tiny, resumed)
    (resumed / "part-00001.parquet").unlink()
    (resumed / "part-00003.parquet").unlink()
    kept = (resumed / "part-00000.parquet").stat().st_mtime_ns
    result = _run(tiny, resumed, device="cpu")
    assert (result.shards_written, result.shards_skipped) == (2, 3)
    assert (resumed / "part-00000.parquet").stat().st_mtime_ns == kept
    a, b = EmbeddingsFolder(fresh).load(), EmbeddingsFolder(resumed).load()
    assert a.ids.tolist() == b.ids.tolist()
    assert np.array_equal(a.vectors, b.vectors)


def test_other_encoder_or_corpus_into_same_folder_is_refused(tiny: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "emb"
    _run(tiny, out)
    with pytest.raises(CurateError, match="different encoder"):
        _run(tiny, out, encoder="imagestats", model=None, pretrained=None)
    with pytest.raises(CurateError, match="different --shard-size"):
        _run(tiny, out, shard_size=4)
    other = build_corpus(tmp_path / "other", 6)
    with pytest.raises(CurateError, match="different corpus"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            embed_corpus(other, out, model=TINY_MODEL, pretrained=str(tiny["file"]), shard_size=5, workers=0,
                         quiet=True)


def test_offline_hub_tag_fails_fast_with_instructions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(CurateError) as info:
        EncoderSpec("clip").load()
    message = str(info.value)
    assert "laion2b_s34b_b79k" in message and "HF_HUB_OFFLINE" in message and "local-dir:DIR" in message
    # Without the offline flag, an unreachable host is detected without a download attempt.
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(CurateError, match="cannot be reached"):
        require_download_possible("x", "http://127.0.0.1:9/weights.bin", "Supply local weights.")


def test_cached_hub_weights_are_found_without_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import open_clip

    cache = tmp_path / "hub"
    snapshot = cache / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"weights")
    (cache / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K" / "refs").mkdir()
    (cache / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    found = _cached_tag_file(open_clip.get_pretrained_cfg("ViT-B-32", "laion2b_s34b_b79k"))
    assert found == snapshot / "open_clip_model.safetensors"


def test_tag_activation_mismatch_and_unknown_names_are_refused(tiny: dict[str, Path]) -> None:
    with pytest.raises(CurateError, match="trained with GELU"):
        EncoderSpec("clip", "ViT-B-32-quickgelu", "laion2b_s34b_b79k").load()
    with pytest.raises(CurateError, match="nor a known tag"):
        EncoderSpec("clip", "ViT-B-32", "no-such-tag").load()
    with pytest.raises(CurateError, match="not known"):
        EncoderSpec("nope").resolved()
    with pytest.raises(CurateError, match="--model applies to --encoder clip and timm only"):
        EncoderSpec("imagestats", "ViT-B-32").resolved()
    with pytest.raises(CurateError, match="cannot load these weights"):
        EncoderSpec("clip", "ViT-B-32", str(tiny["file"])).load()


def test_resnet50_from_local_file_matches_torchvision(tiny: dict[str, Path], tmp_path: Path) -> None:
    import torchvision

    torch.manual_seed(3)
    reference = torchvision.models.resnet50(weights=None).eval()
    weights = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), weights)
    with pytest.warns(UserWarning, match="preprocessing"):
        encoder = EncoderSpec("resnet50", None, str(weights)).load()
    assert encoder.dim == 2048 and encoder.identity["preprocessing"]["resize"] == 256
    from curate.embed.mapper import Mapper

    mapper = Mapper(encoder, "cpu")
    transform = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.transforms()
    rgb = synthetic_image(5, 300, 260)
    ours = mapper.to_numpy(mapper(torch.from_numpy(encoder.preprocessing.apply(rgb))[None]))[0]
    reference.fc = torch.nn.Identity()
    with torch.inference_mode():
        expected = F.normalize(reference(transform(Image.fromarray(rgb))[None]), dim=-1)[0].numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-4)


def test_resnet50_tag_without_cache_fails_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(CurateError, match="resnet50-0676ba61.pth"):
        EncoderSpec("resnet50").load()


def test_imagestats_is_normalised_deterministic_and_discriminative() -> None:
    module = ImageStats().eval()
    pp = Preprocessing(224, 224, "squash", "bilinear", (0.0,) * 3, (1.0,) * 3)
    images = [synthetic_image(s, 120, 90) for s in range(4)]
    batch = torch.from_numpy(np.stack([pp.apply(im) for im in images])).float() / 255
    with torch.inference_mode():
        out = F.normalize(module(batch), dim=-1)
        again = F.normalize(module(batch[:2]), dim=-1)
    assert out.shape == (4, ImageStats.dim)
    assert torch.equal(out[:2], again)
    sims = (out @ out.T).numpy()
    assert np.allclose(np.diag(sims), 1, atol=1e-5) and (sims[~np.eye(4, dtype=bool)] < 0.999).all()
    # A flipped copy keeps its colour statistics: closer to its original than to other images.
    flipped = torch.flip(batch[:1], dims=[3])
    with torch.inference_mode():
        f = F.normalize(module(flipped), dim=-1)[0]
    assert float(f @ out[0]) > float((out[0] @ out[1:].T).max())


def test_shard_plan_is_deterministic_and_batches_stay_in_shards() -> None:
    ids = [f"s{k:02d}" for k in (5, 1, 9, 3, 7, 2, 8)]
    paths = [f"/r/{i}" for i in ids]
    shards = plan_shards(ids, paths, ids, 3)
    assert [s.sample_ids for s in shards] == [("s01", "s02", "s03"), ("s05", "s07", "s08"), ("s09",)]
    assert shards[0].paths == ("/r/s01", "/r/s02", "/r/s03")
    assert plan_shards(list(reversed(ids)), list(reversed(paths)), list(reversed(ids)), 3) == shards
    assert shard_aligned_batches([3, 3, 1], 2) == [[0, 1], [2], [3, 4], [5], [6]]


def test_cli_embed(tiny: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "emb"
    args = ["embed", str(tiny["corpus"]), "-o", str(out), "--encoder", "imagestats", "--workers", "0",
            "--shard-size", "7", "--quiet"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "16 embedded, 5 rejected" in result.output
    assert len(list(out.glob("part-*.parquet"))) == 3
    assert pq.ParquetFile(out / "part-00000.parquet").schema_arrow.field("embedding").type.list_size == ImageStats.dim
    mismatch = runner.invoke(cli, [*args[:4], "--model", TINY_MODEL, "--pretrained", str(tiny["file"]),
                                   "--workers", "0", "--shard-size", "7"])
    assert mismatch.exit_code == 1
    assert mismatch.output.count("error:") == 1 and "different encoder" in mismatch.output
    usage = runner.invoke(cli, [*args, "--batch-size", "0"])
    assert usage.exit_code == 2
    missing = runner.invoke(cli, ["embed", str(tmp_path / "nope.parquet"), "-o", str(out)])
    assert missing.exit_code == 1 and "nope.parquet" in missing.output



def test_mapper_precisions_on_cpu(tiny: dict[str, Path]) -> None:
    from curate.embed.mapper import Mapper

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        encoder = EncoderSpec("clip", TINY_MODEL, str(tiny["file"])).load()
    batch = torch.from_numpy(np.stack([encoder.preprocessing.apply(synthetic_image(s, 90, 70)) for s in range(3)]))
    full = Mapper(encoder, "cpu", "auto")
    assert full.precision == "fp32"
    reference = full.to_numpy(full(batch))
    half = Mapper(encoder, "cpu", "bf16")
    approx = half.to_numpy(half(batch))
    assert approx.dtype == np.float32 and np.allclose(np.linalg.norm(approx, axis=1), 1, atol=1e-5)
    assert (np.sum(reference * approx, axis=1) > 0.99).all()
    with pytest.raises(CurateError, match="fp16 needs a GPU"):
        Mapper(encoder, "cpu", "fp16")
    with pytest.raises(CurateError, match="--device tpu"):
        Mapper(encoder, "tpu")


def test_cpu_bf16_casts_model_and_batch_and_auto_stays_fp32_on_the_cpu(
    tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from curate.embed.mapper import Mapper

    def load():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return EncoderSpec("clip", TINY_MODEL, str(tiny["file"])).load()

    encoder = load()
    batch = torch.from_numpy(np.stack([encoder.preprocessing.apply(synthetic_image(s, 90, 70)) for s in range(4)]))
    reference = Mapper(encoder, "cpu", "fp32")
    assert reference.describe()["precision"] == "fp32" and "mode" not in reference.describe()
    expected = reference.to_numpy(reference(batch))
    monkeypatch.setenv("CURATE_CPU_BF16", "1")  # even where the CPU has bfloat16 units, auto stays fp32
    assert Mapper(load(), "cpu", "auto").precision == "fp32"
    cast = Mapper(load(), "cpu", "bf16")
    assert cast.precision == "bf16" and cast.describe()["mode"] == "cast"
    assert {p.dtype for p in cast.module.parameters()} == {torch.bfloat16}
    got = cast.to_numpy(cast(batch))
    assert got.dtype == np.float32 and np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    assert (np.sum(got * expected, axis=1) > 0.99).all() and not np.array_equal(got, expected)
    # a weight-free encoder computes its statistics in float32 whatever is asked
    stats = EncoderSpec("imagestats").load()
    assert Mapper(stats, "cpu", "bf16").describe()["precision"] == "fp32"


def test_resume_may_change_precision_and_each_shard_records_its_own(tiny: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "emb"
    _run(tiny, out, precision="fp32")
    (out / "part-00002.parquet").unlink()
    result = _run(tiny, out, precision="bf16")
    assert (result.shards_written, result.shards_skipped) == (1, 4)
    recorded = {path.name: read_metadata(path)["device"] for path in sorted(out.glob("part-*.parquet"))}
    assert recorded["part-00002.parquet"]["precision"] == "bf16"
    assert recorded["part-00002.parquet"]["mode"] == "cast"
    assert {d["precision"] for name, d in recorded.items() if name != "part-00002.parquet"} == {"fp32"}
    assert len(EmbeddingsFolder(out).load().ids) == 16


def test_a_failed_run_stops_its_decoding_threads(
    tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from curate.embed import local_engine
    from curate.embed.mapper import Mapper

    calls = []
    real = Mapper.__call__

    def failing(self, images):
        calls.append(len(images))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, images)

    monkeypatch.setattr(local_engine, "decode_threads", lambda: 3)
    monkeypatch.setattr(Mapper, "__call__", failing)
    with pytest.raises(KeyboardInterrupt) as caught:
        _run(tiny, tmp_path / "emb", workers=0, batch_size=3)
    # The traceback (held here, as a caller handling the error would) keeps the loader alive: its
    # threads must have been stopped, not left to the garbage collector.
    assert caught.traceback and len(calls) == 2
    assert not any(t.name.startswith("curate-decode") for t in threading.enumerate())


def test_cpu_model_decodes_in_its_own_threads_by_default() -> None:
    from curate.embed.config import EmbedConfig

    assert EmbedConfig().resolved_workers("cpu") == 0
    assert EmbedConfig(workers=2).resolved_workers("cpu") == 2
    assert EmbedConfig().resolved_workers("cuda") >= 1


def test_large_runs_are_fed_in_bounded_groups_of_whole_shards() -> None:
    from curate.embed.local_engine import shard_groups
    from curate.embed.reader import PathTable

    shards = plan_shards([f"s{k:03d}" for k in range(10)], [f"/p/{k}" for k in range(10)], ["x"] * 10, 3)
    groups = shard_groups(shards, limit=6)
    assert [[s.index for s in g] for g in groups] == [[0, 1], [2, 3]]
    assert shard_groups(shards, limit=2)[0] == [shards[0]]  # a shard larger than the limit still goes
    table = PathTable(["/a/b.png", "/ü/ç.jpg", "x"])
    assert [table[i] for i in range(len(table))] == ["/a/b.png", "/ü/ç.jpg", "x"]
