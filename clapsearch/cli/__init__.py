"""The `clapsearch` command: a thin typer layer over the library.

Each command lives in its own module and registers itself on `app`; heavy imports (torch,
transformers, faiss) happen inside the command functions so `--help` stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="clapsearch",
    help="Search sound libraries by describing them, with CLAP audio-text embeddings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _print_version(value: bool) -> None:
    if value:
        from clapsearch import __version__

        typer.echo(f"clapsearch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print the clapsearch version and exit.",
    ),
) -> None:
    """Search sound libraries by describing them, with CLAP audio-text embeddings."""


# Command modules register on `app` at import; keep each one's top-level imports light.
# fmt: off
from clapsearch.cli import embed  # noqa: E402,F401
from clapsearch.cli import eval  # noqa: E402,F401
from clapsearch.cli import suite  # noqa: E402,F401
from clapsearch.cli import classify, query  # noqa: E402,F401
from clapsearch.cli import index  # noqa: E402,F401
from clapsearch.cli import remove  # noqa: E402,F401
from clapsearch.cli import train  # noqa: E402,F401
# fmt: on


def main() -> None:
    from clapsearch.cli.common import run_app

    run_app(app)
