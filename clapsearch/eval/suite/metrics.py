"""The suite's three metrics, as the MS-CLAP paper (Elizalde et al., 2022) reports them.

- accuracy (single-label tasks): top-1, with the pessimistic tie rule of
  `clapsearch.eval.metrics.zeroshot_correct` (a clip whose true class ties with another is
  wrong), so a constant model scores 0, not 1/C.
- mAP (multi-label: FSD50K, AudioSet): macro average over classes of the average precision
  `AP = sum_k (R_k - R_{k-1}) P_k` over the distinct score thresholds, highest first. Tied
  scores form one threshold (all tied clips enter the ranking together), which is exactly
  scikit-learn's `average_precision_score`; the tests compare the two on random and tie-heavy
  data. Classes with no positive clip in the scored set have no AP (scikit-learn warns and
  returns 0 there); they are left out of the mean and counted in `classes_without_positives`.
- F1 (DCASE 2017 Task 4, subtask A "audio tagging"): the challenge's ranking metric, the
  micro-averaged ("instance-based") F1 over all (clip, class) decisions, 2TP / (2TP + FP +
  FN), as in the task's official `evaluation/Models.py` (ankitshah009/Task-4-Large-scale-
  weakly-supervised-sound-event-detection-for-smart-cars; 0 when there is nothing to count).
  F1 needs yes/no decisions, so scores go through a decision rule (`decide`), see below.

Scores: the paper turns the logits into probabilities with a softmax for single-label tasks
and a sigmoid for multi-label ones (section 2.2). Both are monotonic, so accuracy and AP are
the same on logits and probabilities; only F1's thresholding depends on them. Decision rules:
`top1` (each clip gets its best class: zero-shot, where no data calibrates a threshold; the
paper does not state its rule) and `threshold` (sigmoid >= 0.5: a probe trained with binary
cross-entropy, whose sigmoid outputs are calibrated to that).

Chance levels (`chance`) are computed on the scored labels: 1/C for accuracy (a uniform
guess), the mean positive rate of the scored classes for mAP (the AP of a random ranking), and
for F1 the expected micro-F1 of a uniformly random top-1 guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clapsearch.eval.metrics import zeroshot_correct

METRICS = ("accuracy", "mAP", "F1")


def softmax(logits: np.ndarray) -> np.ndarray:
    """`(n, c)` -> `(n, c)` rows summing to 1 (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Elementwise logistic function, stable for large |x|."""
    z = np.asarray(logits, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _check_scores(scores: np.ndarray, n: int, what: str) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != n:
        raise ValueError(f"{what}: expected ({n}, n_classes) scores, got {s.shape}")
    if np.isnan(s).any():
        raise ValueError(f"{what}: scores contain NaN")
    return s


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """`(n, c)` scores, `(n,)` int true class -> top-1 accuracy (pessimistic ties)."""
    labels = np.asarray(labels)
    _check_scores(scores, labels.shape[0], "accuracy")
    if labels.size == 0:
        raise ValueError("accuracy needs at least one clip")
    return float(zeroshot_correct(scores, labels).mean())


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """AP of one class: `(n,)` bool/0-1 truth, `(n,)` scores (ties as one threshold).

    Raises ValueError when `y_true` has no positive (AP is undefined there)."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"expected two (n,) arrays, got {y.shape} and {s.shape}")
    positives = int(y.sum())
    if positives == 0:
        raise ValueError("average precision needs at least one positive clip")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # The last index of each run of equal scores: one threshold per distinct score.
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp = np.cumsum(y)[ends]
    seen = ends + 1
    precision = tp / seen
    recall_step = np.diff(np.r_[0, tp]) / positives
    return float(np.sum(recall_step * precision))


@dataclass(frozen=True)
class MapResult:
    value: float  # macro mAP over the classes with >= 1 positive
    per_class: tuple[float | None, ...]  # None where the class has no positive clip
    classes_without_positives: int


def mean_average_precision(targets: np.ndarray, scores: np.ndarray) -> MapResult:
    """`(n, c)` 0/1 targets, `(n, c)` scores -> macro mAP (module doc)."""
    t = np.asarray(targets).astype(bool)
    s = _check_scores(scores, t.shape[0], "mAP")
    if t.shape != s.shape:
        raise ValueError(f"targets {t.shape} and scores {s.shape} differ in shape")
    per_class: list[float | None] = []
    for c in range(t.shape[1]):
        per_class.append(average_precision(t[:, c], s[:, c]) if t[:, c].any() else None)
    values = [v for v in per_class if v is not None]
    if not values:
        raise ValueError("mAP needs at least one class with a positive clip")
    return MapResult(float(np.mean(values)), tuple(per_class), len(per_class) - len(values))


def micro_f1(targets: np.ndarray, predicted: np.ndarray) -> float:
    """`(n, c)` 0/1 truth and decisions -> 2TP / (2TP + FP + FN) over all cells (0 if none)."""
    t = np.asarray(targets).astype(bool)
    p = np.asarray(predicted).astype(bool)
    if t.shape != p.shape or t.ndim != 2:
        raise ValueError(f"expected two (n, c) arrays, got {t.shape} and {p.shape}")
    tp = int(np.sum(t & p))
    wrong = int(np.sum(t ^ p))  # FP + FN
    return 0.0 if tp + wrong == 0 else 2 * tp / (2 * tp + wrong)


def decide(probabilities: np.ndarray, rule: str) -> np.ndarray:
    """`(n, c)` probabilities -> `(n, c)` bool decisions by `rule` (`top1` or `threshold`).

    `top1` marks each clip's highest class (the first on a tie: it does not change F1's
    expected value and keeps exactly one decision per clip)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if rule == "top1":
        out = np.zeros(p.shape, dtype=bool)
        if p.size:
            out[np.arange(p.shape[0]), p.argmax(axis=1)] = True
        return out
    if rule == "threshold":
        return p >= 0.5
    raise ValueError(f"unknown decision rule {rule!r} (top1 or threshold)")


def chance(metric: str, targets: np.ndarray) -> float:
    """The chance level of `metric` on `(n, c)` one-hot or multi-hot targets (module doc)."""
    t = np.asarray(targets).astype(bool)
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError("chance needs (n, c) targets with n >= 1")
    n, c = t.shape
    if metric == "accuracy":
        return 1.0 / c
    if metric == "mAP":
        rates = t.mean(axis=0)
        return float(rates[rates > 0].mean())
    if metric == "F1":
        labels = t.sum()
        tp = labels / c  # each clip's one random guess hits one of its labels w.p. |L_i| / C
        return float(2 * tp / (n + labels)) if n + labels else 0.0
    raise ValueError(f"unknown metric {metric!r} ({', '.join(METRICS)})")


def score(metric: str, targets: np.ndarray, probabilities: np.ndarray, rule: str = "top1") -> float:
    """One number: `metric` of `(n, c)` probabilities against `(n, c)` multi-hot targets."""
    t = np.asarray(targets).astype(bool)
    if metric == "accuracy":
        if not (t.sum(axis=1) == 1).all():
            raise ValueError("accuracy needs exactly one true class per clip")
        return accuracy(probabilities, t.argmax(axis=1))
    if metric == "mAP":
        return mean_average_precision(t, probabilities).value
    if metric == "F1":
        return micro_f1(t, decide(probabilities, rule))
    raise ValueError(f"unknown metric {metric!r} ({', '.join(METRICS)})")
