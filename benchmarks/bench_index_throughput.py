"""Single-machine indexing throughput with the built-in model, beside its per-stage bound.

    .venv/bin/python benchmarks/bench_index_throughput.py [--clips 314] [--rounds 3]

- per-stage cost on ONE thread, per clip: decode + resample (`load_audio` to the model's rate),
  log-mel (`clap_features`), model forward (`embed_features`, batched as the indexer does);
- bound: cores / (sum of the three), i.e. every core busy with nothing but those stages;
- end to end: `indexer.run._index_into` into a fresh index (scan, plan, decode workers,
  batched forward, commits, ANN cache), the model loaded and the workers started first (as
  `clapsearch index` starts them while the model loads);
- process: `python -m indexer DIR --index NEW` as a subprocess, start-up included (what a
  user waits for; imports and model load are most of a short run).

Each figure is the best of `--rounds` (the machine is shared); the ratio end-to-end / bound is
printed per round.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import DATA, end_to_end  # noqa: E402


def stage_costs(embedder, files: list[Path]) -> dict[str, float]:
    """Seconds per clip of each stage on one thread."""
    import torch

    from clapsearch.audio import load_audio
    from clapsearch.features import clap_features
    from indexer.pipeline import embed_features

    torch.set_num_threads(1)
    t = time.perf_counter()
    waves = [load_audio(str(f), embedder.sample_rate) for f in files]
    decode = (time.perf_counter() - t) / len(files)
    t = time.perf_counter()
    feats = [clap_features([torch.from_numpy(w)], embedder.audio_config) for w in waves]
    mel = (time.perf_counter() - t) / len(files)
    x = torch.cat([f[0] for f in feats]).numpy()
    lg = torch.cat([f[1] for f in feats]).numpy()
    embed_features(embedder, x[:16], lg[:16])  # warm-up
    t = time.perf_counter()
    embed_features(embedder, x, lg)
    forward = (time.perf_counter() - t) / len(files)
    torch.set_num_threads(os.cpu_count() or 1)
    return {"decode": decode, "mel": mel, "forward": forward}


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

    from clapsearch.loading import load_embedder
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
        e2e = end_to_end(embedder, Path(args.model), files, workers)
        wall = process_run(files, args.model)
        got = {
            "decode_ms": cost["decode"] * 1e3,
            "mel_ms": cost["mel"] * 1e3,
            "forward_ms": cost["forward"] * 1e3,
            "bound": bound,
            "e2e": e2e,
            "process": len(files) / wall,
        }
        print(
            f"round {r}: decode {got['decode_ms']:.2f} ms, log-mel {got['mel_ms']:.2f} ms, "
            f"forward {got['forward_ms']:.2f} ms a clip (1 thread) -> bound {bound:.0f} "
            f"clips/s; end to end {e2e:.0f} clips/s ({e2e / bound:.2f} of the bound); "
            f"process {got['process']:.0f} clips/s ({wall:.1f} s), load average "
            f"{os.getloadavg()[0]:.1f}",
            flush=True,
        )
        for k, v in got.items():
            better = min if k.endswith("_ms") else max
            best[k] = better(best.get(k, v), v)
    print(
        f"best: stages {best['decode_ms']:.2f} + {best['mel_ms']:.2f} + {best['forward_ms']:.2f}"
        f" ms a clip, bound {best['bound']:.0f} clips/s, end to end {best['e2e']:.0f} clips/s, "
        f"process {best['process']:.0f} clips/s"
    )


if __name__ == "__main__":
    main()
