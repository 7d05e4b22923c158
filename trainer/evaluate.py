"""Validation during training: the inference path (`NativeEmbedder`) on held-out clips.

Each `EvalSet` gives retrieval scores (`clapsearch.eval.metrics.retrieval_scores`:
t2a/a2t R@1, R@5, R@10, mAP@10, median rank) and, for labelled sets, zero-shot accuracy.
Metrics come back flat (`t2a.R@1`, `a2t.R@5`, `zeroshot`, ...) per set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clapsearch.eval.metrics import retrieval_scores, zeroshot_accuracy
from trainer.data import EvalSet, decode_all


class Validator:
    """Decodes the validation clips once (kept in memory) and scores a model on them."""

    def __init__(self, sets: Sequence[EvalSet], sample_rate: int):
        self.sets = list(sets)
        paths = sorted({p for s in self.sets for p in (*s.audio_paths, *s.zs_paths)})
        self.waves = dict(zip(paths, decode_all(paths, sample_rate)))

    def __call__(self, model, tokenizer) -> dict[str, dict[str, float]]:
        """-> `{set name: {metric: value}}`; leaves `model` in eval mode."""
        from clapsearch.backends.native import NativeEmbedder

        emb = NativeEmbedder.from_model(model, tokenizer)
        results = {}
        for s in self.sets:
            audio = emb.embed_audio([self.waves[p] for p in s.audio_paths])
            text = emb.embed_text(list(s.captions))
            scores = retrieval_scores(text @ audio.T, np.asarray(s.caption_to_audio))
            flat = {f"{d}.{k}": float(v) for d, part in scores.items() for k, v in part.items()}
            if s.prompts:
                zs_audio = emb.embed_audio([self.waves[p] for p in s.zs_paths])
                prompts = emb.embed_text(list(s.prompts))
                flat["zeroshot"] = zeroshot_accuracy(zs_audio @ prompts.T, np.asarray(s.zs_labels))
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
