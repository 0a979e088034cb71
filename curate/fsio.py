"""File-system helpers shared by every step: atomic writes, folder locks, fingerprints, the command line.

Every output goes through :func:`atomic_path`, so a killed run leaves at most a hidden temporary
file, never a file under the final name that looks complete. A step that writes many files into
one folder (``embed``, ``synthesize``) holds :func:`folder_lock` on it, so a second run into the
same folder is refused, and removes the temporaries a killed run left there
(:func:`remove_stale_temporaries`) once it holds the lock.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from curate.errors import CurateError, OutputError

# Files up to this size are fingerprinted by content; larger ones by size and mtime.
SHA256_LIMIT_BYTES = 64 * 1024 * 1024

_command_line: list[str] | None = None


def set_command_line(argv: Sequence[str] | None) -> None:
    """Record the command line of this invocation (the CLI calls this once)."""
    global _command_line
    _command_line = None if argv is None else ["curate", *argv]


def command_line() -> list[str]:
    """The command line recorded in output metadata."""
    if _command_line is not None:
        return list(_command_line)
    return ["curate", *sys.argv[1:]]


# The lock file every writing step takes in its output folder (one name, so two different steps
# into one folder also exclude each other).
LOCK_NAME = ".curate.lock"
_TEMPORARY_GLOB = ".*.tmp-*"


def temporary_name(path: Path) -> Path:
    """Hidden sibling name used while ``path`` is being written."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], verb: str) -> Iterator[Path]:
    """Hold the folder's lock file (``.curate.lock``) while ``curate VERB`` writes into ``folder``.

    A second run into the same folder, of any verb, is refused at once with a
    :class:`~curate.errors.CurateError` naming the lock file and the run holding it. The lock is a
    POSIX advisory lock (``flock``): the system releases it when its process ends, however it
    ends, so a killed run never leaves the folder locked. Where ``fcntl`` does not exist there is
    no lock (atomic writes still protect each file). Yields the lock file's path.
    """
    out = Path(folder)
    lock = out / LOCK_NAME
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a+")  # closed below
    except OSError as exc:
        raise OutputError(f"{out}: cannot write into this folder ({_reason(exc)})") from None
    try:
        import fcntl
    except ImportError:  # not POSIX
        with handle:
            yield lock
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "curate"
            raise CurateError(
                f"{out}: another run ({holder}) is writing to this folder and holds its lock {lock}; "
                "wait for it to finish or write to another folder"
            ) from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"curate {verb}, pid {os.getpid()}\n")
            handle.flush()
            yield lock
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> int:
    """Remove the hidden temporaries (``.NAME.tmp-PID``) a killed run left in ``folder``.

    Call it only while holding :func:`folder_lock` on ``folder``: then no other run is writing
    there, and every temporary is a leftover. Returns how many were removed.
    """
    removed = 0
    for stale in Path(folder).glob(_TEMPORARY_GLOB):
        with contextlib.suppress(OSError):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink()
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    The temporary file is fsynced before the rename. On any exception it is removed and the final
    name is left untouched.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{final}: cannot create its folder ({_reason(exc)})") from None
    tmp = temporary_name(final)
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
            # Name the output the user asked for, not the temporary name it was being written under.
            raise OutputError(f"{final}: cannot write it ({_reason(exc)})") from None
        raise


# Failures of the place being written to (not of the data being written).
_WRITE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT})


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)
@contextlib.contextmanager
def atomic_folder(final: str | os.PathLike[str], *, check: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a fresh hidden folder beside ``final``; when the block succeeds, swap it into place.

    An existing ``final`` (which ``check``, if given, must accept: it raises to refuse) is moved
    aside and removed only once the new folder has taken its name, so a killed run leaves either
    the old folder or the new one, never a half-written one under the final name. On any exception
    the temporary folder is removed.
    """
    import shutil

    final = Path(final)
    tmp = temporary_name(final)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if final.exists():
            if check is not None:
                check(final)
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            try:
                os.replace(tmp, final)
            except BaseException:
                os.replace(old, final)
                raise
            with contextlib.suppress(OSError):
                shutil.rmtree(old)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(path: str | os.PathLike[str]) -> dict[str, object]:
    """Identify an input file: sha256 when small enough, else size and mtime.

    For a directory, the fingerprints of its files (sorted by relative name) are hashed together.
    """
    p = Path(path)
    if p.is_dir():
        digest = hashlib.sha256()
        count = 0
        for child in sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".")):
            digest.update(str(child.relative_to(p)).encode())
            digest.update(repr(sorted(fingerprint(child).items())).encode())
            count += 1
        return {"kind": "dir", "files": count, "sha256": digest.hexdigest()}
    stat = p.stat()
    if stat.st_size <= SHA256_LIMIT_BYTES:
        return {"kind": "file", "size": stat.st_size, "sha256": sha256_file(p)}
    return {"kind": "file", "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def safe_relative_path(relative: str, *, what: str = "path") -> str:
    """Normalise a path stored relative to a root; refuse absolute paths and ``..`` escapes.

    Returns the POSIX form. Raises ``ValueError`` with a message naming the path.
    """
    if relative is None or relative == "":
        raise ValueError(f"{what} is empty")
    text = str(relative).replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise ValueError(f"{what} {relative!r} is absolute; it must be relative to the root")
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ValueError(f"{what} {relative!r} escapes the root")
            parts.pop()
            continue
        parts.append(part)
    if not parts:
        raise ValueError(f"{what} {relative!r} names the root itself")
    return "/".join(parts)
