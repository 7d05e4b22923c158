"""`clapsearch doctor`: check an index (database, ANN cache, the files it names) and say what is
wrong in sentences; `--repair` rebuilds what can be rebuilt without re-embedding (a thin layer
over `indexer.doctor`)."""

from __future__ import annotations

from pathlib import Path

import typer

from clapsearch.cli.app import app
from clapsearch.cli.common import JsonOption
from clapsearch.cli.index import IndexOption, storage_errors
from clapsearch.textsafe import shown


@app.command()
def doctor(
    index_path: Path = IndexOption,
    repair: bool = typer.Option(
        False,
        "--repair",
        help="Rebuild what can be rebuilt without re-embedding: damaged SQLite indexes, the "
        "readable rows of a damaged database (files that lost data are left for the next "
        "`clapsearch index` to re-embed), the ANN cache; remove leftovers of killed runs.",
    ),
    files: bool = typer.Option(
        True, "--files/--no-files", help="Also check that every indexed file is still on disk."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Check an index: SQLite's integrity check and every stored vector, the ANN cache
    (checksums, the database it was built from, a sample of its vectors against the stored
    ones), the files on disk. Exit code 0 when nothing is wrong (after --repair: nothing is
    left wrong), 1 otherwise."""
    from indexer.doctor import check
    from indexer.doctor import repair as run_repair

    where = str(index_path) if index_path else None
    with storage_errors(index_path):
        report = run_repair(where, files=files) if repair else check(where, files=files)
    if as_json:
        from clapsearch.cli.common import print_json

        print_json(report.to_json())
    else:
        typer.echo(f"index {shown(report.index_dir)}")
        for f in report.findings:
            tag = "repaired" if f.repaired else f.severity
            hint = " (--repair fixes it)" if f.repairable and not f.repaired and not repair else ""
            typer.echo(f"{tag:>8}  {f.part}: {shown(f.message)}{hint}")
        n = len(report.problems)
        typer.echo("healthy." if not n else f"{n} problem{'s' * (n != 1)} left.")
    if report.problems:
        raise typer.Exit(1)
