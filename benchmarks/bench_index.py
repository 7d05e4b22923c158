"""Indexing throughput: end-to-end `clapsearch index` clips/s vs model-forward-only clips/s on
the same clips in one run, and vs the reference transformers pipeline on the same checkpoint.

- forward-only: the clips' features precomputed, timed `Embedder` forward in batches (the
  ceiling for any indexer on this model and machine);
- end-to-end: scan, plan, decode + resample + log-mel in worker processes, batched forward,
  one SQLite transaction per file, ANN cache write, into a fresh index (model loaded and
  workers started, as the CLI starts them while the model loads);
- reference: `ClapProcessor(audio=...)` + `ClapModel.get_audio_features` on the same decoded
  48 kHz waveforms, one clip at a time and in batches of 16 (decode time included, as the
  indexer's figure includes it).

The `base` random checkpoint has the laion/clap-htsat-unfused shapes (HTSAT-tiny + RoBERTa),
so compute matches the real model; weights do not matter for speed.

    .venv/bin/python benchmarks/bench_index.py [--clips 64] [--rounds 3] [--precision auto]
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
    """Clips/s of the model forward alone, batched as the indexer does (features
    precomputed, not timed)."""
    import torch

    from clapsearch.audio import load_audio
    from clapsearch.features import clap_features
    from indexer.pipeline import embed_features

    waves = [torch.from_numpy(load_audio(f, embedder.sample_rate)) for f in files]
    feats, longer = clap_features(waves, embedder.audio_config)
    feats, longer = feats.numpy(), longer.numpy()
    t = time.perf_counter()
    embed_features(embedder, feats, longer)
    return len(files) / (time.perf_counter() - t)


def end_to_end(embedder, model_dir: Path, files: list[Path], workers: int) -> float:
    """Clips/s of a full index run into a fresh index, the model loaded and the decode workers
    started (`clapsearch index` starts them while the model loads, so neither is timed)."""
    from clapsearch.index.schema import IndexConfig
    from indexer.pipeline import DecodePool
    from indexer.run import IndexOptions, IndexSummary, LazyEmbedder, _index_into
    from indexer.writer import IndexWriter

    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        lib.mkdir()
        for f in files:
            (lib / f.name).symlink_to(f)
        opts = IndexOptions((str(lib),), str(Path(tmp) / "idx"), str(model_dir), workers=workers)
        lazy = LazyEmbedder(str(model_dir), opts, None, Path(tmp))
        lazy._embedder = embedder
        pool = DecodePool(workers)
        pool.wait_ready()
        t = time.perf_counter()
        store = IndexWriter.create(opts.index, embedder.model_identity, IndexConfig())
        summary = IndexSummary(opts.index)
        _index_into(store, lazy, [str(lib)], opts, summary, None, pool)
        store.close()
        elapsed = time.perf_counter() - t
    assert summary.indexed == len(files), summary
    return len(files) / elapsed


def reference(model, processor, files: list[Path], dtype, batch: int) -> float:
    """Clips/s of decode + `ClapProcessor` + `get_audio_features` (transformers as documented)."""
    import torch

    from clapsearch.audio import load_audio

    def run(chunk):
        waves = [load_audio(f, 48_000) for f in chunk]
        inputs = processor(audio=waves, sampling_rate=48_000, return_tensors="pt")
        with torch.inference_mode():
            model.get_audio_features(
                input_features=inputs["input_features"].to(dtype), is_longer=inputs.get("is_longer")
            )

    t = time.perf_counter()
    for lo in range(0, len(files), batch):
        run(files[lo : lo + batch])
    return len(files) / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="Interleaved rounds; each figure is its best round (shared CPU).",
    )
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--model-dir", type=Path, default=Path(tempfile.gettempdir()) / "clapsearch-bench-base"
    )
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from transformers import ClapModel, ClapProcessor

    from clapsearch.sources import load_embedder
    from indexer.pipeline import default_workers

    files = sorted((DATA / "esc50-mini" / "audio").glob("*.flac"))[: args.clips]
    model_dir = _model_dir(args.model_dir)
    workers = default_workers() if args.workers is None else args.workers
    embedder = load_embedder(str(model_dir), device="auto", precision=args.precision)
    ref_model = ClapModel.from_pretrained(model_dir, torch_dtype=embedder.dtype).eval()
    processor = ClapProcessor.from_pretrained(model_dir)
    print(
        f"{len(files)} ESC-50 clips (5 s, 44.1 kHz FLAC), base model, {embedder.device} "
        f"{str(embedder.dtype).removeprefix('torch.')}, {workers} decode worker(s), "
        f"{os.cpu_count()} cores, batch {embedder.audio_batch_size}, best of {args.rounds}"
    )
    forward_only(embedder, files[:16])  # warm-up
    best = {"fwd": 0.0, "e2e": 0.0, "ref16": 0.0, "ref1": 0.0}
    for r in range(args.rounds):
        got = {
            "fwd": forward_only(embedder, files),
            "e2e": end_to_end(embedder, model_dir, files, workers),
        }
        if not args.skip_reference:
            got["ref16"] = reference(ref_model, processor, files, embedder.dtype, 16)
            if r == 0:  # one clip at a time is slow; once is enough
                got["ref1"] = reference(ref_model, processor, files, embedder.dtype, 1)
        print(f"round {r}: " + ", ".join(f"{k} {v:.2f}" for k, v in got.items()), flush=True)
        best = {k: max(v, got.get(k, 0.0)) for k, v in best.items()}
    fwd, e2e = best["fwd"], best["e2e"]
    print(f"forward only      {fwd:8.2f} clips/s")
    print(f"end to end        {e2e:8.2f} clips/s   ratio {e2e / fwd:.2f} (target >= 0.8)")
    if not args.skip_reference:
        for key, label in (("ref1", "reference b=1 "), ("ref16", "reference b=16")):
            print(
                f"{label}    {best[key]:8.2f} clips/s   indexer speed-up "
                f"{e2e / best[key]:.2f}x (target >= 2x)"
            )


if __name__ == "__main__":
    main()
