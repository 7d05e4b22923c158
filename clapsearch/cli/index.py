"""`clapsearch index` and `clapsearch status`: build/update an index, and describe it."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer

from clapsearch.cli.app import app
from clapsearch.cli.common import DeviceOption, JsonOption, ModelOption, PrecisionOption
from clapsearch.textsafe import shown

IndexOption = typer.Option(
    None,
    "--index",
    "-i",
    help="Index directory. Default: $CLAPSEARCH_INDEX, else the user data directory.",
    show_default=False,
)


@app.command()
def index(
    dirs: list[Path] = typer.Argument(
        None, help="Folders (or files) to index, recursively.", show_default=False
    ),
    index_path: Path = IndexOption,
    model: str = ModelOption,
    extensions: str = typer.Option(
        None,
        "--extensions",
        "-e",
        show_default=False,
        help="Comma-separated extensions to index (default: common audio formats).",
    ),
    hop: float = typer.Option(
        None,
        "--hop",
        min=0.1,
        show_default=False,
        help="Seconds between window starts in long files (default: the model's window).",
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        "-w",
        min=0,
        show_default=False,
        help="Decoding worker processes (default: cores - 1; 0 decodes in-process).",
    ),
    batch_size: int = typer.Option(
        None,
        "--batch-size",
        min=1,
        show_default=False,
        help="Windows per model forward (default 16); lower it if GPU memory runs out.",
    ),
    reembed: bool = typer.Option(
        False, "--reembed", help="Drop all vectors and re-embed everything (another model/hop)."
    ),
    prune: bool = typer.Option(
        False,
        "--prune",
        help="First drop every indexed file that is gone from disk, under any folder ever "
        "indexed (also folders that no longer exist). DIRS may then be left out.",
    ),
    watch: bool = typer.Option(
        False,
        "--watch",
        help="Then keep running: index new, changed, moved and deleted files as they happen, "
        "one line per batch, until Ctrl-C.",
    ),
    debounce: float = typer.Option(
        2.0,
        "--debounce",
        min=0.05,
        help="With --watch: seconds without events before a file is indexed (so a file being "
        "copied is not read half-written).",
    ),
    poll: bool = typer.Option(
        False,
        "--poll",
        help="With --watch: rescan every few seconds instead of using inotify (network "
        "shares; folders reached through symbolic links).",
    ),
    device: str = DeviceOption,
    precision: str = PrecisionOption,
    as_json: bool = JsonOption,
) -> None:
    """Index audio files under DIRS: new and changed files are embedded, unchanged ones
    skipped, moved ones relinked, deleted ones pruned; unreadable files are recorded and
    skipped (see `clapsearch status --errors`). Safe to interrupt at any moment."""
    from clapsearch.errors import UsageError

    if not dirs and not prune:
        raise UsageError("Give the folders to index, e.g. `clapsearch index ./sounds`.")
    if prune:
        from indexer.prune import prune_missing

        with storage_errors(index_path):
            pruned = prune_missing(str(index_path) if index_path else None)
        if not dirs:
            _report(pruned.line("pruned"), pruned.to_json(), as_json)
            return
        if not as_json:
            typer.echo(pruned.line("pruned"), err=True)
    say = _status_printer(as_json)
    if say is not None:  # at once, before the imports and the index open take their second
        from clapsearch.index.paths import resolve_index_dir

        say(
            f"indexing {', '.join(shown(str(d)) for d in dirs)} into {resolve_index_dir(index_path)}"
        )
    from indexer.run import IndexOptions, IndexSummary, run_index

    exts = tuple(e.strip() for e in extensions.split(",") if e.strip()) if extensions else None
    opts = IndexOptions(
        roots=tuple(str(d) for d in dirs),
        index=str(index_path) if index_path else None,
        model=model,
        extensions=exts,
        hop_s=hop,
        workers=workers,
        reembed=reembed,
        device=device,
        precision=precision,
        batch_size=batch_size,
        notify=say,
    )
    if watch:
        from indexer.watch import WatchOptions

        with storage_errors(index_path):
            _watch(opts, WatchOptions(debounce_s=debounce, poll=poll), as_json)
        return
    from clapsearch.index.paths import resolve_index_dir

    summary = IndexSummary(str(resolve_index_dir(index_path)))
    with storage_errors(index_path), interrupted_keeps_commits(summary):
        run_index(opts, progress=_progress_bar(), summary=summary)
    if as_json:
        from clapsearch.cli.common import print_json

        print_json(
            {**_summary_json(summary), **({"pruned_missing": pruned.files} if prune else {})}
        )
    else:
        typer.echo(summary.line(), err=True)
        if summary.failed:
            typer.echo("see `clapsearch status --errors` for the files that failed", err=True)
    _notice_once(summary.index_dir, " ".join(shown(str(d)) for d in dirs))
    if not summary.found and not summary.pruned:
        exts = ", ".join(opts.extensions or _index_extensions(index_path))
        typer.echo(
            f"No audio files found under {', '.join(shown(str(d)) for d in dirs)} (looked for "
            f"{exts}); add others with --extensions.",
            err=True,
        )


def _summary_json(summary) -> dict:
    return {
        "index": summary.index_dir,
        "indexed": summary.indexed,
        "unchanged": summary.unchanged,
        "relinked": summary.relinked,
        "pruned": summary.pruned,
        "failed": summary.failed,
        "segments_added": summary.segments_added,
        "seconds": round(summary.seconds, 3),
        "index_type": summary.index_type,
        "recall_at_10": summary.recall_at_10,
    }


def _watch(opts, wopts, as_json: bool) -> None:
    """`index --watch`: the catch-up pass, then one line (or JSON object) per batch until
    Ctrl-C, which says what was saved and exits 130."""
    from clapsearch.cli.common import print_json
    from indexer.watch import Watcher

    say = (lambda line: None) if as_json else (lambda line: typer.echo(line, err=True))
    bar = None if as_json else _progress_bar()
    watcher = Watcher(opts, wopts, report=lambda line: typer.echo(line, err=True), progress=bar)
    try:
        with watcher:
            if as_json:
                print_json({"catch_up": True, **_summary_json(watcher.catch_up)})
            say(watcher.catch_up.line())
            say(
                f"watching {len(watcher.roots)} folder{'s' * (len(watcher.roots) != 1)} "
                f"({watcher.mode}, quiet period {wopts.debounce_s:g} s); Ctrl-C stops"
            )

            def on_batch(batch) -> None:
                if batch.changed and as_json:
                    print_json(batch.to_json())
                elif batch.changed:
                    say(batch.line())

            watcher.run(on_batch=on_batch)
    except KeyboardInterrupt:
        from clapsearch.errors import Interrupted

        # run_app prints it as the one Ctrl-C line (a bare Exit(130) would add "Interrupted.")
        raise Interrupted(watcher.stopped_line()) from None


def _notice_once(index_dir: str, folders: str) -> None:
    """The built-in model's notice, the first time an index built with it is used."""
    from clapsearch.index.reader import IndexReader
    from clapsearch.notices import built_in_model_notice, first_time, uses_built_in_model

    if not IndexReader.exists(index_dir):
        return
    with IndexReader.open(index_dir) as reader:
        built_in = uses_built_in_model(reader.meta.model_identity)
    if built_in and first_time(index_dir):
        typer.echo(built_in_model_notice(folders), err=True)


def _report(line: str, payload: dict, as_json: bool) -> None:
    if as_json:
        from clapsearch.cli.common import print_json

        print_json(payload)
    else:
        typer.echo(line, err=True)


@contextmanager
def storage_errors(index_path: Path | None):
    """Disk full, read-only or vanished index folders, a corrupt database: one sentence that
    names the cause (`clapsearch.index.storage.explain`)."""
    import sqlite3

    from clapsearch.index.paths import resolve_index_dir
    from clapsearch.index.storage import explain

    try:
        yield
    except (OSError, sqlite3.Error) as err:
        raise explain(err, resolve_index_dir(index_path), writing=True) from None


@contextmanager
def interrupted_keeps_commits(summary=None):
    """Ctrl-C during a run: one line that says what was saved and that nothing committed is
    lost (`summary`: the run's record, filled as files commit)."""
    from clapsearch.errors import Interrupted

    try:
        yield
    except KeyboardInterrupt:
        done = ""
        if summary is not None:
            n = summary.indexed + summary.relinked
            done = f"{n} file{'s' * (n != 1)} indexed in this run; "
        raise Interrupted(
            f"Interrupted: {done}every file committed so far is kept; run `clapsearch index` "
            f"again to continue where it stopped."
        ) from None


def _status_printer(as_json: bool):
    """One line per stage on stderr for people at a terminal (None: quiet, for scripts)."""
    import sys

    if as_json or not sys.stderr.isatty():
        return None
    return lambda line: typer.echo(line, err=True)


def _index_extensions(index_path: Path | None) -> tuple[str, ...]:
    from clapsearch.index.paths import resolve_index_dir
    from clapsearch.index.reader import IndexReader
    from clapsearch.index.schema import DEFAULT_EXTENSIONS

    folder = resolve_index_dir(index_path)
    if not IndexReader.exists(folder):
        return DEFAULT_EXTENSIONS
    with IndexReader.open(folder) as reader:
        return reader.meta.config.extensions


def _progress_bar():
    """A tqdm bar factory on a TTY (rate and ETA), None otherwise (one summary line only)."""
    import sys

    if not sys.stderr.isatty():
        return None

    def make(total: int):
        from tqdm import tqdm

        return tqdm(total=total, unit="file", desc="indexing", dynamic_ncols=True)

    return make


@app.command()
def status(
    index_path: Path = IndexOption,
    as_json: bool = JsonOption,
    errors: bool = typer.Option(False, "--errors", help="List the files that failed, and why."),
) -> None:
    """Describe an index: files, segments, failures, duration, model, index type, recall."""
    from clapsearch.index.reader import IndexReader
    from clapsearch.notices import built_in_model_notice, uses_built_in_model

    with storage_errors(index_path), IndexReader.open(index_path) as store:
        st = store.status()
        fails = store.failures() if errors else []
        where = str(store.index_dir)
        identity = store.meta.model_identity
    built_in = uses_built_in_model(identity)
    model = {
        "model_kind": "built-in" if built_in else (identity.kind if identity else ""),
        "model_name": identity.name if identity else "",
    }
    if built_in:
        model["notice"] = built_in_model_notice()
    if as_json:
        from clapsearch.cli.common import print_json

        payload = {"index": where, **st.to_json(), **model}
        if errors:
            payload["errors"] = [
                {"path": f.path, "reason": f.reason, "detail": f.detail} for f in fails
            ]
        print_json(payload)
        return
    recall = "exact" if st.recall_at_10 is None else f"{st.recall_at_10:.3f}"
    typer.echo(
        f"index      {shown(where)}\n"
        f"files      {st.files}\n"
        f"segments   {st.segments}\n"
        f"failed     {st.failed}\n"
        f"duration   {st.duration_s / 3600:.2f} h\n"
        f"model      {st.model} (dim {st.dim}{', the built-in model' if built_in else ''})\n"
        f"ann        {st.index_type} (recall@10 {recall})\n"
        f"on disk    {st.bytes_on_disk / 1e6:.1f} MB"
    )
    for f in fails:
        detail = f" ({f.detail})" if f.detail else ""
        typer.echo(shown(f"{f.path}: {f.reason}{detail}"))
    if built_in:
        typer.echo(built_in_model_notice(), err=True)
