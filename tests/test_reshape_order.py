"""``reshape --candidate-order``: the release's tie rule through the whole reshape, recorded in its outputs."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from click.testing import CliRunner
from reshape_helpers import make_dataset

from curate.cli import cli
from curate.errors import ParamError
from curate.reshape.params import ReshapeParams
from curate.reshape.upsample import select_candidates
from curate.schema import read_frame, read_metadata


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("order"), seed=1, n_candidates=24)


def run(ds, out, *extra):
    args = ["reshape", "--corpus", str(ds.corpus), "--embeddings", str(ds.embeddings), "--pool", str(ds.pool),
            "--pool-embeddings", str(ds.pool_embeddings), "--device", "cpu", "-o", str(out), *extra]
    return CliRunner().invoke(cli, args)


def candidate_decisions(path):
    frame, _ = read_frame(path, "decisions")
    return frame[frame["stage"] == "ddc_select"].set_index("sample_id")


def test_the_order_decides_which_close_candidate_goes_and_is_recorded(ds, tmp_path):
    names = sorted(ds.pool_frame.loc[ds.pool_frame["is_reference"], "ref_id"])  # P000 ... P023
    listed = names[::-1]  # the reverse of the sample_id rule
    order_file = tmp_path / "order.txt"
    order_file.write_text("# the release's file order\n" + "\n".join(f"{n}.png" for n in listed) + "\n")

    assert run(ds, tmp_path / "default" / "manifest.parquet").exit_code == 0
    result = run(ds, tmp_path / "ordered" / "manifest.parquet", "--candidate-order", str(order_file))
    assert result.exit_code == 0, result.output
    default = candidate_decisions(tmp_path / "default" / "decisions.parquet")
    ordered = candidate_decisions(tmp_path / "ordered" / "decisions.parquet")

    # the same choice as DDCUp's selection with that order on the same vectors
    cand_ids = [f"pool/{n}" for n in names]
    refs = sorted(s for s in ds.train_vectors if "_" not in s)
    selection = select_candidates(
        np.stack([ds.pool_vectors[c] for c in cand_ids]),
        np.stack([ds.train_vectors[r] for r in refs]),
        order=np.arange(len(names))[::-1].copy(),
        device="cpu",
    )
    assert ordered.loc[cand_ids, "reason"].tolist() == selection.reason.tolist()
    changed = default.loc[cand_ids, "reason"].to_numpy() != ordered.loc[cand_ids, "reason"].to_numpy()
    assert changed.any()  # close pairs lose their other member
    assert (default["reason"] == "ddc_selected").sum() == (ordered["reason"] == "ddc_selected").sum()
    # each candidate's place in the order is in its decision
    assert ordered.loc["pool/P023", "detail"].endswith(";order=1")
    assert ordered.loc["pool/P000", "detail"].endswith(";order=24")
    assert "order=" not in "".join(default["detail"].astype(str))

    meta = read_metadata(tmp_path / "ordered" / "manifest.parquet")
    sha = hashlib.sha256(order_file.read_bytes()).hexdigest()
    assert meta["candidate_order"] == {"file": "order.txt", "sha256": sha}
    assert meta["params"]["candidate_order"] == "order.txt"
    assert meta["inputs"]["candidate_order"]["sha256"] == sha
    assert read_metadata(tmp_path / "ordered" / "decisions.parquet")["candidate_order"]["sha256"] == sha
    plain = read_metadata(tmp_path / "default" / "manifest.parquet")
    assert "candidate_order" not in plain and "candidate_order" not in plain["params"]


def test_missing_and_unknown_names_are_refused(ds, tmp_path):
    names = sorted(ds.pool_frame.loc[ds.pool_frame["is_reference"], "ref_id"])
    short = tmp_path / "short.txt"
    short.write_text("\n".join(names[:-2]) + "\n")
    result = run(ds, tmp_path / "m.parquet", "--candidate-order", str(short))
    assert result.exit_code == 1 and "2 pool candidate(s) are not listed" in result.output
    assert "'P022'" in result.output and "'P023'" in result.output
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("\n".join([*names, "sea-1132262"]) + "\n")
    result = run(ds, tmp_path / "m.parquet", "--candidate-order", str(unknown))
    assert result.exit_code == 1 and "'sea-1132262' (line 25)" in result.output
    assert not (tmp_path / "m.parquet").exists()


def test_an_order_needs_ddcup_s_selection():
    with pytest.raises(ParamError, match="--candidates all selects nothing"):
        ReshapeParams(candidates="all", candidate_order="order.txt")
