"""Training throughput on this machine: 1 process vs torchrun with N processes (same config).

    .venv/bin/python benchmarks/bench_train.py --config configs/esc50_small.yaml --steps 12 \
        --procs 1 2 --batch-size 24

Each run trains `--steps` optimizer steps with validation off and reports the steady-state
rate (samples/s over the global batch, from `metrics.jsonl`, first 2 steps excluded as
warm-up). With N processes the per-process batch is `batch_size / N`, so the contrastive
batch and the work per step are the same; the CPU threads are split between the processes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(config: str, procs: int, steps: int, batch: int, threads: int, extra: list[str]) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"bench_train_{procs}p_"))
    sets = [
        f"max_steps={steps}",
        "data.val=[]",
        "log_every=1",
        "save_every=0",
        f"batch_size={batch // procs}",
        f"threads={max(1, threads // procs)}",
        f"output_dir={out}",
        "tensorboard=false",
        "progress=false",
        *extra,
    ]
    args = ["--config", config] + [a for s in sets for a in ("--set", s)]
    bin_dir = Path(sys.executable).parent
    cmd = (
        [str(bin_dir / "torchrun"), "--standalone", f"--nproc_per_node={procs}", "-m", "trainer"]
        if procs > 1
        else [sys.executable, "-m", "trainer"]
    ) + args
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, threads // procs))}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    rates = [
        r["samples_per_s"]
        for r in map(json.loads, open(out / "metrics.jsonl"))
        if "samples_per_s" in r and r["step"] > 2
    ]
    return {
        "procs": procs,
        "global_batch": batch,
        "steps": steps,
        "samples_per_s": round(statistics.median(rates), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/esc50_small.yaml")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch-size", type=int, default=24)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--set", dest="extra", action="append", default=[])
    args = ap.parse_args()
    for procs in args.procs:
        print(
            json.dumps(
                run(args.config, procs, args.steps, args.batch_size, args.threads, args.extra)
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
