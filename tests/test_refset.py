"""``curate ingest-refset``: the release's RefSet pickles, read without running pickled code.

The tests write fake RefSet files in the release's layout: a pickled tuple (list of image file
names, list of float32 arrays [1, dim]).
"""

from __future__ import annotations

import builtins
import os
import pickle
import re
import shlex

import numpy as np
import pytest
from click.testing import CliRunner
from reshape_helpers import corpus_rows, write_corpus

from curate.cli import cli
from curate.errors import CurateError
from curate.fsio import folder_lock
from curate.refset import RefusedPickle, load_refset_pickle, match_by_stem
from curate.reshape.candidate_order import read_candidate_order
from curate.schema import EmbeddingsFolder, read_metadata, same_encoder

DIM = 16
TRAIN_NAMES = [f"I{k:02d}.png" for k in range(1, 7)]
# the release's candidate file is in directory-listing order, not sorted
CANDIDATE_NAMES = ["sea-11.png", "beach-12.png", "owl-3.png", "cat-54.png", "pico-37.png"]


def features(n, seed, dim=DIM):
    rng = np.random.default_rng(seed)
    return [np.abs(rng.normal(size=(1, dim))).astype(np.float32) for _ in range(n)]


def write_pickle(path, obj, protocol=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def release_style(obj) -> bytes:
    """A protocol-3 pickle naming numpy 1.x's module path, as the release's files do."""
    data = pickle.dumps(obj, protocol=3)
    assert b"numpy._core.multiarray\n_reconstruct" in data
    return data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


@pytest.fixture
def release(tmp_path):
    """A RefSet folder, a training corpus and a pool corpus whose references match it by stem."""
    train_vecs = features(len(TRAIN_NAMES), 0)
    cand_vecs = features(len(CANDIDATE_NAMES), 1)
    refset = tmp_path / "RefSet"
    refset.mkdir()
    (refset / "train_ref.pkl").write_bytes(release_style((list(TRAIN_NAMES), train_vecs)))
    (refset / "additional_ref.pkl").write_bytes(release_style((list(CANDIDATE_NAMES), cand_vecs)))
    refs = [n.removesuffix(".png") for n in TRAIN_NAMES]
    corpus = write_corpus(tmp_path / "corpus.parquet", corpus_rows("kadid", "kadid10k", refs, [1], [1], None), tmp_path)
    stems = [n.removesuffix(".png") for n in CANDIDATE_NAMES]
    pool = write_corpus(tmp_path / "pool.parquet", corpus_rows("pool", "pool", stems, [1], [1], None), tmp_path)
    return {
        "refset": refset, "corpus": corpus, "pool": pool, "out": tmp_path / "out",
        "train": dict(zip(refs, train_vecs, strict=True)), "candidates": dict(zip(stems, cand_vecs, strict=True)),
    }


def run_ingest(release, *extra):
    args = ["ingest-refset", str(release["refset"]), "--corpus", str(release["corpus"]),
            "--pool", str(release["pool"]), "-o", str(release["out"]), *extra]
    return CliRunner().invoke(cli, args)


# ---- the restricted unpickler --------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_names_and_vectors_round_trip(tmp_path, protocol):
    vecs = features(4, 2)
    vecs[1] = vecs[1][0]  # a plain [dim] array is accepted too
    names = ["a.png", np.str_("b.png"), "c.png", "d.png"]
    read = load_refset_pickle(write_pickle(tmp_path / "r.pkl", (names, vecs), protocol))
    assert read.names == ["a.png", "b.png", "c.png", "d.png"]
    assert all(type(n) is str for n in read.names)
    assert read.vectors.dtype == np.float32 and read.vectors.shape == (4, DIM)
    np.testing.assert_array_equal(read.vectors, np.stack([v.reshape(-1) for v in vecs]))


def test_release_style_module_path_is_read(tmp_path):
    vecs = features(3, 3)
    path = tmp_path / "r.pkl"
    path.write_bytes(release_style((["x.png", "y.png", "z.png"], vecs)))
    read = load_refset_pickle(path)
    np.testing.assert_array_equal(read.vectors, np.concatenate(vecs))


def some_function():
    return "never called"


class Instance:
    def __init__(self):
        self.value = 1


class RunsCommand:
    """Unpickling this runs ``command`` through os.system: it touches a marker file."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class ExecutesCode:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (builtins.exec, (self.code,))


@pytest.mark.parametrize("payload, refused", [
    (some_function, "some_function"),
    (Instance(), "Instance"),
    (np.random.default_rng, "default_rng"),
])
def test_other_types_are_refused_by_name(tmp_path, payload, refused):
    path = write_pickle(tmp_path / "r.pkl", (["a.png"], [payload]))
    with pytest.raises(RefusedPickle, match=rf"r\.pkl: refused to unpickle \S*{refused}") as info:
        load_refset_pickle(path)
    assert "\n" not in str(info.value)


def test_os_system_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / "ran-os-system"
    path = write_pickle(tmp_path / "evil.pkl", (["a.png"], [RunsCommand(f"touch {shlex.quote(str(marker))}")]))
    with pytest.raises(RefusedPickle, match=r"evil\.pkl: refused to unpickle (posix|nt|os)\.system"):
        load_refset_pickle(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the payload is live: plain pickle runs it
    assert marker.exists()


def test_exec_payload_in_the_names_is_refused_without_running(tmp_path):
    marker = tmp_path / "ran-exec"
    code = f"open({str(marker)!r}, 'w').close()"
    path = write_pickle(tmp_path / "evil.pkl", ([ExecutesCode(code)], features(1, 0)), protocol=4)
    with pytest.raises(RefusedPickle, match=r"refused to unpickle builtins\.exec"):
        load_refset_pickle(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_codecs_encode_only_decodes_latin1(tmp_path):
    # protocol 2 spells bytes as _codecs.encode(text, 'latin1'); any other codec is refused
    data = pickle.dumps((["a.png"], features(1, 0)), protocol=2)
    assert b"latin1" in data
    path = tmp_path / "r.pkl"
    path.write_bytes(data.replace(b"latin1", b"rot_13"))
    with pytest.raises(CurateError, match=r"r\.pkl: not a readable pickle .*rot_13"):
        load_refset_pickle(path)


@pytest.mark.parametrize("contents, message", [
    ({"a.png": 1}, "expected a pair"),
    ((["a.png", "b.png"], features(1, 0)), "2 names but 1 feature arrays"),
    ((["a.png", "a.png"], features(2, 0)), "name 'a.png' appears twice"),
    (([3], features(1, 0)), "name 0 is a int"),
    ((["a.png"], [np.ones((1, DIM), np.float64)]), r"feature 0 \('a.png'\) has dtype float64, expected float32"),
    ((["a.png"], [np.ones((2, DIM), np.float32)]), r"has shape \(2, 16\), expected \[dim\] or \[1, dim\]"),
    ((["a.png", "b.png"], [np.ones(DIM, np.float32), np.ones(DIM + 1, np.float32)]), "has 17 values but the first"),
    ((["a.png"], [np.full(DIM, np.nan, np.float32)]), "holds NaN or inf"),
    ((["a.png"], [np.zeros(DIM, np.float32)]), "is all zeros"),
    ((["a.png"], [[1.0, 2.0]]), "is a list of 2, expected a numpy float32 array"),
    (([], []), "holds no names"),
])
def test_contents_are_checked(tmp_path, contents, message):
    path = write_pickle(tmp_path / "r.pkl", contents)
    with pytest.raises(CurateError, match=message) as info:
        load_refset_pickle(path)
    assert str(info.value).startswith(str(path))


def test_truncated_or_missing_file(tmp_path):
    data = pickle.dumps((["a.png"], features(1, 0)), protocol=3)
    path = tmp_path / "r.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CurateError, match=r"r\.pkl: not a readable pickle"):
        load_refset_pickle(path)
    with pytest.raises(CurateError, match=r"nothere\.pkl: no such file"):
        load_refset_pickle(tmp_path / "nothere.pkl")


# ---- matching names to rows ----------------------------------------------------------------


def test_match_by_stem():
    ids = ["k/I01", "k/I02", "k/I03"]
    paths = ["images/I01.png", "images/i02.PNG", "images/I03.png"]
    assert match_by_stem(["I03.png", "I01.bmp", "I02.png"], ids, paths, where="w").tolist() == [2, 0, 1]
    with pytest.raises(CurateError, match=r"w: 1 name\(s\) match no reference row by file stem: 'I09.png'"):
        match_by_stem(["I01.png", "I02.png", "I03.png", "I09.png"], ids, paths, where="w")
    with pytest.raises(CurateError, match=r"matched by several names: 'k/I01' \('I01.png', 'I01.bmp'\)"):
        match_by_stem(["I01.png", "I01.bmp", "I02.png", "I03.png"], ids, paths, where="w")
    with pytest.raises(CurateError, match=r"1 reference row\(s\) have no feature in the file: 'k/I03'"):
        match_by_stem(["I01.png", "I02.png"], ids, paths, where="w")
    with pytest.raises(CurateError, match=r"match several reference rows: 'a.png' \('x/a', 'y/a'\)"):
        match_by_stem(["a.png"], ["x/a", "y/a"], ["x/a.png", "y/a.jpg"], where="w")


# ---- the verb -------------------------------------------------------------------------------


def unit(v):
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    return v / np.linalg.norm(v)


def test_ingest_writes_embeddings_and_the_file_order(release):
    result = run_ingest(release)
    assert result.exit_code == 0, result.output
    out = release["out"]
    train = EmbeddingsFolder(out / "train").load()
    pool = EmbeddingsFolder(out / "pool").load()
    assert train.ids.tolist() == sorted(f"kadid/{r}" for r in release["train"])
    assert pool.ids.tolist() == sorted(f"pool/{c}" for c in release["candidates"])
    for ids, vectors, source, prefix in ((train.ids, train.vectors, release["train"], "kadid/"),
                                         (pool.ids, pool.vectors, release["candidates"], "pool/")):
        for sid, vec in zip(ids, vectors, strict=True):
            np.testing.assert_allclose(vec, unit(source[sid.removeprefix(prefix)]), rtol=0, atol=1e-7)
    same_encoder(train, pool)  # one identity: usable together
    encoder = train.encoder
    assert encoder["name"] == "syndr-refset" and encoder["model"] == "resnet50"
    assert set(encoder["weights"]["files"]) == {"train_ref.pkl", "additional_ref.pkl"}
    meta = read_metadata(next((out / "train").glob("part-*.parquet")))
    assert meta["dim"] == DIM and meta["corpus"]["samples"] == len(TRAIN_NAMES)
    assert "refset" in meta["inputs"] and "corpus" in meta["inputs"]
    assert (out / "train" / "rejects.parquet").is_file()
    lines = (out / "candidate_order.txt").read_text().splitlines()
    assert lines[0].startswith("# candidate order of additional_ref.pkl (sha256 ")
    assert lines[1:] == [n.removesuffix(".png") for n in CANDIDATE_NAMES]  # the pool's ref_ids, in file order
    cand_ref_ids = sorted(release["candidates"])
    order = read_candidate_order(out / "candidate_order.txt", cand_ref_ids, [f"{r}.png" for r in cand_ref_ids])
    assert [cand_ref_ids[c] for c in order.order] == lines[1:]
    assert "5 candidate references" in result.output


def test_ingest_is_deterministic_and_validates(release):
    assert run_ingest(release).exit_code == 0
    first = {p.relative_to(release["out"]): p.read_bytes() for p in release["out"].rglob("*") if p.is_file()}
    assert run_ingest(release).exit_code == 0
    again = {p.relative_to(release["out"]): p.read_bytes() for p in release["out"].rglob("*") if p.is_file()}
    assert first == again
    for folder in ("train", "pool"):
        check = CliRunner().invoke(cli, ["validate", str(release["out"] / folder)])
        assert check.exit_code == 0 and "syndr-refset (resnet50)" in check.output


@pytest.mark.parametrize("names, message", [
    ([*CANDIDATE_NAMES, "zebra-1.png"], r"additional_ref\.pkl against .*pool\.parquet: 1 name\(s\) match no reference row by file stem: 'zebra-1.png'"),
    ([*CANDIDATE_NAMES, "owl-3.jpg"], r"1 reference row\(s\) matched by several names: 'pool/owl-3' \('owl-3.png', 'owl-3.jpg'\)"),
    (CANDIDATE_NAMES[:-1], r"1 reference row\(s\) have no feature in the file: 'pool/pico-37'"),
])
def test_unmatched_or_twice_matched_names_are_refused(release, names, message):
    write_pickle(release["refset"] / "additional_ref.pkl", (list(names), features(len(names), 5)))
    result = run_ingest(release)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert re.search(message, result.stderr), result.stderr
    assert not release["out"].exists() or not any(release["out"].rglob("part-*.parquet"))


def test_refused_pickle_fails_the_verb_in_one_line(release):
    marker = release["out"].parent / "ran"
    write_pickle(release["refset"] / "train_ref.pkl", (TRAIN_NAMES, [RunsCommand(f"touch {shlex.quote(str(marker))}")]))
    result = run_ingest(release)
    assert result.exit_code == 1 and "refused to unpickle" in result.stderr and "train_ref.pkl" in result.stderr
    assert result.stderr.count("\n") == 1 and not marker.exists()


def test_a_folder_of_other_embeddings_is_not_overwritten(release):
    from reshape_helpers import write_embeddings

    other = write_embeddings(release["out"] / "pool", ["pool/owl-3"], np.eye(1, 4, dtype=np.float32))
    before = (other / "part-00000.parquet").read_bytes()
    result = run_ingest(release)
    assert result.exit_code == 1 and "different encoder" in result.stderr
    assert (other / "part-00000.parquet").read_bytes() == before
    assert not (release["out"] / "train").exists()  # checked before anything is written


def test_a_concurrent_run_is_refused(release):
    with folder_lock(release["out"], "ingest-refset"):
        result = run_ingest(release)
    assert result.exit_code == 1 and "another run" in result.stderr and ".curate.lock" in result.stderr
    assert not any(release["out"].rglob("part-*.parquet"))


def test_a_refused_name_with_a_newline_stays_on_one_line(tmp_path):
    # STACK_GLOBAL takes any two strings: a module name may hold a newline
    data = b"\x80\x04\x8c\x08evil\nmod\x94\x8c\x06system\x94\x93\x94."
    path = tmp_path / "r.pkl"
    path.write_bytes(data)
    with pytest.raises(RefusedPickle, match=r"refused to unpickle 'evil\\nmod.system'") as info:
        load_refset_pickle(path)
    assert "\n" not in str(info.value)
