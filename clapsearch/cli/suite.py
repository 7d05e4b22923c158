"""`clapsearch eval suite`: the MS-CLAP paper's 16 downstream tasks in one command."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from clapsearch.cli.common import DeviceOption, JsonOption, ModelOption, print_json
from clapsearch.cli.eval import (
    BatchOption,
    EvalPrecisionOption,
    OnlyOption,
    WorkersOption,
    eval_app,
)


@eval_app.command("suite")
def suite(
    root: Path = typer.Option(
        ..., "--root", help="Folder holding one subfolder per data set (esc50/, fsd50k/, ...)."
    ),
    tasks: list[str] = typer.Option(
        None, "--tasks", help="Tasks to run, comma-separated or repeated (default: all found)."
    ),
    probe: str = typer.Option(
        "none", "--probe", help="none, l1 (Freeze_L1: one linear layer) or l3 (Freeze_L3)."
    ),
    labels: Path = typer.Option(
        None, "--labels", help="JSON of prompt and label-text overrides per task."
    ),
    exclude_trained: bool = typer.Option(
        False,
        "--exclude-trained",
        help="Leave out the clips the model trained on (needs its trained_on.json).",
    ),
    cache: Path = typer.Option(
        None, "--cache", help="Embedding cache folder (default: the user cache folder)."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Embed everything, cache nothing."),
    only: Path = OnlyOption,
    batch_size: int = BatchOption,
    workers: int = WorkersOption,
    model: str = ModelOption,
    device: str = DeviceOption,
    precision: str = EvalPrecisionOption,
    as_json: bool = JsonOption,
) -> None:
    """Zero-shot (and with --probe, supervised on frozen embeddings) on every task found.

    Each task's data sits in ROOT/<task folder> in its official layout (docs/benchmarks.md
    lists them); the table prints the paper's zero-shot figures and chance beside ours, the
    JSON adds per-fold numbers. Clip embeddings are cached per model and file content.
    """
    from clapsearch.datasets import read_name_list
    from clapsearch.errors import UsageError
    from clapsearch.eval.suite import report, runner
    from clapsearch.eval.suite.cache import EmbeddingCache, default_cache_dir, model_key
    from clapsearch.eval.suite.probe import PROBES, ProbeConfig
    from clapsearch.eval.suite.tasks import apply_overrides, select_tasks
    from clapsearch.sources import load_embedder
    from clapsearch.training_record import model_folder, read_training_hashes

    if probe not in ("none", *PROBES):
        raise UsageError(f"--probe is none, l1 or l3, not {probe!r}.")
    if not root.is_dir():
        raise UsageError(f"suite root {root} is not a directory.")
    chosen = select_tasks(tasks)
    if labels is not None:
        chosen = apply_overrides(chosen, labels)
    names = read_name_list(only) if only is not None else None
    embedder = load_embedder(model, device=device, precision=precision)
    training = read_training_hashes(model_folder(embedder))
    store = None
    if not no_cache:
        store = EmbeddingCache(cache or default_cache_dir(), model_key(embedder), embedder.dim)
    try:
        result = runner.run_suite(
            root,
            chosen,
            embedder,
            explicit=bool(tasks),
            probe_config=ProbeConfig(layers=PROBES[probe]) if probe != "none" else None,
            cache=store,
            training_hashes=training,
            exclude_trained=exclude_trained,
            only=names,
            batch_size=batch_size,
            workers=workers,
            progress=sys.stderr.isatty(),
        )
    finally:
        if store is not None:
            store.close()
    if as_json:
        print_json(report.to_json(result))
    else:
        typer.echo(report.markdown(result))
    if not result.results:
        reasons = "; ".join(result.skipped.values())
        raise UsageError(
            f"no task ran under {root}"
            + (f": {reasons}" if reasons else " (no data set folder found).")
        )
