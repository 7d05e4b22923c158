"""Other commands use a running `clapsearch serve` on the same index: its model is warm, so
`clapsearch query "dog barking"` answers in milliseconds instead of loading torch and a model.

`find(index_dir)` reads the server's discovery file (`discovery.py`: a live pid, the same
index) and returns a `RunningServer`, whose methods call the REST API (docs/api.md) with the
standard library only (urllib, json): using a server costs the CLI no heavy import at all.
Answers are the API's JSON, the same shapes as the CLI's `--json` plus ids.

A server that does not answer (stopped without removing its file, pid reused, busy beyond
`timeout_s`) raises `Unreachable`: callers fall back to doing the work themselves. A server
that answers with an error (a bad query, an unknown file) raises `ServerError` carrying its
one sentence and a CLI exit code (2 for a request the server refused as invalid, else 1).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from clapsearch.errors import ClapsearchError

TIMEOUT_S = 60.0  # a cold first query on a big model may take a while; refusals are instant


class Unreachable(Exception):
    """The server named by the discovery file did not answer: do the work locally."""


class ServerError(ClapsearchError):
    """The server answered with an error: its one sentence."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status
        self.exit_code = 2 if status in (400, 422) else 1


@dataclass(frozen=True)
class RunningServer:
    url: str  # "http://127.0.0.1:8765/"
    token: str | None = None
    model_name: str = ""  # what its model loads by ("default", a path, a hub id)
    timeout_s: float = TIMEOUT_S

    def serves_model(self, name: str) -> bool:
        """Whether the server's model is the one `name` loads (same alias or id, or the same
        folder or file on disk)."""
        if not self.model_name:
            return False
        if name == self.model_name:
            return True
        try:
            return os.path.samefile(name, self.model_name)
        except OSError:
            return False

    def _request(self, method: str, path: str, body: bytes | None, content_type: str) -> Any:
        req = urllib.request.Request(urllib.parse.urljoin(self.url, path), data=body, method=method)
        req.add_header("Accept", "application/json")
        if body is not None:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            try:
                message = json.loads(err.read().decode("utf-8"))["error"]
            except (ValueError, KeyError, TypeError):
                raise Unreachable(f"HTTP {err.code} without a clapsearch answer") from None
            raise ServerError(message, err.code) from None
        except (OSError, ValueError) as err:  # refused, reset, timed out, not JSON
            raise Unreachable(str(err)) from None

    def search(self, texts: list[str], k: int, filters: dict, segments: bool) -> dict:
        """`POST /api/search` -> `{"queries": [{"query", "results"}], "notes": [...]}`."""
        body = {"q": texts, "k": k, "segments": segments, **_present(filters)}
        return self._request("POST", "api/search", json.dumps(body).encode(), "application/json")

    def search_audio(self, path: str, k: int, filters: dict, segments: bool) -> dict:
        """`POST /api/search/audio` with the file's bytes (the server decodes them in a child
        process and never stores them); the query is labelled with `path`."""
        params = {"name": os.path.basename(path)[:255], "k": k, "segments": _flag(segments)}
        query = urllib.parse.urlencode({**params, **_present(filters)})
        with open(path, "rb") as fh:
            data = fh.read()
        return self._request("POST", f"api/search/audio?{query}", data, "application/octet-stream")

    def classify(self, file_id: int, body: dict) -> dict:
        """`POST /api/files/{id}/classify` -> the CLI's classification object."""
        path = f"api/files/{int(file_id)}/classify"
        return self._request("POST", path, json.dumps(body).encode(), "application/json")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _present(filters: dict) -> dict:
    return {k: v for k, v in filters.items() if v is not None}


def find(index_dir: str | os.PathLike) -> RunningServer | None:
    """The server running on `index_dir`, or None (no discovery file, a dead pid, another
    index). Reachability is found out by the first request (`Unreachable`)."""
    from clapsearch.server.discovery import read

    payload = read(index_dir)
    if payload is None:
        return None
    try:
        same = os.path.samefile(payload.get("index", ""), index_dir)
    except OSError:
        same = False
    if not same or not payload.get("url"):
        return None
    return RunningServer(
        str(payload["url"]), payload.get("token"), str(payload.get("model_name") or "")
    )


__all__ = ["RunningServer", "ServerError", "Unreachable", "find"]
