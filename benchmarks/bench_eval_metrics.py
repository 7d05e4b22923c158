"""Time `retrieval_scores` at benchmark sizes (pure numpy, no model).

    .venv/bin/python benchmarks/bench_eval_metrics.py

Sizes: Clotho v2 evaluation (1045 clips x 5 captions), AudioCaps test (~975 x 5) and a
4000-clip validation set; random float32 similarities (the cost does not depend on the values).
"""

from __future__ import annotations

import time

import numpy as np

from clapsearch.eval.metrics import retrieval_scores

SIZES = {"clotho-eval": (1045, 5), "audiocaps-test": (975, 5), "val-4000": (4000, 5)}


def main() -> None:
    rng = np.random.default_rng(0)
    for name, (n_audio, per_clip) in SIZES.items():
        c2a = np.repeat(np.arange(n_audio), per_clip)
        sim = rng.standard_normal((c2a.size, n_audio)).astype(np.float32)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            retrieval_scores(sim, c2a)
            best = min(best, time.perf_counter() - start)
        print(f"{name:15} {c2a.size:6d} captions x {n_audio:5d} clips: {1000 * best:8.1f} ms")


if __name__ == "__main__":
    main()
