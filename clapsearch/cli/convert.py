"""`clapsearch convert SRC DST`: write any loadable model as a self-contained folder."""

from __future__ import annotations

from pathlib import Path

import typer

from clapsearch.cli.app import app
from clapsearch.cli.common import JsonOption, print_json


@app.command()
def convert(
    source: str = typer.Argument(
        ...,
        help="An MS-CLAP .pth, a LAION-CLAP .pt, a transformers CLAP folder or hub id, or a "
        "clapsearch checkpoint.",
    ),
    destination: Path = typer.Argument(..., help="New folder to write."),
    fmt: str = typer.Option(
        "clapsearch",
        "--format",
        help="clapsearch (any source) or transformers (LAION-CLAP HTSAT models only).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Convert a model into a self-contained folder: config, safetensors weights, tokenizer and
    front-end settings, loadable with no package of the original system and no network.

    The tokenizer of a source without one (MS-CLAP and LAION files) must be installed offline
    (bert-base-uncased, gpt2 or roberta-base in the Hugging Face cache)."""
    from clapsearch.convert import convert as run

    result = run(source, destination, fmt)
    if as_json:
        print_json(result.to_json())
    else:
        typer.echo(f"wrote {result.format} checkpoint {result.destination} ({result.kind})")
