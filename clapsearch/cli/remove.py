"""`clapsearch remove PATH...`: drop files or whole folders from the index (a thin layer over
`indexer.prune.remove_paths`)."""

from __future__ import annotations

from pathlib import Path

import typer

from clapsearch.cli.app import app
from clapsearch.cli.common import JsonOption
from clapsearch.cli.index import IndexOption, storage_errors


@app.command()
def remove(
    paths: list[Path] = typer.Argument(
        ...,
        help="Files or folders to drop from the index (they may be gone from disk).",
        show_default=False,
    ),
    index_path: Path = IndexOption,
    as_json: bool = JsonOption,
) -> None:
    """Drop files, or every file under folders, from the index; the audio on disk is not
    touched. Use it for folders you no longer want searched or that were deleted; `clapsearch
    index --prune` drops every file that is gone from disk."""
    from indexer.prune import remove_paths

    with storage_errors(index_path):
        summary = remove_paths(str(index_path) if index_path else None, [str(p) for p in paths])
    if as_json:
        from clapsearch.cli.common import print_json

        print_json(summary.to_json())
    else:
        typer.echo(summary.line("removed"), err=True)
