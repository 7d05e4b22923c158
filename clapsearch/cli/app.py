"""The typer application every command registers on (`clapsearch.cli` imports the commands)."""

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
