"""Single-machine indexing throughput with the built-in model, beside its per-stage bound.

    .venv/bin/python benchmarks/bench_index_throughput.py [--clips 314] [--rounds 3]

- per-stage cost on ONE thread, per clip, in CPU time (so it does not depend on how busy the
  machine is): decode + resample (`indexer.decode.decode_parts`, what a worker runs: header,
  FLAC tail check, decode, resample to the model's rate, windows, content hash), log-mel
  (`clap_features`), model forward (`embed_features`, batched as the indexer does);
- bound: cores / (sum of the three), i.e. every core busy with nothing but those stages;
- end to end: `indexer.run._index_into` into a fresh index (scan, plan, decode workers,
  batched forward, commits, ANN cache), the model loaded and the workers started first (as
  `clapsearch index` starts them while the model loads). Beside its clips/s: the CPU it spent
  a clip (main process, and decode workers after their start-up), and the cores it got
  (all of that CPU / wall): on a shared machine the wall rate is `cores got / CPU a clip`,
  so "CPU a clip" is the figure to compare with the bound's stage sum;
- process: `python -m indexer DIR --index NEW` as a subprocess, start-up included (what a
  user waits for; imports and model load are most of a short run).

Each figure is the best of `--rounds` (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import DATA  # noqa: E402


def stage_costs(embedder, files: list[Path]) -> dict[str, float]:
    """CPU seconds per clip of each stage on one thread."""
    import torch

    from clapsearch.features import clap_features
    from indexer.decode import DecodeJob, decode_parts
    from indexer.pipeline import embed_features

    torch.set_num_threads(1)
    jobs = [
        DecodeJob(i, str(f), f.stat().st_size, f.stat().st_mtime_ns, None,
                  embedder.sample_rate, embedder.window_s, None)
        for i, f in enumerate(files)
    ]  # fmt: skip
    t = time.process_time()
    waves = [w for job in jobs for part in decode_parts(job) if hasattr(part, "waveforms")
             for w in part.waveforms]  # fmt: skip
    decode = (time.process_time() - t) / len(files)
    t = time.process_time()
    feats = [clap_features([torch.from_numpy(w)], embedder.audio_config) for w in waves]
    mel = (time.process_time() - t) / len(files)
    x = torch.cat([f[0] for f in feats]).numpy()
    lg = torch.cat([f[1] for f in feats]).numpy()
    embed_features(embedder, x[:16], lg[:16])  # warm-up
    t = time.process_time()
    embed_features(embedder, x, lg)
    forward = (time.process_time() - t) / len(files)
    torch.set_num_threads(os.cpu_count() or 1)
    return {"decode": decode, "mel": mel, "forward": forward}


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def end_to_end(embedder, model: str, files: list[Path], workers: int) -> dict[str, float]:
    """A full index run into a fresh index, the model loaded and the decode workers started
    (`clapsearch index` starts them while the model loads, so neither is timed): clips/s, and
    CPU ms a clip of the main process and of the workers (their start-up excluded)."""
    from clapsearch.index.schema import IndexConfig
    from indexer.pipeline import DecodePool
    from indexer.run import IndexOptions, IndexSummary, LazyEmbedder, _index_into
    from indexer.writer import IndexWriter

    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        lib.mkdir()
        for f in files:
            (lib / f.name).symlink_to(f)
        opts = IndexOptions((str(lib),), str(Path(tmp) / "idx"), model, workers=workers)
        lazy = LazyEmbedder(model, opts, None, Path(tmp))
        lazy._embedder = embedder
        pool = DecodePool(workers)
        pool.wait_ready()
        started = sum(_proc_cpu(p.pid) for p in pool._procs)  # their imports: not the run's
        reaped = _children_cpu()
        t, c = time.perf_counter(), time.process_time()
        store = IndexWriter.create(opts.index, embedder.model_identity, IndexConfig())
        summary = IndexSummary(opts.index)
        _index_into(store, lazy, [str(lib)], opts, summary, None, pool)  # ends the workers
        store.close()
        wall, main = time.perf_counter() - t, time.process_time() - c
        pool.close()
        work = _children_cpu() - reaped - started
    assert summary.indexed == len(files), summary
    n = len(files)
    return {
        "e2e": n / wall,
        "main_ms": main / n * 1e3,
        "workers_ms": work / n * 1e3,
        "cores_got": (main + work) / wall,
    }


def process_run(files: list[Path], model: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        lib.mkdir()
        for f in files:
            (lib / f.name).symlink_to(f)
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "indexer", str(lib), "--index", str(Path(tmp) / "idx"),
             "--model", model],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=314)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default="default")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from clapsearch.sources import load_embedder
    from indexer.pipeline import default_workers

    files = sorted((DATA / "esc50-mini" / "audio").glob("*.flac"))[: args.clips]
    workers = default_workers() if args.workers is None else args.workers
    embedder = load_embedder(args.model, device="cpu", precision=args.precision)
    cores = os.cpu_count() or 1
    print(
        f"{len(files)} ESC-50 clips (5 s FLAC), model {args.model} ({embedder.identity}), "
        f"{str(embedder.dtype).removeprefix('torch.')}, {workers} decode workers, {cores} "
        f"cores, batch {embedder.audio_batch_size}, load average {os.getloadavg()[0]:.1f}"
    )
    best: dict[str, float] = {}
    for r in range(args.rounds):
        cost = stage_costs(embedder, files)
        per_clip = sum(cost.values())
        bound = cores / per_clip
        run = end_to_end(embedder, args.model, files, workers)
        wall = process_run(files, args.model)
        e2e_cpu = run["main_ms"] + run["workers_ms"]
        got = {
            "decode_ms": cost["decode"] * 1e3,
            "mel_ms": cost["mel"] * 1e3,
            "forward_ms": cost["forward"] * 1e3,
            "bound": bound,
            **run,
            "e2e_cpu_ms": e2e_cpu,
            "process": len(files) / wall,
        }
        print(
            f"round {r}: CPU a clip on 1 thread: decode {got['decode_ms']:.2f} ms, log-mel "
            f"{got['mel_ms']:.2f} ms, forward {got['forward_ms']:.2f} ms -> bound {bound:.0f} "
            f"clips/s on {cores} cores; end to end {run['e2e']:.0f} clips/s "
            f"({run['e2e'] / bound:.2f} of the bound) on the {run['cores_got']:.2f} cores it got, "
            f"CPU a clip {e2e_cpu:.2f} ms (main {run['main_ms']:.2f}, workers "
            f"{run['workers_ms']:.2f}; stages alone {per_clip * 1e3:.2f}); process "
            f"{got['process']:.0f} clips/s ({wall:.1f} s); load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        for k, v in got.items():
            better = min if k.endswith("_ms") else max
            best[k] = better(best.get(k, v), v)
    print(
        f"best: stages {best['decode_ms']:.2f} + {best['mel_ms']:.2f} + {best['forward_ms']:.2f}"
        f" ms CPU a clip, bound {best['bound']:.0f} clips/s, end to end {best['e2e']:.0f} "
        f"clips/s ({best['cores_got']:.2f} cores got at most), end-to-end CPU a clip "
        f"{best['e2e_cpu_ms']:.2f} ms, process {best['process']:.0f} clips/s"
    )


if __name__ == "__main__":
    main()
