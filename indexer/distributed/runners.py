"""Embed partitions into shards: one code path, three schedulers.

Every runner runs the single-machine indexer's stages (STYLE.md rule 13):
reader `indexer.decode.decode_parts` -> mapper `indexer.pipeline.embed_messages` -> writer (here a
`ShardWriter` per partition, where `clapsearch index` has its `IndexWriter`). Only who runs
which partition differs:

- `sequential`: this process, every pending partition in turn (decoding in a `DecodePool`,
  as `clapsearch index` does);
- `ranks`: torchrun / SLURM: rank r of W takes partitions p with p % W == r, one device each
  (`cuda:<LOCAL_RANK>` when a GPU is there). Ranks never talk to each other: they share only
  the shard folder, so a lost rank costs its unfinished partition and a re-run redoes it;
- `ray` (`indexer.distributed.ray_runner`): Ray Data, decoding on CPU tasks and the model in
  an actor pool.

    torchrun --nproc_per_node 4 -m indexer.distributed shard /data/audio --shards /shared/shards
    srun -N 8 --ntasks-per-node 4 --gpus-per-task 1 \
        python -m indexer.distributed shard /data/audio --shards /shared/shards --runner ranks
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from clapsearch.errors import UsageError
from clapsearch.index.paths import normalize_path
from clapsearch.index.schema import DEFAULT_EXTENSIONS
from indexer.distributed.partition import (
    PARTITION_HASH,
    WorkFile,
    assign,
    default_partitions,
    partitions_of_rank,
    rank_from_env,
)
from indexer.distributed.shards import (
    ShardFolder,
    ShardWriter,
    agree_layout,
    read_layout,
    read_shard,
    shard_name,
)
from indexer.pipeline import DecodePool, DecodeTask, Embedded, default_workers, embed_files

RUNNERS = ("sequential", "ranks", "ray")


@dataclass(frozen=True)
class ShardOptions:
    roots: tuple[str, ...]
    shards: str  # the shard folder (path or fsspec URL)
    model: str | None = None
    partitions: int | None = None  # None: the folder's, else ~1000 files each
    hop_s: float | None = None
    extensions: tuple[str, ...] | None = None
    workers: int | None = None  # decode processes (sequential / ranks)
    device: str = "auto"
    precision: str = "auto"
    batch_size: int | None = None
    runner: str = "sequential"


@dataclass
class ShardSummary:
    shards: str
    partitions: int = 0
    done: list[int] = field(default_factory=list)  # partitions (re)written by this process
    skipped: list[int] = field(default_factory=list)  # complete before this run
    files: int = 0
    failed: int = 0
    segments: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{len(self.done)} partitions embedded ({self.files} files, {self.segments} "
            f"segments, {self.failed} failed), {len(self.skipped)} already complete, in "
            f"{self.seconds:.1f} s"
        )


def model_source(name: str | None) -> str:
    """The name to load the model by, as indexes record it (`clapsearch.sources`)."""
    from clapsearch.sources import canonical_name, resolve_model_name

    return canonical_name(resolve_model_name(name))


def load_model(opts: ShardOptions, device: str | None = None):
    from clapsearch.sources import load_embedder

    e = load_embedder(
        model_source(opts.model), device=device or opts.device, precision=opts.precision
    )
    if opts.batch_size:
        e.audio_batch_size = opts.batch_size
    return e


def plan(opts: ShardOptions, embedder) -> tuple[ShardFolder, dict, dict[int, list[WorkFile]]]:
    """Scan, agree on the folder's layout, and list each partition's files."""
    for r in opts.roots:
        if not os.path.exists(normalize_path(r)):
            raise UsageError(f"{normalize_path(r)} does not exist.")
    folder = ShardFolder(opts.shards)
    old = read_layout(folder)
    roots = [normalize_path(r) for r in opts.roots]
    extensions = opts.extensions or (old or {}).get("extensions") or DEFAULT_EXTENSIONS
    partitions = opts.partitions or (old or {}).get("partitions")
    if partitions is None:
        from indexer.scan import scan

        partitions = default_partitions(len(scan(roots, extensions)[0]))
    layout = agree_layout(
        folder,
        {
            "partitions": int(partitions),
            "partition_hash": PARTITION_HASH,
            "model": embedder.identity,
            "model_identity": embedder.model_identity.to_json(),
            "dim": int(embedder.dim),
            "hop_s": opts.hop_s,
            "extensions": list(extensions),
        },
    )
    groups, _ = assign(roots, layout["extensions"], layout["partitions"])
    return folder, layout, groups


def is_complete(folder: ShardFolder, layout: dict, p: int, files: list[WorkFile]) -> bool:
    """The partition's shard exists and covers exactly these files as they are now."""
    name = shard_name(p, layout["partitions"])
    if not folder.exists(name):
        return False
    try:
        shard = read_shard(folder, name)
    except Exception:  # unreadable: redo it
        return False
    return shard.signature() == {(w.key, w.file.size, w.file.mtime_ns) for w in files}


def write_partition(writer: ShardWriter, items, summary: ShardSummary) -> None:
    """The writer stage: every embedded or failed file of one partition, then the shard."""
    for item in items:
        if isinstance(item, Embedded):
            writer.add_file(item.record, item.spans, item.vectors)
            summary.files += 1
            summary.segments += len(item.spans)
        else:
            writer.record_failure(item.path, item.reason, item.detail, item.size, item.mtime_ns)
            summary.failed += 1
    writer.finish()
    summary.done.append(writer.partition)


def run_partitions(opts: ShardOptions, rank: int = 0, world: int = 1) -> ShardSummary:
    """Embed this rank's pending partitions, one after another, in this process."""
    t0 = time.perf_counter()
    summary = ShardSummary(opts.shards)
    pool = DecodePool(default_workers() if opts.workers is None else opts.workers)
    try:
        embedder = load_model(opts, _rank_device(opts.device))
        folder, layout, groups = plan(opts, embedder)
        summary.partitions = layout["partitions"]
        for p in partitions_of_rank(layout["partitions"], rank, world):
            files = groups[p]
            if is_complete(folder, layout, p, files):
                summary.skipped.append(p)
                continue
            name = shard_name(p, layout["partitions"])
            folder.remove_temporaries(name)
            writer = ShardWriter(folder, layout, p, {w.file.path: w.key for w in files})
            tasks = [DecodeTask(w.file, None) for w in files]
            write_partition(writer, embed_files(tasks, embedder, layout["hop_s"], pool), summary)
    finally:
        pool.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _rank_device(device: str) -> str:
    """One GPU per rank: `cuda:<LOCAL_RANK>` (torchrun) or `cuda:<SLURM_LOCALID>` when the
    device is left to "auto" and CUDA is there."""
    if device != "auto":
        return device
    local = os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID"))
    if local is None:
        return device
    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(local) % torch.cuda.device_count()}"
    return device


def run_shards(opts: ShardOptions, **ray_options) -> ShardSummary:
    """`clapsearch index shard`: the runner `opts.runner` over the pending partitions."""
    if opts.runner not in RUNNERS:
        raise UsageError(f"Unknown runner {opts.runner!r}: use one of {', '.join(RUNNERS)}.")
    if opts.runner == "ray":
        from indexer.distributed.ray_runner import run_ray

        return run_ray(opts, **ray_options)
    rank, world = rank_from_env() if opts.runner == "ranks" else (0, 1)
    return run_partitions(opts, rank, world)


__all__ = [
    "RUNNERS",
    "ShardOptions",
    "ShardSummary",
    "is_complete",
    "plan",
    "run_partitions",
    "run_shards",
    "write_partition",
]
