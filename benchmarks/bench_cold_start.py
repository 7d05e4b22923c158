"""Cold start of the CLI: `clapsearch query` with the default model against `import torch`,
argument errors, `--help`, `--version`, and a query answered by a running `clapsearch serve`.

    .venv/bin/python benchmarks/bench_cold_start.py                 # 7 rounds
    .venv/bin/python benchmarks/bench_cold_start.py --rounds 15 --workdir /tmp/cold

Every figure is a whole fresh process, as a user runs it. The commands run in turn within each
round (A B C ... A B C ...), so a machine whose speed drifts moves them together, and the
query's cost over `import torch` is taken per round (paired), then the median. Wall seconds
come from a monotonic clock around the process; CPU seconds (user + system) from the OS's
accounting of the finished child, which a loaded machine inflates far less than wall time.

The index holds the demo sounds (13 clips) indexed with the default model, so the query loads
exactly what a first query on a small library loads. Prints one JSON line per command and a
table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd: list[str], env: dict) -> tuple[float, float, int]:
    """(wall s, cpu s, exit code) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, cwd=REPO)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def build_index(workdir: Path, env: dict) -> Path:
    idx = workdir / "index"
    if (idx / "index.db").exists():
        return idx
    from clapsearch.assets import demo_sounds_dir

    sounds = workdir / "sounds"
    shutil.copytree(demo_sounds_dir(), sounds, dirs_exist_ok=True)
    cmd = [str(BIN / "clapsearch"), "index", str(sounds), "--index", str(idx), "--workers", "0"]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return idx


def start_server(idx: Path, env: dict) -> subprocess.Popen:
    (idx / "server.json").unlink(missing_ok=True)
    cmd = [str(BIN / "clapsearch"), "serve", "--index", str(idx), "--port", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (idx / "server.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("clapsearch serve did not start")
        time.sleep(0.2)
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/clapsearch-cold-start"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    idx = build_index(args.workdir, env)
    cli = str(BIN / "clapsearch")
    commands = {
        "import torch": [sys.executable, "-c", "import torch"],
        "query": [cli, "query", "dog barking", "-k", "5", "--index", str(idx), "--no-server"],
        "query, bad -k": [cli, "query", "dog barking", "-k", "0", "--index", str(idx)],
        "--help": [cli, "--help"],
        "query --help": [cli, "query", "--help"],
        "--version": [cli, "--version"],
    }
    server = start_server(idx, env)
    commands["query via serve"] = [cli, "query", "dog barking", "-k", "5", "--index", str(idx)]
    try:
        for cmd in commands.values():  # warm the page cache once
            run(cmd, env)
        rows: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, cmd in commands.items():
                rows[name].append(run(cmd, env))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    load = os.getloadavg()[0]
    base = rows["import torch"]
    print(f"{'command':<18} {'wall p50':>9} {'cpu p50':>8}  {'wall - torch':>12}  exit")
    for name, got in rows.items():
        wall = statistics.median(w for w, _, _ in got)
        cpu = statistics.median(c for _, c, _ in got)
        over = statistics.median(w - b for (w, _, _), (b, _, _) in zip(got, base, strict=True))
        over_cpu = statistics.median(c - b for (_, c, _), (_, b, _) in zip(got, base, strict=True))
        codes = sorted({code for _, _, code in got})
        print(f"{name:<18} {wall:9.3f} {cpu:8.3f}  {over:+12.3f}  {codes}")
        print(
            json.dumps(
                {
                    "command": name,
                    "rounds": args.rounds,
                    "wall_p50_s": round(wall, 4),
                    "cpu_p50_s": round(cpu, 4),
                    "wall_minus_torch_p50_s": round(over, 4),
                    "cpu_minus_torch_p50_s": round(over_cpu, 4),
                    "exit_codes": codes,
                    "load_avg_1min": round(load, 2),
                }
            )
        )


if __name__ == "__main__":
    main()
