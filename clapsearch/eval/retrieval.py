"""Text<->audio retrieval benchmark: dataset -> embeddings -> `metrics.retrieval_scores`.

reader (`clapsearch.datasets`) -> embedder (`clips`) -> scorer (`metrics`) -> writer (`save_embeddings`),
each a plain function so the trainer can call `score_embeddings` on its own validation vectors.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clapsearch.datasets import MissingClip, RetrievalSet, describe_missing, load_dataset
from clapsearch.embedder import Embedder
from clapsearch.errors import UsageError
from clapsearch.eval.clips import embed_files, embed_texts
from clapsearch.eval.metrics import METRIC_KEYS, laion_conventions, retrieval_scores
from clapsearch.training_record import TrainingOverlap, model_folder, training_overlap


@dataclass(frozen=True)
class RetrievalResult:
    """Scores plus everything needed to recompute them (`audio_emb @ text_emb.T`)."""

    dataset: str
    model: str
    scores: dict  # {"t2a": {...}, "a2t": {...}} as metrics.retrieval_scores
    audio_paths: tuple[str, ...]
    captions: tuple[str, ...]
    caption_to_audio: tuple[int, ...]
    missing: tuple[MissingClip, ...]
    audio_emb: np.ndarray  # (n_audio, dim)
    text_emb: np.ndarray  # (n_captions, dim)
    precision: str = "float32"  # the model's compute dtype
    trained_on: TrainingOverlap = TrainingOverlap(False, 0, 0)  # evaluated clips it trained on
    # The same ranks scored by LAION-CLAP's conventions where they differ (metrics.laion_conventions).
    conventions: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The `--json` contract: t2a, a2t, n_audio, n_captions, missing (+ context keys)."""
        return {
            "t2a": self.scores["t2a"],
            "a2t": self.scores["a2t"],
            "n_audio": len(self.audio_paths),
            "n_captions": len(self.captions),
            "missing": len(self.missing),
            "missing_reasons": dict(Counter(m.reason for m in self.missing)),
            "dataset": self.dataset,
            "model": self.model,
            "precision": self.precision,
            "trained_on": self.trained_on.to_json(),
            "conventions": self.conventions,
        }


def load_retrieval_dataset(
    name: str,
    root: str | Path | None = None,
    split: str | None = None,
    manifest: str | Path | None = None,
    audio_pattern: str | None = None,
    audio_dir: str | Path | None = None,
) -> RetrievalSet:
    """The CLI's options -> `clapsearch.datasets.load_dataset` (the layout's default split)."""
    if name == "manifest":
        if manifest is None:
            raise UsageError("--dataset manifest needs --manifest FILE.csv|.jsonl.")
        return load_dataset(name, manifest, split, "retrieval", audio_root=audio_dir or root)
    if root is None:
        raise UsageError(f"--dataset {name} needs --root DIR.")
    options = {"pattern": audio_pattern, "audio_dir": audio_dir} if name == "audiocaps" else {}
    return load_dataset(name, root, split, "retrieval", **options)


def score_embeddings(
    audio_emb: np.ndarray, text_emb: np.ndarray, caption_to_audio: np.ndarray
) -> dict:
    """`(n_audio, d)`, `(n_captions, d)` unit rows -> retrieval_scores on cosine similarity."""
    return retrieval_scores(
        _similarity(audio_emb, text_emb), np.asarray(caption_to_audio, np.int64)
    )


def _similarity(audio_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    return text_emb.astype(np.float32) @ audio_emb.astype(np.float32).T


def run_retrieval(
    embedder: Embedder,
    dataset: RetrievalSet,
    batch_size: int = 32,
    workers: int | None = None,
    progress: bool = True,
) -> RetrievalResult:
    """Embed every clip and caption of `dataset` and score T2A / A2T retrieval.

    Clips that fail to decode are dropped with their captions and counted in `missing`.
    """
    clips = embed_files(embedder, dataset.audio_paths, batch_size, workers, progress)
    if clips.failed:
        dataset = dataset.drop([i for i, _ in clips.failed], [m for _, m in clips.failed])
    if not dataset.audio_paths:
        raise UsageError(f"no clip of {dataset.name} could be decoded.")
    text_emb = embed_texts(embedder, dataset.captions, progress=progress)
    c2a = np.array(dataset.caption_to_audio, dtype=np.int64)
    scores = score_embeddings(clips.embeddings, text_emb, c2a)
    laion = laion_conventions(_similarity(clips.embeddings, text_emb), c2a)
    return RetrievalResult(
        dataset=dataset.name,
        model=embedder.identity,
        precision=str(embedder.dtype).removeprefix("torch."),
        scores=scores,
        audio_paths=dataset.audio_paths,
        captions=dataset.captions,
        caption_to_audio=dataset.caption_to_audio,
        missing=dataset.missing,
        trained_on=training_overlap(model_folder(embedder), dataset.audio_paths),
        audio_emb=clips.embeddings,
        text_emb=text_emb,
        conventions={"laion": laion},
    )


def save_embeddings(result: RetrievalResult, folder: str | Path) -> None:
    """Write `audio.npy` (n_audio, d), `text.npy` (n_captions, d), `captions.json`
    (`[{"caption", "audio_index"}]`), `audio.json` (the clip paths, row order) and
    `missing.json` (the excluded clips and why)."""
    from clapsearch.atomic import write_text
    from clapsearch.embedding_io import save_npy

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_npy(folder / "audio.npy", result.audio_emb)
    save_npy(folder / "text.npy", result.text_emb)
    captions = [
        {"caption": c, "audio_index": int(a)}
        for c, a in zip(result.captions, result.caption_to_audio, strict=True)
    ]
    write_text(folder / "captions.json", json.dumps(captions, ensure_ascii=False, indent=1))
    write_text(folder / "audio.json", json.dumps(list(result.audio_paths), indent=1))
    missing = [{"name": m.name, "path": m.path, "reason": m.reason} for m in result.missing]
    write_text(folder / "missing.json", json.dumps(missing, ensure_ascii=False, indent=1))


def format_table(result: RetrievalResult) -> str:
    """Percentages as papers print them, median rank as a rank."""
    head = f"{'':14}" + "".join(f"{k:>9}" for k in METRIC_KEYS[:4]) + f"{'med.rank':>10}"
    lines = [
        f"{result.dataset}  model {result.model}",
        f"{len(result.audio_paths)} clips, {len(result.captions)} captions, "
        f"{len(result.missing)} missing",
        head,
    ]
    for label, key in (("text->audio", "t2a"), ("audio->text", "a2t")):
        row = result.scores[key]
        cells = "".join(f"{100 * row[k]:9.2f}" for k in METRIC_KEYS[:4])
        lines.append(f"{label:14}{cells}{row['median_rank']:10.1f}")
    lines.extend(_convention_notes(result))
    if result.missing:
        lines.append(describe_missing(result.missing))
    return "\n".join(lines)


def _convention_notes(result: RetrievalResult) -> list[str]:
    """One line per score that LAION-CLAP's evaluation would print differently."""
    laion = result.conventions.get("laion", {})
    notes = []
    ours, theirs = result.scores["a2t"]["mAP@10"], laion.get("a2t", {}).get("mAP@10")
    if theirs is not None and abs(100 * ours - 100 * theirs) >= 0.005:
        notes.append(
            f"audio->text mAP@10 by LAION-CLAP's convention (ranks in caption order, unsorted): "
            f"{100 * theirs:.2f}"
        )
    ours, theirs = result.scores["t2a"]["median_rank"], laion.get("t2a", {}).get("median_rank")
    if theirs is not None and ours != theirs:
        notes.append(f"text->audio median rank by LAION-CLAP's convention (floored): {theirs:.1f}")
    return notes
