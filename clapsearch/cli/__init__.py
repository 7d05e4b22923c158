"""The `clapsearch` command: a thin typer layer over the library.

Each command lives in its own module and registers itself on `app` (`cli/app.py`) when that
module is imported; heavy imports (torch, transformers, faiss) happen inside the command
functions. `main()` imports only the module(s) of the command on its command line
(`COMMAND_MODULES`), so `clapsearch query ...` does not pay for the dataset registry of `eval`
or the web stack of `serve`; `--help` and anything unrecognised load them all. Code that
drives `app` itself (tests, scripts) calls `load_commands()` first.

A new command is a new module here plus its entry in `COMMAND_MODULES` (a test checks that
every registered command has one).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from clapsearch.cli.app import app

# command name on the command line -> the modules that register it (and its subcommands)
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "index": ("index", "index_distributed"),  # `index merge` / `index shard` (cli/common.py)
    "index-shard": ("index_distributed",),
    "index-merge": ("index_distributed",),
    "status": ("index",),
    "remove": ("remove",),
    "query": ("query",),
    "classify": ("classify",),
    "embed": ("embed",),
    "eval": ("eval", "suite"),
    "train": ("train",),
    "serve": ("serve",),
    "convert": ("convert",),
    "doctor": ("doctor",),
}


def load_commands(argv: Sequence[str] | None = None) -> None:
    """Import the command modules `argv` needs (the first word that is not an option names
    the command), or every command module when `argv` is None or names no known command."""
    name = next((a for a in argv or () if not a.startswith("-")), None)
    wanted = COMMAND_MODULES.get(name) if argv is not None else None
    modules = wanted or sorted({m for ms in COMMAND_MODULES.values() for m in ms})
    for module in modules:
        importlib.import_module(f"clapsearch.cli.{module}")


def main() -> None:
    from clapsearch.cli.interrupts import quiet_until_running

    quiet_until_running()  # Ctrl-C while the command modules import: one line, exit 130
    from clapsearch.cli.common import run_app

    load_commands(sys.argv[1:])
    run_app(app)
