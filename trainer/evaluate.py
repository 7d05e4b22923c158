"""Validation during training: the inference path (`NativeEmbedder`) on held-out clips.

Each validation set gives retrieval scores (`clapsearch.eval.metrics.retrieval_scores`:
t2a/a2t R@1, R@5, R@10, mAP@10, median rank) and, for labelled sets, zero-shot accuracy.
Metrics come back flat (`t2a.R@1`, `a2t.R@5`, `zeroshot`, ...) per set.

Streamed: clips are decoded `batch` at a time (in threads), embedded and dropped; only the
embeddings `(clips, dim)` float32 and the captions stay, so memory does not grow with the
length of the audio (the first release decoded the whole split into memory: 314 ESC-50
clips took 301 MB). A clip that is missing or does not decode is left out with its
captions and counted (`clips_skipped` in the metrics). A `webdataset` source is read from
its shards in one pass (`trainer.stream`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice

import numpy as np

from clapsearch.eval.metrics import retrieval_scores, zeroshot_accuracy
from trainer.data import EvalSet, decode_or_none


@dataclass(frozen=True)
class ShardEvalSet:
    """A `webdataset` validation source: every sample of its shards, in shard order."""

    name: str
    shards: tuple[str, ...]


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(items, size)):
        yield chunk


class Validator:
    """Scores a model on validation sets, `batch` clips decoded at a time (module doc)."""

    def __init__(
        self,
        sets: Sequence[EvalSet | ShardEvalSet],
        sample_rate: int,
        batch: int = 32,
        threads: int = 4,
    ):
        self.sets = list(sets)
        self.sample_rate = sample_rate
        self.batch = batch
        self.threads = threads

    def _clips(self, paths: Sequence[str]) -> Iterator[np.ndarray | None]:
        """Decoded clips in order (None for one that cannot be used), `batch` at a time."""
        with ThreadPoolExecutor(max(1, self.threads)) as pool:
            for chunk in _chunks(iter(paths), self.batch):
                for wave, _ in pool.map(lambda p: decode_or_none(p, self.sample_rate), chunk):
                    yield wave

    def _shard_clips(self, s: ShardEvalSet) -> Iterator[tuple[tuple[str, ...], np.ndarray | None]]:
        import tempfile
        from pathlib import Path

        from trainer.stream import iter_tar

        with tempfile.TemporaryDirectory(prefix="clapsearch-val-") as tmp:
            for shard in s.shards:
                for sample in iter_tar(Path(shard)):
                    wave = None
                    if not sample.problem and sample.captions:
                        path = f"{tmp}/clip.{sample.ext}"
                        Path(path).write_bytes(sample.data or b"")
                        wave, _ = decode_or_none(path, self.sample_rate)
                    yield sample.captions, wave

    def _embed(self, emb, waves: Iterator[np.ndarray | None]) -> tuple[np.ndarray, list[int]]:
        """-> (embeddings of the usable clips, their indices in the input order)."""
        out, kept, batch = [], [], []
        for i, wave in enumerate(waves):
            if wave is None:
                continue
            kept.append(i)
            batch.append(wave)
            if len(batch) == self.batch:
                out.append(emb.embed_audio(batch))
                batch = []
        if batch:
            out.append(emb.embed_audio(batch))
        return (np.concatenate(out) if out else np.zeros((0, emb.dim), np.float32)), kept

    def _retrieval(self, emb, s) -> dict[str, float]:
        if isinstance(s, ShardEvalSet):
            groups: list[tuple[str, ...]] = []

            def waves():
                for caps, wave in self._shard_clips(s):
                    groups.append(caps)
                    yield wave

            audio, kept = self._embed(emb, waves())
            captions = [c for i in kept for c in groups[i]]
            owners = [n for n, i in enumerate(kept) for _ in groups[i]]
            listed = len(groups)
        else:
            audio, kept = self._embed(emb, self._clips(s.audio_paths))
            new_index = {old: new for new, old in enumerate(kept)}
            pairs = [
                (c, new_index[a]) for c, a in zip(s.captions, s.caption_to_audio) if a in new_index
            ]
            captions, owners = [c for c, _ in pairs], [a for _, a in pairs]
            listed = len(s.audio_paths)
        flat: dict[str, float] = {"clips_skipped": float(listed - len(kept))}
        if captions and len(kept):
            text = emb.embed_text(captions)
            scores = retrieval_scores(text @ audio.T, np.asarray(owners))
            flat.update(
                {f"{d}.{k}": float(v) for d, part in scores.items() for k, v in part.items()}
            )
        return flat

    def __call__(self, model, tokenizer) -> dict[str, dict[str, float]]:
        """-> `{set name: {metric: value}}`; leaves `model` in eval mode."""
        from clapsearch.backends.native import NativeEmbedder

        emb = NativeEmbedder.from_model(model, tokenizer)
        results = {}
        for s in self.sets:
            flat = self._retrieval(emb, s)
            if getattr(s, "prompts", ()):
                zs_audio, kept = self._embed(emb, self._clips(s.zs_paths))
                prompts = emb.embed_text(list(s.prompts))
                labels = np.asarray(s.zs_labels)[kept]
                flat["zeroshot"] = zeroshot_accuracy(zs_audio @ prompts.T, labels)
                flat["zeroshot_chance"] = 1.0 / len(s.prompts)
            results[s.name] = flat
        return results


def headline(results: dict[str, dict[str, float]], key: str) -> float | None:
    """Mean of `key` over the sets that report it (None if none does)."""
    values = [m[key] for m in results.values() if key in m]
    return float(np.mean(values)) if values else None


def main(argv: list[str] | None = None) -> int:
    """Score a checkpoint on a held-out source (never used for training or model selection):

        python -m trainer.evaluate --model runs/esc50_small/best \\
            --kind esc50 --root ../shared/data/esc50-mini --part test
    """
    import argparse
    import json

    from clapsearch.sources import load_embedder
    from trainer.config import DataSource
    from trainer.data import load_source

    ap = argparse.ArgumentParser(prog="python -m trainer.evaluate", description=main.__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--kind", default="esc50")
    ap.add_argument("--root", required=True)
    ap.add_argument("--part", default="test")
    ap.add_argument("--split", default="")
    args = ap.parse_args(argv)
    src = DataSource(kind=args.kind, root=args.root, part=args.part, split=args.split)
    eval_set = load_source(src).eval_set
    emb = load_embedder(args.model, device="cpu", precision="fp32")
    validator = Validator([eval_set], emb.sample_rate)
    metrics = validator(emb.model, emb.tokenizer)[eval_set.name]
    print(
        json.dumps(
            {
                "model": emb.identity,
                "set": eval_set.name,
                "clips_retrieval": len(eval_set.audio_paths),
                "clips_zeroshot": len(eval_set.zs_paths),
                **metrics,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
