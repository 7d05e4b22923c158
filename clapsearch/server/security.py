"""Who may talk to the server, the headers every answer carries, and errors as one sentence.

`Guard` is a plain ASGI middleware (no per-request task or body buffering, so it costs
microseconds), applied to every request before any route:

1. Host: the `Host` header must name this server (127.0.0.1, localhost or [::1] on a loopback
   bind, or the `--host` given). A page on another site that rebinds its DNS name to
   127.0.0.1 sends its own name and is refused, so it cannot read the API.
2. Origin: a request carrying an `Origin` other than this server's own is refused (browsers
   send it on cross-site requests), so another site cannot make a user's browser search,
   upload or read here. There are no CORS headers at all.
3. Token, when one is required (any non-loopback bind, or `--token`): `Authorization: Bearer
   T`, the `clapsearch_token` cookie, or `?token=T` in the URL. A page opened with `?token=T`
   gets the cookie (HttpOnly, SameSite=Strict), so its audio elements and fetches need no
   token in their URLs. Compared in constant time.
4. Every answer gets a `Server-Timing: app;dur=<ms>` header (time in the server until the
   answer starts: benchmarks tell server time from transport), and a Content-Security-Policy allowing only this origin (no inline script,
   no external anything), nosniff, no referrer, no framing.

Errors (`install_error_handlers`): library and server errors become their status
(`errors.status_for`) with `{"error": "<one sentence>"}`; invalid parameters and malformed
JSON are 422 with a sentence naming the parameter; unknown routes 404. An unexpected exception
is logged with its traceback on the server and answered 500 with one sentence, no traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from clapsearch.server.config import ServerConfig, is_loopback

log = logging.getLogger("clapsearch.server")

COOKIE = "clapsearch_token"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def allowed_hosts(config: ServerConfig) -> set[str] | None:
    """Host names (without port) this server answers for; None = any (a wildcard bind,
    which always requires a token)."""
    if config.host in ("0.0.0.0", "::", ""):
        return None
    names = {config.host.lower(), f"[{config.host.lower()}]"}
    if is_loopback(config.host):
        names |= {"127.0.0.1", "localhost", "[::1]"}
    return names


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    def __init__(self, app, config: ServerConfig):
        self.app = app
        self.token = config.token if config.needs_token else None
        self.hosts = allowed_hosts(config)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        set_cookie = None
        if self.hosts is not None and _host_name(host) not in self.hosts:
            return await _deny(send, 403, f"This server does not answer for the host {host!r}.")
        origin = headers.get("origin")
        if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
            return await _deny(send, 403, "Requests from other sites are refused.")
        if self.token is not None:
            given, from_query = _token_of(scope, headers)
            if given is None:
                return await _deny(
                    send, 401, "This server needs a token: add ?token=... to the URL."
                )
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return await _deny(send, 401, "The token is wrong.")
            if from_query:
                set_cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode(
                    "latin-1"
                )

        started = time.perf_counter()

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                extra = list(SECURITY_HEADERS)
                took = (time.perf_counter() - started) * 1e3
                extra.append((b"server-timing", f"app;dur={took:.2f}".encode()))
                if set_cookie is not None:
                    extra.append((b"set-cookie", set_cookie))
                message = dict(message, headers=list(message.get("headers", [])) + extra)
            await send(message)

        return await self.app(scope, receive, send_with_headers)


def _token_of(scope, headers: dict[str, str]) -> tuple[str | None, bool]:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    cookie = headers.get("cookie")
    if cookie:
        jar = SimpleCookie()
        try:
            jar.load(cookie)
        except Exception:  # noqa: BLE001 - a malformed cookie header is no token
            jar = SimpleCookie()
        if COOKIE in jar:
            return jar[COOKIE].value, False
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if "token" in query:
        return query["token"][0], True
    return None, False


async def _deny(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_error_handlers(app) -> None:
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    from clapsearch.errors import ClapsearchError
    from clapsearch.server.errors import status_for

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(ClapsearchError)
    async def _library(request, err: ClapsearchError):
        return error(status_for(err), str(err))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, err: RequestValidationError):
        return error(422, validation_sentence(err.errors()))

    @app.exception_handler(HTTPException)
    async def _http(request, err: HTTPException):
        if err.status_code == 404:
            return error(404, f"No such endpoint: {request.url.path}.")
        if err.status_code == 405:
            return error(405, f"{request.method} is not allowed on {request.url.path}.")
        return error(err.status_code, str(err.detail).rstrip(".") + ".")

    @app.exception_handler(Exception)
    async def _bug(request, err: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(500, "The server hit an unexpected error; its log has the details.")


def validation_sentence(errors) -> str:
    """FastAPI's validation errors -> one sentence about the first one."""
    if not errors:
        return "The request is invalid."
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON."
    where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    msg = str(first.get("msg") or "Invalid").rstrip(".")
    msg = msg[0].lower() + msg[1:]
    if not where:
        return f"The request body is invalid: {msg}."
    name = ".".join(where)
    if first.get("type") == "missing":
        return f"The parameter {name} is required."
    return f"Invalid {name}: {msg}."


__all__ = ["COOKIE", "Guard", "allowed_hosts", "install_error_handlers", "validation_sentence"]
