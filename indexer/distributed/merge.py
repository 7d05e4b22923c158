"""`clapsearch index merge SHARDS... --index OUT`: shards -> one index database + one ANN cache.

1. Metadata and vectors go into the index database (the source of truth, as for
   `clapsearch index`), one transaction per shard, so a kill loses at most the shard being
   merged; files already in the database with the same size and mtime are skipped, so a re-run
   or a merge of new shards into an existing index does not redo what is there. The database
   assigns the segment ids (AUTOINCREMENT), and those ids are the ANN cache's ids.
2. The ANN cache is sized by the data: exact / HNSW / IVF in memory as `clapsearch index`
   builds them (`indexer.ann.build_ann`) while `n * dim * 4` bytes fit in `memory_gb`;
   IVF-PQ with on-disk inverted lists beyond (`indexer.ondisk`): trained once on a sample,
   the vectors streamed from the database in chunks, each chunk a shard with its segment ids,
   merged into one memory-mapped data file. The cache header points at the merged files; query
   and serve open them memory-mapped and re-rank the candidates exactly from the database.
3. Incremental (on-disk): a later merge keeps the trained quantizers, encodes only the segment
   ids above the cache's largest (AUTOINCREMENT: new ids are larger), merges the existing lists
   with them into a new data file, drops ids deleted since, and switches the header to it.
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from clapsearch.errors import ModelMismatchError, UsageError
from clapsearch.index.paths import ann_path, resolve_index_dir
from clapsearch.index.schema import DEFAULT_EXTENSIONS, FileRecord, IndexConfig
from indexer.distributed.shards import ShardFolder, read_layout, read_shard
from indexer.writer import IndexWriter

MEMORY_GB = 4.0  # in-memory caches up to this many GB of float32 vectors, on-disk IVF-PQ above
PQ_M = 64  # bytes per vector in the on-disk IVF-PQ codes (8 dims a byte at 512-d)
ONDISK_MIN = 4096  # fewer vectors cannot train 8-bit PQ codes (256 centroids each)
CHUNK = 200_000  # vectors encoded per on-disk shard


@dataclass
class MergeSummary:
    index_dir: str
    shards: int = 0
    files: int = 0
    unchanged: int = 0
    failed: int = 0
    segments_added: int = 0
    index_type: str = ""
    recall_at_10: float | None = None
    seconds: float = 0.0
    skipped_shards: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"merged {self.shards} shards: {self.files} files added, {self.unchanged} "
            f"unchanged, {self.failed} failed, {self.segments_added} segments, in "
            f"{self.seconds:.1f} s ({self.index_type} index)"
        )


def _shard_list(sources: list[str]) -> list[tuple[ShardFolder, str]]:
    """Each source is a shard folder (all its shards) or one `.shard` file."""
    out = []
    for src in sources:
        if src.endswith(".shard"):
            parent, name = src.rsplit("/", 1) if "/" in src else (".", src)
            out.append((ShardFolder(parent), name))
            continue
        folder = ShardFolder(src)
        names = folder.names()
        if not names:
            raise UsageError(f"{src} holds no shards (part-*.shard files).")
        out += [(folder, n) for n in names]
    return out


def merge(
    sources: list[str],
    index: str | None,
    ann: str = "auto",
    memory_gb: float = MEMORY_GB,
    text_vectors: np.ndarray | None = None,
) -> MergeSummary:
    """Merge shards into the index at `index` (module doc). `ann`: "auto", "memory" or
    "ondisk" (force the in-memory types or the on-disk IVF-PQ)."""
    from indexer.writer import writer_lock

    if ann not in ("auto", "memory", "ondisk"):
        raise UsageError(f"--ann must be auto, memory or ondisk, not {ann!r}.")
    t0 = time.perf_counter()
    index_dir = resolve_index_dir(index)
    summary = MergeSummary(str(index_dir))
    shards = _shard_list(sources)
    with writer_lock(index_dir):
        store = None
        try:
            for folder, name in shards:
                shard = read_shard(folder, name)
                store = store or _open(index_dir, shard.meta, read_layout(folder))
                if shard.meta["model"] != store.meta.model or shard.meta["dim"] != store.meta.dim:
                    raise ModelMismatchError(
                        f"{folder.path(name)} was embedded with model {shard.meta['model']}, "
                        f"but the index at {index_dir} holds {store.meta.model}."
                    )
                _merge_shard(store, shard, summary)
                summary.shards += 1
            if store is not None:
                _refresh(store, ann, memory_gb, text_vectors, summary)
        finally:
            if store is not None:
                store.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _open(index_dir: Path, meta: dict, layout: dict | None) -> IndexWriter:
    if IndexWriter.exists(index_dir):
        return IndexWriter.open(index_dir)
    extensions = tuple((layout or {}).get("extensions") or DEFAULT_EXTENSIONS)
    config = IndexConfig(hop_s=meta.get("hop_s"), extensions=extensions)
    return IndexWriter.create(index_dir, _identity(meta), config)


def _identity(meta: dict):
    """The shard's model record (synthetic shards in tests may carry only the key)."""
    from clapsearch.identity import ModelIdentity

    if meta.get("model_identity"):
        return ModelIdentity.from_json(meta["model_identity"])
    return ModelIdentity.from_legacy(meta["model"], "", int(meta["dim"]))


def _merge_shard(store: IndexWriter, shard, summary: MergeSummary) -> None:
    """One transaction: the shard's new or changed files (and failures) replace what the
    index holds at their paths; files already there unchanged are skipped."""
    states = store.file_states()
    starts = np.searchsorted(shard.file_index, np.arange(len(shard.files) + 1))
    with store.snapshot():
        for i, f in enumerate(shard.files):
            old = states.get(f["path"])
            if old is not None and old[0] == f["size"] and old[1] == f["mtime_ns"]:
                summary.unchanged += 1
                continue
            lo, hi = starts[i], starts[i + 1]
            record = FileRecord(
                f["path"],
                f["size"],
                f["mtime_ns"],
                f["content_hash"],
                f["duration_s"],
                f["sample_rate"],
                f["channels"],
            )
            spans = [(float(s), float(e)) for s, e in shard.spans[lo:hi]]
            store.add_file(record, spans, shard.vectors[lo:hi].astype(np.float32))
            summary.files += 1
            summary.segments_added += int(hi - lo)
        for f in shard.failures:
            store.record_failure(f["path"], f["reason"], f["detail"], f["size"], f["mtime_ns"])
            summary.failed += 1


def fits_in_memory(n: int, dim: int, memory_gb: float) -> bool:
    return n * dim * 4 <= memory_gb * 2**30


def _refresh(store: IndexWriter, ann: str, memory_gb, text_vectors, summary) -> None:
    from clapsearch.index.ann_cache import read_header
    from indexer.ann import build_ann

    n = store.status().segments
    header = read_header(ann_path(store.index_dir))
    was_ondisk = header is not None and header.ondisk is not None
    big = not fits_in_memory(n, store.meta.dim, memory_gb)
    ondisk = ann == "ondisk" or (ann == "auto" and (big or was_ondisk))
    if ondisk:
        report = build_ondisk(store, text_vectors)
    else:
        report = build_ann(store, text_vectors)
    summary.index_type, summary.recall_at_10 = report.index_type, report.recall_at_10


def ondisk_kind(n: int, dim: int) -> str:
    """IVF-PQ sized by the data: nlist ~ 4 sqrt(n) (a power of two, at least 64), `PQ_M`
    bytes a vector (fewer when dim / 8 is smaller)."""
    from indexer.ondisk import ivfpq_key

    nlist = 2 ** int(round(math.log2(max(64.0, 4 * math.sqrt(max(n, 1))))))
    m = min(PQ_M, max(1, dim // 8))
    while dim % m:
        m -= 1
    return ivfpq_key(nlist, m)


def build_ondisk(store: IndexWriter, text_vectors: np.ndarray | None = None):
    """Bring the on-disk IVF-PQ cache up to the database (module doc, steps 2-3)."""
    import faiss

    from clapsearch.index.ann_cache import AnnHeader, read_ann
    from indexer.ann import AnnReport, tune_ondisk, vector_mean
    from indexer.ondisk import add_shard, merge_shards, open_ondisk, train_ivfpq

    t0 = time.perf_counter()
    folder = store.index_dir
    meta = store.refresh_meta()
    old = read_ann(ann_path(folder))
    reuse = (
        old is not None
        and old.header.db_uuid == meta.db_uuid
        and old.header.ondisk is not None
        and old.header.index_type.startswith("ivfpq")
    )
    gen, live_ids = store.segment_ids()
    name = f"ann-{uuid.uuid4().hex[:12]}"
    work = folder / f"{name}.parts"
    work.mkdir()
    try:
        if reuse:
            kind = old.header.index_type
            trained = folder / old.header.ondisk.replace(".index", ".trained")
            after = int(old.ids[-1]) if len(old.ids) else -1
            mean = np.asarray(old.header.route_mean, np.float32)
            parts: list = [old.index]
        else:
            if len(live_ids) < ONDISK_MIN:
                raise UsageError(
                    f"An on-disk IVF-PQ cache needs at least {ONDISK_MIN} segments, the index "
                    f"has {len(live_ids)}; use --ann auto or memory."
                )
            kind = ondisk_kind(len(live_ids), meta.dim)
            nlist, m = (int(x) for x in kind.removeprefix("ivfpq").split("x"))
            rng = np.random.default_rng(0)
            size = min(len(live_ids), 64 * nlist)
            sample_ids = np.sort(rng.choice(live_ids, size=size, replace=False))
            _, sample = store.vectors_for(sample_ids)
            trained = train_ivfpq(sample, nlist, m, work / "trained.index")
            mean = vector_mean(sample)
            after = -1
            parts = []
        shard_files = []
        for i, (ids, vecs) in enumerate(store.iter_vectors(after=after, chunk=CHUNK)):
            shard_files.append(add_shard(trained, vecs, ids, work / f"{i:05d}.index"))
        index_file = merge_shards(trained, [*parts, *shard_files], folder, name)
        index = open_ondisk(index_file, writable=True)
        dead = np.setdiff1d(old.ids, live_ids) if reuse else np.zeros(0, np.int64)
        if len(dead):  # files replaced or removed since the last merge
            index.remove_ids(faiss.IDSelectorBatch(dead))
        np.save(folder / f"{name}.ids.npy", live_ids)  # what the lists now hold, sorted
        shutil.copyfile(trained, folder / f"{name}.trained")
        header = AnnHeader(
            db_uuid=meta.db_uuid,
            generation=gen,
            model=meta.model,
            dim=meta.dim,
            index_type=kind,
            ntotal=int(index.ntotal),
            route_mean=[float(x) for x in mean],
            ondisk=index_file.name,
        )
        params, recall = tune_ondisk(store, header, index, text_vectors)
        header = replace(header, params=params, recall_at_10=recall)
        store.write_cache(header, None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    remove_unreferenced(folder)
    return AnnReport(kind, int(header.ntotal), recall, params, time.perf_counter() - t0)


def remove_unreferenced(folder: Path) -> None:
    """On-disk cache files (`ann-*.index`, `.ivfdata`, `.ids.npy`, `.trained`) that the
    current header does not name: left by earlier merges or killed ones."""
    from clapsearch.index.ann_cache import read_header

    header = read_header(ann_path(folder))
    keep = header.ondisk.removesuffix(".index") if header and header.ondisk else None
    for p in folder.glob("ann-*"):
        if keep is None or not p.name.startswith(keep + "."):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


__all__ = ["MergeSummary", "build_ondisk", "fits_in_memory", "merge", "ondisk_kind"]
