"""`clapsearch index shard` and `clapsearch index merge`: embedding past one machine.

    clapsearch index shard /data/audio --shards /shared/shards                  # this machine
    torchrun --nproc_per_node 4 -m clapsearch.cli index shard /data/audio \\
        --shards /shared/shards --runner ranks                                    # 4 GPUs
    clapsearch index shard /data/audio --shards s3://b/shards --runner ray --ray-address auto
    clapsearch index merge /shared/shards --index /srv/clapsearch/index

docs/scale.md says how to start each runner on a cluster.
"""

from __future__ import annotations

from pathlib import Path

import typer

from clapsearch.cli.app import app
from clapsearch.cli.common import DeviceOption, JsonOption, ModelOption, PrecisionOption


@app.command("index-shard")
def index_shard(
    dirs: list[Path] = typer.Argument(..., help="Folders (or files) to embed, recursively."),
    shards: str = typer.Option(
        ..., "--shards", "-s", help="Shard folder: a path on a shared file system or an fsspec URL."
    ),
    runner: str = typer.Option(
        "sequential", "--runner", help="sequential, ranks (torchrun / SLURM) or ray."
    ),
    partitions: int = typer.Option(
        None,
        "--partitions",
        min=1,
        show_default=False,
        help="Partitions (default: the shard folder's, else ~1000 files each).",
    ),
    model: str = ModelOption,
    extensions: str = typer.Option(
        None, "--extensions", "-e", show_default=False, help="Comma-separated extensions."
    ),
    hop: float = typer.Option(
        None, "--hop", min=0.1, show_default=False, help="Seconds between window starts."
    ),
    workers: int = typer.Option(
        None, "--workers", "-w", min=0, show_default=False, help="Decoding processes per rank."
    ),
    batch_size: int = typer.Option(
        None, "--batch-size", min=1, show_default=False, help="Windows per model forward."
    ),
    ray_address: str = typer.Option(
        None, "--ray-address", show_default=False, help="Ray cluster ('auto': `ray start`'s)."
    ),
    ray_actors: int = typer.Option(1, "--ray-actors", min=1, help="Model actors (Ray)."),
    ray_gpus: float = typer.Option(0.0, "--ray-gpus-per-actor", min=0, help="GPUs per actor."),
    device: str = DeviceOption,
    precision: str = PrecisionOption,
    as_json: bool = JsonOption,
) -> None:
    """Embed DIRS into one shard per partition; complete partitions are skipped, so a
    re-run after a crash redoes only the unfinished ones. Merge with `clapsearch index merge`."""
    from indexer.distributed.runners import ShardOptions, run_shards

    exts = tuple(e.strip() for e in extensions.split(",") if e.strip()) if extensions else None
    opts = ShardOptions(
        roots=tuple(str(d) for d in dirs),
        shards=shards,
        model=model,
        partitions=partitions,
        hop_s=hop,
        extensions=exts,
        workers=workers,
        device=device,
        precision=precision,
        batch_size=batch_size,
        runner=runner,
    )
    ray = {"address": ray_address, "actors": ray_actors, "gpus_per_actor": ray_gpus}
    summary = run_shards(opts, **(ray if runner == "ray" else {}))
    if as_json:
        from clapsearch.cli.common import print_json

        print_json(
            {
                "shards": summary.shards,
                "partitions": summary.partitions,
                "embedded": summary.done,
                "skipped": summary.skipped,
                "files": summary.files,
                "failed": summary.failed,
                "segments": summary.segments,
                "seconds": round(summary.seconds, 3),
            }
        )
    else:
        typer.echo(summary.line(), err=True)


@app.command("index-merge")
def index_merge(
    sources: list[str] = typer.Argument(..., help="Shard folders (or single .shard files)."),
    index_path: Path = typer.Option(
        None, "--index", "-i", show_default=False, help="Index directory to create or update."
    ),
    ann: str = typer.Option(
        "auto", "--ann", help="auto (sized by the data), memory, or ondisk (IVF-PQ)."
    ),
    memory_gb: float = typer.Option(
        4.0, "--memory-gb", min=0.0, help="Largest in-memory cache (float32 vectors), GB."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Merge embedding shards into an index: metadata into its database, vectors into one
    ANN cache (on-disk IVF-PQ, memory-mapped, when it would not fit in memory)."""
    from indexer.distributed.merge import merge

    summary = merge(list(sources), str(index_path) if index_path else None, ann, memory_gb)
    if as_json:
        from clapsearch.cli.common import print_json

        print_json(
            {
                "index": summary.index_dir,
                "shards": summary.shards,
                "files": summary.files,
                "unchanged": summary.unchanged,
                "failed": summary.failed,
                "segments_added": summary.segments_added,
                "index_type": summary.index_type,
                "recall_at_10": summary.recall_at_10,
                "seconds": round(summary.seconds, 3),
            }
        )
    else:
        typer.echo(summary.line(), err=True)
