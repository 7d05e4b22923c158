"""Per-clip log-mel time: clapsearch.features vs transformers' ClapFeatureExtractor.

Same 10 s, 48 kHz clips (windows of the real Clotho clips in ../shared/data) through both, in
one run, for both front-end modes; also checks the two agree within 1e-3 dB.

    .venv/bin/python benchmarks/bench_features.py [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from clapsearch.audio import load_audio
from clapsearch.config import AudioConfig
from clapsearch.features import clap_features

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def ten_second_clips() -> list[np.ndarray]:
    clips = []
    for path in sorted((DATA / "clotho-mini" / "evaluation").glob("*.wav")):
        y = load_audio(str(path), 48_000)
        for start in range(0, len(y) - 480_000 + 1, 480_000):
            clips.append(y[start : start + 480_000])
    return clips


def per_clip_ms(fn, n_clips: int, repeats: int) -> float:
    fn()  # warm-up: filter banks, allocator
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / n_clips * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: torch's default, all cores)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from clapsearch.synthetic_models import laion_feature_extractor

    clips = ten_second_clips()
    tensors = [torch.from_numpy(c) for c in clips]
    print(f"{len(clips)} clips of 10 s at 48 kHz; torch threads: {torch.get_num_threads()}")
    print(
        f"{'mode':<11} {'reference ms/clip':>18} {'ours ms/clip':>13} {'speed-up':>9} {'max |dB diff|':>14}"
    )
    for truncation in ("rand_trunc", "fusion"):
        reference = laion_feature_extractor(truncation)
        config = AudioConfig(truncation=truncation)

        def run_reference(reference=reference):
            return [reference(c, sampling_rate=48_000)["input_features"][0] for c in clips]

        def run_ours(config=config):
            return clap_features(tensors, config)[0]

        ref_ms = per_clip_ms(run_reference, len(clips), args.repeats)
        our_ms = per_clip_ms(run_ours, len(clips), args.repeats)
        diff = max(
            float(np.abs(np.asarray(r) - o.numpy()).max())
            for r, o in zip(run_reference(), run_ours())
        )
        print(
            f"{truncation:<11} {ref_ms:>18.2f} {our_ms:>13.2f} {ref_ms / our_ms:>8.1f}x {diff:>14.2e}"
        )


if __name__ == "__main__":
    main()
