"""`SearchService`: everything the routes do, over the same library API as the CLI.

JSON shapes are the CLI's `--json` ones (`clapsearch query`, `classify`, `status`), so scripts
read both alike; a search hit additionally carries `file_id` (what the audio, peaks and
similar endpoints take) and `duration` (the whole file's, seconds):

    {"query": str, "results": [{"path", "score", "start", "end", "missing", "file_id", "duration"}]}

Thread model: one `Library` shared by every request thread (it is thread-safe: each thread
reads through its own SQLite connection, model forwards take the Embedder's lock; see
`clapsearch.library`). Notes for the client are collected per thread. Each search runs inside
one snapshot (of its thread's connection), so a hit's `file_id` and `duration` come from the same index state as the
hit itself: an index being written by another process (`clapsearch index`) is seen file by
file, never half a file, and new files appear without a restart (the store follows the
database's generation).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from clapsearch.errors import UsageError
from clapsearch.index.ranking import SearchFilter, SearchHit
from clapsearch.index.schema import IndexedFile
from clapsearch.library import Library, check_queries
from clapsearch.server.config import ServerConfig
from clapsearch.server.errors import NotFound


@dataclass(frozen=True)
class Query:
    """One search request's common knobs (validated by `SearchService.check`)."""

    k: int = 10
    filters: SearchFilter = SearchFilter()
    segments: bool = False


class SearchService:
    def __init__(self, config: ServerConfig, embedder=None):
        self.config = config
        self._local = threading.local()  # .notes: what this thread's request was told
        self.lib = Library(
            config.index,
            config.model,
            device=config.device,
            precision=config.precision,
            embedder=embedder,
            notify=self._note,
        )

    def _note(self, message: str) -> None:
        self._notes().append(message)

    def _notes(self) -> list[str]:
        if not hasattr(self._local, "notes"):
            self._local.notes = []
        return self._local.notes

    def close(self) -> None:
        self.lib.close()

    def warm(self) -> None:
        """Open the index and load the model now (first request fast), one text encode too."""
        self.lib.store.status()
        self.lib.embedder.embed_text(["warm up"])

    # --- checks ----------------------------------------------------------------------------
    def check(self, query: Query) -> Query:
        limit = self.config.max_k
        if not 1 <= query.k <= limit:
            raise UsageError(f"k must be between 1 and {limit}, not {query.k}.")
        query.filters.validate()
        return query

    def check_texts(self, texts: Sequence[str]) -> list[str]:
        if len(texts) > self.config.max_queries:
            raise UsageError(
                f"At most {self.config.max_queries} queries per request, not {len(texts)}."
            )
        for text in texts:
            if len(text) > self.config.max_query_chars:
                raise UsageError(
                    f"A query is at most {self.config.max_query_chars} characters long."
                )
        return check_queries(list(texts))

    # --- searches --------------------------------------------------------------------------
    def search_text(self, texts: Sequence[str], query: Query) -> dict[str, Any]:
        texts = self.check_texts(texts)
        query = self.check(query)
        with self.lib.store.snapshot():
            self._notes().clear()
            find = self.lib.search_segments if query.segments else self.lib.search
            hits = find(texts, query.k, query.filters)
            return self._payload(texts, hits)

    def search_waveform(self, label: str, path: str, wave: np.ndarray, query: Query):
        """An uploaded clip (already decoded at the model's rate) -> the search payload; the
        clip's own file is left out when it is in the index (same bytes)."""
        query = self.check(query)
        with self.lib.store.snapshot():
            self._notes().clear()
            hits = self.lib.search_audio(
                path, query.k, query.filters, per_file=not query.segments, waveform=wave
            )
            return self._payload([label], [hits])

    def expected_rate(self) -> int:
        return int(self.lib.embedder.sample_rate)

    def similar(self, file_id: int, at: float | None, query: Query) -> dict[str, Any]:
        query = self.check(query)
        with self.lib.store.snapshot():
            self._notes().clear()
            info = self._file(file_id)
            hits = self.lib.similar_to(
                info.record.path, query.k, query.filters, per_file=not query.segments, at=at
            )
            return self._payload([info.record.path], [hits])

    def _payload(self, labels: Sequence[str], hits: Sequence[list[SearchHit]]) -> dict:
        """Inside the search's snapshot: hits -> the CLI's objects plus ids and durations."""
        paths = [h.path for hits_ in hits for h in hits_]
        known = self.lib.store.files_by_path(paths)
        out = []
        for label, results in zip(labels, hits, strict=True):
            rows = []
            for h in results:
                if h.path not in known:  # cannot happen inside one snapshot; never a bad id
                    continue
                fid, duration = known[h.path]
                rows.append(dict(h.to_dict(), file_id=fid, duration=duration))
            out.append({"query": label, "results": rows})
        return {"queries": out, "notes": list(self._notes())}

    # --- files, classification, status ----------------------------------------------------
    def _file(self, file_id: int) -> IndexedFile:
        info = self.lib.store.file_info(file_id)
        if info is None:
            raise NotFound(f"No indexed file has id {file_id}.")
        return info

    def indexed_file(self, file_id: int) -> IndexedFile:
        return self._file(file_id)

    def file(self, file_id: int) -> dict[str, Any]:
        info = self.indexed_file(file_id)
        r = info.record
        return {
            "file_id": info.id,
            "path": r.path,
            "name": os.path.basename(r.path),
            "folder": os.path.dirname(r.path),
            "duration": r.duration_s,
            "sample_rate": r.sample_rate,
            "channels": r.channels,
            "size": r.size,
            "indexed_at": info.indexed_at,
            "segments": [{"start": a, "end": b} for a, b in info.spans],
        }

    def classify(
        self,
        file_id: int,
        labels: Sequence[str],
        template: str | None,
        multi_label: bool,
        top: int | None,
        timeline: bool,
    ) -> dict[str, Any]:
        """The CLI's `classify --json` object for one indexed file, plus its `file_id`."""
        from clapsearch.classify import classify

        if len(labels) > 256:
            raise UsageError(f"At most 256 labels, not {len(labels)}.")
        kw = {} if template is None else {"template": template}
        info = self._file(file_id)
        (result,) = classify(
            [info.record.path],
            list(labels),
            multi_label=multi_label,
            top=top,
            timeline=timeline,
            embedder=self.lib.embedder,
            **kw,
        )
        return dict(result.to_dict(), file_id=file_id)

    def status(self) -> dict[str, Any]:
        """`clapsearch status --json`, plus the index folder."""
        return dict(self.lib.store.status().to_json(), index=str(self.lib.path))

    def failures(self) -> dict[str, Any]:
        """`clapsearch status --errors --json`'s `errors` list."""
        fails = self.lib.store.failures()
        return {"errors": [{"path": f.path, "reason": f.reason, "detail": f.detail} for f in fails]}

    def folders(self) -> dict[str, Any]:
        rows = self.lib.store.folders()
        return {"folders": [{"folder": f, "files": n} for f, n in rows]}


__all__ = ["Query", "SearchService"]
