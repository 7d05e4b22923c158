"""`clapsearch embed` audio throughput vs the reference transformers pipeline.

Same checkpoint, same files, one run. The checkpoint is a randomly initialised model with the
laion/clap-htsat-unfused architecture (HTSAT-tiny + RoBERTa-base, 512-d): hub weights cannot be
downloaded here, and throughput depends on the shapes, not the values.

- reference: soundfile decode + soxr to 48 kHz, `ClapProcessor(audio=...)`,
  `ClapModel.get_audio_features`, fp32, batches of `--batch`.
- ours: `clapsearch.embedding_io.embed_inputs` (what `clapsearch embed --audio` runs), at fp32
  and at `--precision auto` (bf16 on CPUs with native bf16), same batch size.

    .venv/bin/python benchmarks/bench_embed.py [--clips 32] [--batch 8]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CACHE = Path.home() / ".cache" / "clapsearch" / "bench-models"


def base_model_dir() -> Path:
    from clapsearch.synthetic_models import build_random_clap

    folder = CACHE / "clap-htsat-unfused-shape"
    if not (folder / "model.safetensors").exists():
        build_random_clap(folder, "base", "rand_trunc")
    return folder


def reference_embed(files: list[str], model_dir: Path, batch: int) -> np.ndarray:
    from transformers import ClapModel, ClapProcessor

    from clapsearch.audio import load_audio

    model = ClapModel.from_pretrained(model_dir).eval()
    processor = ClapProcessor.from_pretrained(model_dir)
    outs = []
    with torch.inference_mode():
        for lo in range(0, len(files), batch):
            clips = [load_audio(f, 48_000) for f in files[lo : lo + batch]]
            inputs = processor(audio=clips, sampling_rate=48_000, return_tensors="pt")
            outs.append(model.get_audio_features(**inputs).pooler_output)
    return torch.cat(outs).numpy()


def ours_embed(files: list[str], model_dir: Path, batch: int, precision: str) -> np.ndarray:
    from clapsearch.sources import load_embedder

    embedder = load_embedder(str(model_dir), device="cpu", precision=precision)
    embedder.audio_batch_size = batch
    from clapsearch.audio import load_audio

    return embedder.embed_audio([load_audio(f, embedder.sample_rate) for f in files])


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    from clapsearch.device import cpu_has_fast_bf16
    from clapsearch.sources import _quiet_transformers

    _quiet_transformers()
    files = [str(p) for p in sorted((DATA / "esc50-mini" / "audio").glob("*.flac"))[: args.clips]]
    model_dir = base_model_dir()
    n = len(files)
    print(
        f"{n} ESC-50 clips (5 s, 44.1 kHz FLAC); batch {args.batch}; "
        f"torch threads {torch.get_num_threads()}; native bf16: {cpu_has_fast_bf16()}"
    )
    ours_embed(files[: args.batch], model_dir, args.batch, "fp32")  # warm-up (allocator, caches)
    ref, t_ref = timed(lambda: reference_embed(files, model_dir, args.batch))
    fp32, t_fp32 = timed(lambda: ours_embed(files, model_dir, args.batch, "fp32"))
    auto, t_auto = timed(lambda: ours_embed(files, model_dir, args.batch, "auto"))
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    print(f"{'pipeline':<34} {'clips/s':>8} {'vs reference':>13} {'min cosine to ref':>18}")
    for name, emb, secs in (
        ("reference transformers (fp32)", ref, t_ref),
        ("clapsearch embed (fp32)", fp32, t_fp32),
        ("clapsearch embed (auto precision)", auto, t_auto),
    ):
        cos = float((emb * ref).sum(1).min())
        print(f"{name:<34} {n / secs:>8.2f} {t_ref / secs:>12.2f}x {cos:>18.5f}")


if __name__ == "__main__":
    main()
