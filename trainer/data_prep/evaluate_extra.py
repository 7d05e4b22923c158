"""The model card's cross-source and robustness measurements (called by `evaluate_default`).

- `heldout_packages`: the clips of the held-out Debian packages (`heldout.jsonl`, never trained
  on). Per package: every caption of every clip ranks that package's clips; a hit is any clip
  with the same canonical caption (many clips share one, e.g. "footsteps"), R@1/5/10 averaged
  over queries. Zero-shot: clips classified among the package's distinct canonical captions
  (used as prompts as they are), where there are at least 2; and once over all held-out clips
  pooled (every package's captions as classes), which is where a speech package is scored.
- `robustness`: the ESC-50 test clips (44.1 kHz originals) written again at 8, 16 and
  22.05 kHz (16-bit WAV) and as MP3 at 64 kbit/s, read back through the normal decode path:
  zero-shot accuracy per version, and the mean cosine of each version's embedding to the
  original's.
- `overlap`: how many evaluated files the model's `trained_on.json` lists (must be 0).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROBUST_RATES = (8000, 16000, 22050)
MP3_KBPS = 64


def _recall(sim: np.ndarray, query_class: np.ndarray, gallery_class: np.ndarray) -> dict:
    """`sim (Q, G)`; a query's hit at k: any of its top-k gallery items has its class."""
    order = np.argsort(-sim, axis=1, kind="stable")
    hit_rank = np.array(
        [
            int(np.flatnonzero(gallery_class[order[q]] == query_class[q])[0]) + 1
            for q in range(sim.shape[0])
        ]
    )
    out = {f"R@{k}": round(float(np.mean(hit_rank <= k)), 3) for k in (1, 5, 10)}
    return out | {"median_rank": float(np.median(hit_rank))}


def _zeroshot(audio: np.ndarray, labels: list[str], embedder) -> dict:
    classes = sorted(set(labels))
    prompts = embedder.embed_text(classes)
    pred = np.argmax(audio @ prompts.T, axis=1)
    truth = np.array([classes.index(c) for c in labels])
    return {
        "accuracy": round(float(np.mean(pred == truth)), 3),
        "classes": len(classes),
        "chance": round(1 / len(classes), 3),
    }


def heldout_packages(embedder, rows: list, embed_files) -> dict:
    """`rows`: `ClipRecord`s of `heldout.jsonl`; `embed_files(embedder, paths)` -> unit rows."""
    audio = embed_files(embedder, [r.path for r in rows])
    canon = [r.captions[0] for r in rows]
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_source[r.source].append(i)
    result: dict = {}
    for source, idx in sorted(by_source.items()):
        queries = [(c, i) for i in idx for c in rows[i].captions]
        text = embedder.embed_text([c for c, _ in queries])
        sim = text @ audio[idx].T
        gallery_class = np.array([canon[i] for i in idx])
        block = {"clips": len(idx), "queries": len(queries)}
        block["t2a"] = _recall(sim, np.array([canon[i] for _, i in queries]), gallery_class)
        if len(set(gallery_class)) >= 2:
            block["zeroshot"] = _zeroshot(audio[idx], [canon[i] for i in idx], embedder)
        result[source] = block
    result["all_pooled_zeroshot"] = _zeroshot(audio, canon, embedder)
    return result


def _write_versions(paths: list[str], folder: Path) -> dict[str, list[str]]:
    """Each 44.1 kHz original again at `ROBUST_RATES` (WAV) and as MP3 64 kbit/s."""
    from trainer.augment import encode

    versions: dict[str, list[str]] = {"44100": list(paths)}
    for path in paths:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
        y = y.mean(axis=1)
        stem = Path(path).stem
        for rate in ROBUST_RATES:
            out = folder / f"{stem}-{rate}.wav"
            sf.write(str(out), soxr.resample(y, sr, rate), rate, subtype="PCM_16")
            versions.setdefault(str(rate), []).append(str(out))
        data, _ = encode(y, sr, "mp3", MP3_KBPS)
        out = folder / f"{stem}.mp3"
        out.write_bytes(data)
        versions.setdefault(f"mp3_{MP3_KBPS}k", []).append(str(out))
    return versions


def robustness(embedder, records: list, classes: list[str], embed_files, zeroshot) -> dict:
    """`records`: the ESC-50 test `ClipRecord`s; `zeroshot(audio, labels, classes, embedder,
    template)` is evaluate_default's."""
    labels = np.array([classes.index(r.meta["category"]) for r in records])
    template = "This is a sound of {label}."
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        versions = _write_versions([r.path for r in records], Path(tmp))
        full = embed_files(embedder, versions["44100"])
        for name, paths in versions.items():
            audio = full if name == "44100" else embed_files(embedder, paths)
            result[name] = {
                "zeroshot": round(zeroshot(audio, labels, classes, embedder, template), 3),
                "cosine_to_44100": round(float(np.mean(np.sum(audio * full, axis=1))), 4),
            }
    return result


def overlap(model_dir: Path, paths: list[str]) -> dict:
    """Evaluated files whose content the model trained on (by `trained_on.json`)."""
    from clapsearch.training_record import training_overlap

    return training_overlap(model_dir, paths).to_json()
