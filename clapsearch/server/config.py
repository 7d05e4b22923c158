"""What a server is started with: where, who may connect, and the limits on requests."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@dataclass(frozen=True)
class ServerConfig:
    """`token` None on a loopback host means no token; `with_token()` fills one in where the
    host needs it (module `is_loopback`). Limits bound what one request can cost."""

    index: Path
    model: str | None = None
    device: str = "auto"
    precision: str = "auto"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    max_k: int = 500  # results per query
    max_queries: int = 32  # queries per request
    max_query_chars: int = 2000
    max_upload_bytes: int = 50 << 20
    max_upload_seconds: float = 600.0  # decoded duration of an uploaded clip
    decode_timeout_s: float = 20.0
    max_segment_seconds: float = 600.0  # the segment endpoint's longest span

    @property
    def needs_token(self) -> bool:
        return self.token is not None or not is_loopback(self.host)

    def with_token(self) -> tuple[ServerConfig, bool]:
        """-> (config with a token wherever one is required, whether it was generated)."""
        if self.token is None and not is_loopback(self.host):
            return replace(self, token=secrets.token_urlsafe(24)), True
        return self, False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost` are loopback; anything else (0.0.0.0 included) is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServerConfig", "is_loopback"]
