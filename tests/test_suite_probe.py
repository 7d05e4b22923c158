"""Freeze_L1 / Freeze_L3 heads and the embedding cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clapsearch.eval.suite import metrics
from clapsearch.eval.suite.cache import EmbeddingCache
from clapsearch.eval.suite.probe import ProbeConfig, build_head, probabilities, train_probe


def _clusters(rng, n_per, centers, noise=0.3):
    x = np.concatenate([c + noise * rng.normal(size=(n_per, centers.shape[1])) for c in centers])
    y = np.repeat(np.arange(len(centers)), n_per)
    return x.astype(np.float32), y


def test_heads_have_the_papers_layer_counts():
    l1 = build_head(16, 5, 1, 32)
    l3 = build_head(16, 5, 3, 32)
    assert [type(m).__name__ for m in l1] == ["Linear"]
    assert [type(m).__name__ for m in l3] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert l3[0].in_features == 16 and l3[-1].out_features == 5


@pytest.mark.parametrize("layers", [1, 3])
def test_probe_learns_separable_classes_and_is_deterministic(layers):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 8)) * 2
    x, y = _clusters(rng, 100, centers)  # 7 batches an epoch: 210 Adam steps in 30 epochs
    xt, yt = _clusters(rng, 25, centers)
    onehot = np.eye(4)[y]
    config = ProbeConfig(layers=layers, hidden=32)
    state = torch.random.get_rng_state()
    head = train_probe(x, onehot, multilabel=False, config=config)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    probs = probabilities(head, xt, multilabel=False)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert metrics.accuracy(probs, yt) >= 0.9
    again = probabilities(train_probe(x, onehot, False, config), xt, False)
    assert np.array_equal(probs, again)


def test_probe_on_shuffled_labels_stays_near_chance():
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(4, 8)) * 2
    x, y = _clusters(rng, 100, centers)
    xt, yt = _clusters(rng, 100, centers)
    head = train_probe(x, np.eye(4)[rng.permutation(y)], False, ProbeConfig(hidden=32))
    assert metrics.accuracy(probabilities(head, xt, False), yt) < 0.4  # chance 0.25


def test_multilabel_probe_uses_sigmoid_and_ranks_positives_first():
    rng = np.random.default_rng(2)
    basis = rng.normal(size=(5, 12))
    t = rng.random((200, 5)) < 0.3
    x = (t @ basis + 0.2 * rng.normal(size=(200, 12))).astype(np.float32)
    head = train_probe(x[:150], t[:150], multilabel=True, config=ProbeConfig(hidden=32))
    probs = probabilities(head, x[150:], multilabel=True)
    assert not np.allclose(probs.sum(axis=1), 1.0)  # independent sigmoids, not a softmax
    assert metrics.mean_average_precision(t[150:], probs).value > 0.8


def test_validation_split_picks_the_best_epoch():
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(3, 6)) * 2
    x, y = _clusters(rng, 20, centers)
    xv, yv = _clusters(rng, 20, centers)
    seen: list[float] = []

    def score(targets, probs):
        value = metrics.accuracy(probs, targets.argmax(axis=1))
        seen.append(value)
        return value

    config = ProbeConfig(epochs=5, hidden=16)
    head = train_probe(x, np.eye(3)[y], False, config, val=(xv, np.eye(3)[yv]), val_score=score)
    assert len(seen) == 5
    assert metrics.accuracy(probabilities(head, xv, False), yv) == max(seen)


def test_probe_rejects_empty_or_mismatched_data():
    with pytest.raises(ValueError):
        train_probe(np.zeros((0, 4)), np.zeros((0, 2)), False)
    with pytest.raises(ValueError):
        train_probe(np.zeros((3, 4)), np.zeros((2, 2)), False)


def test_cache_round_trip_is_keyed_by_content_not_path(tmp_path):
    a = tmp_path / "a.wav"
    a.write_bytes(b"RIFF-one")
    b = tmp_path / "sub" / "b.wav"
    b.parent.mkdir()
    b.write_bytes(b"RIFF-one")  # same content, other path
    c = tmp_path / "c.wav"
    c.write_bytes(b"RIFF-two")
    with EmbeddingCache(tmp_path / "cache", "model-x", 4) as cache:
        hashes = cache.file_hashes([str(a), str(b), str(c), str(tmp_path / "absent.wav")])
        assert hashes[str(a)] == hashes[str(b)] != hashes[str(c)]
        assert str(tmp_path / "absent.wav") not in hashes
        key = (hashes[str(a)], 0.0, -1.0)
        cache.put([(key, np.arange(4, dtype=np.float32))])
        assert len(cache) == 1
    with EmbeddingCache(tmp_path / "cache", "model-x", 4) as cache:  # reopened: persisted
        assert cache.get([key])[key].tolist() == [0, 1, 2, 3]
        assert cache.get([(hashes[str(c)], 0.0, -1.0)]) == {}
        assert cache.get([(hashes[str(a)], 0.5, 1.0)]) == {}  # another segment of the file
    with EmbeddingCache(tmp_path / "cache", "model-y", 4) as other:  # another model
        assert other.get([key]) == {}
    a.write_bytes(b"RIFF-changed!")  # an edited file gets a new hash
    with EmbeddingCache(tmp_path / "cache", "model-x", 4) as cache:
        assert cache.file_hashes([str(a)])[str(a)] != key[0]
