"""`clapsearch classify`: zero-shot labels for audio files (a thin layer over
`clapsearch.classify.classify`)."""

from __future__ import annotations

from pathlib import Path

import typer

from clapsearch.cli.app import app
from clapsearch.cli.common import DeviceOption, ModelOption, PrecisionOption
from clapsearch.errors import UsageError
from clapsearch.prompts import DEFAULT_TEMPLATE
from clapsearch.textsafe import shown


@app.command()
def classify(
    files: list[Path] = typer.Argument(..., help="Audio files to label.", show_default=False),
    labels: str = typer.Option(
        None,
        "--labels",
        "-l",
        show_default=False,
        help='Comma-separated labels, e.g. "dog,rain,siren".',
    ),
    labels_file: Path = typer.Option(
        None,
        "--labels-file",
        show_default=False,
        help="A UTF-8 file of labels, one per line (or commas).",
    ),
    template: str = typer.Option(
        DEFAULT_TEMPLATE,
        "--template",
        help="Prompt each label is put into; {label} marks the label.",
    ),
    multi_label: bool = typer.Option(
        False,
        "--multi-label",
        help="Score each label on its own "
        "(sigmoid against a generic prompt) instead of a softmax "
        "over the labels.",
    ),
    top: int = typer.Option(5, "--top", "-n", help="Labels shown per file (and per window)."),
    timeline: bool = typer.Option(
        False, "--timeline", help="Also label every window of each file (long recordings)."
    ),
    index: Path = typer.Option(
        None,
        "--index",
        "-i",
        show_default=False,
        help="Index whose running `clapsearch serve` may answer (default: $CLAPSEARCH_INDEX, "
        "else the user data directory).",
    ),
    no_server: bool = typer.Option(
        False, "--no-server", help="Do not use a running `clapsearch serve`; load the model here."
    ),
    model: str = ModelOption,
    device: str = DeviceOption,
    precision: str = PrecisionOption,
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print JSON lines: one object {"path", '
        '"labels": [{"label", "score", "cosine"}], "timeline"?: [{"start", '
        '"end", "labels": [{"label", "cosine"}]}]} per file, in input order.',
    ),
) -> None:
    """Label audio files zero-shot: how well each file matches each text label.

    Scores are probabilities: a softmax over the labels (they sum to 1), or with --multi-label
    (and always for a single label) an independent score per label, above 0.5 when the sound
    is closer to the label than to a generic "something". The cosine beside each score is the
    raw similarity it comes from. --timeline windows show cosines: probabilities of short
    windows read as certainties even when wrong.
    """
    from clapsearch.prompts import parse_labels

    if (labels is None) == (labels_file is None):
        raise UsageError(
            'Give the labels with --labels "a,b,c" or --labels-file FILE (one of them).'
        )
    if labels_file is not None:
        labels = _read_text(labels_file)
    label_list = parse_labels(labels)
    request = dict(
        labels=label_list, template=template, multi_label=multi_label, top=top, timeline=timeline
    )
    results = None
    if not no_server and (device, precision) == ("auto", "auto"):
        results = _ask_server(index, model, [str(f) for f in files], request)
    if results is None:
        from clapsearch.classify import classify as run_classify

        found = run_classify(
            [str(f) for f in files], model=model, device=device, precision=precision, **request
        )
        results = [r.to_dict() for r in found]
    if as_json:
        from clapsearch.cli.common import print_json

        for res in results:
            print_json({k: v for k, v in res.items() if k != "file_id"})
        return
    kind = "p(label)" if multi_label or len(label_list) == 1 else "p(of these)"
    for n, res in enumerate(results):
        _print_human(res, kind, first=n == 0)


def _print_human(res: dict, kind: str, first: bool) -> None:
    typer.echo(("" if first else "\n") + shown(res["path"]))
    typer.echo(f"  {kind:>11}  {'cosine':>6}  label")
    for s in res["labels"]:
        typer.echo(f"  {s['score']:11.3f}  {s['cosine']:6.3f}  {shown(s['label'])}")
    if res.get("timeline"):
        from clapsearch.cli.query import format_time

        typer.echo("  timeline (cosine per window):")
        for w in res["timeline"]:
            best = ", ".join(f"{shown(c['label'])} {c['cosine']:.3f}" for c in w["labels"])
            typer.echo(f"  {format_time(w['start']):>9}-{format_time(w['end']):<9} {best}")


def _ask_server(index: Path | None, model: str | None, files: list[str], request: dict):
    """A `clapsearch serve` on the index, with the model this command would load, classifies
    files it has indexed (its model is warm): their `--json` objects in order, or None (no
    server, another model, a file it does not hold, no answer: classify here)."""
    from clapsearch.index.lookup import indexed_file_ids
    from clapsearch.index.paths import db_path, resolve_index_dir
    from clapsearch.server import client
    from clapsearch.sources import resolve_model_name

    folder = resolve_index_dir(index)
    if not db_path(folder).is_file():
        return None
    server = client.find(folder)
    if server is None or not server.serves_model(resolve_model_name(model)):
        return None
    ids = indexed_file_ids(folder, files)
    if None in ids:
        return None
    body = {k: v for k, v in request.items() if v is not None}
    try:
        answers = [server.classify(fid, body) for fid in ids]
    except (client.Unreachable, client.ServerError):
        return None
    for path, answer in zip(files, answers, strict=True):
        answer["path"] = path  # as the user named it, like a local run
    return answers


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UsageError(f"Cannot read the labels file {path} ({err.strerror}).") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"The labels file {path} is not valid UTF-8 text.") from None
