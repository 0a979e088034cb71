"""Errors that the CLI turns into a one-line message and exit code 1 (2 for :class:`UsageError`), and warnings."""


class CurateError(Exception):
    """A failure the user can act on. The message names the file, row or option at fault."""


class UsageError(CurateError):
    """An option value that the inputs show to be wrong (e.g. a ``--root`` source the table lacks): exit 2."""


class ParamError(UsageError):
    """A parameter is out of its range or not one of its choices (the CLI exits 2: a usage error)."""


class TableError(CurateError):
    """A table (corpus, embeddings, manifest, decisions) is malformed or does not fit."""


class OutputError(CurateError, OSError):
    """An output cannot be written where asked (no permission, read-only, disk full).

    Also an ``OSError``, so code that records failed writes (as rejects) still catches it.
    """


class ImageError(CurateError):
    """One image cannot be used; callers record it as a reject instead of failing the run."""


class WeightsUnavailable(CurateError):
    """Model weights are neither on this machine nor downloadable from here."""


class CurateWarning(UserWarning):
    """Something skipped or doubtful that the user should see; the CLI prints it as ``warning: ...``."""
