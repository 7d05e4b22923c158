"""The typed records of an index database (its tables are declared with SQLAlchemy in
`clapsearch.index.tables`, which only the writer imports: readers use sqlite3 directly).

Tables (see docs/index-format.md for the commit protocol):
- `index_meta`: one row: the model (`model`: its identity key; `model_identity`: the whole
  `ModelIdentity` record as JSON, with the name to load it by), dim, schema version,
  `IndexConfig` JSON, a random `db_uuid`, and `generation`, bumped by every transaction that
  adds or removes segments. Version 1 databases have `model_source` (the name) instead of
  `model_identity`; readers build the record from the two strings
  (`ModelIdentity.from_legacy`), and the writer adds the column when it opens one.
- `files`: one row per indexed file: path (unique), size, mtime_ns, content hash, duration,
  sample rate, channels.
- `segments`: one row per window: file id (cascade delete), start/end seconds, and the vector
  as float16 little-endian bytes (`dim * 2`). Ids are AUTOINCREMENT, never reused, so a stale
  ANN cache can never map an id to the wrong window.
- `failures`: files that could not be indexed: path, reason (`AudioDecodeError.REASONS` plus
  `permission_denied`), detail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from clapsearch.identity import ModelIdentity

SCHEMA_VERSION = 3  # 2: index_meta.model_identity; 3: index_meta.ann_build
DEFAULT_EXTENSIONS = (
    ".wav",
    ".flac",
    ".mp3",
    ".ogg",
    ".oga",
    ".opus",
    ".m4a",
    ".aac",
    ".aif",
    ".aiff",
    ".wma",
    ".webm",
    ".mka",
    ".caf",
    ".w64",
    ".au",
)


@dataclass(frozen=True)
class IndexConfig:
    """How an index is built; stored as JSON in `index_meta.config_json`.

    `hop_s` None means the model's window (no overlap). `exact_threshold`: below this many
    vectors the FAISS cache is exact (flat inner product); above, `ann` ("auto", "hnsw", "ivf")
    tuned until recall@10 vs exact reaches `target_recall` on held-out text-like queries.
    """

    hop_s: float | None = None
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    exact_threshold: int = 50_000
    ann: str = "auto"
    target_recall: float = 0.95


# --- typed records returned by IndexReader ---------------------------------------------------
@dataclass(frozen=True)
class IndexMeta:
    model: str
    dim: int
    schema_version: int
    index_type: str
    recall_at_10: float | None
    config: IndexConfig = field(default_factory=IndexConfig)
    generation: int = 0
    db_uuid: str = ""
    model_identity: ModelIdentity | None = None  # `model` as a record (`.name` loads it)


@dataclass(frozen=True)
class SegmentRecord:
    id: int
    file_id: int
    path: str
    start_s: float
    end_s: float
    file_duration_s: float


@dataclass(frozen=True)
class FileRecord:
    """A file as the indexer saw it on disk (the `files` row without its id)."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    duration_s: float
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class IndexedFile:
    """A `files` row with its id and its windows' time spans (what the server shows)."""

    id: int
    record: FileRecord
    indexed_at: float
    spans: tuple[tuple[float, float], ...]  # (start_s, end_s) of each window, in time order


@dataclass(frozen=True)
class FailureRecord:
    path: str
    reason: str
    detail: str


@dataclass(frozen=True)
class IndexStatus:
    files: int
    segments: int
    failed: int
    duration_s: float
    model: str
    dim: int
    index_type: str
    recall_at_10: float | None
    bytes_on_disk: int

    def to_json(self) -> dict:
        """The `clapsearch status --json` contract."""
        return {
            "files": self.files,
            "segments": self.segments,
            "failed": self.failed,
            "duration_s": float(self.duration_s),
            "model": self.model,
            "dim": self.dim,
            "index_type": self.index_type,
            "recall_at_10": self.recall_at_10,
            "bytes_on_disk": self.bytes_on_disk,
        }
