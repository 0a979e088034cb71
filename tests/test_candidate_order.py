"""The candidate order file: names resolved to pool candidates, bad lists refused with their names."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from curate.errors import CurateError
from curate.reshape.candidate_order import (
    format_candidate_order,
    parse_candidate_order,
    read_candidate_order,
    write_candidate_order,
)

# candidates as the pipeline holds them: sorted by sample_id, with ref_id and reference path
REF_IDS = ["pool_refs/beach-1230729", "pool_refs/flowers-956716", "pool_refs/pico-375871", "pool_refs/sea-1132262"]
PATHS = ["beach-1230729.png", "flowers-956716.png", "pico-375871.png", "sea-1132262.png"]


def test_ref_ids_file_names_and_stems_are_accepted():
    lines = ["# the release's order", "sea-1132262", "", "  pool_refs/beach-1230729  ", "pico-375871.png", "flowers-956716"]
    assert parse_candidate_order(lines, REF_IDS, PATHS).tolist() == [3, 0, 2, 1]


def test_unknown_names_are_refused_with_their_names():
    lines = ["sea-1132262", "beach-1230729", "zebra-1", "pico-375871", "flowers-956716", "owl.png"]
    with pytest.raises(CurateError, match=r"order\.txt: 2 name\(s\) match no pool candidate: 'zebra-1' \(line 3\), 'owl.png' \(line 6\)"):
        parse_candidate_order(lines, REF_IDS, PATHS, where="order.txt")


def test_missing_candidates_are_refused_with_their_names():
    with pytest.raises(CurateError, match=r"2 pool candidate\(s\) are not listed .*'pool_refs/flowers-956716', 'pool_refs/pico-375871'"):
        parse_candidate_order(["sea-1132262", "beach-1230729"], REF_IDS, PATHS)


def test_a_candidate_listed_twice_is_refused():
    lines = ["sea-1132262", "beach-1230729", "pico-375871", "flowers-956716", "beach-1230729.png"]
    with pytest.raises(CurateError, match=r"listed twice: 'beach-1230729.png' \(line 5, candidate 'pool_refs/beach-1230729' already on line 2\)"):
        parse_candidate_order(lines, REF_IDS, PATHS)


def test_an_ambiguous_stem_is_refused_and_a_ref_id_wins():
    ref_ids = ["a/x", "b/x", "x"]
    paths = ["a/x.png", "b/x.jpg", "y.png"]
    # 'x' is the third candidate's ref_id: that is what it means, although two stems are 'x' too
    assert parse_candidate_order(["a/x", "b/x", "x"], ref_ids, paths).tolist() == [0, 1, 2]
    assert parse_candidate_order(["x.png", "b/x", "x"], ref_ids, paths).tolist() == [0, 1, 2]
    with pytest.raises(CurateError, match=r"1 name\(s\) match several pool candidates .*'x' \(line 1: a/x, b/x\)"):
        parse_candidate_order(["x", "a/x", "b/x"], ["a/x", "b/x", "c"], ["a/x.png", "b/x.jpg", "y.png"])
    with pytest.raises(CurateError, match=r"'x.png' \(line 1: a/x, b/x\)"):
        parse_candidate_order(["x.png", "a/x", "b/x"], ["a/x", "b/x", "c"], ["a/x.png", "b/x.png", "y.png"])


def test_file_round_trip_and_fingerprint(tmp_path):
    path = write_candidate_order(tmp_path / "order.txt", REF_IDS[::-1], header="from somewhere")
    order = read_candidate_order(path, REF_IDS, PATHS)
    assert order.order.tolist() == [3, 2, 1, 0] and order.order.dtype == np.int64
    assert order.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert order.metadata() == {"file": "order.txt", "sha256": order.sha256}
    assert path.read_text().splitlines()[0] == "# from somewhere"


def test_unreadable_files_are_refused(tmp_path):
    with pytest.raises(CurateError, match=r"nope\.txt: no such candidate order file"):
        read_candidate_order(tmp_path / "nope.txt", REF_IDS, PATHS)
    bad = tmp_path / "latin.txt"
    bad.write_bytes("é\n".encode("latin-1"))
    with pytest.raises(CurateError, match=r"latin\.txt: not UTF-8 text"):
        read_candidate_order(bad, REF_IDS, PATHS)


@pytest.mark.parametrize("name", ["", " padded", "#comment", "two\nlines"])
def test_names_that_cannot_be_a_line_are_not_written(name):
    with pytest.raises(ValueError, match="cannot be written"):
        format_candidate_order(["ok", name])
