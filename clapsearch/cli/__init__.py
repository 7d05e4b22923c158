"""The `clapsearch` command: a thin typer layer over the library.

Each command lives in its own module and registers itself on `app` (`cli/app.py`); heavy
imports (torch, transformers, faiss) happen inside the command functions so `--help` stays
fast. A new command is a new module here plus its import below.
"""

from __future__ import annotations

from clapsearch.cli.app import app

# Command modules register on `app` at import; keep each one's top-level imports light.
# fmt: off
from clapsearch.cli import embed  # noqa: E402,F401
from clapsearch.cli import eval  # noqa: E402,F401
from clapsearch.cli import suite  # noqa: E402,F401
from clapsearch.cli import classify, query  # noqa: E402,F401
from clapsearch.cli import index  # noqa: E402,F401
from clapsearch.cli import remove  # noqa: E402,F401
from clapsearch.cli import train  # noqa: E402,F401
from clapsearch.cli import serve  # noqa: E402,F401
# fmt: on


def main() -> None:
    from clapsearch.cli.common import run_app

    run_app(app)
