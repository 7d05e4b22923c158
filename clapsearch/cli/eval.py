"""`clapsearch eval retrieval|zeroshot`: score a model on the standard benchmarks."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from clapsearch.cli.app import app
from clapsearch.cli.common import (
    DeviceOption,
    JsonOption,
    ModelOption,
    print_json,
)
from clapsearch.datasets import layout_names
from clapsearch.prompts import DEFAULT_TEMPLATE

eval_app = typer.Typer(
    help="Score a model on retrieval (Clotho, AudioCaps, manifests) and zero-shot benchmarks.",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")


# Every registered layout (`clapsearch.datasets`), so a new reader shows up here by itself.
RetrievalDataset = Enum(
    "RetrievalDataset", {n: n for n in layout_names("retrieval")}, type=str, module=__name__
)
ZeroShotDataset = Enum(
    "ZeroShotDataset", {n: n for n in layout_names("classification")}, type=str, module=__name__
)


BatchOption = typer.Option(32, "--batch-size", min=1, help="Clips decoded and embedded per step.")
OnlyOption = typer.Option(
    None,
    "--only",
    help="Score only the clips whose file names are listed in this file, one per line "
    "(e.g. a held-out split).",
)
# fp32 by default, unlike the other commands' `auto`: benchmark numbers must not depend on
# whether this CPU has bf16 units (bf16 moved 2 of 101 held-out ESC-50 predictions here).
EvalPrecisionOption = typer.Option(
    "fp32", "--precision", help="fp32 (default, comparable across machines), bf16, fp16 or auto."
)
WorkersOption = typer.Option(
    None, "--workers", min=1, help="Decoding threads (default: up to 4, the CPU count)."
)


@eval_app.command("retrieval")
def retrieval(
    dataset: RetrievalDataset = typer.Option(..., "--dataset", help="Benchmark layout."),
    root: Path = typer.Option(None, "--root", help="Dataset folder (clotho, audiocaps)."),
    split: str = typer.Option(
        None, "--split", help="Split (default: evaluation for clotho, test for audiocaps)."
    ),
    manifest: Path = typer.Option(
        None, "--manifest", help="CSV or JSONL of audio paths and captions (--dataset manifest)."
    ),
    audio_pattern: str = typer.Option(
        None,
        "--audio-pattern",
        help="AudioCaps file name pattern, e.g. 'Y{youtube_id}.wav' (default), "
        "'{youtube_id}_{start_time}.wav' or '{youtube_id}*.flac' (globbed).",
    ),
    audio_dir: Path = typer.Option(
        None,
        "--audio-dir",
        help="Audio folder (default: ROOT/SPLIT, else ROOT; manifests: the manifest's folder).",
    ),
    save_embeddings: Path = typer.Option(
        None, "--save-embeddings", help="Write audio.npy, text.npy and captions.json here."
    ),
    only: Path = OnlyOption,
    batch_size: int = BatchOption,
    workers: int = WorkersOption,
    model: str = ModelOption,
    device: str = DeviceOption,
    precision: str = EvalPrecisionOption,
    as_json: bool = JsonOption,
) -> None:
    """Text-to-audio and audio-to-text R@1/5/10, mAP@10 and median rank.

    Captions pool over all clips (T2A); a clip hits when any of its captions ranks within k
    (A2T). Missing or undecodable clips are counted, reported and excluded with their captions.
    """
    from clapsearch.datasets import read_name_list, restrict
    from clapsearch.eval import retrieval as bench
    from clapsearch.sources import load_embedder

    data = bench.load_retrieval_dataset(
        dataset.value, root, split, manifest, audio_pattern, audio_dir
    )
    if only is not None:
        data = restrict(data, read_name_list(only))
    embedder = load_embedder(model, device=device, precision=precision)
    result = bench.run_retrieval(embedder, data, batch_size=batch_size, workers=workers)
    if save_embeddings is not None:
        bench.save_embeddings(result, save_embeddings)
    _warn_if_trained_on(result)
    if as_json:
        print_json(result.to_json())
    else:
        typer.echo(bench.format_table(result))


@eval_app.command("zeroshot")
def zeroshot(
    dataset: ZeroShotDataset = typer.Option(..., "--dataset", help="Benchmark layout."),
    root: Path = typer.Option(..., "--root", help="Dataset folder."),
    template: str = typer.Option(
        DEFAULT_TEMPLATE, "--template", help="Prompt; {label} is the class name."
    ),
    only: Path = OnlyOption,
    batch_size: int = BatchOption,
    workers: int = WorkersOption,
    model: str = ModelOption,
    device: str = DeviceOption,
    precision: str = EvalPrecisionOption,
    as_json: bool = JsonOption,
) -> None:
    """Zero-shot classification accuracy, overall and per official fold.

    Class names have underscores replaced by spaces before filling the template.
    """
    from clapsearch.datasets import read_name_list, restrict
    from clapsearch.eval import zeroshot as bench
    from clapsearch.prompts import render
    from clapsearch.sources import load_embedder

    data = bench.load_classification_dataset(dataset.value, root)
    if only is not None:
        data = restrict(data, read_name_list(only))
    render(data.class_names, template)  # a bad template fails before the model loads
    embedder = load_embedder(model, device=device, precision=precision)
    result = bench.run_zeroshot(embedder, data, template, batch_size=batch_size, workers=workers)
    _warn_if_trained_on(result)
    if as_json:
        print_json(result.to_json())
    else:
        typer.echo(bench.format_table(result))


def _warn_if_trained_on(result) -> None:
    """Honest evaluation: one line on stderr when the model trained on evaluated clips (the
    JSON output carries the counts in `trained_on`)."""
    if result.trained_on.warning:
        typer.echo(result.trained_on.warning, err=True)
