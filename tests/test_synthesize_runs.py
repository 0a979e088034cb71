"""``curate synthesize`` as a process: concurrent runs, killed runs, their workers and leftovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from curate.distort.synthesize import synthesize
from curate.fsio import LOCK_NAME
from curate.schema import read_corpus

# The CLI, with every rename of an image (the moment a finished temporary takes its name) slowed,
# and held for as long as the file HOLD_FILE exists, so a run can be overlapped or killed mid-way.
# Workers are forked and inherit it.
SLOW_CLI = """
import os, sys, time
real_replace = os.replace
def slow_replace(src, dst):
    if str(dst).endswith(".png"):
        time.sleep(float(os.environ["SLOW_RENAME_S"]))
        while os.environ["HOLD_FILE"] and os.path.exists(os.environ["HOLD_FILE"]):
            time.sleep(0.05)
    real_replace(src, dst)
os.replace = slow_replace
from curate.cli import cli
cli.main(sys.argv[1:], prog_name="curate")
"""

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")


@pytest.fixture()
def refs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "refs"
    folder.mkdir()
    for i, which in enumerate(("astronaut", "coffee", "chelsea")):
        Image.fromarray(getattr(data, which)()).resize((40, 32)).save(folder / f"r{i}.png")
    return folder


def _env(slow_rename_s: float = 0.0, hold: Path | None = None) -> dict[str, str]:
    path = os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "SLOW_RENAME_S": str(slow_rename_s), "HOLD_FILE": str(hold or "")}


def _start(args: list[str], slow_rename_s: float = 0.0, hold: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, "synthesize", *args],
        env=_env(slow_rename_s, hold),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition, child: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert child.poll() is None, f"the run ended before {what}: {child.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.png") if not p.name.startswith("."))


def _same_images(a: Path, b: Path) -> None:
    names = [p.name for p in _images(a)]
    assert names == [p.name for p in _images(b)]
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_a_second_run_into_a_busy_folder_is_refused_and_seeds_never_mix(refs_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "syn"
    common = [str(refs_dir), "-o", str(out), "--types", "1,11", "--levels", "1,3"]
    hold = tmp_path / "hold"
    hold.touch()
    first = _start([*common, "--seed", "3"], hold=hold)  # waits at its first rename until released
    try:
        _wait_for(lambda: list(out.glob(".*.png.tmp-*")), first, "the first run was writing an image")
        second = subprocess.run(
            [sys.executable, "-m", "curate", "synthesize", *common, "--seed", "4"],
            env=_env(), capture_output=True, text=True, timeout=120,
        )
        hold.unlink()
        assert first.wait(timeout=120) == 0, first.stderr.read()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert second.returncode == 1
    message = second.stderr.strip()
    assert "\n" not in message and str(out / LOCK_NAME) in message and "curate synthesize" in message
    # Only the first run's seed is in the folder: the same images as a run of seed 3 on its own.
    assert json.loads((out / "synthesis.json").read_text())["seed"] == 3
    assert read_corpus(out / "corpus.parquet")[1]["seed"] == 3
    alone = synthesize(refs_dir, tmp_path / "alone", types=(1, 11), levels=(1, 3), seed=3, quiet=True)
    _same_images(out, alone.out_dir)


def _state(pid: int) -> str | None:
    """The process state letter, or None when the process no longer exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()[0]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@linux_only
def test_killing_the_parent_ends_its_workers(refs_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "syn"
    child = _start([str(refs_dir), "-o", str(out), "--types", "1,2,3,11,13,16", "--workers", "2"], slow_rename_s=0.3)
    try:
        _wait_for(lambda: len(_images(out)) >= 4, child, "4 images were written")
        workers = _children(child.pid)
        assert len(workers) >= 2, workers
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    deadline = time.monotonic() + 15
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.25)
        alive = [pid for pid in workers if _state(pid) not in (None, "Z", "X")]
    for pid in alive:  # do not leave them behind if the test fails
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"workers {alive} still running 15 s after their parent was killed"
    assert not (out / "corpus.parquet").exists()  # a killed run never looks complete


def test_a_killed_single_worker_run_leaves_its_temporary_to_the_next_run(refs_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "syn"
    args = [str(refs_dir), "-o", str(out), "--types", "1,11", "--levels", "1,3", "--seed", "2"]
    hold = tmp_path / "hold"
    hold.touch()
    child = _start(args, hold=hold)
    try:
        # Kill while an image sits under its temporary name (its rename is held).
        _wait_for(lambda: list(out.glob(".*.png.tmp-*")), child, "a temporary appeared")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert list(out.glob(".*.png.tmp-*"))
    rerun = subprocess.run([sys.executable, "-m", "curate", "synthesize", *args], env=_env(),
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]
    alone = synthesize(refs_dir, tmp_path / "alone", types=(1, 11), levels=(1, 3), seed=2, quiet=True)
    _same_images(out, alone.out_dir)
