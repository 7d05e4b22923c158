"""Errors a request can end in, each a one-sentence message and an HTTP status.

Library errors keep their own classes (`clapsearch.errors`); `status_for` maps them. Nothing
here ever carries a traceback to the client.
"""

from __future__ import annotations

from clapsearch.errors import (
    AudioDecodeError,
    ClapsearchError,
    EmptyIndexError,
    IndexNotFoundError,
    ModelLoadError,
    ModelMismatchError,
    UsageError,
)


class NotFound(ClapsearchError):
    """No such file id (or route)."""


class FileChanged(ClapsearchError):
    """An indexed file is no longer the one the index recorded (changed, replaced, a symlink
    swapped to elsewhere): it is not served."""


class TooLarge(ClapsearchError):
    """An upload or a requested span over the server's limit."""


class DecodeTimeout(ClapsearchError):
    """An uploaded clip took longer than the decode timeout."""


class Unauthorized(ClapsearchError):
    """A token is required and was missing or wrong."""


class Forbidden(ClapsearchError):
    """A request from another site (Origin) or for a host name this server is not."""


_STATUS: tuple[tuple[type[ClapsearchError], int], ...] = (
    (NotFound, 404),
    (FileChanged, 409),
    (TooLarge, 413),
    (DecodeTimeout, 422),
    (Unauthorized, 401),
    (Forbidden, 403),
    (AudioDecodeError, 422),
    (EmptyIndexError, 409),
    (ModelMismatchError, 409),
    (IndexNotFoundError, 503),
    (ModelLoadError, 503),
    (UsageError, 400),
)


def status_for(err: ClapsearchError) -> int:
    for cls, code in _STATUS:
        if isinstance(err, cls):
            return code
    return 400


__all__ = [
    "DecodeTimeout",
    "FileChanged",
    "Forbidden",
    "NotFound",
    "TooLarge",
    "Unauthorized",
    "status_for",
]
