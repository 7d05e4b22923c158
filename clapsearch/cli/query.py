"""`clapsearch query`: text, audio or an indexed file in; ranked sounds out (a thin layer over
`clapsearch.library.Library`).

Output: a table (rank, score, time range, path) for people; with `--json`, JSON lines: one
object `{"query": str, "results": [{"path", "score", "start", "end", "missing"}, ...]}` per
query, in the order the queries were given, results in rank order. One query therefore prints
exactly one JSON document (the issue's contract); several print one per line (`jq -s` makes a
list). Scores are cosine similarities; start/end are seconds into the file; `missing` marks a
file gone from disk since it was indexed (`clapsearch index --prune` drops those).

When a `clapsearch serve` runs on the same index (`clapsearch.server.client`), text and
`--audio` queries go to it (its model is warm) unless `--no-server`, `--model`, `--device` or
`--precision` is given; a server that does not answer is passed over.
"""

from __future__ import annotations

from pathlib import Path

import typer

from clapsearch.cli.app import app
from clapsearch.cli.common import DeviceOption, ModelOption, PrecisionOption
from clapsearch.errors import UsageError
from clapsearch.textsafe import shown

SMALL_BATCH = 4  # text queries up to this many per call run on one compute thread

JSON_HELP = (
    'Print JSON lines: one object {"query", "results": [{"path", "score", "start", "end", '
    '"missing"}]} per query, in the order the queries were given, results in rank order '
    "(missing: the file is gone from disk since it was indexed)."
)


@app.command()
def query(
    texts: list[str] = typer.Argument(
        None,
        help="What to search for, in words. Several queries are embedded in one batch.",
        show_default=False,
    ),
    k: int = typer.Option(10, "-k", "--top", help="Results per query."),
    index: Path = typer.Option(
        None,
        "--index",
        "-i",
        show_default=False,
        help="Index directory (default: $CLAPSEARCH_INDEX, else the user data directory).",
    ),
    audio: list[Path] = typer.Option(
        None,
        "--audio",
        "-a",
        show_default=False,
        help="Query by example: sounds like this audio file (left out of its own results).",
    ),
    similar_to: Path = typer.Option(
        None,
        "--similar-to",
        show_default=False,
        help="Sounds like this indexed file, from its stored vectors (no model needed).",
    ),
    queries_file: Path = typer.Option(
        None,
        "--queries-file",
        "-f",
        show_default=False,
        help="Read queries from a UTF-8 file, one per line ('-' for stdin).",
    ),
    segments: bool = typer.Option(
        False, "--segments", help="List every matching window instead of each file's best one."
    ),
    glob: str = typer.Option(
        None,
        "--glob",
        show_default=False,
        help="Only paths matching this shell pattern ('*' crosses '/').",
    ),
    prefix: str = typer.Option(
        None, "--prefix", show_default=False, help="Only paths under this prefix."
    ),
    min_duration: float = typer.Option(
        None,
        "--min-duration",
        show_default=False,
        help="Only files at least this many seconds long.",
    ),
    max_duration: float = typer.Option(
        None,
        "--max-duration",
        show_default=False,
        help="Only files at most this many seconds long.",
    ),
    model: str = ModelOption,
    device: str = DeviceOption,
    precision: str = PrecisionOption,
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    no_server: bool = typer.Option(
        False,
        "--no-server",
        help="Do not use a `clapsearch serve` running on this index; load the model here.",
    ),
) -> None:
    """Find the sounds in the index that best match a description, a clip or an indexed file.

    Results are grouped per file (its best window, with the window's time range); scores are
    cosine similarities. Filters narrow the vector search itself, so -k results come back
    whenever that many files match.
    """
    if queries_file is not None:
        from clapsearch.library import decode_query_bytes

        texts = list(texts or []) + _read_queries(queries_file, decode_query_bytes)
    # argument errors before any model or index is opened (a fast answer)
    if k < 1:
        raise UsageError(f"-k must be at least 1, not {k}.")
    if texts and not all(t.strip() for t in texts):
        raise UsageError("The query is empty: describe the sound to search for.")
    modes = sum([bool(texts), bool(audio), similar_to is not None])
    if modes != 1:
        raise UsageError(
            "Give a text query, --audio FILE or --similar-to FILE (exactly one of them); "
            "to search by text, describe the sound in quotes."
        )
    _require_index(index)  # before numpy and FAISS are imported: a fast error
    if audio:
        from clapsearch.audio import check_audio

        for path in audio:  # a file that is not audio is refused before a model loads
            check_audio(path)
    filter_args = dict(
        prefix=prefix, glob=glob, min_duration=min_duration, max_duration=max_duration
    )
    if (
        not no_server
        and similar_to is None
        and (model, device, precision) == (None, "auto", "auto")
    ):
        answered = _ask_server(index, texts, audio, k, filter_args, segments)
        if answered is not None:
            labels, hits, model_name = answered
            (_print_json if as_json else _print_table)(labels, hits)
            _notice_once(index, model_name == "default")
            return
    from clapsearch.index.ranking import SearchFilter
    from clapsearch.library import Library

    filters = SearchFilter(glob, prefix, min_duration, max_duration)
    per_file = not segments
    # one compute thread for a few queries (`clapsearch.threads`); torch's pool for batches
    threads = 1 if len(texts or ()) <= SMALL_BATCH else None
    with Library(index, model, device=device, precision=precision, threads=threads) as lib:
        if texts:
            hits = (lib.search if per_file else lib.search_segments)(texts, k, filters)
            labels = list(texts)
        elif audio:
            hits = [lib.search_audio(p, k, filters, per_file=per_file) for p in audio]
            labels = [str(p) for p in audio]
        else:
            hits = [lib.similar_to(similar_to, k, filters, per_file=per_file)]
            labels = [str(similar_to)]
        from clapsearch.notices import uses_built_in_model

        built_in = uses_built_in_model(lib.store.meta.model_identity)
    if as_json:
        _print_json(labels, hits)
    else:
        _print_table(labels, hits)
    _notice_once(index, built_in)


def _notice_once(index, built_in: bool) -> None:
    """The built-in model's notice, the first time this index is queried or indexed."""
    if not built_in:
        return
    from clapsearch.index.paths import resolve_index_dir
    from clapsearch.notices import built_in_model_notice, first_time

    if first_time(resolve_index_dir(index)):
        typer.echo(built_in_model_notice(), err=True)


def _ask_server(index, texts, audio, k, filters: dict, segments: bool):
    """A `clapsearch serve` running on this index answers (its model is warm):
    `(labels, hits)`, or None when none runs or it does not answer (then work locally)."""
    from types import SimpleNamespace

    from clapsearch.index.paths import resolve_index_dir
    from clapsearch.server import client

    server = client.find(resolve_index_dir(index))
    if server is None:
        return None
    try:
        if texts:
            answer = server.search(list(texts), k, filters, segments)
            labels, queries = list(texts), answer["queries"]
            notes = answer.get("notes", [])
        else:
            answers = [server.search_audio(str(p), k, filters, segments) for p in audio]
            labels, queries = [str(p) for p in audio], [a["queries"][0] for a in answers]
            notes = [n for a in answers for n in a.get("notes", [])]
    except (client.Unreachable, client.ServerError):
        return None  # the same query here gives the same answer, or its own error
    for note in notes:
        typer.echo(note, err=True)
    keys = ("path", "score", "start", "end", "missing")
    hits = [
        [SimpleNamespace(**{k: r.get(k, False) for k in keys}) for r in q["results"]]
        for q in queries
    ]
    return labels, hits, server.model_name


def _require_index(index: Path | None) -> None:
    from clapsearch.errors import IndexNotFoundError
    from clapsearch.index.paths import db_path, resolve_index_dir

    folder = resolve_index_dir(index)
    if not db_path(folder).is_file():  # the same sentence as `IndexReader.open`
        raise IndexNotFoundError(f"No index at {folder}: run `clapsearch index DIR` to build one.")


def _read_queries(path: Path, decode) -> list[str]:
    import sys

    if str(path) == "-":
        return decode(sys.stdin.buffer.read(), "Standard input")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UsageError(f"Cannot read the queries file {path} ({err.strerror}).") from None
    return decode(data, str(path))


def _print_json(labels: list[str], hits: list) -> None:
    from clapsearch.cli.common import print_json

    keys = ("path", "score", "start", "end", "missing")
    for label, results in zip(labels, hits, strict=True):
        print_json({"query": label, "results": [{k: getattr(h, k) for k in keys} for h in results]})


def format_time(seconds: float) -> str:
    """73.25 -> "1:13.2" (minutes:seconds), "1:02:03.0" past an hour."""
    tenths = int(round(seconds * 10))
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    secs = f"{rest // 10:02d}.{rest % 10}"
    return f"{hours}:{minutes:02d}:{secs}" if hours else f"{minutes}:{secs}"


def _print_table(labels: list[str], hits: list) -> None:
    for n, (label, results) in enumerate(zip(labels, hits, strict=True)):
        if len(labels) > 1:
            typer.echo(("\n" if n else "") + f"query: {shown(label)}")
        if not results:
            typer.echo("no matching sounds.")
            continue
        typer.echo(f"{'rank':>4}  {'score':>6}  {'time':<17}  path")
        for rank, hit in enumerate(results, 1):
            span = f"{format_time(hit.start)}-{format_time(hit.end)}"
            gone = "  (missing: no longer on disk)" if hit.missing else ""
            typer.echo(f"{rank:>4}  {hit.score:6.3f}  {span:<17}  {shown(hit.path)}{gone}")
    gone = sum(h.missing for results in hits for h in results)
    if gone:
        typer.echo(
            f"{gone} result{'s' * (gone != 1)} no longer exist on disk: `clapsearch index "
            f"--prune` drops every vanished file from the index.",
            err=True,
        )
