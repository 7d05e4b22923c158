"""IVF-PQ with on-disk inverted lists: train once on a sample, add shards, merge, open mmapped.

The autofaiss / LAION-5B recipe (faiss `contrib/ondisk.py`) for indexes that do not fit in
memory:

1. `train_ivfpq`: the coarse quantizer (k-means, `nlist` lists) and the product quantizer
   (`m` sub-quantizers of 8 bits: `m` bytes a vector) are trained ONCE on a sample; the empty
   trained index is written to a file that every shard starts from.
2. `add_shard`: each shard of vectors (any machine, any order) is encoded into its own copy of
   the trained index, with its global ids (segment ids), and written atomically. Shards are
   independent, so they are built in parallel and a lost one is redone alone.
3. `merge_shards`: the shards' lists are concatenated (as `faiss.contrib.ondisk.merge_ondisk`
   does) into one
   `OnDiskInvertedLists` data file (`<name>.ivfdata`, codes + ids list by list), and the index
   (quantizers + list offsets, a few MB) is written beside it (`<name>.index`).
4. `open_ondisk`: the data file is found beside the index file wherever the folder moved
   (`clapsearch.index.ann_cache.read_ondisk_index`), and memory-mapped: a query
   touches only the lists it probes, and resident memory stays far below the index size.

Why a unique name per merge: the `.index` file records its data file's name, so a merge
writes a new pair under a fresh name and only then is it referenced (by the ANN cache header,
or by whoever calls this); a kill leaves unreferenced files, never a half-written referenced one.

Scores of an IVF-PQ search are approximations (PQ codes); callers re-rank a candidate pool
exactly from the stored vectors (`clapsearch.index.ann_search.ann_search`), so what users see are exact
cosines.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

PQ_BITS = 8
KMEANS_NITER = 10  # coarse k-means iterations: routing only, nprobe is tuned afterwards


def ivfpq_key(nlist: int, m: int) -> str:
    """The `index_type` string of such an index (what ANN cache headers record)."""
    return f"ivfpq{nlist}x{m}"


def parse_ivfpq_key(key: str) -> tuple[int, int]:
    nlist, m = key.removeprefix("ivfpq").split("x")
    return int(nlist), int(m)


def _atomic_write_index(index, path: Path) -> None:
    import faiss

    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        faiss.write_index(index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def train_ivfpq(
    sample: np.ndarray, nlist: int, m: int, out: Path, niter: int = KMEANS_NITER, seed: int = 0
) -> Path:
    """Train an empty `IVF{nlist},PQ{m}` inner-product index on `sample` `(n, dim)` float32
    unit vectors (faiss wants 39-256 points a list; the PQ uses at most 65536 of them) and
    write it to `out`. GPUs, when faiss sees any, run the coarse k-means."""
    import faiss

    dim = sample.shape[1]
    index = faiss.index_factory(dim, f"IVF{nlist},PQ{m}x{PQ_BITS}", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.niter = niter
    ivf.cp.seed = seed
    if faiss.get_num_gpus() > 0:
        ivf.clustering_index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(dim))
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    ivf.clustering_index = None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_index(index, out)
    return out


def add_shard(trained: Path, vectors: np.ndarray, ids: np.ndarray, out: Path) -> Path:
    """Encode `vectors` `(n, dim)` with global `ids` `(n,)` int64 into a copy of the trained
    index and write it atomically to `out` (in-memory lists: a shard fits in memory)."""
    import faiss

    index = faiss.read_index(str(trained))
    if index.ntotal:
        raise ValueError(f"{trained} is not an empty trained index")
    step = 1 << 16  # bounded float32 copies when `vectors` is float16 or memory-mapped
    for lo in range(0, len(ids), step):
        x = np.ascontiguousarray(vectors[lo : lo + step], dtype=np.float32)
        index.add_with_ids(x, np.ascontiguousarray(ids[lo : lo + step], dtype=np.int64))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_index(index, out)
    return out


def merge_shards(trained: Path, shards: Sequence, folder: Path, name: str) -> Path:
    """Merge shards into `folder/<name>.ivfdata` + `folder/<name>.index`; returns the
    `.index` path. `shards` are shard files, or indexes already open (an earlier merged
    on-disk index, for incremental merges). `name` must be new (see module doc). Lists are
    concatenated in shard order, so ids within a list keep the shards' order (what
    `faiss.contrib.ondisk.merge_ondisk` does, which takes file names only)."""
    import faiss

    folder = Path(folder)
    data, index_file = folder / f"{name}.ivfdata", folder / f"{name}.index"
    if data.exists() or index_file.exists():
        raise FileExistsError(f"{data} already exists: merges write under a new name")
    index = faiss.read_index(str(trained))
    ivf = faiss.extract_index_ivf(index)
    sources, keep = faiss.InvertedListsPtrVector(), []
    for shard in shards:
        part = shard
        if isinstance(shard, (str, Path)):  # mmapped: shards may exceed memory together
            part = faiss.read_index(str(shard), faiss.IO_FLAG_MMAP)
        keep.append(part)
        part_ivf = faiss.extract_index_ivf(part)
        if part_ivf.nlist != ivf.nlist or part_ivf.code_size != ivf.code_size:
            raise ValueError(f"{shard} was not made from {trained}")
        sources.push_back(part_ivf.invlists)
    lists = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(data.absolute()))
    ntotal = lists.merge_from_multiple(sources.data(), sources.size(), False)
    index.ntotal = ivf.ntotal = ntotal
    ivf.replace_invlists(lists, True)
    lists.this.disown()
    with open(data, "rb") as fh:
        os.fsync(fh.fileno())
    _atomic_write_index(index, index_file)
    del keep
    return index_file


def open_ondisk(index_file: Path, writable: bool = False):
    """The merged index, its inverted lists memory-mapped from the data file beside it
    (read-only unless `writable`: removing ids rewrites lists in place)."""
    from clapsearch.index.ann_cache import read_ondisk_index

    return read_ondisk_index(index_file, writable)


def files_of(index_file: Path) -> tuple[Path, Path]:
    """`(index file, data file)` of a merged index: what to keep, copy or delete together."""
    index_file = Path(index_file)
    return index_file, index_file.with_suffix(".ivfdata")


__all__ = [
    "add_shard",
    "files_of",
    "ivfpq_key",
    "merge_shards",
    "open_ondisk",
    "parse_ivfpq_key",
    "train_ivfpq",
]
