"""Run the suite: for each task found under the root, read its data set, embed its clips once
(cache), score zero-shot and, if asked, a Freeze_L1 / Freeze_L3 probe, by the task's protocol.

Zero-shot: each class's label text fills the task's prompt; a clip's logits are its cosine
similarities to the prompts, turned into probabilities by a softmax (single-label) or a
sigmoid (multi-label) as in the paper. Folds protocol: every clip is scored (the figure is on
all clips; per-fold figures in the JSON); splits protocol: the `test` split is (and only
it is embedded when there is no probe). Probe: leave-one-fold-out, the figure the mean over folds; or train -> (val) -> test.

Honest evaluation: given the model's training record (`trained_on.json` content hashes), each
task counts the evaluated clips the model trained on and warns; `exclude_trained` drops them
before scoring instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from clapsearch.datasets import MissingClip, load_dataset
from clapsearch.datasets.labelled import LabelledSet, from_classification
from clapsearch.embedder import Embedder
from clapsearch.errors import UsageError
from clapsearch.eval.suite import metrics
from clapsearch.eval.suite.cache import EmbeddingCache
from clapsearch.eval.suite.embed import embed_clips
from clapsearch.eval.suite.probe import ProbeConfig, probabilities, train_probe
from clapsearch.eval.suite.tasks import Task
from clapsearch.prompts import render


@dataclass(frozen=True)
class Score:
    value: float  # the task's figure
    per_fold: dict[str, float]  # fold id or split -> metric on it
    n: int  # clips scored


@dataclass(frozen=True)
class TaskResult:
    task: Task
    n_clips: int  # clips embedded and kept (after exclusions)
    class_names: tuple[str, ...]
    prompts: tuple[str, ...]
    chance: float
    zeroshot: Score
    probe: Score | None
    probe_name: str | None
    missing: tuple[MissingClip, ...]
    notes: tuple[str, ...]
    trained_on: int | None  # evaluated clips the model trained on; None: no training record
    excluded: int  # of those, dropped before scoring (--exclude-trained)
    cached: int
    seconds: float

    @property
    def overlap_warning(self) -> str | None:
        if not self.trained_on or self.excluded:
            return None
        return (
            f"warning: {self.task.name}: the model trained on {self.trained_on} of the "
            f"{self.n_clips} evaluated clips; these scores overstate how it does on audio it "
            "has never heard (--exclude-trained scores the others)."
        )


@dataclass
class SuiteResult:
    model: str
    precision: str
    probe_name: str | None
    results: list[TaskResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # task -> one sentence
    training_record: bool = False  # the model carries trained_on.json


def locate(task: Task, root: Path) -> Path | None:
    """`root/<folder>` or one of the task's alias folders, if present."""
    for name in (task.folder, *task.aliases):
        if (root / name).is_dir():
            return root / name
    return None


def load_task_data(task: Task, folder: Path) -> LabelledSet:
    data = load_dataset(task.layout, folder, **task.layout_options)
    return data if isinstance(data, LabelledSet) else from_classification(data)


def _score(task: Task, targets: np.ndarray, probs: np.ndarray, rule: str) -> float | None:
    """The metric, or None where it is undefined (no clip; mAP with no positive)."""
    if targets.shape[0] == 0:
        return None
    try:
        return metrics.score(task.metric, targets, probs, rule)
    except ValueError:
        return None


def _per_fold(
    task: Task, folds: np.ndarray, targets: np.ndarray, probs: np.ndarray, rule: str
) -> dict[str, float]:
    out = {}
    for f in dict.fromkeys(folds.tolist()):
        value = _score(task, targets[folds == f], probs[folds == f], rule)
        if value is not None:
            out[f] = value
    return out


def zeroshot(
    task: Task, data: LabelledSet, emb: np.ndarray, text_emb: np.ndarray
) -> tuple[Score, np.ndarray]:
    """-> (score, mask of the scored clips)."""
    logits = emb.astype(np.float64) @ text_emb.astype(np.float64).T
    probs = metrics.sigmoid(logits) if data.multilabel else metrics.softmax(logits)
    targets = data.targets()
    folds = np.array([c.fold for c in data.clips])
    per_fold = _per_fold(task, folds, targets, probs, task.f1_rule)
    mask = folds == "test" if data.protocol == "splits" else np.ones(len(folds), dtype=bool)
    value = _score(task, targets[mask], probs[mask], task.f1_rule)
    if value is None:
        raise UsageError(f"{task.name}: no scorable clip (empty test split or no positive label).")
    return Score(value, per_fold, int(mask.sum())), mask


def probe(task: Task, data: LabelledSet, emb: np.ndarray, config: ProbeConfig) -> Score | None:
    """Freeze_L{1,3} by the task's protocol; None when there is nothing to train on."""
    targets = data.targets()
    folds = np.array([c.fold for c in data.clips])

    def val_score(t: np.ndarray, p: np.ndarray) -> float:
        return _score(task, t, p, "threshold") or 0.0

    def fit_and_score(train: np.ndarray, test: np.ndarray, val: np.ndarray | None) -> float | None:
        if not train.any() or not test.any():
            return None
        val_data = (emb[val], targets[val]) if val is not None and val.any() else None
        head = train_probe(emb[train], targets[train], data.multilabel, config, val_data, val_score)
        return _score(
            task, targets[test], probabilities(head, emb[test], data.multilabel), "threshold"
        )

    if data.protocol == "splits":
        value = fit_and_score(folds == "train", folds == "test", folds == "val")
        return (
            None if value is None else Score(value, {"test": value}, int((folds == "test").sum()))
        )
    per_fold = {}
    for f in data.folds:
        value = fit_and_score(folds != f, folds == f, None)
        if value is not None:
            per_fold[f] = value
    if not per_fold:
        return None
    return Score(float(np.mean(list(per_fold.values()))), per_fold, len(folds))


def run_task(
    task: Task,
    folder: Path,
    embedder: Embedder,
    probe_config: ProbeConfig | None = None,
    cache: EmbeddingCache | None = None,
    training_hashes: frozenset[str] | None = None,
    exclude_trained: bool = False,
    only: set[str] | None = None,
    batch_size: int = 32,
    workers: int | None = None,
    progress: bool = True,
) -> TaskResult:
    start = time.perf_counter()
    data = load_task_data(task, folder)
    if only is not None:
        data = data.drop([i for i, c in enumerate(data.clips) if Path(c.path).name not in only])
        data = replace(data, missing=tuple(m for m in data.missing if Path(m.path).name in only))
        if not data.clips:
            raise UsageError(f"{task.name}: none of its clips is in the --only list.")
    if probe_config is None and data.protocol == "splits":
        # Zero-shot scores the test split only: embedding train (85k Speech Commands clips,
        # AudioSet's unbalanced set) would be work for nothing.
        data = data.drop([i for i, c in enumerate(data.clips) if c.fold != "test"])
        if not data.clips:
            raise UsageError(f"{task.name}: the data set has no test split on disk.")
    if exclude_trained and training_hashes is None:
        raise UsageError(
            "--exclude-trained needs a model with a training record (trained_on.json)."
        )
    embedded = embed_clips(embedder, data.clips, cache, batch_size, workers, progress, task.name)
    failures = [m for _, m in embedded.failed]
    data = data.drop([i for i, _ in embedded.failed], failures)
    emb = embedded.embeddings
    trained_on, excluded = None, 0
    if training_hashes is not None:
        trained = np.array([embedded.hashes.get(c.path) in training_hashes for c in data.clips])
        trained_on = int(trained.sum())
        if exclude_trained and trained_on:
            data = data.drop(np.flatnonzero(trained).tolist())
            emb = emb[~trained]
            excluded = trained_on
    if not data.clips:
        raise UsageError(f"{task.name}: no clip left to score.")
    texts = render([task.label_text(c) for c in data.class_names], task.prompt)
    text_emb = embedder.embed_text(texts)
    zs, mask = zeroshot(task, data, emb, text_emb)
    chance = metrics.chance(task.metric, data.targets()[mask])
    pr = probe(task, data, emb, probe_config) if probe_config is not None else None
    notes = list(data.notes)
    if probe_config is not None and pr is None:
        notes.append("no probe: the protocol leaves no training clips.")
    return TaskResult(
        task=task,
        n_clips=len(data.clips),
        class_names=data.class_names,
        prompts=tuple(texts),
        chance=chance,
        zeroshot=zs,
        probe=pr,
        probe_name=probe_config.name if probe_config is not None else None,
        missing=data.missing,
        notes=tuple(notes),
        trained_on=trained_on,
        excluded=excluded,
        cached=embedded.cached,
        seconds=time.perf_counter() - start,
    )


def run_suite(
    root: Path,
    tasks: Sequence[Task],
    embedder: Embedder,
    explicit: bool = False,
    on_result: Callable[[TaskResult], None] | None = None,
    **options,
) -> SuiteResult:
    """Every task of `tasks` whose folder is under `root`. A task whose folder is absent is
    skipped quietly unless `explicit` (the user named it); a task whose data is incomplete is
    skipped with the reader's one sentence; other tasks still run."""
    result = SuiteResult(
        model=embedder.identity,
        precision=str(embedder.dtype).removeprefix("torch."),
        probe_name=options["probe_config"].name if options.get("probe_config") else None,
        training_record=options.get("training_hashes") is not None,
    )
    for task in tasks:
        folder = locate(task, root)
        if folder is None:
            if explicit:
                shown = " or ".join(f"{n}/" for n in (task.folder, *task.aliases))
                result.skipped[task.name] = f"no {task.title} data under {root} (expected {shown})."
            continue
        try:
            res = run_task(task, folder, embedder, **options)
        except UsageError as err:
            result.skipped[task.name] = str(err)
            continue
        result.results.append(res)
        if on_result is not None:
            on_result(res)
    return result
