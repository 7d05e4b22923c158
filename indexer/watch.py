"""`clapsearch index --watch`: keep an index in step with folders as files come and go.

The watcher is an index run that does not end. It takes the writer lock and opens the index
exactly as `run_index` does (`indexer.run.open_index`), brings it up to date with one full
pass, then turns file events into small batches, each applied by the same scan -> plan ->
relink/prune -> embed -> commit code (`indexer.run._index_into`) over only the paths the
events named. So every batch has the commit protocol of a normal run (one transaction per
file, the ANN cache refreshed after): a kill at any moment loses nothing committed, and the
next run (watching or not) completes the rest. The model, once loaded, stays loaded.

Events come from `watchdog` (inotify on Linux). Where inotify cannot be used (no inotify,
the instance or watch limit reached, or `poll=True` for network shares, whose remote changes
inotify never sees) a thread re-scans the folders every `poll_s` with `indexer.scan.scan` (the
full run's own rules: symlinks followed without loops, hidden entries skipped) and reports the
paths whose size or mtime changed. Either way the watcher says which in one line.

Debouncing, per path: a path is ripe once no event has named it for `debounce_s`; a batch is
applied when every pending path is ripe, or when the first event is `max_wait_s` old (files
written without pause elsewhere must not hold the others back). A ripe file is still held
back while it is being written: modified and not yet closed (inotify), or its mtime younger
than `debounce_s` (a writer that pauses, or polling); it is retried one quiet period later,
for at most `max_defer_s` after its last write. The two paths of a move always go in the same
batch, so a move across folders is relinked (same ids, same vectors) as a full run would.

Scope: a batch scans only the named paths (a folder recursively, a file alone) and may prune
only what lies under them; after the kernel dropped events (queue overflow), or past
`FULL_RESCAN_PATHS` paths (then about as many stats as a full scan, with more bookkeeping),
it rescans the watched folders whole. A watched folder that disappears (unmounted, deleted) is not
pruned: as in a full run, what the index holds of it stays until `clapsearch remove`.

Threads: the event source (watchdog's observer or the polling thread) only puts tuples on a
queue; the index, the model and SQLite are used by the caller's thread alone.
"""

from __future__ import annotations

import errno
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace

from clapsearch.errors import ClapsearchError
from clapsearch.index.paths import normalize_path, resolve_index_dir
from indexer.run import IndexOptions, IndexSummary, _index_into, open_index
from indexer.scan import scan

FULL_RESCAN_PATHS = 5000  # more paths than this in one batch: rescan the watched folders
INLINE_DECODE_MAX = 8  # batches of at most this many files decode in-process (no worker start)


@dataclass(frozen=True)
class WatchOptions:
    debounce_s: float = 2.0  # quiet period after a path's last event
    poll: bool = False  # poll even where inotify works (network shares)
    poll_s: float = 5.0  # polling interval
    max_wait_s: float = 30.0  # apply what is ripe at most this long after a batch's first event
    max_defer_s: float = 300.0  # a file modified and never closed is taken after this long


@dataclass
class Batch:
    """One applied batch: the run summary of its paths, how many paths it looked at, and how
    many files were held back because they are still being written."""

    summary: IndexSummary
    paths: int
    deferred: int = 0
    full_rescan: bool = False

    @property
    def changed(self) -> bool:
        s = self.summary
        return bool(s.indexed or s.relinked or s.pruned or s.failed or self.deferred)

    def line(self) -> str:
        s = self.summary
        parts = [f"indexed {s.indexed}"]
        parts += [f"{name} {n}" for name, n in (("relinked", s.relinked), ("pruned", s.pruned))]
        parts += [f"failed {s.failed}"] if s.failed else []
        tail = f"; {self.deferred} still being written" if self.deferred else ""
        return f"{time.strftime('%H:%M:%S')} {', '.join(parts)} ({s.seconds:.1f} s){tail}"

    def to_json(self) -> dict:
        s = self.summary
        return {
            "indexed": s.indexed,
            "relinked": s.relinked,
            "pruned": s.pruned,
            "failed": s.failed,
            "deferred": self.deferred,
            "paths": self.paths,
            "full_rescan": self.full_rescan,
            "seconds": round(s.seconds, 3),
        }


@dataclass
class _Pending:
    """What the events said about the paths not applied yet."""

    last: dict[str, float] = field(default_factory=dict)  # path -> last event (monotonic)
    writing: dict[str, float] = field(default_factory=dict)  # modified, not closed: -> when
    partners: dict[str, set[str]] = field(default_factory=dict)  # the other end of a move
    first: float | None = None  # first event since the last batch
    rescan: bool = False  # events were lost: rescan everything


class Watcher:
    """`with Watcher(opts) as w: w.run()`. Entering takes the writer lock, opens the index,
    starts the event source, then brings the index up to date (`w.catch_up` is that pass's
    summary). `next_batch(timeout)` waits for and applies one batch (None if none came in
    `timeout` seconds): tests drive the watcher with it; `run()` loops over it."""

    def __init__(
        self,
        opts: IndexOptions,
        wopts: WatchOptions | None = None,
        report: Callable[[str], object] | None = None,
        progress: Callable[[int], object] | None = None,
    ):
        self.opts, self.wopts = opts, wopts or WatchOptions()
        self.report = report or (lambda line: None)
        self.progress = progress
        self.roots = [normalize_path(r) for r in opts.roots]
        self.index_dir = str(resolve_index_dir(opts.index))
        self.totals = IndexSummary(self.index_dir)  # all this watcher committed, catch-up too
        self.catch_up: IndexSummary | None = None
        self.mode = ""  # "inotify" or "polling"
        self._queue: queue.Queue = queue.Queue()
        self._pending = _Pending()
        self._stack = ExitStack()

    # -- lifetime ---------------------------------------------------------------------------

    def __enter__(self) -> Watcher:
        try:
            holder = (
                f"it is a watcher (`clapsearch index --watch`, pid {os.getpid()}): stop it "
                "first (Ctrl-C in its terminal)"
            )
            self.store, self.lazy, pool = self._stack.enter_context(open_index(self.opts, holder))
            config = self.store.meta.config
            self.exts = tuple(
                e.lower() if e.startswith(".") else "." + e.lower() for e in config.extensions
            )
            self._start_source()  # before the catch-up pass: nothing changed during it is lost
            self.catch_up = summary = IndexSummary(self.index_dir)
            t0 = time.perf_counter()
            try:
                _index_into(
                    self.store, self.lazy, self.roots, self.opts, summary, self.progress, pool
                )
            finally:
                summary.seconds = time.perf_counter() - t0
                self._add(summary)  # also what an interrupted pass committed
            if pool is not None:
                pool.close()  # idle decode workers would hold memory for the watcher's life
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def run(
        self, max_batches: int | None = None, on_batch: Callable[[Batch], object] | None = None
    ) -> None:
        """Apply batches until interrupted (or `max_batches` were applied)."""
        done = 0
        while max_batches is None or done < max_batches:
            batch = self.next_batch(timeout=None)
            if batch is not None:
                done += 1
                if on_batch is not None:
                    on_batch(batch)

    def stopped_line(self) -> str:
        t = self.totals
        return (
            f"stopped watching: {t.indexed} indexed, {t.relinked} relinked and {t.pruned} "
            f"pruned since start, all saved in {self.index_dir}; the next `clapsearch index` "
            "completes whatever was under way."
        )

    # -- event sources ----------------------------------------------------------------------

    def _start_source(self) -> None:
        reason = "--poll" if self.wopts.poll else None
        if reason is None:
            try:
                observer = _start_inotify(self.roots, self._on_event)
            except (OSError, ImportError) as err:
                reason = _inotify_failure(err)
            else:
                self._stack.callback(_stop_observer, observer)
                folders, links = _folders(self.roots)
                missed = _unwatched_folders(observer, folders)
                if not missed:
                    self.mode = "inotify"
                    self._stack.enter_context(_overflow_alarm(lambda: self._queue.put(("rescan",))))
                    if links:
                        self.report(
                            f"{links} folder{'s' * (links != 1)} reached through symbolic links "
                            "are indexed but not watched by inotify; `--poll` watches them too"
                        )
                    return
                _stop_observer(observer)
                reason = (
                    f"the inotify watch limit was reached ({missed} folders unwatched; raise "
                    "fs.inotify.max_user_watches)"
                )
        poller = _Poller(self.roots, self.exts, self.wopts.poll_s, self._queue.put)
        poller.start()
        self._stack.callback(poller.stop)
        self.mode = "polling"
        if reason != "--poll":
            self.report(f"{reason}: polling every {self.wopts.poll_s:g} s instead")

    def _on_event(self, event) -> None:
        """watchdog's thread: the events that can change what a scan finds, as tuples."""
        kind = event.event_type
        if kind in ("opened", "closed_no_write") or (event.is_directory and kind == "modified"):
            return  # our own reads open files; a folder's mtime says nothing by itself
        src = os.fsdecode(event.src_path)
        if kind == "moved":
            self._queue.put(("moved", src, os.fsdecode(event.dest_path), event.is_directory))
        elif kind == "modified":
            self._queue.put(("write", src, event.is_directory))
        elif kind == "closed":
            self._queue.put(("closed", src, False))
        else:  # created, deleted, attrib (touch)
            self._queue.put(("touch", src, event.is_directory))

    # -- debouncing -------------------------------------------------------------------------

    def next_batch(self, timeout: float | None = None) -> Batch | None:
        """Wait for events, let them settle, apply one batch and return it; None when
        `timeout` seconds pass without a batch applied."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            due = self._due_at()
            if due is not None and now >= due:
                batch = self._apply_ripe(now)
                if batch is not None:
                    return batch
                continue
            if deadline is not None and now >= deadline:
                return None
            waits = [t - now for t in (due, deadline) if t is not None]
            try:  # at most 1 s at a time: Ctrl-C is seen promptly
                item = self._queue.get(timeout=min([1.0, *waits]))
            except queue.Empty:
                continue
            self._take(item)
            while True:  # everything already queued, before deciding anything
                try:
                    self._take(self._queue.get_nowait())
                except queue.Empty:
                    break

    def _take(self, item: tuple) -> None:
        p, now = self._pending, time.monotonic()
        kind = item[0]
        if kind == "rescan":
            p.rescan = True
        elif kind == "moved":
            _, src, dest, is_dir = item
            ends = [q for q in (src, dest) if self._wanted(q, is_dir)]
            for q in ends:
                p.last[q] = now
                p.partners.setdefault(q, set()).update(e for e in ends if e != q)
            p.writing.pop(src, None)
        else:
            _, path, is_dir = item
            if not self._wanted(path, is_dir):
                return
            p.last[path] = now
            if kind == "write" and not is_dir:
                p.writing[path] = now
            elif kind == "closed":
                p.writing.pop(path, None)
        if p.first is None and (p.last or p.rescan):
            p.first = now

    def _wanted(self, path: str, is_dir: bool) -> bool:
        """Paths a full run could index: under a watched folder, no hidden part, an audio
        extension (folders: any name), never the index's own files."""
        if path == self.index_dir or path.startswith(self.index_dir + os.sep):
            return False
        root = next((r for r in self.roots if path == r or path.startswith(r + os.sep)), None)
        if root is None:
            return False
        if any(part.startswith(".") for part in path[len(root) :].split(os.sep)):
            return False
        return is_dir or path.lower().endswith(self.exts) or path == root

    def _due_at(self) -> float | None:
        p, d = self._pending, self.wopts.debounce_s
        if p.rescan and not p.last:
            return p.first + d
        if not p.last:
            return None
        all_quiet = max(p.last.values()) + d
        first_ripe = min(p.last.values()) + d
        return min(all_quiet, max(p.first + self.wopts.max_wait_s, first_ripe))

    def _apply_ripe(self, now: float) -> Batch | None:
        """Take the ripe paths that are not being written (with their move partners), apply
        them as one batch; the rest stay pending."""
        p, d = self._pending, self.wopts.debounce_s
        ripe = {q for q, t in p.last.items() if now - t >= d}
        held = {q for q in ripe if self._still_written(q, now)}
        take = _close_over_partners(ripe - held, p.partners, ripe)
        for q in ripe - take:  # retried one quiet period from now
            p.last[q] = now
        rescan = p.rescan or len(take) > FULL_RESCAN_PATHS
        for q in take:
            del p.last[q]
            p.writing.pop(q, None)
            p.partners.pop(q, None)
        p.rescan = False
        p.first = now if p.last else None
        if not take and not rescan:
            return None
        summary = self._apply(sorted(take), rescan)
        return Batch(summary, len(take), len(ripe - take), rescan)

    def _still_written(self, path: str, now: float) -> bool:
        """Modified and not closed (for less than `max_defer_s`), or an mtime younger than
        the quiet period (a writer that pauses; changes found by polling)."""
        since = self._pending.writing.get(path)
        if since is not None and now - since < self.wopts.max_defer_s:
            return True
        try:
            st = os.stat(path)
        except OSError:
            return False  # gone: a deletion, ready now
        if not stat.S_ISREG(st.st_mode):
            return False
        return 0 <= time.time() - st.st_mtime < self.wopts.debounce_s

    # -- applying ---------------------------------------------------------------------------

    def _apply(self, paths: list[str], rescan: bool) -> IndexSummary:
        """Scan `paths` (or every watched folder) and apply the plan like a normal run."""
        t0 = time.perf_counter()
        summary = IndexSummary(self.index_dir)
        self._drop_vanished_roots()
        if rescan:
            scope = list(self.roots)
            scanned = scan(scope, self.exts)
        else:
            scope, scanned = self._scoped_scan(paths)
        if scope:
            opts = self.opts
            if len(scanned[0]) <= INLINE_DECODE_MAX:
                opts = replace(opts, workers=0)  # starting workers costs more than decoding
            try:
                _index_into(self.store, self.lazy, scope, opts, summary, None, None, scanned)
            finally:
                self._add(summary)  # also what an interrupted batch committed
        summary.seconds = time.perf_counter() - t0
        return summary

    def _scoped_scan(self, paths: list[str]):
        """`(scope, (files, problems))`: what a scan of just these paths finds; `scope` (the
        paths, minus those inside another one and vanished watched folders) bounds pruning."""
        scope, to_scan = [], []
        for q in _outermost(paths):
            if not any(q == r or q.startswith(r + os.sep) for r in self.roots):
                continue  # in a vanished watched folder: never pruned (_drop_vanished_roots)
            scope.append(q)
            try:
                st = os.stat(q)
            except OSError:
                continue  # gone: only pruned (with all it held, if it was a folder)
            if stat.S_ISDIR(st.st_mode) or q.lower().endswith(self.exts):
                to_scan.append(q)
        return scope, scan(to_scan, self.exts)

    def _drop_vanished_roots(self) -> None:
        gone = [r for r in self.roots if not os.path.isdir(r) and not os.path.isfile(r)]
        for r in gone:
            self.roots.remove(r)
            self.report(
                f"{r} is gone; the index keeps its files (`clapsearch remove {r}` drops "
                "them) and stops watching it"
            )
        if gone and not self.roots:
            raise ClapsearchError(
                "Every watched folder is gone; nothing left to watch (the index is saved)."
            )

    def _add(self, s: IndexSummary) -> None:
        t = self.totals
        t.indexed += s.indexed
        t.relinked += s.relinked
        t.pruned += s.pruned
        t.failed += s.failed
        t.segments_added += s.segments_added


def _outermost(paths: list[str]) -> list[str]:
    """`paths` (sorted) without those inside another one of them."""
    out: list[str] = []
    for q in paths:
        if out and (q == out[-1] or q.startswith(out[-1].rstrip(os.sep) + os.sep)):
            continue
        out.append(q)
    return out


def _close_over_partners(take: set[str], partners: dict[str, set[str]], ripe: set[str]):
    """`take` less every path whose move partner is not taken too (transitively): both ends
    of a move go in one batch, or a move would be a prune and a re-embed."""
    take = set(take)
    changed = True
    while changed:
        changed = False
        for q in list(take):
            if any(o not in take for o in partners.get(q, ())):
                take.discard(q)
                changed = True
    return take


# -- inotify (watchdog) -------------------------------------------------------------------


def _start_inotify(roots: list[str], on_event):
    """A started watchdog inotify observer over `roots` (folders recursively; a file root
    through its folder); OSError when inotify is missing or a limit is reached."""
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers.inotify import InotifyObserver

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:
            on_event(event)

    observer = InotifyObserver()
    try:
        for r in roots:
            if os.path.isdir(r):
                observer.schedule(Handler(), r, recursive=True)
            else:
                observer.schedule(Handler(), os.path.dirname(r), recursive=False)
        observer.start()
    except BaseException:
        _stop_observer(observer)
        raise
    return observer


@contextmanager
def _overflow_alarm(alarm: Callable[[], object]):
    """Call `alarm` when the kernel's inotify queue overflowed (events were lost): watchdog
    says so only in a log record, so listen for it while the watcher lives."""
    import logging

    class Alarm(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "overflow" in record.getMessage().lower():
                alarm()

    handler = Alarm(logging.WARNING)
    log = logging.getLogger("watchdog.observers")
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)


def _stop_observer(observer) -> None:
    if observer.is_alive():
        observer.stop()
        observer.join(timeout=5)


def _inotify_failure(err: BaseException) -> str:
    if isinstance(err, ImportError):
        return "inotify is not available here (watchdog missing)"
    if getattr(err, "errno", None) == errno.ENOSPC:
        return "the inotify watch limit was reached (raise fs.inotify.max_user_watches)"
    if getattr(err, "errno", None) == errno.EMFILE:
        return "the inotify instance limit was reached (raise fs.inotify.max_user_instances)"
    return f"inotify is not available here ({getattr(err, 'strerror', None) or err})"


def _unwatched_folders(observer, folders: int) -> int:
    """How many of the `folders` to watch inotify does not watch. watchdog registers a watch
    per folder and silently skips those it cannot add (the watch limit), so count its
    watches; 0 when its bookkeeping cannot be read (another watchdog version). Counted again
    after a moment if short: a folder created meanwhile gets its watch a little later."""
    missed = 0
    for attempt in range(2):
        watched = 0
        for emitter in getattr(observer, "emitters", ()):
            group = getattr(emitter, "_inotify", None)
            by_path = getattr(group, "_active_callbacks_by_path", None)
            if by_path is None:
                return 0
            watched += len(by_path)
        missed = max(0, folders - watched)
        if not missed:
            return 0
        if attempt == 0:
            time.sleep(0.5)
    return missed


def _folders(roots: list[str]) -> tuple[int, int]:
    """`(folders inotify must watch, symbolic links to folders)` under `roots`, walked as
    watchdog walks them (links not followed; a full run follows them, inotify does not); a
    file root is watched through its folder."""
    folders, links = 0, 0
    parents = {os.path.dirname(r) for r in roots if not os.path.isdir(r)}
    for r in roots:
        if os.path.isdir(r):
            for top, dirs, _ in os.walk(r):
                folders += 1
                linked = {d for d in dirs if os.path.islink(os.path.join(top, d))}
                links += len(linked)
                dirs[:] = [d for d in dirs if d not in linked]
    return folders + len(parents), links


# -- polling --------------------------------------------------------------------------------


class _Poller:
    """A thread that rescans `roots` every `interval` s (or ten times as long as a scan
    takes, if longer) and reports each path whose size or mtime changed, appeared or vanished. The first snapshot is taken in `start`, by the
    caller, so nothing changed after it is missed."""

    def __init__(self, roots: list[str], exts: tuple[str, ...], interval: float, put):
        self.roots, self.exts, self.interval, self.put = roots, exts, interval, put
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="clapsearch-poll", daemon=True)

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        files, _ = scan(list(self.roots), self.exts)
        return {f.path: (f.size, f.mtime_ns) for f in files}

    def start(self) -> None:
        self._last = self._snapshot()
        self._thread.start()

    def _loop(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            t0 = time.perf_counter()
            try:
                now = self._snapshot()
            except Exception:  # noqa: BLE001 - a failed poll is retried at the next one
                continue
            # a large library: at most a tenth of a core on rescanning it
            wait = max(self.interval, 10 * (time.perf_counter() - t0))
            for path in sorted(now.keys() | self._last.keys()):
                if now.get(path) != self._last.get(path):
                    self.put(("touch", path, False))
            self._last = now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


__all__ = ["Batch", "WatchOptions", "Watcher"]
