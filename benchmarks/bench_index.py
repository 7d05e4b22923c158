"""Indexing throughput: end-to-end `clapsearch index` clips/s vs model-forward-only clips/s on
the same clips in one run, and vs the reference transformers pipeline on the same checkpoint.

- forward-only: the clips' features precomputed, timed `Embedder` forward in batches (the
  ceiling for any indexer on this model and machine);
- end-to-end: scan, plan, decode + resample + log-mel in worker processes, batched forward,
  one SQLite transaction per file, ANN cache write, into a fresh index (model already loaded);
- reference: `ClapProcessor(audios=...)` + `ClapModel.get_audio_features` on the same decoded
  48 kHz waveforms, one clip at a time and in batches of 16 (decode time included, as the
  indexer's figure includes it).

The `base` random checkpoint has the laion/clap-htsat-unfused shapes (HTSAT-tiny + RoBERTa),
so compute matches the real model; weights do not matter for speed.

    .venv/bin/python benchmarks/bench_index.py [--clips 64] [--precision auto] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _model_dir(path: Path) -> Path:
    if not (path / "config.json").exists():
        from clapsearch.synthetic_models import build_random_clap

        print(f"building the base random checkpoint in {path} ...", flush=True)
        build_random_clap(path, "base", "rand_trunc")
    return path


def forward_only(embedder, files: list[Path]) -> float:
    """Clips/s of the model forward alone (features precomputed, not timed)."""
    import torch

    from clapsearch.audio import load_audio
    from clapsearch.features import clap_features
    from indexer.pipeline import embed_features

    waves = [torch.from_numpy(load_audio(f, embedder.sample_rate)) for f in files]
    feats, longer = clap_features(waves, embedder.audio_config)
    feats, longer = feats.numpy(), longer.numpy()
    embed_features(embedder, feats[: embedder.audio_batch_size], longer[: embedder.audio_batch_size])
    t = time.perf_counter()
    embed_features(embedder, feats, longer)
    return len(files) / (time.perf_counter() - t)


def end_to_end(embedder, model_dir: Path, files: list[Path], workers: int, pool) -> float:
    """Clips/s of a full index run into a fresh index with the model already loaded and the
    decode workers started (as `clapsearch index` starts them while the model loads)."""
    from clapsearch.store import IndexStore
    from clapsearch.store_schema import IndexConfig
    from indexer.run import IndexOptions, IndexSummary, LazyEmbedder, _index_into

    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        lib.mkdir()
        for f in files:
            (lib / f.name).symlink_to(f)
        opts = IndexOptions((str(lib),), str(Path(tmp) / "idx"), str(model_dir), workers=workers)
        lazy = LazyEmbedder(str(model_dir), opts, None, Path(tmp))
        lazy._embedder = embedder
        t = time.perf_counter()
        store = IndexStore.create(opts.index, embedder.identity, embedder.dim, IndexConfig())
        summary = IndexSummary(opts.index)
        _index_into(store, lazy, [str(lib)], opts, summary, None, pool)
        store.close()
        elapsed = time.perf_counter() - t
    assert summary.indexed == len(files), summary
    return len(files) / elapsed


def reference(model_dir: Path, files: list[Path], dtype, batch: int) -> float:
    """Clips/s of decode + `ClapProcessor` + `get_audio_features` (transformers as documented)."""
    import torch
    from transformers import ClapModel, ClapProcessor

    from clapsearch.audio import load_audio

    model = ClapModel.from_pretrained(model_dir, torch_dtype=dtype).eval()
    processor = ClapProcessor.from_pretrained(model_dir)

    def run(chunk):
        waves = [load_audio(f, 48_000) for f in chunk]
        inputs = processor(audio=waves, sampling_rate=48_000, return_tensors="pt")
        with torch.inference_mode():
            model.get_audio_features(input_features=inputs["input_features"].to(dtype),
                                     is_longer=inputs.get("is_longer"))

    run(files[:batch])  # warm-up
    t = time.perf_counter()
    for lo in range(0, len(files), batch):
        run(files[lo : lo + batch])
    return len(files) / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--model-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "clapsearch-bench-base")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from clapsearch.loading import load_embedder
    from indexer.pipeline import DecodePool, default_workers

    files = sorted((DATA / "esc50-mini" / "audio").glob("*.flac"))[: args.clips]
    model_dir = _model_dir(args.model_dir)
    workers = default_workers() if args.workers is None else args.workers
    pool = DecodePool(workers)  # as the CLI: workers start while the model loads
    embedder = load_embedder(str(model_dir), device="auto", precision=args.precision)
    print(f"{len(files)} ESC-50 clips (5 s, 44.1 kHz FLAC), base model, {embedder.device} "
          f"{str(embedder.dtype).removeprefix('torch.')}, {workers} decode worker(s), "
          f"{os.cpu_count()} cores, batch {embedder.audio_batch_size}")
    fwd = forward_only(embedder, files)
    e2e = end_to_end(embedder, model_dir, files, workers, pool)
    fwd2 = forward_only(embedder, files)  # again: load on a shared machine drifts
    fwd = max(fwd, fwd2)
    print(f"forward only      {fwd:8.2f} clips/s")
    print(f"end to end        {e2e:8.2f} clips/s   ratio {e2e / fwd:.2f} (target >= 0.8)")
    if not args.skip_reference:
        for batch in (1, 16):
            ref = reference(model_dir, files, embedder.dtype, batch)
            print(f"reference b={batch:<3}    {ref:8.2f} clips/s   indexer speed-up "
                  f"{e2e / ref:.2f}x (target >= 2x)")
        if str(embedder.dtype) != "torch.float32":
            import torch

            ref = reference(model_dir, files, torch.float32, 1)
            print(f"reference fp32 b=1 {ref:7.2f} clips/s   indexer speed-up {e2e / ref:.2f}x "
                  f"(transformers' default precision)")


if __name__ == "__main__":
    main()
