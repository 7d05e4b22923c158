"""Peak memory of a command's whole process tree (the process and every descendant).

    python benchmarks/bench_memory.py [--interval 0.02] -- clapsearch index DIR --index IDX

`/usr/bin/time -v` reports the largest single process's peak RSS, not the tree's; decode
workers are separate processes, so this samples `/proc` every `--interval` seconds and prints
the peak of the SUM of the tree's resident set sizes (RSS, which counts the pages of shared
libraries once per process: an upper bound) and of its proportional set sizes (PSS, each
shared page split between the processes that map it: what the tree really costs), plus the
largest single process and the command's exit code and wall time. Linux only.

The figures in docs/reliability.md were measured with this script; the scenarios:
    --scenario hour     a 1-hour 48 kHz mono WAV (generated), indexed with the default model
    --scenario liar     a 16 KB WAV whose header claims 1 Hz and a real FLAC whose header claims
                        ~200 h, indexed (beside a 5 s tone) and each used as --audio
    --scenario tiny     5,000 files of 0.5 s, indexed with the default model
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def _tree(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(_children(p))
    return out


def _mem_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in kB, 0 for a process that is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def measure(cmd: list[str], interval: float = 0.02, env: dict | None = None) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    peak_rss = peak_pss = peak_one = 0
    procs = 0
    while proc.poll() is None:
        pids = _tree(proc.pid)
        mems = [_mem_kb(p) for p in pids]
        peak_rss = max(peak_rss, sum(m[0] for m in mems))
        peak_pss = max(peak_pss, sum(m[1] for m in mems))
        peak_one = max([peak_one] + [m[0] for m in mems])
        procs = max(procs, len(pids))
        time.sleep(interval)
    return {
        "returncode": proc.returncode,
        "seconds": round(time.perf_counter() - t0, 1),
        "peak_tree_rss_mb": round(peak_rss / 1024, 1),
        "peak_tree_pss_mb": round(peak_pss / 1024, 1),
        "peak_process_rss_mb": round(peak_one / 1024, 1),
        "max_processes": procs,
    }


def _write_hour(path: Path) -> None:
    import numpy as np
    import soundfile as sf

    sr = 48_000
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", sr, 1, subtype="PCM_16") as f:
        for minute in range(60):
            t = np.arange(sr * 60) / sr
            y = 0.3 * np.sin(2 * np.pi * (220 + 10 * minute) * t)
            f.write((y + 0.05 * rng.standard_normal(t.size)).astype(np.float32))


def _write_tone(path: Path) -> None:
    import numpy as np
    import soundfile as sf

    t = np.arange(48_000 * 5) / 48_000
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 48_000)


def _esc50_clip() -> Path:
    """A real FLAC to lie about (`hostile.lying_length_flac` needs STREAMINFO first)."""
    return next(
        iter(sorted((REPO.parent / "shared" / "data" / "esc50-mini" / "audio").glob("*.flac")))
    )


def _scenario(name: str, work: Path) -> list[list[str]]:
    sys.path.insert(0, str(REPO))
    from tests import hostile

    cli = [sys.executable, "-m", "clapsearch.cli"]
    lib = work / "lib"
    lib.mkdir()
    if name == "hour":
        _write_hour(lib / "hour.wav")
    elif name == "liar":
        hostile.lying_rate_wav(lib / "liar.wav")
        hostile.lying_length_flac(lib / "liar-length.flac", _esc50_clip())
        _write_tone(lib / "tone.wav")  # an index that is not empty, so the --audio query runs
    elif name == "tiny":
        hostile.many_tiny_wavs(lib, 5000)
    else:
        raise SystemExit(f"unknown scenario {name}")
    runs = [cli + ["index", str(lib), "--index", str(work / "idx")]]
    if name == "liar":
        for liar in ("liar.wav", "liar-length.flac"):
            runs.append(cli + ["query", "--audio", str(lib / liar), "--index", str(work / "idx")])
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--scenario", choices=["hour", "liar", "tiny"])
    ap.add_argument("cmd", nargs="*")
    args = ap.parse_args()
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    if args.scenario:
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
            for cmd in _scenario(args.scenario, Path(tmp)):
                print(" ".join(cmd[2:]), measure(cmd, args.interval, env), flush=True)
        return
    if not args.cmd:
        ap.error("give a command after --, or --scenario")
    print(measure(args.cmd, args.interval, env))


if __name__ == "__main__":
    main()
