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

import hashlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from clapsearch.errors import EmptyIndexError, ModelMismatchError, UsageError
from clapsearch.ranking import SearchFilter, SearchHit, mean_direction, rank

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


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Library:
    """A searchable index (module doc). Thread-unsafe; cheap to create (everything is lazy)."""

    def __init__(
        self,
        path: str | Path | None = None,
        model: str | None = None,
        *,
        device: str = "auto",
        precision: str = "auto",
        embedder: Embedder | None = None,
        notify: Callable[[str], None] = _stderr,
    ):
        from clapsearch.paths import resolve_index_dir

        self.path = resolve_index_dir(path)
        self._model_arg = model
        self._device = device
        self._precision = precision
        self._embedder = embedder
        self._store = None
        self.notify = notify

    # --- lazy resources ------------------------------------------------------------------
    @property
    def store(self):
        if self._store is None:
            from clapsearch.store import IndexStore

            self._store = IndexStore.open(self.path, readonly=True)
        return self._store

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from clapsearch.loading import load_embedder

            meta = self.store.meta
            name = self._model_arg or index_model_name(meta)
            self._embedder = load_embedder(name, device=self._device, precision=self._precision)
        self._check_model(self._embedder)
        return self._embedder

    def _check_model(self, embedder: Embedder) -> None:
        recorded = self.store.meta.model
        if embedder.identity != recorded:
            raise ModelMismatchError(
                f"The index at {self.path} was built with {recorded}, not {embedder.identity}; "
                f"query it with its own model (leave out --model) or re-index."
            )

    def close(self) -> None:
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
        texts = check_queries(texts, self.embedder, self.notify)
        vectors = self.embedder.embed_text(texts)
        hits = self.search_vectors(vectors, k, filters, per_file=per_file)
        return hits[0] if single else hits

    def search_audio(
        self,
        path: str | Path,
        k: int = 10,
        filters: SearchFilter | None = None,
        per_file: bool = True,
    ) -> list[SearchHit]:
        """Audio file -> the `k` most similar indexed files, the file itself left out when it
        is in the index (same resolved path, or same content)."""
        from clapsearch.audio import load_audio

        self._searchable()
        embedder = self.embedder
        query = embedder.embed_audio([load_audio(str(path), embedder.sample_rate)])
        exclude = self._indexed_file_ids(path)
        return self.search_vectors(
            query, k, filters, per_file=per_file, exclude_file_ids=[exclude]
        )[0]

    def similar_to(
        self,
        path_in_index: str | Path,
        k: int = 10,
        filters: SearchFilter | None = None,
        per_file: bool = True,
    ) -> list[SearchHit]:
        """An indexed file -> the `k` most similar other files, from its stored window vectors
        (their renormalised mean: the whole file). No model is loaded."""
        self._searchable()
        fid = self._file_id(path_in_index)
        if fid is None:
            raise UsageError(f"{path_in_index} is not in the index at {self.path}.")
        _, vectors = self.store.file_vectors(self._stored_path(path_in_index))
        query = mean_direction(vectors)[None, :]
        return self.search_vectors(query, k, filters, per_file=per_file, exclude_file_ids=[{fid}])[
            0
        ]

    def search_vectors(
        self,
        vectors: np.ndarray,
        k: int = 10,
        filters: SearchFilter | None = None,
        *,
        per_file: bool = True,
        exclude_file_ids: Sequence[set[int]] | None = None,
    ) -> list[list[SearchHit]]:
        """`(Q, dim)` unit query vectors -> Q ranked hit lists (see `clapsearch.ranking.rank`)."""
        allowed = None
        if filters is not None and filters.validate().active:
            allowed = self.store.segment_ids_where(
                path_glob=filters.path_glob,
                path_prefix=filters.path_prefix,
                min_duration_s=filters.min_duration_s,
                max_duration_s=filters.max_duration_s,
            )
        return rank(
            self.store,
            vectors,
            k,
            allowed_ids=allowed,
            per_file=per_file,
            exclude_file_ids=exclude_file_ids,
            limit=self._segment_count(),
        )

    # --- helpers -------------------------------------------------------------------------
    def _segment_count(self) -> int | None:
        count = getattr(self, "_segments", None)
        if count is None:
            count = self._segments = int(self.store.status().segments)
        return count

    def _searchable(self) -> None:
        if not self._segment_count():
            raise EmptyIndexError(
                f"The index at {self.path} is empty: add audio with `clapsearch index DIR` first."
            )

    def _stored_path(self, path: str | Path) -> str:
        """Indexes store absolute resolved paths; accept what the user typed too."""
        return str(Path(path).expanduser().resolve())

    def _file_id(self, path: str | Path) -> int | None:
        for candidate in (self._stored_path(path), str(path)):
            fid = self.store.file_id_for_path(candidate)
            if fid is not None:
                return int(fid)
        return None

    def _indexed_file_ids(self, path: str | Path) -> set[int]:
        """Ids of indexed files that are the query file: by path, and by content hash."""
        ids = set()
        fid = self._file_id(path)
        if fid is not None:
            ids.add(fid)
        by_hash = getattr(self.store, "file_ids_for_hash", None)
        if by_hash is not None:
            ids.update(int(i) for i in by_hash(file_sha256(path)))
        return ids


def index_model_name(meta: Any) -> str:
    """The model name an index was built from (what `load_embedder` takes)."""
    for attr in ("model_name", "model_source"):
        value = getattr(meta, attr, None)
        if value:
            return str(value)
    config = getattr(meta, "config", None) or {}
    value = config.get("model_name") if isinstance(config, dict) else None
    return str(value or meta.model)


__all__ = ["EmptyIndexError", "Library", "SearchFilter", "SearchHit", "check_queries"]
