"""Typed errors whose message is one sentence a user can act on.

The CLI turns any `ClapsearchError` into that sentence and a non-zero exit code; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class ClapsearchError(Exception):
    """Base class: `str(err)` is the whole user-facing message."""

    exit_code = 1


class AudioDecodeError(ClapsearchError):
    """A file could not be turned into audio samples.

    `reason` is one of REASONS so callers (the indexer's failure table) can group failures.
    """

    REASONS = (
        "empty",
        "truncated",
        "not_audio",
        "unsupported_codec",
        "unreadable",
        "missing",
        "too_long",
    )

    def __init__(self, path: str | Path, reason: str, detail: str = ""):
        if reason not in self.REASONS:
            raise ValueError(f"unknown decode failure reason {reason!r}")
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        text = {
            "empty": "is empty",
            "truncated": "is truncated or corrupt",
            "not_audio": "is not an audio file",
            "unsupported_codec": "uses a codec no installed decoder can read",
            "unreadable": "cannot be read",
            "missing": "does not exist",
            "too_long": "is too long",
        }[reason]
        msg = f"{self.path} {text}"
        super().__init__(msg + (f" ({detail})" if detail else "") + ".")


class ModelLoadError(ClapsearchError):
    """A model could not be found or loaded (missing offline, bad directory, unknown format)."""


class ConfigError(ModelLoadError, ValueError):
    """A config value outside the range clapsearch accepts (a damaged or hostile model config:
    the sizes in it decide how much memory each clip takes)."""


class IndexNotFoundError(ClapsearchError):
    """No index exists at the given location."""


class IndexStorageError(ClapsearchError):
    """The index's files could not be used: `kind` is one of `clapsearch.index.storage.KINDS`
    (permission, disk_full, corrupt, not_a_database, io, busy, unknown); the message names the
    cause and what to do (`clapsearch.index.storage.explain`)."""

    def __init__(self, message: str, kind: str = "unknown"):
        super().__init__(message)
        self.kind = kind


class Interrupted(ClapsearchError):
    """Ctrl-C: the message is the one line the CLI prints (no "error:" prefix)."""

    exit_code = 130


class ModelMismatchError(ClapsearchError):
    """An index built with one model was used with another."""


class UsageError(ClapsearchError):
    """Invalid arguments or input (empty query, unknown option value, non-UTF-8 input)."""

    exit_code = 2


class EmptyIndexError(ClapsearchError):
    """The index exists but holds no searchable audio."""
