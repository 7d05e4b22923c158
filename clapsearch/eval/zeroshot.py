"""Zero-shot classification benchmark (ESC-50, UrbanSound8K): each class name becomes a prompt,
each clip is assigned the class whose prompt embedding is closest (cosine)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clapsearch.datasets import ClassificationSet, MissingClip, describe_missing, load_dataset
from clapsearch.embedder import Embedder
from clapsearch.errors import UsageError
from clapsearch.eval.clips import embed_files
from clapsearch.eval.metrics import zeroshot_correct
from clapsearch.prompts import DEFAULT_TEMPLATE, render
from clapsearch.training_record import TrainingOverlap, model_folder, training_overlap


@dataclass(frozen=True)
class ZeroShotResult:
    dataset: str
    model: str
    template: str
    accuracy: float
    n: int
    per_fold: dict[int, float]
    missing: tuple[MissingClip, ...]
    predictions: tuple[int, ...]  # predicted class index per scored clip
    precision: str = "float32"  # the model's compute dtype
    trained_on: TrainingOverlap = TrainingOverlap(False, 0, 0)  # evaluated clips it trained on

    def to_json(self) -> dict:
        """The `--json` contract: accuracy, n, per_fold (+ missing and context keys)."""
        return {
            "accuracy": self.accuracy,
            "n": self.n,
            "per_fold": {str(k): v for k, v in sorted(self.per_fold.items())},
            "missing": len(self.missing),
            "missing_reasons": dict(Counter(m.reason for m in self.missing)),
            "dataset": self.dataset,
            "model": self.model,
            "precision": self.precision,
            "trained_on": self.trained_on.to_json(),
            "template": self.template,
        }


def load_classification_dataset(name: str, root: str | Path) -> ClassificationSet:
    return load_dataset(name, root, task="classification")


def run_zeroshot(
    embedder: Embedder,
    dataset: ClassificationSet,
    template: str = DEFAULT_TEMPLATE,
    batch_size: int = 32,
    workers: int | None = None,
    progress: bool = True,
) -> ZeroShotResult:
    """Accuracy overall and per fold; clips that fail to decode are counted in `missing`."""
    texts = render(dataset.class_names, template)
    clips = embed_files(embedder, dataset.audio_paths, batch_size, workers, progress)
    if clips.failed:
        dataset = dataset.drop([i for i, _ in clips.failed], [m for _, m in clips.failed])
    if not dataset.audio_paths:
        raise UsageError(f"no clip of {dataset.name} could be decoded.")
    class_emb = embedder.embed_text(texts)
    similarity = clips.embeddings @ class_emb.T  # (n_clips, n_classes)
    labels = np.array(dataset.labels)
    correct = zeroshot_correct(similarity, labels)
    folds = np.array(dataset.folds)
    per_fold = {int(f): float(correct[folds == f].mean()) for f in sorted(set(dataset.folds))}
    return ZeroShotResult(
        dataset=dataset.name,
        model=embedder.identity,
        precision=str(embedder.dtype).removeprefix("torch."),
        template=template,
        accuracy=float(correct.mean()),
        n=int(correct.size),
        per_fold=per_fold,
        missing=dataset.missing,
        trained_on=training_overlap(model_folder(embedder), dataset.audio_paths),
        predictions=tuple(int(p) for p in similarity.argmax(axis=1)),
    )


def format_table(result: ZeroShotResult) -> str:
    lines = [
        f"{result.dataset}  model {result.model}",
        f"prompt {result.template!r}; {result.n} clips, {len(result.missing)} missing",
        f"accuracy {100 * result.accuracy:6.2f}%",
    ]
    for fold, acc in sorted(result.per_fold.items()):
        lines.append(f"  fold {fold:<3} {100 * acc:6.2f}%")
    if result.missing:
        lines.append(describe_missing(result.missing))
    return "\n".join(lines)
