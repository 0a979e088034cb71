"""Errors that the CLI turns into a one-line message and exit code 1."""


class CurateError(Exception):
    """A failure the user can act on. The message names the file, row or option at fault."""


class ParamError(CurateError):
    """A parameter is out of its range or not one of its choices (the CLI exits 2: a usage error)."""


class TableError(CurateError):
    """A table (corpus, embeddings, manifest, decisions) is malformed or does not fit."""


class ImageError(CurateError):
    """One image cannot be used; callers record it as a reject instead of failing the run."""


class WeightsUnavailable(CurateError):
    """Model weights are neither on this machine nor downloadable from here."""
