"""`clapsearch index`: scan -> plan -> relink/prune -> decode+embed -> commit -> ANN cache.

Order of writes (each step its own transactions; see docs/index-format.md): relinks first
(so moved files are not pruned), then prunes, then one transaction per embedded file (or
failure), and last the ANN cache. A kill anywhere leaves a consistent index that the next run
completes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from clapsearch.errors import ModelMismatchError, UsageError
from clapsearch.index.paths import ann_path, normalize_path, resolve_index_dir
from clapsearch.index.reader import IndexReader
from clapsearch.index.schema import IndexConfig
from indexer.pipeline import (
    DecodePool,
    DecodeTask,
    Embedded,
    default_workers,
    embed_file_groups,
)
from indexer.plan import make_plan
from indexer.scan import scan
from indexer.writer import IndexWriter, writer_lock

CHECKPOINT_S = 120.0  # how often a long run refreshes the ANN cache when that is cheap


@dataclass(frozen=True)
class IndexOptions:
    roots: tuple[str, ...]
    index: str | None = None
    model: str | None = None
    extensions: tuple[str, ...] | None = None  # None: the index's (or the defaults)
    hop_s: float | None = None  # None: the index's (or the model's window)
    workers: int | None = None  # None: default_workers(); 0: decode in this process
    reembed: bool = False
    device: str = "auto"
    precision: str = "auto"
    batch_size: int | None = None  # None: the embedder's default; windows per model forward
    # what the run is doing, one line at a time ("scanning ...", "loading the model ..."),
    # so a person sees progress before the bar; not a setting of the run
    notify: Callable[[str], None] | None = field(default=None, compare=False, repr=False)

    def say(self, line: str) -> None:
        if self.notify is not None:
            self.notify(line)


@dataclass
class IndexSummary:
    index_dir: str
    indexed: int = 0
    unchanged: int = 0
    pruned: int = 0
    failed: int = 0
    relinked: int = 0
    segments_added: int = 0
    seconds: float = 0.0
    index_type: str = ""
    recall_at_10: float | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) this run
    found: int = 0  # audio files the scan found (0: nothing to index under the roots)

    def line(self) -> str:
        return (
            f"indexed {self.indexed}, unchanged {self.unchanged}, relinked {self.relinked}, "
            f"pruned {self.pruned}, failed {self.failed} in {self.seconds:.1f} s "
            f"({self.index_type} index)"
        )


def _remove_stale_temporaries(index_dir: Path) -> None:
    """Half-written cache files of killed runs (`ann.faiss.tmp-*`); we hold the lock."""
    from clapsearch.atomic import temp_prefix

    for tmp in index_dir.glob(temp_prefix(ann_path(index_dir)) + "*"):
        tmp.unlink(missing_ok=True)


def _requested_model(model: str | None, stored) -> str:
    """--model, else the model the index was built from, else $CLAPSEARCH_MODEL / default;
    as the index records names (`canonical_name`; recognising a source loads no model)."""
    from clapsearch.sources import canonical_name, resolve_model_name

    if not model and stored is not None and stored.model_identity.name:
        return stored.model_identity.name
    return canonical_name(resolve_model_name(model))


def open_for_writing(opts: IndexOptions, index_dir: Path, embedder) -> IndexWriter:
    """Open or create the index, refusing another model or a changed hop unless --reembed."""
    if embedder is None:  # existing index, same model (checked when it is first loaded)
        store = IndexWriter.open(index_dir)
        return _apply_options(store, opts, index_dir)
    if not IndexReader.exists(index_dir):
        config = IndexConfig(hop_s=opts.hop_s)
        if opts.extensions:
            config = replace(config, extensions=opts.extensions)
        return IndexWriter.create(index_dir, embedder.model_identity, config)
    store = IndexWriter.open(index_dir)
    if opts.reembed:
        config = store.meta.config
        config = replace(
            config,
            extensions=opts.extensions or config.extensions,
            hop_s=opts.hop_s if opts.hop_s is not None else config.hop_s,
        )
        store.reset_model(embedder.model_identity, config)
        return store
    if store.meta.model != embedder.identity:
        store.close()
        raise ModelMismatchError(
            f"The index at {index_dir} was built with model {store.meta.model}, not "
            f"{embedder.identity}; pass that model with --model, or add --reembed to re-embed "
            f"everything with the new one."
        )
    return _apply_options(store, opts, index_dir)


def _apply_options(store: IndexWriter, opts: IndexOptions, index_dir: Path) -> IndexWriter:
    """Adopt new --extensions; refuse a changed --hop (it needs --reembed)."""
    config = store.meta.config
    if opts.extensions:
        config = replace(config, extensions=opts.extensions)
    if opts.hop_s is not None and opts.hop_s != config.hop_s:
        store.close()
        raise UsageError(
            f"The index at {index_dir} uses a hop of {config.hop_s or 'one window'} s, not "
            f"{opts.hop_s} s; add --reembed to re-embed everything with the new hop."
        )
    if config != store.meta.config:
        store.set_config(config)
    return store


class LazyEmbedder:
    """Loads the model on first use, so a run with nothing to embed never imports torch.

    When the index already exists and no other model is asked for, the model is loaded from
    the index's recorded source and must still have the recorded identity (weights changed
    in place are refused like any other model)."""

    def __init__(self, name: str, opts: IndexOptions, expect: str | None, index_dir: Path):
        self.name, self.opts, self.expect, self.index_dir = name, opts, expect, index_dir
        self._embedder = None

    def get(self):
        if self._embedder is None:
            from clapsearch.sources import load_embedder

            self.opts.say(f"loading the model ({self.name}) ...")
            e = load_embedder(self.name, device=self.opts.device, precision=self.opts.precision)
            if self.opts.batch_size:
                e.audio_batch_size = self.opts.batch_size
            if self.expect is not None and e.identity != self.expect:
                raise ModelMismatchError(
                    f"The index at {self.index_dir} was built with model {self.expect}, but "
                    f"{self.name} is now {e.identity}; add --reembed to re-embed everything."
                )
            self._embedder = e
        return self._embedder


def run_index(
    opts: IndexOptions,
    progress: Callable[[int], object] | None = None,
    summary: IndexSummary | None = None,
) -> IndexSummary:
    """Index `opts.roots` into `opts.index`. `progress(total)` returns a tqdm-like bar (or
    None) that gets `update(1)` per processed file. `summary`: the caller's record to fill as
    the run goes (after Ctrl-C it still says how many files were committed)."""
    t0 = time.perf_counter()
    if summary is None:
        summary = IndexSummary(str(resolve_index_dir(opts.index)))
    with open_index(opts) as (store, lazy, pool):
        roots = [normalize_path(r) for r in opts.roots]
        _index_into(store, lazy, roots, opts, summary, progress, pool)
    summary.seconds = time.perf_counter() - t0
    return summary


@contextmanager
def open_index(
    opts: IndexOptions, holder: str = ""
) -> Iterator[tuple[IndexWriter, LazyEmbedder, DecodePool | None]]:
    """Hold the writer lock and the index open for writing, for one run (`run_index`) or as
    long as a watcher lives (`indexer.watch`): yields `(store, lazy model, pool)`, `pool` a
    DecodePool already started (when everything will be embedded) or None. `holder`: see
    `writer_lock`."""
    roots = [normalize_path(r) for r in opts.roots]
    index_dir = resolve_index_dir(opts.index)
    for r in roots:
        if os.path.islink(r) and not os.path.exists(r):
            raise UsageError(f"{r} is a symbolic link that leads nowhere (or to itself).")
        if not os.path.exists(r):
            raise UsageError(_vanished_root(r, opts.index))
    with writer_lock(index_dir, holder):
        _remove_stale_temporaries(index_dir)
        stored = None
        if IndexReader.exists(index_dir):
            with IndexReader.open(index_dir) as ro:
                stored = ro.meta
        asked = _requested_model(opts.model, stored)
        pool = None
        if stored is not None and not opts.reembed and asked == stored.model_identity.name:
            lazy = LazyEmbedder(asked, opts, stored.model, index_dir)
            store = open_for_writing(opts, index_dir, None)
        else:  # everything will be embedded: start the workers while the model loads
            pool = DecodePool(_workers(opts))
            lazy = LazyEmbedder(asked, opts, None, index_dir)
            try:
                store = open_for_writing(opts, index_dir, lazy.get())
            except BaseException:
                pool.close(graceful=False)
                raise
        try:
            yield store, lazy, pool
        except BaseException:
            if pool is not None:
                pool.close(graceful=False)  # Ctrl-C or an error: no waiting for decodes
            raise
        finally:
            store.close()
            if pool is not None:
                pool.close()


def _vanished_root(root: str, index: str | None) -> str:
    """A root that does not exist: say so, and how to drop what the index still holds of it."""
    held = 0
    if IndexReader.exists(resolve_index_dir(index)):
        with IndexReader.open(index) as reader:
            held = reader.files_under(root)
    if not held:
        return f"{root} does not exist."
    return (
        f"{root} does not exist, but the index still holds {held} file{'s' * (held != 1)} "
        f"from it: `clapsearch remove {root}` drops them (`clapsearch index --prune` drops "
        f"every file that is gone)."
    )


def _workers(opts: IndexOptions) -> int:
    return default_workers() if opts.workers is None else opts.workers


def _index_into(
    store, lazy: LazyEmbedder, roots, opts, summary, progress, pool=None, scanned=None
) -> None:
    """Scan, plan and apply; `pool` is a DecodePool already started, or None to start one
    (before the model loads) only if there is something to decode. `scanned`: `(files,
    problems)` already scanned (the watcher scans only where events happened); `roots` then
    bounds what may be pruned (each root a file or a folder)."""
    config = store.meta.config
    if scanned is None:
        opts.say(f"scanning {len(roots)} folder{'s' * (len(roots) != 1)} for audio ...")
    files, problems = scanned if scanned is not None else scan(roots, config.extensions)
    summary.found = len(files)
    plan = make_plan(roots, files, problems, store.file_states(), store.failure_states())
    if scanned is None:
        opts.say(
            f"found {len(files)} audio file{'s' * (len(files) != 1)}: {len(plan.to_embed)} to "
            f"embed, {len(plan.unchanged)} unchanged"
        )
    summary.unchanged = len(plan.unchanged)
    for old, f in plan.relinks:
        store.relink(old, f.path, f.size, f.mtime_ns)
    summary.relinked = len(plan.relinks)
    summary.pruned = store.remove_files(plan.prune)
    store.remove_failures(plan.stale_failures)
    for p in problems:
        if not p.is_dir or p.reason == "permission_denied":
            store.record_failure(p.path, p.reason, p.detail, 0, 0)
            summary.failures.append((p.path, p.reason))
    summary.failed = len(plan.failed_unchanged) + len(summary.failures)

    tasks = [DecodeTask(f, plan.hashes.get(f.path)) for f in plan.to_embed]
    if tasks:
        with (
            pool or DecodePool(min(_workers(opts), len(tasks))) as pool,
            _main_threads(lazy, pool.workers),
        ):
            embedder = lazy.get()
            bar = progress(len(tasks)) if progress else None
            last_checkpoint = time.monotonic()
            try:
                for group in embed_file_groups(tasks, embedder, config.hop_s, pool):
                    _commit_group(store, group, summary)
                    if bar is not None:
                        bar.update(len(group))
                    if time.monotonic() - last_checkpoint >= CHECKPOINT_S:
                        _checkpoint_ann(store)
                        last_checkpoint = time.monotonic()
            finally:
                if bar is not None:
                    bar.close()
    refresh_ann(store, lazy, summary)


@contextmanager
def _main_threads(lazy: LazyEmbedder, workers: int):
    """On CPU, the main process (log-mel + forward) gets the cores the decode workers leave,
    at least one thread: torch's default (every core) on top of busy workers spends its time in
    OpenMP barriers. Measured (benchmarks/bench_index_throughput.py, loaded 2-core machine,
    160 clips, built-in model, 2 workers): 9.8 clips/s with 2 torch threads, 83-86 with 1."""
    import torch

    before = torch.get_num_threads()
    if str(lazy.get().device).startswith("cpu"):
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _commit_group(store: IndexWriter, items: list, summary: IndexSummary) -> None:
    """The files one model forward completed, in ONE transaction: a kill before its COMMIT
    leaves all of them absent (the next run embeds them again), after it all present; nothing
    committed is lost, and a kill costs at most one batch of work. (One transaction per file
    cost ~1-2 ms a file: statements, WAL frames, the generation bump.)"""
    with store.snapshot():  # the writer's BEGIN IMMEDIATE; each add_file joins it
        for item in items:
            _commit(store, item, summary)


def _commit(store: IndexWriter, item, summary: IndexSummary) -> None:
    if isinstance(item, Embedded):
        store.add_file(item.record, item.spans, item.vectors)
        summary.indexed += 1
        summary.segments_added += len(item.spans)
    else:
        store.record_failure(item.path, item.reason, item.detail, item.size, item.mtime_ns)
        summary.failed += 1
        summary.failures.append((item.path, item.reason))


def _valid_cache(store: IndexWriter):
    """`(cache, header)`: the ANN cache when it may be used for the database now (its header
    and bytes verified, `clapsearch.index.ann_cache.cache_problem`), else `(None, header)`."""
    from clapsearch.index.ann_cache import read_ann

    header, problem = store.cache_check()
    if problem is not None:
        return None, header
    cache = read_ann(ann_path(store.index_dir))
    if cache is None or cache.header != header:  # damaged bytes, or replaced meanwhile
        return None, header
    return cache, header


def _checkpoint_ann(store: IndexWriter) -> None:
    """During long runs, keep the cache close to the database when it is cheap (in-place
    update, or an exact index below the threshold), so queries meanwhile and a run after a
    kill do not search many vectors exactly. Expensive rebuilds wait for the end of the run."""
    from indexer.ann import build_ann, update_ann

    meta = store.refresh_meta()
    cache, _ = _valid_cache(store)
    if cache is not None:
        if cache.header.ondisk is not None:
            return  # an on-disk IVF-PQ cache is merged at the end of the run (`refresh_ann`)
        if cache.header.generation == meta.generation or update_ann(store, cache) is not None:
            return
    if store.status().segments <= meta.config.exact_threshold:
        build_ann(store)


def refresh_ann(store: IndexWriter, lazy: LazyEmbedder, summary: IndexSummary) -> None:
    """Bring the ANN cache to the database's generation: kept when it is valid and current,
    updated in place when the changes are small (`update_ann`), else rebuilt (probing recall
    with the model's own text embeddings). A cache that fails any check (damaged bytes, another
    database, newer than the database, not the one the database recorded) is rebuilt, even
    when its header claims the current generation. A valid on-disk IVF-PQ cache (`clapsearch
    index merge`) stays on disk and is updated as a merge updates it
    (`indexer.distributed.merge.build_ondisk`: the trained quantizers kept, only the new
    segments encoded, deleted ones removed), never rebuilt in memory."""
    from indexer.ann import PROBE_TEXTS, build_ann, choose_type, update_ann

    meta = store.refresh_meta()
    cache, _ = _valid_cache(store)
    if cache is not None and cache.header.generation == meta.generation:
        summary.index_type, summary.recall_at_10 = meta.index_type, meta.recall_at_10
        return
    ondisk = cache is not None and cache.header.ondisk is not None
    report = None
    if ondisk:
        from indexer.distributed.merge import ONDISK_MIN, build_ondisk

        if store.status().segments >= ONDISK_MIN:
            report = build_ondisk(store, lazy.get().embed_text(list(PROBE_TEXTS)))
        # else: pruned below what IVF-PQ can hold: the in-memory cache of that size, below
    elif cache is not None:
        report = update_ann(store, cache)
    if report is None:
        texts = None
        if choose_type(store.status().segments, meta.config) != "flat":
            texts = lazy.get().embed_text(list(PROBE_TEXTS))
        report = build_ann(store, texts)
        if ondisk:
            from indexer.distributed.merge import remove_unreferenced

            remove_unreferenced(store.index_dir)  # the on-disk files the header named
    summary.index_type, summary.recall_at_10 = report.index_type, report.recall_at_10


__all__ = [
    "IndexOptions",
    "IndexSummary",
    "LazyEmbedder",
    "open_for_writing",
    "open_index",
    "refresh_ann",
    "run_index",
    "writer_lock",
]
