"""Shared CLI plumbing: options every command takes, error-to-exit-code mapping, JSON output."""

from __future__ import annotations

import sys
from typing import Any

import typer

from clapsearch.textsafe import json_dumps, shown

MODEL_HELP = (
    "Model: a hub id (laion/clap-htsat-unfused, laion/larger_clap_general, ...), a transformers "
    "CLAP directory or a clapsearch checkpoint directory. Default: $CLAPSEARCH_MODEL, else "
    "`default`, the small offline model shipped with clapsearch (docs/model-card.md)."
)
ModelOption = typer.Option(None, "--model", "-m", help=MODEL_HELP, show_default=False)
DeviceOption = typer.Option("auto", "--device", help="auto, cpu or cuda.")
PrecisionOption = typer.Option(
    "auto",
    "--precision",
    help="auto (bf16 on GPU and on CPUs with native bf16, else fp32), fp32, bf16 or fp16.",
)
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")


def fail(message: str, code: int = 1) -> None:
    """Print one sentence on stderr and exit non-zero."""
    typer.echo(f"error: {shown(message)}", err=True)
    raise typer.Exit(code)


def print_json(payload: Any) -> None:
    """One JSON document on a line (`clapsearch.textsafe.json_dumps`: file names that are not
    valid UTF-8 keep their bytes as `\\udcNN` escapes)."""
    sys.stdout.write(json_dumps(payload) + "\n")


def _interrupted(message: str) -> None:
    from clapsearch.cli.interrupts import leaving

    typer.echo(shown(message), err=True)
    leaving()
    sys.exit(130)


# `clapsearch index merge ...` / `index shard ...` read as sub-commands of `index`, whose own
# arguments are folders: they are the commands `index-merge` / `index-shard` (a folder named
# "merge" is still indexed as `clapsearch index ./merge`).
INDEX_SUBCOMMANDS = ("merge", "shard")


def run_app(app: typer.Typer) -> None:
    """Run the typer app; library errors become one sentence and their exit code, Ctrl-C one
    line and 130 (`clapsearch.cli.interrupts`). Messages are printed through `shown`."""
    from clapsearch.cli.interrupts import LINE, running
    from clapsearch.errors import ClapsearchError, Interrupted

    running()
    if len(sys.argv) > 2 and sys.argv[1] == "index" and sys.argv[2] in INDEX_SUBCOMMANDS:
        sys.argv[1:3] = [f"index-{sys.argv[2]}"]
    try:
        # Without standalone mode click *returns* the code of a typer.Exit instead of raising,
        # and typer makes Ctrl-C a silent Exit(130): say it.
        code = app(standalone_mode=False)
        if code == 130:
            _interrupted(LINE)
        sys.exit(code if isinstance(code, int) else 0)
    except Interrupted as err:
        _interrupted(str(err))
    except ClapsearchError as err:
        typer.echo(f"error: {shown(err)}", err=True)
        sys.exit(err.exit_code)
    except typer.Exit as ex:
        if ex.exit_code == 130 and isinstance(ex.__cause__, KeyboardInterrupt):
            _interrupted(LINE)  # typer's own handling of Ctrl-C is silent
        sys.exit(ex.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        _interrupted(LINE)
    except Exception as err:
        # Usage errors from typer's (vendored) click arrive here in non-standalone mode.
        if hasattr(err, "show") and isinstance(getattr(err, "exit_code", None), int):
            err.show()
            sys.exit(err.exit_code)
        raise
