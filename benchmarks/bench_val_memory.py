"""Peak memory of validation on an AudioCaps-sized split: streamed (`trainer.evaluate.Validator`,
`val_batch` clips decoded at a time) against decoding the whole split first (the first
release's validator).

    .venv/bin/python benchmarks/bench_val_memory.py --make /tmp/valmem --clips 975
    .venv/bin/python benchmarks/bench_val_memory.py --run /tmp/valmem --mode streamed
    .venv/bin/python benchmarks/bench_val_memory.py --run /tmp/valmem --mode whole

`--make` writes `--clips` synthetic 10 s clips (AudioCaps' length; 16 kHz 16-bit FLAC of a
tone in noise, so the folder stays small: each decodes to 10 s at 48 kHz float32, 1.92 MB,
like a real AudioCaps clip) and a manifest with 5 captions a clip (AudioCaps test: 975
clips, 4,875 captions). `--run` scores a tiny random model (the memory measured is the
audio's, not a model's) and prints the process's peak RSS (`ru_maxrss`) before and after.
Run each mode in its own process, so one mode's peak cannot hide the other's.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np


def make(folder: Path, clips: int) -> None:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(160_000) / 16_000
    rows = []
    for i in range(clips):
        wave = 0.3 * np.sin(2 * np.pi * (200 + i) * t) + 0.01 * rng.standard_normal(t.size)
        path = folder / f"clip{i:05d}.flac"
        sf.write(path, wave.astype(np.float32), 16_000, subtype="PCM_16")
        rows.append({"path": path.name, "captions": [f"clip {i} caption {k}" for k in range(5)]})
    (folder / "val.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(folder: Path, mode: str, batch: int) -> dict:
    import torch
    from transformers import AutoTokenizer

    from clapsearch.models import build_model
    from clapsearch.models.presets import tiny_config
    from trainer.config import DataSource
    from trainer.data import decode_all, load_source
    from trainer.evaluate import Validator

    torch.set_num_threads(1)
    model = build_model(tiny_config(window_s=10.0)).eval()
    tokenizer = AutoTokenizer.from_pretrained(model.text_encoder.tokenizer_source())
    eval_set = load_source(DataSource(kind="manifest", root=str(folder / "val.jsonl"))).eval_set
    before = peak_mb()
    t0 = time.perf_counter()
    if mode == "whole":
        waves = decode_all(list(eval_set.audio_paths), model.config.audio.sample_rate)
        held_mb = sum(w.nbytes for w in waves) / 2**20

        class Whole(Validator):  # the first release: every clip decoded before scoring
            def _clips(self, paths):
                index = {p: i for i, p in enumerate(eval_set.audio_paths)}
                return iter([waves[index[p]] for p in paths])

        metrics = Whole([eval_set], model.config.audio.sample_rate, batch)(model, tokenizer)
    else:
        held_mb = 0.0
        metrics = Validator([eval_set], model.config.audio.sample_rate, batch)(model, tokenizer)
    return {
        "mode": mode,
        "clips": len(eval_set.audio_paths),
        "captions": len(eval_set.captions),
        "val_batch": batch,
        "peak_rss_before_mb": round(before, 1),
        "peak_rss_after_mb": round(peak_mb(), 1),
        "decoded_audio_held_mb": round(held_mb, 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "t2a.R@1": next(iter(metrics.values()))["t2a.R@1"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--make", type=Path)
    ap.add_argument("--clips", type=int, default=975)
    ap.add_argument("--run", type=Path)
    ap.add_argument("--mode", choices=("streamed", "whole"), default="streamed")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    if args.make:
        make(args.make, args.clips)
    if args.run:
        print(json.dumps(run(args.run, args.mode, args.batch)))


if __name__ == "__main__":
    main()
