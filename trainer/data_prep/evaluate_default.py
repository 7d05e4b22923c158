"""Score a model on the default model's held-out data (the numbers in docs/model-card.md).

    python -m trainer.data_prep.evaluate_default --model clapsearch/assets/default_model \
        [--generated data/heldout-seed1/trainval.jsonl] [--json]

- ESC-50 zero-shot: the 101 clips of `splits/esc50_test.txt` (whole source recordings never
  trained on, all 50 classes) classified against all 50 labels, with LAION's prompt
  "This is a sound of {label}." and with "the sound of {label}"; chance is 1/50. The training
  clips are scored the same way to show the generalisation gap.
- ESC-50 text-to-audio: each class's phrase ("a dog barking") ranks the 101 test clips; hit@1
  (the top clip is of that class) and mAP (all clips of the class relevant).
- Clotho: the 10 human captions of the 2 held-out Clotho clips (`splits/clotho_test.txt`)
  rank those 2 clips among all 103 test clips (R@1, R@5, median rank).
- Held-out Debian packages, 8/16/22.05/44.1 kHz and MP3 versions of the ESC-50 test clips,
  and the overlap of everything evaluated with the model's `trained_on.json`: see
  `evaluate_extra`.
- Generated clips it never trained on (`--generated MANIFEST`, e.g. the `trainval.jsonl` of a
  corpus built with another seed: `build_default_data --seed 1 ...`): each clip's first
  caption ranks all of them (R@1, R@5, per source): vocabulary coverage for speech, music and
  signals. (The default corpus's own `val.jsonl` is not held out for the packaged model,
  which trains on train + val.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from clapsearch.datasets.base import label_words
from clapsearch.prompts import render
from trainer.data_prep.common import read_manifest
from trainer.data_prep.real import ESC50_PHRASES, clotho_records, esc50_records

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
TEMPLATES = ("This is a sound of {label}.", "the sound of {label}")


def _embed_files(embedder, paths: list[str]) -> np.ndarray:
    """Files -> `(N, dim)` unit rows (each clip whole: the embedder's long-clip policy)."""
    from clapsearch.audio import load_audio

    out = []
    for lo in range(0, len(paths), 16):
        waves = [load_audio(p, embedder.sample_rate) for p in paths[lo : lo + 16]]
        out.append(embedder.embed_audio(waves))
    return np.concatenate(out)


def zeroshot(audio: np.ndarray, labels: np.ndarray, classes: list[str], embedder, template: str):
    from clapsearch.eval.metrics import zeroshot_accuracy

    prompts = embedder.embed_text(render([label_words(c) for c in classes], template))
    return zeroshot_accuracy(audio @ prompts.T, labels)


def class_retrieval(audio: np.ndarray, labels: np.ndarray, classes: list[str], embedder) -> dict:
    """Each class phrase ranks the clips: hit@1 and mean average precision (full ranking)."""
    text = embedder.embed_text([ESC50_PHRASES[c][0] for c in classes])
    sim = text @ audio.T  # (classes, clips)
    hits, aps = [], []
    for ci in range(len(classes)):
        relevant = labels == ci
        if not relevant.any():
            continue
        order = np.argsort(-sim[ci], kind="stable")
        rel_sorted = relevant[order]
        hits.append(bool(rel_sorted[0]))
        ranks = np.flatnonzero(rel_sorted) + 1
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
    return {"hit@1": float(np.mean(hits)), "mAP": float(np.mean(aps)), "queries": len(hits)}


def evaluate(
    model: str,
    esc50_dir: Path,
    clotho_dir: Path,
    generated: Path | None = None,
    heldout: Path | None = None,
    robust: bool = True,
) -> dict:
    from clapsearch.eval.metrics import retrieval_scores
    from clapsearch.hashing import content_hash
    from clapsearch.sources import load_embedder
    from clapsearch.training_record import read_training_hashes

    embedder = load_embedder(model, device="cpu", precision="fp32")
    esc = esc50_records(esc50_dir)
    classes = sorted(ESC50_PHRASES)
    result: dict = {"model": embedder.identity, "chance": 1 / len(classes)}
    for split in ("test", "train"):
        recs = [r for r in esc if r.split == split]
        audio = _embed_files(embedder, [r.path for r in recs])
        labels = np.array([classes.index(r.meta["category"]) for r in recs])
        block = {"clips": len(recs)}
        for t in TEMPLATES:
            block[f"zeroshot[{t}]"] = zeroshot(audio, labels, classes, embedder, t)
        if split == "test":
            block["t2a_class"] = class_retrieval(audio, labels, classes, embedder)
            test_audio = audio
        result[f"esc50_{split}"] = block
    clotho = [r for r in clotho_records(clotho_dir) if r.split == "test"]
    if clotho:
        gallery = np.concatenate([_embed_files(embedder, [r.path for r in clotho]), test_audio])
        caps = [(c, i) for i, r in enumerate(clotho) for c in r.captions]
        text = embedder.embed_text([c for c, _ in caps])
        scores = retrieval_scores(text @ gallery.T, np.array([i for _, i in caps]))["t2a"]
        result["clotho_test"] = {
            "captions": len(caps),
            "gallery": len(gallery),
            **{k: scores[k] for k in ("R@1", "R@5", "R@10", "median_rank")},
        }
    if generated is not None:
        rows = [r for r in read_manifest(generated) if r.source not in ("esc50", "clotho")]
        rows = list({r.path: r for r in rows}.values())
        trained = read_training_hashes(model) or frozenset()
        kept = [r for r in rows if content_hash(r.path) not in trained]
        dropped, rows = len(rows) - len(kept), kept  # same bytes as a training clip
        audio = _embed_files(embedder, [r.path for r in rows])
        text = embedder.embed_text([r.captions[0] for r in rows])
        sim = text @ audio.T
        block: dict = {"clips": len(rows), "dropped_as_trained": dropped}
        for src in sorted({r.source for r in rows}) + ["all"]:
            idx = np.array([i for i, r in enumerate(rows) if src in ("all", r.source)])
            scores = retrieval_scores(sim[np.ix_(idx, idx)], np.arange(len(idx)))["t2a"]
            block[src] = {k: round(scores[k], 3) for k in ("R@1", "R@5")} | {"n": len(idx)}
        result["generated_unseen"] = block
    from trainer.data_prep import evaluate_extra as extra

    evaluated = [r.path for r in esc if r.split == "test"] + [r.path for r in clotho]
    if heldout is not None and heldout.is_file():
        rows = read_manifest(heldout)
        result["heldout_packages"] = extra.heldout_packages(embedder, rows, _embed_files)
        evaluated += [r.path for r in rows]
    if robust:
        test = [r for r in esc if r.split == "test"]
        result["robustness_esc50_test"] = extra.robustness(
            embedder, test, classes, _embed_files, zeroshot
        )
    result["overlap_with_training"] = extra.overlap(Path(model), evaluated)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--esc50-dir", type=Path, default=SHARED / "esc50-mini")
    p.add_argument("--clotho-dir", type=Path, default=SHARED / "clotho-mini")
    p.add_argument(
        "--generated", type=Path, default=None, help="manifest of unseen generated clips"
    )
    p.add_argument(
        "--heldout",
        type=Path,
        default=REPO / "data" / "default-model" / "heldout.jsonl",
        help="manifest of the held-out Debian packages (skipped if absent)",
    )
    p.add_argument("--no-robustness", action="store_true", help="skip the 8-44.1 kHz/MP3 test")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    result = evaluate(
        a.model, a.esc50_dir, a.clotho_dir, a.generated, a.heldout, not a.no_robustness
    )
    if a.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key}: {json.dumps(value)}")


if __name__ == "__main__":
    main()
