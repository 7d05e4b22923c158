"""`clapsearch train`: contrastive training of a clapsearch model from a config file."""

from __future__ import annotations

from pathlib import Path

import typer

from clapsearch.cli.app import app
from clapsearch.cli.common import JsonOption, fail, print_json


@app.command()
def train(
    config: Path = typer.Option(..., "--config", "-c", help="Training config (YAML or JSON)."),
    overrides: list[str] = typer.Option(
        None, "--set", help="Override one setting: --set optim.lr=3e-4 (repeatable)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT_DIR/last exactly."),
    override: bool = typer.Option(
        False,
        "--override",
        help="With --resume: continue with the settings given now where they differ from "
        "the saved run's (learning rate, batch size, epochs, ...).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Train a CLAP model; writes OUTPUT_DIR/best and OUTPUT_DIR/last (both usable with --model).

    Several processes: torchrun --nproc_per_node=N -m trainer --config FILE (same options).
    """
    from dataclasses import asdict

    from trainer import load_train_config
    from trainer import train as run_training

    if override and not resume:
        fail("--override only applies with --resume.", 2)
    result = run_training(
        load_train_config(config, list(overrides or [])), resume=resume, override=override
    )
    if as_json:
        print_json(asdict(result))
        return
    out = Path(result.output_dir)
    typer.echo(
        f"trained {result.steps} steps ({result.samples_seen} samples, "
        f"{result.samples_per_s:.1f} samples/s) -> {out / 'last'}"
    )
    if result.best_step >= 0:
        typer.echo(
            f"best validation score {result.best_score:.4f} at step {result.best_step} -> {out / 'best'}"
        )
