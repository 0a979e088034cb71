"""File-system helpers shared by every step: atomic writes, input fingerprints, the command line.

Every output goes through :func:`atomic_path`, so a killed run leaves at most a hidden temporary
file, never a file under the final name that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

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


def temporary_name(path: Path) -> Path:
    """Hidden sibling name used while ``path`` is being written."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    The temporary file is fsynced before the rename. On any exception it is removed and the final
    name is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(final)
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            if tmp.is_dir():
                import shutil

                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        raise


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
