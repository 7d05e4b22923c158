"""The Ray Data runner (`pip install clapsearch[ray]`): the same stages on a Ray cluster.

    ray start --head                                    # on the head node
    ray start --address HEAD:6379                       # on every other node
    clapsearch index shard /data/audio --shards s3://bucket/shards --runner ray \
        --ray-address auto --ray-actors 8 --ray-gpus-per-actor 1

The pending partitions' files become one dataset; `map_batches(decode_batch)` runs the reader
(`indexer.decode.decode_parts`) in CPU tasks spread over the cluster, `map_batches(EmbedActor)`
runs the mapper (`indexer.pipeline.embed_messages`) in a pool of actors that each load the
model once (`num_gpus` each), and the driver is the writer: it gathers each partition's
files as they stream back and writes that partition's shard (`ShardWriter`) as soon as all of
them are in, so a failure loses only the partitions not yet written. Items cross the object
store pickled (decode messages, then `Embedded` / `Failed`), one row per file.
"""

from __future__ import annotations

import pickle
import time

from clapsearch.errors import UsageError
from indexer.distributed.runners import (
    ShardOptions,
    ShardSummary,
    is_complete,
    load_model,
    plan,
    write_partition,
)
from indexer.distributed.shards import ShardWriter, shard_name


def decode_batch(batch: dict, sample_rate: int, window_s: float, hop_s) -> dict:
    """Reader stage on a CPU worker: rows of pickled `DecodeTask` -> each file's decode
    messages (`indexer.decode.decode_parts`: windows in parts, then done or failed), pickled."""
    from indexer.decode import DecodeJob, decode_parts

    out = []
    for blob in batch["task"]:
        t = pickle.loads(blob)
        f = t.file
        job = DecodeJob(0, f.path, f.size, f.mtime_ns, t.content_hash, sample_rate, window_s, hop_s)
        out.append(pickle.dumps(list(decode_parts(job))))
    return {"partition": batch["partition"], "task": batch["task"], "messages": out}


class EmbedActor:
    """Mapper stage: holds the model; each file's decode messages -> its embedded (or
    failed) file, through `indexer.pipeline.embed_messages`."""

    def __init__(self, opts: ShardOptions):
        self.embedder = load_model(opts, "cuda" if _has_gpu() else "cpu")

    def __call__(self, batch: dict) -> dict:
        from dataclasses import replace

        from indexer.pipeline import embed_messages

        tasks = [pickle.loads(b) for b in batch["task"]]
        messages = [
            replace(m, seq=i)  # a file's position in this batch
            for i, blob in enumerate(batch["messages"])
            for m in pickle.loads(blob)
        ]
        part = {t.file.path: p for t, p in zip(tasks, batch["partition"])}
        out = [pickle.dumps(r) for r in embed_messages(messages, tasks, self.embedder)]
        return {"partition": [part[_path(pickle.loads(b))] for b in out], "item": out}


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def run_ray(
    opts: ShardOptions,
    address: str | None = None,
    actors: int = 1,
    gpus_per_actor: float = 0.0,
    decode_batch_size: int = 4,
    num_cpus: int | None = None,
) -> ShardSummary:
    """Embed every pending partition on Ray (module doc). `address` None starts a local
    cluster of `num_cpus` CPUs (tests); "auto" joins the one `ray start` made."""
    try:
        import ray
    except ImportError:
        raise UsageError(
            "The Ray runner needs Ray: `pip install clapsearch[ray]` (or `pip install 'ray[data]'`)."
        ) from None
    t0 = time.perf_counter()
    summary = ShardSummary(opts.shards)
    probe = load_model(opts, "cpu")  # identity and dim for the layout; the actors load their own
    folder, layout, groups = plan(opts, probe)
    summary.partitions = layout["partitions"]
    pending: dict[int, ShardWriter] = {}
    rows, expected = [], {}
    from indexer.pipeline import DecodeTask

    for p, files in groups.items():
        if is_complete(folder, layout, p, files):
            summary.skipped.append(p)
            continue
        folder.remove_temporaries(shard_name(p, layout["partitions"]))
        pending[p] = ShardWriter(folder, layout, p, {w.file.path: w.key for w in files})
        expected[p] = len(files)
        rows += [{"partition": p, "task": pickle.dumps(DecodeTask(w.file, None))} for w in files]
    for p in [p for p, n in expected.items() if n == 0]:  # an empty partition: an empty shard
        write_partition(pending.pop(p), [], summary)
    if rows:
        if not ray.is_initialized():
            ray.init(address=address, num_cpus=num_cpus, include_dashboard=False)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // decode_batch_size))
        ds = ds.map_batches(
            decode_batch,
            fn_kwargs={
                "sample_rate": probe.sample_rate,
                "window_s": probe.window_s,
                "hop_s": layout["hop_s"],
            },
            batch_size=decode_batch_size,
            num_cpus=1,
        )
        ds = ds.map_batches(
            EmbedActor,
            fn_constructor_kwargs={"opts": opts},
            batch_size=max(1, probe.audio_batch_size),
            concurrency=actors,
            num_gpus=gpus_per_actor,
        )
        got: dict[int, list] = {p: [] for p in pending}
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for p, blob in zip(batch["partition"], batch["item"]):
                p = int(p)
                got[p].append(pickle.loads(blob))
                if len(got[p]) == expected[p]:
                    write_partition(pending.pop(p), got.pop(p), summary)
    summary.seconds = time.perf_counter() - t0
    return summary


def _path(item) -> str:
    return item.record.path if hasattr(item, "record") else item.path


__all__ = ["EmbedActor", "decode_batch", "run_ray"]
