"""`clapsearch serve`: the web page and REST API over an index (`clapsearch.server`)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from clapsearch.cli.app import app
from clapsearch.cli.common import DeviceOption, ModelOption, PrecisionOption
from clapsearch.errors import ClapsearchError, UsageError

_TOKEN = re.compile(r"^[A-Za-z0-9._~-]{8,256}$")


@app.command()
def serve(
    index: Path = typer.Option(
        None,
        "--index",
        "-i",
        show_default=False,
        help="Index directory (default: $CLAPSEARCH_INDEX, else the user data directory).",
    ),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on. Anything but loopback requires a token (one is generated "
        "and printed when --token is not given).",
    ),
    port: int = typer.Option(8765, "--port", "-p", help="Port (0: any free one).", min=0),
    token: str = typer.Option(
        None,
        "--token",
        envvar="CLAPSEARCH_TOKEN",
        show_default=False,
        help="Require this token (8+ URL-safe characters); $CLAPSEARCH_TOKEN sets it too.",
    ),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in a browser."),
    model: str = ModelOption,
    device: str = DeviceOption,
    precision: str = PrecisionOption,
) -> None:
    """Serve a page to search, browse and listen, and a REST API (docs/api.md), with the
    model loaded once. Binds 127.0.0.1 by default; stops with Ctrl-C."""
    from clapsearch.cli.query import _require_index
    from clapsearch.index.paths import resolve_index_dir

    if port > 65535:
        raise UsageError(f"The port must be at most 65535, not {port}.")
    if token is not None and not _TOKEN.match(token):
        raise UsageError("The token must be 8 to 256 characters from A-Z a-z 0-9 . _ ~ -.")
    _require_index(index)
    sock = _bind(host, port)

    from clapsearch.server.config import ServerConfig

    config = ServerConfig(
        index=resolve_index_dir(index),
        model=model,
        device=device,
        precision=precision,
        host=host,
        port=sock.getsockname()[1],
        token=token,
    )
    config, generated = config.with_token()
    url = config.url + (f"?token={config.token}" if config.token else "")
    typer.echo(f"clapsearch: loading the model for {config.index} ...", err=True)
    _run(config, sock, url, generated, open_browser)


def _bind(host: str, port: int):
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror:
        raise UsageError(f"Cannot listen on {host!r}: not an address of this machine.") from None
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY on accepted connections only
    # when the listening socket says TCP; without it every keep-alive answer written in two
    # parts (headers, body) waited ~40 ms for the client's delayed ACK (Nagle)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(infos[0][4])
    except OSError as err:
        sock.close()
        raise ClapsearchError(
            f"Cannot listen on {host} port {port} ({err.strerror}); pick another with --port."
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _run(config, sock, url: str, generated: bool, open_browser: bool) -> None:
    import uvicorn

    from clapsearch.server.app import create_app

    app_ = create_app(config)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)
            if self.started:
                if generated:
                    typer.echo("clapsearch: a token was generated for this non-loopback host.")
                typer.echo(f"clapsearch: serving {config.index} at {url}", err=False)
                if open_browser:
                    import webbrowser

                    webbrowser.open(url)

    server = Server(uvicorn.Config(app_, log_level="warning", access_log=False, lifespan="on"))
    server.run(sockets=[sock])
    if not server.started:
        raise ClapsearchError("The server could not start; see the messages above.")
