"""Embedding shards: one file per partition, written whole or not at all.

A shard folder (a local path, or any fsspec URL whose backend is installed: `s3://`,
`gs://`, ...) holds:

- `layout.json`: what every shard in it shares: number of partitions and the hash that
  assigns files to them, model identity (key and record, with the name it loads by), dim, hop,
  extensions. Written by the first
  worker; every later worker and run must agree with it (another model or partition count is
  refused: the shards would not merge).
- `part-<p>-of-<P>.shard`: partition p, an `.npz` with `vectors` `(n, dim)` float16 (what an
  index stores), `file_index` `(n,)` int32 (row in the file list), `spans` `(n, 2)` float64
  (start, end seconds) and `meta` (UTF-8 JSON): the layout's identity fields, the partition,
  its files (key, path, size, mtime_ns, content hash, duration, sample rate, channels) and
  the files that failed (key, path, size, mtime_ns, reason, detail).

Atomicity: locally the shard is written to `<name>.tmp-<pid>-*`, fsynced and `os.replace`d
(`clapsearch.atomic`); on an object store one PUT makes the object appear whole. A killed
worker therefore leaves no shard, or a temporary sibling that the next run over that partition
deletes. A shard is complete for a run when its (key, size, mtime_ns) list equals the
partition's files on disk now: such partitions are skipped, the others are (re)done whole.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clapsearch.errors import UsageError

SHARD_FORMAT = "clapsearch-shard-1"
LAYOUT = "layout.json"
LAYOUT_KEYS = ("partitions", "partition_hash", "model", "dim", "hop_s")


def shard_name(partition: int, partitions: int) -> str:
    return f"part-{partition:05d}-of-{partitions:05d}.shard"


class ShardFolder:
    """Where shards live: a local folder, or an fsspec URL (its backend installed by the
    user: `pip install s3fs` for `s3://`, `gcsfs` for `gs://`, ...)."""

    def __init__(self, url: str | os.PathLike):
        url = os.fspath(url)
        self.url = url
        self.fs = None
        if "://" in url and not url.startswith("file://"):
            try:
                import fsspec

                self.fs, self.root = fsspec.core.url_to_fs(url)
            except ImportError as e:
                raise UsageError(
                    f"Cannot open {url}: its fsspec backend is not installed ({e.name or e}); "
                    f"install it (e.g. `pip install s3fs` for s3://)."
                ) from None
            except ValueError as e:
                raise UsageError(f"Cannot open {url}: {e}.") from None
            self.fs.makedirs(self.root, exist_ok=True)
        else:
            self.root = str(Path(url.removeprefix("file://")).expanduser().absolute())
            Path(self.root).mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def exists(self, name: str) -> bool:
        return self.fs.exists(self.path(name)) if self.fs else os.path.exists(self.path(name))

    def read_bytes(self, name: str) -> bytes:
        if self.fs:
            with self.fs.open(self.path(name), "rb") as fh:
                return fh.read()
        return Path(self.path(name)).read_bytes()

    def write_bytes(self, name: str, data: bytes) -> None:
        """Whole or nothing (module doc)."""
        if self.fs:
            with self.fs.open(self.path(name), "wb") as fh:
                fh.write(data)
            return
        from clapsearch.atomic import write_bytes

        write_bytes(self.path(name), data)

    def names(self, suffix: str = ".shard") -> list[str]:
        if self.fs:
            entries = [p.rsplit("/", 1)[-1] for p in self.fs.ls(self.root, detail=False)]
        else:
            entries = os.listdir(self.root)
        return sorted(n for n in entries if n.endswith(suffix))

    def remove_temporaries(self, name: str) -> None:
        """Temporary siblings of `name` left by killed workers (local folders only)."""
        if self.fs:
            return
        from clapsearch.atomic import temp_prefix

        for tmp in Path(self.root).glob(temp_prefix(Path(name)) + "*"):
            tmp.unlink(missing_ok=True)


def read_layout(folder: ShardFolder) -> dict | None:
    if not folder.exists(LAYOUT):
        return None
    return json.loads(folder.read_bytes(LAYOUT).decode())


def agree_layout(folder: ShardFolder, layout: dict) -> dict:
    """Write `layout` if the folder has none, else check that it matches; returns the
    folder's layout. Concurrent first workers write identical files (last rename wins)."""
    old = read_layout(folder)
    if old is None:
        folder.write_bytes(LAYOUT, json.dumps(layout, indent=1).encode())
        return layout
    for key in LAYOUT_KEYS:
        if key in layout and layout[key] is not None and old.get(key) != layout[key]:
            raise UsageError(
                f"The shards in {folder.url} were made with {key} = {old.get(key)!r}, not "
                f"{layout[key]!r}; use another shard folder, or the same settings."
            )
    return old


@dataclass
class Shard:
    """One partition's embeddings (see module doc)."""

    meta: dict
    vectors: np.ndarray  # (n, dim) float16
    file_index: np.ndarray  # (n,) int32
    spans: np.ndarray  # (n, 2) float64

    @property
    def files(self) -> list[dict]:
        return self.meta["files"]

    @property
    def failures(self) -> list[dict]:
        return self.meta["failures"]

    def signature(self) -> set[tuple[str, int, int]]:
        return {(f["key"], f["size"], f["mtime_ns"]) for f in self.files + self.failures}


def read_shard(folder: ShardFolder, name: str) -> Shard:
    with np.load(io.BytesIO(folder.read_bytes(name))) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        if meta.get("format") != SHARD_FORMAT:
            raise UsageError(f"{folder.path(name)} is not a clapsearch shard.")
        return Shard(meta, z["vectors"], z["file_index"], z["spans"])


@dataclass
class ShardWriter:
    """The writer stage of a partition (what `IndexWriter` is to `clapsearch index`): takes
    each embedded or failed file, writes the partition's shard once, at the end."""

    folder: ShardFolder
    layout: dict
    partition: int
    keys: dict[str, str]  # path -> key, for this partition's files
    _files: list[dict] = field(default_factory=list)
    _failures: list[dict] = field(default_factory=list)
    _vectors: list[np.ndarray] = field(default_factory=list)
    _spans: list[list[tuple[float, float]]] = field(default_factory=list)  # per file

    def add_file(self, record, spans, vectors: np.ndarray) -> None:
        """One embedded file: `record` a `FileRecord`, `vectors` `(n, dim)` unit rows."""
        self._files.append(
            {
                "key": self.keys[record.path],
                "path": record.path,
                "size": record.size,
                "mtime_ns": record.mtime_ns,
                "content_hash": record.content_hash,
                "duration_s": record.duration_s,
                "sample_rate": record.sample_rate,
                "channels": record.channels,
            }
        )
        self._vectors.append(np.asarray(vectors, dtype="<f2"))
        self._spans.append([(float(s), float(e)) for s, e in spans])

    def record_failure(self, path: str, reason: str, detail: str, size: int, mtime_ns: int):
        self._failures.append(
            {
                "key": self.keys[path],
                "path": path,
                "size": size,
                "mtime_ns": mtime_ns,
                "reason": reason,
                "detail": detail[:500],
            }
        )

    @property
    def count(self) -> int:
        return len(self._files) + len(self._failures)

    def finish(self) -> str:
        """Write the shard (whole or not at all), files in key order whatever order they were
        embedded in (so every runner writes the same shard); returns its name."""
        dim = int(self.layout["dim"])
        order = sorted(range(len(self._files)), key=lambda i: self._files[i]["key"])
        files = [self._files[i] for i in order]
        vectors = [self._vectors[i] for i in order]
        spans = [self._spans[i] for i in order]
        meta = {
            "format": SHARD_FORMAT,
            **{k: self.layout.get(k) for k in (*LAYOUT_KEYS, "model_identity")},
            "partition": self.partition,
            "files": files,
            "failures": sorted(self._failures, key=lambda f: f["key"]),
        }
        vecs = np.concatenate(vectors) if vectors else np.zeros((0, dim), "<f2")
        buf = io.BytesIO()
        np.savez(
            buf,
            vectors=vecs,
            file_index=np.repeat(np.arange(len(files), dtype=np.int32), [len(v) for v in vectors]),
            spans=np.asarray([s for per in spans for s in per], np.float64).reshape(-1, 2),
            meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
        )
        name = shard_name(self.partition, int(self.layout["partitions"]))
        self.folder.write_bytes(name, buf.getvalue())
        return name


__all__ = [
    "LAYOUT",
    "SHARD_FORMAT",
    "Shard",
    "ShardFolder",
    "ShardWriter",
    "agree_layout",
    "read_layout",
    "read_shard",
    "shard_name",
]
