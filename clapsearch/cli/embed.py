"""`clapsearch embed`: audio files or texts -> embeddings as .npy or JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from clapsearch.cli.app import app
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
    inputs: list[str] = typer.Argument(
        None,
        help="The audio files (with --audio) or texts (with --text) to embed, in order.",
        show_default=False,
    ),
    audio_mode: bool = typer.Option(
        False, "--audio", "-a", help="Embed audio files: `--audio a.wav b.flac ...`."
    ),
    text_mode: bool = typer.Option(
        False, "--text", "-t", help='Embed texts: `--text "a dog" "rain on a roof" ...`.'
    ),
    output: Path = typer.Option(None, "-o", "--output", help="Write an (N, d) float32 .npy here."),
    model: str = ModelOption,
    device: str = DeviceOption,
    precision: str = PrecisionOption,
    as_json: bool = JsonOption,
) -> None:
    """Embed audio files or texts into the model's shared space (L2-normalised float32).

    Rows follow input order. A clip longer than the model's window is embedded as the mean of
    its windows (fusion models: their own fusion input). Without --json, -o FILE.npy is
    required. `--audio a.wav --audio b.wav` (the flag repeated) works too.
    """
    if audio_mode == text_mode:
        fail("give either --audio FILE... or --text TEXT..., not both or neither.", 2)
    if not inputs:
        what = "audio files" if audio_mode else "texts"
        fail(f"no {what} given: list them after the flag.", 2)
    if not as_json and output is None:
        fail("give -o FILE.npy to write the embeddings, or --json to print them.", 2)
    audio = inputs if audio_mode else []
    text = inputs if text_mode else []

    from clapsearch.embedding_io import embed_inputs

    inputs, vectors, model_id = embed_inputs(
        audio=list(audio),
        texts=list(text),
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
