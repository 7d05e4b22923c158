"""The Python API for searching an index: `Library(path).search("dog barking in rain", k=10)`.

    from clapsearch.library import Library, SearchFilter
    with Library() as lib:                             # the default index, its own model
        for hit in lib.search("rain on a tin roof", k=5):
            print(hit.score, hit.start, hit.end, hit.path)
        lib.search(["a dog", "a cat"])                 # batched: one list of hits per query
        lib.search("birds", filters=SearchFilter(path_glob="*/field/*", max_duration_s=30))
        lib.search_audio("clip.wav")                   # query by example (the clip left out)
        lib.similar_to("/sounds/rain/01.flac")         # reuses the stored vectors, no model
        lib.search_segments("a door slams", k=20)      # every matching window, not per file

The model is the one the index was built with: its name comes from the index's metadata and
its identity must match the index's recorded identity (a different `model=` is refused with a
sentence naming both). The store and the model are opened lazily, so `similar_to` never loads
a model and errors about the index come before any model time is spent.

Text rules (`check_queries`): an empty query is a UsageError; text that is not valid UTF-8 is a
UsageError; a query longer than the text tower reads is truncated by the tokenizer and `notify`
says so (the CLI prints it on stderr).
"""

from __future__ import annotations

import filecmp
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from clapsearch.errors import EmptyIndexError, ModelMismatchError, UsageError
from clapsearch.index.ranking import ChunkedExact, SearchFilter, SearchHit, mean_direction, rank
from clapsearch.threads import QUERY_THREADS

if TYPE_CHECKING:
    from clapsearch.embedder import Embedder


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def check_queries(
    texts: Sequence[str],
    embedder: Embedder | None = None,
    notify: Callable[[str], None] = _stderr,
) -> list[str]:
    """Validate query texts (module doc) -> the texts, stripped. With `embedder`, queries over
    its token limit are reported through `notify` (the tokenizer truncates them)."""
    if not texts:
        raise UsageError("The query is empty: describe the sound to search for.")
    out = []
    for i, text in enumerate(texts):
        where = f"Query {i + 1}" if len(texts) > 1 else "The query"
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # undecodable argv bytes arrive as lone surrogates
            raise UsageError(f"{where} is not valid UTF-8 text.") from None
        text = text.strip()
        if not text:
            raise UsageError(f"{where} is empty: describe the sound to search for.")
        out.append(text)
    if embedder is not None:
        limit = embedder.max_text_tokens
        for i, text in enumerate(out):
            n = embedder.count_tokens(text)
            if n > limit:
                where = f"query {i + 1}" if len(out) > 1 else "the query"
                notify(
                    f"note: {where} is {n} tokens long; the model reads only the first "
                    f"{limit}, so the rest is ignored."
                )
    return out


def decode_query_bytes(data: bytes, source: str) -> list[str]:
    """Bytes of a queries file (one query per line) -> the queries; non-UTF-8 is a UsageError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(
            f"{source} is not valid UTF-8 text (bad byte at offset {err.start})."
        ) from None
    return [line.strip() for line in text.splitlines() if line.strip()]


class Library:
    """A searchable index (module doc); cheap to create (everything is lazy).

    Threads: one Library may serve concurrent requests (a web server's worker threads).
    Opening the index and loading the model happen once, under a lock; every search runs
    in its own snapshot on its thread's own SQLite connection (`clapsearch.index.db`); the
    model's forwards run one at a time (`Embedder` takes its lock). Nothing is changed per
    query: `threads` (default `QUERY_THREADS`, 1) sets the process's torch and FAISS thread
    pools when the index is opened and when the model is loaded (`clapsearch.threads`);
    None leaves them alone (batch jobs with many queries per call).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        model: str | None = None,
        *,
        device: str = "auto",
        precision: str = "auto",
        embedder: Embedder | None = None,
        notify: Callable[[str], None] = _stderr,
        threads: int | None = QUERY_THREADS,
    ):
        from clapsearch.index.paths import resolve_index_dir

        self.path = resolve_index_dir(path)
        self._model_arg = model
        self._device = device
        self._precision = precision
        self._embedder = embedder
        self._text_embedder: Embedder | None = None  # text side only (`text_embedder`)
        self._store = None
        self._checked = False
        self._threads = threads
        self._lock = threading.RLock()  # guards the lazy resources, not the searches
        self._per_thread = threading.local()  # .threads_set: this thread's OpenMP count is set
        self._segments: tuple[int, int] | None = None  # (generation, windows in the index)
        self.notify = notify

    # --- lazy resources ------------------------------------------------------------------
    @property
    def store(self):
        """The index (`IndexReader`), opened on first use."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from clapsearch.index.reader import IndexReader

                    store = IndexReader.open(self.path)
                    self._set_threads()
                    self._store = store
        return self._store

    @property
    def embedder(self) -> Embedder:
        """The index's model, loaded on first use and checked against the index's identity."""
        if self._embedder is None or not self._checked:
            with self._lock:
                self._load_embedder()
        return self._embedder

    @property
    def text_embedder(self) -> Embedder:
        """The model for text queries: the whole model once it is loaded (or was given), else
        only its text side (`parts={"text"}`), which a clapsearch checkpoint loads without
        its audio tower or transformers: text queries answer fast from a cold start."""
        if self._embedder is not None:
            return self.embedder
        if self._text_embedder is None:
            with self._lock:
                if self._text_embedder is None:
                    self._text_embedder = self._load(("text",))
        return self._text_embedder

    def _load_embedder(self) -> None:
        if self._embedder is None:
            self._embedder = self._load(("audio", "text"))
        elif not self._checked:  # a caller's own model: it must still be the index's
            self._check_model(self._embedder)
            self._set_threads()
        self._checked = True

    def _load(self, parts: tuple[str, ...]) -> Embedder:
        from clapsearch.sources import load_embedder, resolve_model_name

        name = self._model_arg or self.store.meta.model_identity.name
        name = name or resolve_model_name(None)  # an index that never recorded a name
        embedder = load_embedder(name, device=self._device, precision=self._precision, parts=parts)
        self._check_model(embedder, name)
        self._set_threads()  # torch is loaded now
        return embedder

    def _set_threads(self) -> None:
        if self._threads is not None:
            from clapsearch.threads import set_compute_threads

            set_compute_threads(self._threads)

    def _thread_threads(self) -> None:
        """Once per calling thread: OpenMP's count is per thread (`clapsearch.threads`)."""
        if self._threads is not None and not getattr(self._per_thread, "threads_set", False):
            from clapsearch.threads import set_thread_compute_threads

            set_thread_compute_threads(self._threads)
            self._per_thread.threads_set = "torch" in sys.modules

    def _check_model(self, embedder: Embedder, name: str | None = None) -> None:
        recorded = self.store.meta.model
        if embedder.identity == recorded:
            return
        if self._model_arg or name is None:
            raise ModelMismatchError(
                f"The index at {self.path} was built with {recorded}, not "
                f"{embedder.identity}; leave out --model to query it with its own model, or "
                f"re-index with the new one."
            )
        raise ModelMismatchError(
            f"The index at {self.path} was built with {recorded}, but {name} is "
            f"{embedder.identity}; pass the index's model with --model."
        )

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- queries -------------------------------------------------------------------------
    @overload
    def search(
        self, text: str, k: int = 10, filters: SearchFilter | None = None
    ) -> list[SearchHit]: ...
    @overload
    def search(
        self, text: Sequence[str], k: int = 10, filters: SearchFilter | None = None
    ) -> list[list[SearchHit]]: ...

    def search(self, text, k=10, filters=None):
        """Text query (or a list of them, embedded in one batch) -> the `k` best files, each
        with its best window; a list of such lists for a list of queries."""
        return self._text(text, k, filters, per_file=True)

    def search_segments(self, text, k: int = 10, filters: SearchFilter | None = None):
        """Like `search` but every window is a hit: a file can appear several times."""
        return self._text(text, k, filters, per_file=False)

    def _text(self, text, k, filters, per_file):
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        self._searchable()
        embedder = self.text_embedder
        self._thread_threads()
        texts = check_queries(texts, embedder, self.notify)
        vectors = embedder.embed_text(texts)
        hits = self.search_vectors(vectors, k, filters, per_file=per_file)
        return hits[0] if single else hits

    def search_audio(
        self,
        path: str | Path,
        k: int = 10,
        filters: SearchFilter | None = None,
        per_file: bool = True,
        waveform: np.ndarray | None = None,
    ) -> list[SearchHit]:
        """Audio file -> the `k` most similar indexed files, the file itself left out when it
        is in the index (same resolved path, or same content). `waveform`: the file already
        decoded at the model's rate, `(samples,)` float32 (the server decodes uploads in a
        child process with a timeout); else it is decoded here."""
        from clapsearch.audio import load_audio

        self._searchable()
        embedder = self.embedder
        self._thread_threads()
        if waveform is None:
            waveform = load_audio(str(path), embedder.sample_rate)
        query = embedder.embed_audio([waveform])
        is_query = _SameFile(path, self._file_id(path))
        return self.search_vectors(query, k, filters, per_file=per_file, exclude=[is_query])[0]

    def similar_to(
        self,
        path_in_index: str | Path,
        k: int = 10,
        filters: SearchFilter | None = None,
        per_file: bool = True,
        at: float | None = None,
    ) -> list[SearchHit]:
        """An indexed file -> the `k` most similar other files, from its stored window vectors
        (their renormalised mean: the whole file; with `at` seconds, only the window that
        starts last at or before `at`: one segment). No model is loaded."""
        self._searchable()
        fid = self._file_id(path_in_index)
        if fid is None:
            raise UsageError(f"{path_in_index} is not in the index at {self.path}.")
        with self.store.snapshot():  # the vectors and the spans of one version of the file
            _, vectors = self.store.file_vectors(path_in_index)
            info = self.store.file_info(fid) if at is not None else None
        if at is None:
            query = mean_direction(vectors)[None, :]
        else:
            starts = [s for s, _ in info.spans] if info is not None else []
            if not starts or not 0 <= at <= info.record.duration_s:
                raise UsageError(f"{at} s is not a time inside {path_in_index}.")
            i = max(j for j, s in enumerate(starts) if s <= at) if at >= starts[0] else 0
            query = vectors[i][None, :]
        return self.search_vectors(
            query, k, filters, per_file=per_file, exclude=[_SameFile(None, fid)]
        )[0]

    def search_vectors(
        self,
        vectors: np.ndarray,
        k: int = 10,
        filters: SearchFilter | None = None,
        *,
        per_file: bool = True,
        exclude: Sequence[Callable[[Any], bool] | None] | None = None,
    ) -> list[list[SearchHit]]:
        """`(Q, dim)` unit query vectors -> Q ranked hit lists (see `clapsearch.index.ranking.rank`)."""
        self._thread_threads()
        allowed = None
        if filters is not None and filters.validate().active:
            allowed = self.store.segment_ids_where(
                path_glob=filters.path_glob,
                path_prefix=filters.path_prefix,
                min_duration_s=filters.min_duration_s,
                max_duration_s=filters.max_duration_s,
            )
        hits = rank(
            self.store,
            vectors,
            k,
            allowed_ids=allowed,
            per_file=per_file,
            exclude=exclude,
            limit=self._segment_count(),
        )
        if allowed is not None:
            hits = self._refill_filtered(vectors, hits, k, allowed, per_file, exclude)
        return [mark_missing(h) for h in hits]

    def _refill_filtered(self, vectors, hits, k, allowed, per_file, exclude):
        """Filtered queries that came back short from an ANN id-selector search are redone
        exactly over the allowed ids (`ChunkedExact`): k files whenever k match."""
        from clapsearch.index.reader import EXACT_SUBSET_MAX

        short = [i for i, h in enumerate(hits) if len(h) < k]
        if not short or len(allowed) <= EXACT_SUBSET_MAX:  # the store was exact already
            return hits
        redo = rank(
            ChunkedExact(self.store, EXACT_SUBSET_MAX),
            vectors[short],
            k,
            allowed_ids=allowed,
            per_file=per_file,
            exclude=[exclude[i] for i in short] if exclude else None,
        )
        for i, h in zip(short, redo, strict=True):
            hits[i] = h
        return hits

    # --- helpers -------------------------------------------------------------------------
    def _segment_count(self) -> int:
        """Windows in the index (caps the over-fetch), counted again only when the index's
        generation moved: a long-lived Library sees files another process indexes."""
        store = self.store
        with store.snapshot():
            generation = store.generation()
            known = self._segments
            if known is None or known[0] != generation:
                known = (generation, int(store.status().segments))
                self._segments = known
        return known[1]

    def _searchable(self) -> None:
        if not self._segment_count():
            raise EmptyIndexError(
                f"The index at {self.path} is empty: add audio with `clapsearch index DIR` first."
            )

    def _file_id(self, path: str | Path) -> int | None:
        fid = self.store.file_id_for_path(path)
        return None if fid is None else int(fid)


def mark_missing(hits: list[SearchHit]) -> list[SearchHit]:
    """Flag hits whose file is gone from disk since it was indexed (`SearchHit.missing`):
    they stay in the ranking, marked, until `clapsearch index --prune` or `clapsearch remove`
    drops them. One stat per hit, so k of them per query."""
    return [h if os.path.exists(h.path) else replace(h, missing=True) for h in hits]


class _SameFile:
    """Is an indexed window's file the query file? The same file id (path as typed or with
    symlinks resolved), the same inode, or the same bytes under another name (a copy).
    Asked only for files that reach the results, so the byte compare stays cheap."""

    def __init__(self, path: str | Path | None, file_id: int | None):
        self.path = path
        self.file_id = file_id
        self.stat = os.stat(path) if path is not None else None

    def __call__(self, seg: Any) -> bool:
        if seg.file_id == self.file_id:
            return True
        if self.stat is None:
            return False
        try:
            other = os.stat(seg.path)
            if (other.st_dev, other.st_ino) == (self.stat.st_dev, self.stat.st_ino):
                return True
            return other.st_size == self.stat.st_size and filecmp.cmp(
                self.path, seg.path, shallow=False
            )
        except OSError:  # deleted or unreadable since it was indexed: not a copy we can see
            return False


__all__ = ["EmptyIndexError", "Library", "SearchFilter", "SearchHit", "check_queries"]
