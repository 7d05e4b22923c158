"""`clapsearch embed`: audio files or texts -> embeddings as .npy or JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from clapsearch.cli import app
from clapsearch.cli.common import (
    DeviceOption,
    JsonOption,
    ModelOption,
    PrecisionOption,
    fail,
    print_json,
)


@app.command()
def embed(
    audio: list[Path] = typer.Option(None, "--audio", "-a", help="Audio file(s) to embed."),
    text: list[str] = typer.Option(None, "--text", "-t", help="Text(s) to embed."),
    output: Path = typer.Option(None, "-o", "--output", help="Write an (N, d) float32 .npy here."),
    model: str = ModelOption,
    device: str = DeviceOption,
    precision: str = PrecisionOption,
    as_json: bool = JsonOption,
) -> None:
    """Embed audio files or texts into the model's shared space (L2-normalised float32).

    Rows follow input order. A clip longer than the model's window is embedded as the mean of
    its windows (fusion models: their own fusion input). Without --json, -o FILE.npy is required.
    """
    if bool(audio) == bool(text):
        fail("give either --audio FILE... or --text TEXT..., not both or neither.", 2)
    if not as_json and output is None:
        fail("give -o FILE.npy to write the embeddings, or --json to print them.", 2)

    from clapsearch.embedding_io import embed_inputs

    inputs, vectors, model_id = embed_inputs(
        audio=[str(p) for p in audio or []],
        texts=list(text or []),
        model=model,
        device=device,
        precision=precision,
    )
    if output is not None:
        from clapsearch.embedding_io import save_npy

        save_npy(output, vectors)
    if as_json:
        print_json(
            {
                "model": model_id,
                "dim": int(vectors.shape[1]),
                "items": [
                    {"input": name, "embedding": [float(x) for x in row]}
                    for name, row in zip(inputs, vectors)
                ],
            }
        )
    else:
        typer.echo(
            f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {output}", err=True
        )
