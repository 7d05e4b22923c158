"""`<index dir>/server.json`: how other clapsearch commands find a server running on an index.

Written when the server is listening, removed when it stops (only by the process that wrote
it: a second server on the same index replaces it, and the first one's exit leaves the second
one's file alone). Contents:

    {"version": 1, "url": "http://127.0.0.1:8765/", "host": "127.0.0.1", "port": 8765,
     "pid": 1234, "token_required": false, "token": "..." (only when one is required),
     "index": "/abs/index", "model": "<identity>", "model_name": "default",
     "started_at": 1700000000.0}

(`model_name` is what the model loads by: `clapsearch classify` uses the server only when it
would load the same model.)

The file is created with mode 0600 (owner only) because it may hold the token, and written
atomically (temporary sibling, fsync, rename): a reader sees the old file, the new one or
none, never half of one. A reader must check that `pid` is alive (a server killed with
SIGKILL cannot remove it) and may then call `GET /api/health`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from clapsearch.atomic import atomic_open
from clapsearch.server.config import ServerConfig

FILE_NAME = "server.json"
VERSION = 1


def discovery_path(index_dir: str | os.PathLike) -> Path:
    return Path(index_dir) / FILE_NAME


def write(config: ServerConfig, model: str, model_name: str = "") -> Path | None:
    """Write the file (module doc); None when the index folder is not writable."""
    payload = {
        "version": VERSION,
        "url": config.url,
        "host": config.host,
        "port": config.port,
        "pid": os.getpid(),
        "token_required": config.needs_token,
        "index": str(config.index),
        "model": model,
        "model_name": model_name,
        "started_at": time.time(),
    }
    if config.needs_token:
        payload["token"] = config.token
    path = discovery_path(config.index)
    try:
        with atomic_open(path, "w") as fh:  # a mkstemp file: 0600 from its creation
            os.fchmod(fh.fileno(), 0o600)
            json.dump(payload, fh)
    except OSError:
        return None
    return path


def read(index_dir: str | os.PathLike) -> dict | None:
    """The file's contents when it names a live process, else None."""
    try:
        payload = json.loads(discovery_path(index_dir).read_text("utf-8"))
        os.kill(int(payload["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return payload


def remove(index_dir: str | os.PathLike) -> None:
    """Remove the file if this process wrote it."""
    path = discovery_path(index_dir)
    try:
        if json.loads(path.read_text("utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


__all__ = ["FILE_NAME", "discovery_path", "read", "remove", "write"]
