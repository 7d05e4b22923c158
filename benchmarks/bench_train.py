"""Training throughput on this machine: 1 process vs torchrun with N processes (same config).

    .venv/bin/python benchmarks/bench_train.py --config configs/esc50_small.yaml --steps 12 \
        --procs 1 2 --batch-size 24

Each run trains `--steps` optimizer steps with validation off and reports the steady-state
rate (samples/s over the global batch, from `metrics.jsonl`, first 2 steps excluded as
warm-up). With N processes the per-process batch is `batch_size / N`, so the contrastive
batch and the work per step are the same; the CPU threads are split between the processes.

`--make-pairs OUT --repeat R` writes a manifest of R x 314 (clip, caption) pairs from
../shared/data/esc50-mini (each clip R times, one label template a row): a few thousand
pairs that travel with the repository, for a throughput run on a machine with no network
(docs/training.md, "GPU run").
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


TEMPLATES = (
    "the sound of {}",
    "{}",
    "a recording of {}",
    "{} can be heard",
    "someone recorded {}",
    "a clip of {}",
    "{} in the background",
    "a short recording of {}",
    "this is {}",
    "listen to {}",
)


def make_pairs(out: Path, repeat: int) -> int:
    import csv

    root = ROOT / ".." / "shared" / "data" / "esc50-mini"
    with open(root / "esc50.csv", newline="") as f:
        clips = list(csv.DictReader(f))
    rows = [
        {
            "path": str((root / "audio" / c["filename"]).resolve()),
            "caption": TEMPLATES[k % len(TEMPLATES)].format(c["category"].replace("_", " ")),
        }
        for k in range(repeat)
        for c in clips
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/esc50_small.yaml")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch-size", type=int, default=24)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--set", dest="extra", action="append", default=[])
    ap.add_argument("--make-pairs", type=Path)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    if args.make_pairs:
        n = make_pairs(args.make_pairs, args.repeat)
        print(json.dumps({"pairs": n, "manifest": str(args.make_pairs)}))
        return
    for procs in args.procs:
        print(
            json.dumps(
                run(args.config, procs, args.steps, args.batch_size, args.threads, args.extra)
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
