"""Retrieval / zero-shot metrics: hand-worked matrices and a slow loop reference."""

from __future__ import annotations

import numpy as np
import pytest

from clapsearch.eval.metrics import (
    METRIC_KEYS,
    audio_to_text_ranks,
    average_precision_at,
    retrieval_scores,
    text_to_audio_ranks,
    zeroshot_accuracy,
    zeroshot_correct,
)


# --- a plain reference: sort every query's list, wrong items ahead of true ones on ties ----
def _ranked_positions(scores: list[float], is_true: list[bool]) -> list[int]:
    """1-based positions of the true items after sorting by score (desc), wrong first on ties."""
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], is_true[j], j))
    return sorted(pos + 1 for pos, j in enumerate(order) if is_true[j])


def reference_scores(sim: np.ndarray, c2a: np.ndarray) -> dict:
    n_cap, n_aud = sim.shape
    t2a_ranks, t2a_ap = [], []
    for i in range(n_cap):
        (rank,) = _ranked_positions(list(sim[i]), [a == c2a[i] for a in range(n_aud)])
        t2a_ranks.append(rank)
        t2a_ap.append(1.0 / rank if rank <= 10 else 0.0)
    a2t_best, a2t_ap = [], []
    for a in range(n_aud):
        truth = [c2a[i] == a for i in range(n_cap)]
        if not any(truth):
            continue
        ranks = _ranked_positions(list(sim[:, a]), truth)
        a2t_best.append(ranks[0])
        total = 0.0
        for i, r in enumerate(ranks, start=1):
            if r <= 10:
                total += i / r
        a2t_ap.append(total / len(ranks))

    def summary(best, ap):
        out = {f"R@{k}": sum(r <= k for r in best) / len(best) for k in (1, 5, 10)}
        out["mAP@10"] = sum(ap) / len(ap)
        out["median_rank"] = float(np.median(best))
        return out

    return {"t2a": summary(t2a_ranks, t2a_ap), "a2t": summary(a2t_best, a2t_ap)}


def _assert_close(got: dict, want: dict) -> None:
    assert set(got) == {"t2a", "a2t"}
    for direction in ("t2a", "a2t"):
        assert tuple(got[direction]) == METRIC_KEYS
        for key in METRIC_KEYS:
            assert got[direction][key] == pytest.approx(want[direction][key], abs=1e-12), (
                direction,
                key,
            )


# --- hand-worked -------------------------------------------------------------------------
def test_two_captions_per_clip_hand_worked():
    # clips A=0, B=1; captions c0, c1 -> A and c2, c3 -> B.
    sim = np.array([[0.9, 0.1], [0.2, 0.5], [0.3, 0.8], [0.7, 0.6]])
    c2a = np.array([0, 0, 1, 1])
    # T2A ranks: c0 1, c1 2, c2 1, c3 2.
    assert text_to_audio_ranks(sim, c2a).tolist() == [1, 2, 1, 2]
    # A2T: A's column orders c0, c3, c2, c1 -> true ranks [1, 4]; B's: c2, c3, ... -> [1, 2].
    assert [r.tolist() for r in audio_to_text_ranks(sim, c2a)] == [[1, 4], [1, 2]]
    got = retrieval_scores(sim, c2a)
    want = {
        "t2a": {"R@1": 0.5, "R@5": 1.0, "R@10": 1.0, "mAP@10": 0.75, "median_rank": 1.5},
        # AP(A) = (1/1 + 2/4) / 2 = 0.75, AP(B) = (1/1 + 2/2) / 2 = 1.
        "a2t": {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0, "mAP@10": 0.875, "median_rank": 1.0},
    }
    _assert_close(got, want)


def test_a2t_map_sorts_ranks_unlike_laion():
    # Clip 0's *second* caption ranks first, its first caption fourth.
    sim = np.array([[0.2, 0.0], [0.9, 0.0], [0.5, 1.0], [0.4, 1.0]])
    c2a = np.array([0, 0, 1, 1])
    assert audio_to_text_ranks(sim, c2a)[0].tolist() == [1, 4]
    ours = retrieval_scores(sim, c2a)["a2t"]["mAP@10"]
    # Sorted (ours, WavCaps): (1/1 + 2/4)/2 = 0.75.  Unsorted (LAION's caption order, ranks
    # [4, 1]): (1/4 + 2/1)/2 = 1.125, an "AP" above 1.  Clip 1: (1 + 1)/2 = 1.
    assert ours == pytest.approx((0.75 + 1.0) / 2)


def test_ties_are_pessimistic():
    sim = np.array(
        [
            [0.5, 0.5, 0.2],  # true 0, tied with clip 1 -> rank 2
            [0.1, 0.3, 0.3],  # true 2, tied with clip 1 -> rank 2
            [0.4, 0.4, 0.4],  # true 1, all tied -> rank 3
            [0.0, 0.9, 0.1],  # true 1, clear winner -> rank 1
        ]
    )
    c2a = np.array([0, 2, 1, 1])
    assert text_to_audio_ranks(sim, c2a).tolist() == [2, 2, 3, 1]
    # Clip 1's column: [0.5 (c0, wrong), 0.3 (c1, wrong), 0.4 (c2, true), 0.9 (c3, true)]:
    # c3 first, then c0 beats c2 -> [1, 3].
    # Clip 0's column [0.5 (true), 0.1, 0.4, 0.0] -> [1]; clip 2's [0.2, 0.3 (true), 0.4, 0.1]
    # -> c2 (0.4) ahead -> [2].
    ranks = audio_to_text_ranks(sim, c2a)
    assert [r.tolist() for r in ranks] == [[1], [1, 3], [2]]
    _assert_close(retrieval_scores(sim, c2a), reference_scores(sim, c2a))


def test_true_captions_tied_with_each_other_and_a_wrong_one():
    # Column of clip 0: c0, c1 (true) and c2 (wrong) all 0.9: the wrong one goes first.
    sim = np.array([[0.9, 0.0], [0.9, 0.0], [0.9, 1.0]])
    c2a = np.array([0, 0, 1])
    assert audio_to_text_ranks(sim, c2a)[0].tolist() == [2, 3]
    sim2 = np.array([[0.9, 0.0], [0.9, 0.0], [0.1, 1.0]])
    assert audio_to_text_ranks(sim2, c2a)[0].tolist() == [1, 2]  # no penalty among true ones


def test_collapsed_model_scores_worst_not_best():
    n_cap, n_aud = 10, 5
    sim = np.zeros((n_cap, n_aud))
    c2a = np.repeat(np.arange(n_aud), 2)
    got = retrieval_scores(sim, c2a)
    assert got["t2a"]["R@1"] == 0.0
    assert got["t2a"]["median_rank"] == n_aud
    # Each clip has 2 true captions among 10, all tied: ranks [9, 10].
    assert got["a2t"]["median_rank"] == 9.0
    assert got["a2t"]["mAP@10"] == pytest.approx((1 / 9 + 2 / 10) / 2)


def test_clip_without_captions_is_distractor_only():
    # Clip 1 has no caption (as if its captions were dropped): it still competes in T2A but is
    # not an A2T query.
    sim = np.array([[0.5, 0.8, 0.1], [0.1, 0.2, 0.7]])
    c2a = np.array([0, 2])
    assert text_to_audio_ranks(sim, c2a).tolist() == [2, 1]
    ranks = audio_to_text_ranks(sim, c2a)
    assert ranks[1].size == 0
    got = retrieval_scores(sim, c2a)
    assert got["t2a"]["R@1"] == 0.5
    assert got["a2t"]["R@1"] == 1.0  # two queries (clips 0 and 2), both right
    # Excluding the distractor column (the clip really missing) makes T2A perfect.
    assert retrieval_scores(sim[:, [0, 2]], np.array([0, 1]))["t2a"]["R@1"] == 1.0


def test_rank_beyond_ten_gets_no_map_credit():
    n = 12
    sim = np.tile(np.arange(n, 0, -1, dtype=float), (n, 1))  # every caption ranks clip 0 first
    c2a = np.arange(n)
    ranks = text_to_audio_ranks(sim, c2a)
    assert ranks.tolist() == list(range(1, n + 1))
    got = retrieval_scores(sim, c2a)["t2a"]
    assert got["mAP@10"] == pytest.approx(sum(1 / r for r in range(1, 11)) / n)
    assert got["R@5"] == pytest.approx(5 / n)
    assert got["median_rank"] == 6.5


def test_average_precision_at():
    assert average_precision_at(np.array([1, 2, 3])) == 1.0
    assert average_precision_at(np.array([2])) == 0.5
    assert average_precision_at(np.array([1, 11])) == 0.5  # second is past the cutoff
    with pytest.raises(ValueError):
        average_precision_at(np.array([]))


@pytest.mark.parametrize(
    "sim,c2a",
    [
        (np.zeros((2, 2)), np.array([0, 2])),
        (np.zeros((2, 2)), np.array([0])),
        (np.array([[np.nan, 0.0]]), np.array([0])),
        (np.zeros((0, 2)), np.zeros(0, dtype=int)),
        (np.zeros((2, 2)), np.array([0.0, 1.0])),
    ],
)
def test_bad_inputs_raise(sim, c2a):
    with pytest.raises(ValueError):
        retrieval_scores(sim, c2a)


# --- against the reference -----------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_on_random_matrices(seed):
    rng = np.random.default_rng(seed)
    n_aud = int(rng.integers(3, 30))
    per_clip = rng.integers(0, 6, size=n_aud)  # 0 captions: a clip only as distractor
    per_clip[0] = max(per_clip[0], 1)
    c2a = np.repeat(np.arange(n_aud), per_clip)
    rng.shuffle(c2a)
    if seed % 2:
        sim = rng.integers(0, 4, size=(c2a.size, n_aud)).astype(float)  # many ties
    else:
        sim = rng.standard_normal((c2a.size, n_aud))
    _assert_close(retrieval_scores(sim, c2a), reference_scores(sim, c2a))


def test_correlated_embeddings_beat_chance_and_match_reference():
    rng = np.random.default_rng(7)
    audio = rng.standard_normal((40, 8))
    c2a = np.repeat(np.arange(40), 5)
    text = audio[c2a] + 0.8 * rng.standard_normal((200, 8))
    sim = text @ audio.T
    got = retrieval_scores(sim, c2a)
    _assert_close(got, reference_scores(sim, c2a))
    assert got["t2a"]["R@10"] > 0.5 and got["a2t"]["R@1"] > got["t2a"]["R@1"] / 2


# --- zero-shot -----------------------------------------------------------------------------
def test_zeroshot_accuracy_with_ties():
    sim = np.array(
        [
            [0.9, 0.1, 0.0],  # label 0: right
            [0.5, 0.5, 0.0],  # label 0: tie with class 1 -> wrong
            [0.1, 0.2, 0.3],  # label 1: wrong
            [0.0, 0.0, 0.1],  # label 2: right
        ]
    )
    labels = np.array([0, 0, 1, 2])
    assert zeroshot_correct(sim, labels).tolist() == [True, False, False, True]
    assert zeroshot_accuracy(sim, labels) == 0.5
    with pytest.raises(ValueError):
        zeroshot_accuracy(sim, np.array([0, 0, 1, 3]))
