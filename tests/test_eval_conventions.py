"""Retrieval scores by LAION-CLAP's conventions, reported beside ours where they differ."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clapsearch.eval.metrics import (
    audio_to_text_ranks,
    audio_to_text_ranks_by_caption,
    laion_conventions,
    retrieval_scores,
)


def test_unsorted_a2t_map_hand_worked():
    """Clip A's true captions rank [4, 1] in caption order: LAION gives (1/4 + 2/1) / 2 =
    1.125 (an AP above 1), sorted [1, 4] gives (1/1 + 2/4) / 2 = 0.75."""
    # captions c0, c1 -> clip A; c2, c3 -> clip B. Rows: captions, columns: clips.
    sim = np.array([[0.6, 0.1], [0.9, 0.2], [0.8, 0.9], [0.7, 0.8]])
    c2a = np.array([0, 0, 1, 1])
    assert [r.tolist() for r in audio_to_text_ranks_by_caption(sim, c2a)] == [[4, 1], [1, 2]]
    assert [r.tolist() for r in audio_to_text_ranks(sim, c2a)] == [[1, 4], [1, 2]]
    assert retrieval_scores(sim, c2a)["a2t"]["mAP@10"] == pytest.approx((0.75 + 1.0) / 2)
    assert laion_conventions(sim, c2a)["a2t"]["mAP@10"] == pytest.approx((1.125 + 1.0) / 2)


def test_floored_median_rank():
    sim = np.array([[0.9, 0.1], [0.8, 0.9]])  # c0 -> A rank 1, c1 -> A rank 2
    c2a = np.array([0, 0])
    assert retrieval_scores(sim, c2a)["t2a"]["median_rank"] == 1.5
    assert laion_conventions(sim, c2a)["t2a"]["median_rank"] == 1.0


def _laion_reference(sim: torch.Tensor) -> tuple[float, float]:
    """The lines of laion_clap's `evaluate_clotho_audiocaps` (training/train.py) that compute
    A2T mAP@10 and the T2A median rank, for n clips with 5 captions each (caption d*5+i
    belongs to clip d)."""
    logits_per_audio = sim.T  # [num_samples, num_samples * 5]
    num_samples = logits_per_audio.shape[0]
    pred_text = []
    for d in range(5):
        logit = sim.reshape(num_samples, 5, num_samples)[:, d, :]
        ground_truth = torch.arange(len(logit)).view(-1, 1)
        ranking = torch.argsort(logit, descending=True)
        pred_text.append(torch.where(ranking == ground_truth)[1].numpy())
    median = np.floor(np.median(np.concatenate(pred_text))) + 1
    map_all = []
    for d in range(num_samples):
        ranking = torch.argsort(logits_per_audio[d, :], descending=True)
        ground_truth = torch.arange(d * 5, d * 5 + 5)[None]
        all_pred = torch.where(torch.stack([ranking] * 5) == ground_truth.view(-1, 1))[1]
        kept = all_pred[all_pred < 10].numpy()
        map_all.append(np.sum(np.arange(1, len(kept) + 1) / (kept + 1)) / 5)
    return float(np.mean(map_all)), float(median)


def test_matches_laions_own_evaluation_code():
    gen = torch.Generator().manual_seed(0)
    n = 40
    audio = torch.nn.functional.normalize(torch.randn(n, 8, generator=gen), dim=-1)
    text = torch.nn.functional.normalize(
        audio.repeat_interleave(5, 0) + 0.9 * torch.randn(5 * n, 8, generator=gen), dim=-1
    )
    sim = text @ audio.T  # (captions, clips), no ties
    c2a = np.repeat(np.arange(n), 5)
    want_map, want_median = _laion_reference(sim)
    got = laion_conventions(sim.numpy(), c2a)
    assert got["a2t"]["mAP@10"] == pytest.approx(want_map, abs=1e-12)
    assert got["t2a"]["median_rank"] == want_median
    assert retrieval_scores(sim.numpy(), c2a)["a2t"]["mAP@10"] != pytest.approx(want_map)


def test_report_shows_laions_value_only_where_it_differs():
    from clapsearch.eval.retrieval import RetrievalResult, format_table

    sim = np.array([[0.6, 0.1], [0.9, 0.2], [0.8, 0.9], [0.7, 0.8]])
    c2a = np.array([0, 0, 1, 1])

    def result(sim):
        return RetrievalResult(
            dataset="clotho",
            model="m",
            scores=retrieval_scores(sim, c2a),
            audio_paths=("a.wav", "b.wav"),
            captions=("c0", "c1", "c2", "c3"),
            caption_to_audio=tuple(c2a),
            missing=(),
            audio_emb=np.zeros((2, 2)),
            text_emb=np.zeros((4, 2)),
            conventions={"laion": laion_conventions(sim, c2a)},
        )

    differs = result(sim)
    assert differs.to_json()["conventions"]["laion"]["a2t"]["mAP@10"] == pytest.approx(1.0625)
    assert "by LAION-CLAP's convention (ranks in caption order, unsorted): 106.25" in format_table(
        differs
    )
    agrees = result(np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8]]))
    assert "LAION" not in format_table(agrees)
