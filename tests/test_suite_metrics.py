"""The suite's metrics against scikit-learn, on random and tie-heavy data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, f1_score

from clapsearch.eval.suite import metrics as m


def _multilabel(rng, n, c, rate=0.2):
    t = rng.random((n, c)) < rate
    t[rng.integers(0, n, c), np.arange(c)] = True  # every class has a positive
    return t


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("levels", [None, 2, 3, 5])  # None: continuous; k: k distinct scores
def test_map_matches_sklearn_macro(seed, levels):
    rng = np.random.default_rng(seed)
    t = _multilabel(rng, 60, 7)
    s = rng.random((60, 7)) if levels is None else rng.integers(0, levels, (60, 7)) / levels
    ours = m.mean_average_precision(t, s)
    assert ours.value == pytest.approx(average_precision_score(t, s, average="macro"), abs=1e-12)
    for c in range(7):
        assert ours.per_class[c] == pytest.approx(average_precision_score(t[:, c], s[:, c]))


def test_map_all_tied_scores_is_the_positive_rate():
    t = np.array([[1, 0], [0, 1], [0, 0], [1, 1]], dtype=bool)
    s = np.zeros((4, 2))
    assert m.mean_average_precision(t, s).value == pytest.approx(0.5)  # rates 2/4 and 2/4
    assert average_precision_score(t, s, average="macro") == pytest.approx(0.5)


def test_map_skips_classes_without_positives_and_says_so():
    rng = np.random.default_rng(0)
    t = _multilabel(rng, 40, 4)
    t[:, 2] = False
    s = rng.random((40, 4))
    ours = m.mean_average_precision(t, s)
    keep = [0, 1, 3]
    assert ours.classes_without_positives == 1 and ours.per_class[2] is None
    assert ours.value == pytest.approx(average_precision_score(t[:, keep], s[:, keep]))
    with pytest.raises(ValueError):
        m.mean_average_precision(np.zeros((3, 2)), np.zeros((3, 2)))


def test_map_perfect_and_reversed_rankings():
    t = np.array([[1], [1], [0], [0]], dtype=bool)
    assert m.mean_average_precision(t, np.array([[4.0], [3], [2], [1]])).value == 1.0
    # positives last: precisions 1/3 and 2/4
    assert m.mean_average_precision(t, np.array([[1.0], [2], [3], [4]])).value == pytest.approx(
        (1 / 3 + 2 / 4) / 2
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("rate", [0.05, 0.3, 0.9])
def test_micro_f1_matches_sklearn(seed, rate):
    rng = np.random.default_rng(seed)
    t = _multilabel(rng, 50, 17, rate)
    p = rng.random((50, 17)) < rate
    assert m.micro_f1(t, p) == pytest.approx(f1_score(t, p, average="micro"), abs=1e-12)


def test_micro_f1_edge_cases():
    z = np.zeros((3, 4), dtype=bool)
    assert m.micro_f1(z, z) == 0.0 == f1_score(z, z, average="micro", zero_division=0)
    t = np.eye(4, dtype=bool)
    assert m.micro_f1(t, t) == 1.0
    assert m.micro_f1(t, ~t) == 0.0


def test_f1_decision_rules_on_tie_heavy_scores():
    rng = np.random.default_rng(3)
    t = _multilabel(rng, 40, 6, 0.25)
    logits = rng.integers(-2, 3, (40, 6)).astype(float)  # many ties
    probs = m.sigmoid(logits)
    top1 = m.decide(probs, "top1")
    assert (top1.sum(axis=1) == 1).all()
    assert (top1.argmax(axis=1) == probs.argmax(axis=1)).all()
    thr = m.decide(probs, "threshold")
    assert (thr == (logits >= 0)).all()  # sigmoid >= 0.5 <=> logit >= 0
    for rule, pred in (("top1", top1), ("threshold", thr)):
        assert m.score("F1", t, probs, rule) == pytest.approx(f1_score(t, pred, average="micro"))


@pytest.mark.parametrize("seed", range(5))
def test_accuracy_matches_sklearn_without_ties_and_is_pessimistic_with_them(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, 80)
    logits = rng.normal(size=(80, 5))
    probs = m.softmax(logits)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == logits.argmax(axis=1)).all()
    assert m.accuracy(probs, labels) == pytest.approx(accuracy_score(labels, probs.argmax(1)))
    onehot = np.eye(5, dtype=bool)[labels]
    assert m.score("accuracy", onehot, probs) == m.accuracy(probs, labels)
    # A constant model ties every class: 0, not 1/5 (argmax would pick class 0 every time).
    assert m.accuracy(np.zeros((80, 5)), labels) == 0.0


def test_softmax_sigmoid_stable_for_large_logits():
    big = np.array([[1000.0, -1000.0, 0.0]])
    assert np.isfinite(m.softmax(big)).all() and m.softmax(big)[0, 0] == pytest.approx(1.0)
    assert m.sigmoid(big)[0].tolist() == pytest.approx([1.0, 0.0, 0.5])


def test_chance_levels():
    onehot = np.eye(4, dtype=bool)[[0, 1, 2, 3, 0]]
    assert m.chance("accuracy", onehot) == 0.25
    multi = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=bool)
    assert m.chance("mAP", multi) == pytest.approx((3 / 4 + 1 / 4) / 2)  # class 2: no positive
    # F1 of a random top-1 guess: simulated mean agrees with the closed form.
    rng = np.random.default_rng(0)
    t = _multilabel(rng, 400, 17, 0.07)
    sims = [m.micro_f1(t, np.eye(17, dtype=bool)[rng.integers(0, 17, 400)]) for _ in range(300)]
    assert np.mean(sims) == pytest.approx(m.chance("F1", t), rel=0.03)


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        m.score("nope", np.eye(2), np.eye(2))
    with pytest.raises(ValueError):
        m.accuracy(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(ValueError):
        m.decide(np.eye(2), "sometimes")
