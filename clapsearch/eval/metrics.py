"""Retrieval and zero-shot metrics, on a similarity matrix, by the literature's protocol.

Text-to-audio (T2A): every caption ranks all clips; scores are pooled over all captions (Clotho
has five per clip, so each clip is queried five times). R@k is the fraction of captions whose
clip ranks within k; mAP@10 is the mean of 1/rank when the clip is in the top 10, else 0.

Audio-to-text (A2T): every clip ranks all captions. R@k is a hit when *any* of the clip's
captions ranks within k; the median rank uses that best rank. mAP@10 is average precision over
the clip's true captions with their ranks sorted ascending, truncated at 10 and normalised by
the number of true captions: `sum_{i: r_i <= 10} i / r_i / n_true` with `r_1 < r_2 < ...`
(the form of WavCaps / Mei et al.'s audio-text_retrieval `a2t`). LAION-CLAP's
`evaluate_clotho_audiocaps` collects the ranks in caption order and never sorts them, so a clip
whose second caption outranks its first gets a different value there (ranks [4, 1] give
(1/4 + 2/1) / 2 = 1.125, an AP above 1; sorted [1, 4] give 0.75); LAION
also floors the median rank (`floor(median(rank0)) + 1`) where we report the plain median of
1-based ranks (an even count can give x.5).

Ties (defined, so a collapsed model cannot look good): *pessimistic*. An item tied with a true
item and not itself true ranks ahead of it: rank = 1 + the number of wrong items scoring
greater than or equal to the true one (+ the true items scoring strictly higher, for A2T).
A model that outputs one constant vector therefore gets rank n for every query, not rank 1.
Zero-shot uses the same rule: a clip is correct only when its class scores strictly higher
than every other class.

Clips with no caption are kept as T2A distractors and skipped as A2T queries (there is nothing
to find); every caption must point at a column of the matrix. NaN scores raise.
"""

from __future__ import annotations

import numpy as np

KS = (1, 5, 10)
MAP_CUTOFF = 10
METRIC_KEYS = ("R@1", "R@5", "R@10", "mAP@10", "median_rank")
_CHUNK = 2048  # caption rows compared at once in T2A: bounds memory to CHUNK x n_audio bools


def _check(similarity: np.ndarray, caption_to_audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sim = np.asarray(similarity)
    c2a = np.asarray(caption_to_audio)
    if sim.ndim != 2:
        raise ValueError(f"similarity must be 2-D (n_captions, n_audio), got {sim.shape}")
    if c2a.shape != (sim.shape[0],):
        raise ValueError(f"caption_to_audio must have shape ({sim.shape[0]},), got {c2a.shape}")
    if sim.shape[0] == 0 or sim.shape[1] == 0:
        raise ValueError("need at least one caption and one clip to score retrieval")
    if not np.issubdtype(c2a.dtype, np.integer):
        raise ValueError("caption_to_audio must hold integer clip indices")
    if c2a.min() < 0 or c2a.max() >= sim.shape[1]:
        raise ValueError(f"caption_to_audio holds indices outside [0, {sim.shape[1]})")
    if np.isnan(sim).any():
        raise ValueError("similarity contains NaN")
    # Comparisons are exact in any float type: keep float32 (no 2x copy of a large matrix).
    if not np.issubdtype(sim.dtype, np.floating):
        sim = sim.astype(np.float64)
    return sim, c2a.astype(np.int64, copy=False)


def text_to_audio_ranks(similarity: np.ndarray, caption_to_audio: np.ndarray) -> np.ndarray:
    """`(n_captions, n_audio)`, `(n_captions,)` -> `(n_captions,)` int 1-based rank of the
    true clip for each caption (pessimistic ties: every clip scoring >= the true one counts)."""
    sim, c2a = _check(similarity, caption_to_audio)
    ranks = np.empty(sim.shape[0], dtype=np.int64)
    for lo in range(0, sim.shape[0], _CHUNK):
        block = sim[lo : lo + _CHUNK]
        true = block[np.arange(block.shape[0]), c2a[lo : lo + _CHUNK]]
        # Counts the true clip itself once (>=), which is the "1 +" of the rank.
        ranks[lo : lo + _CHUNK] = (block >= true[:, None]).sum(axis=1)
    return ranks


def audio_to_text_ranks(similarity: np.ndarray, caption_to_audio: np.ndarray) -> list[np.ndarray]:
    """-> for each clip, the sorted 1-based ranks of its true captions among all captions
    (empty for a clip without captions).

    The i-th best true caption (by score) gets rank `i + #{wrong captions scoring >= it}`:
    true captions never push each other down beyond their own order, wrong ones win ties.
    """
    sim, c2a = _check(similarity, caption_to_audio)
    by_clip = np.ascontiguousarray(sim.T)  # (n_audio, n_captions): each clip's scores contiguous
    out: list[np.ndarray] = []
    for a in range(sim.shape[1]):
        column = by_clip[a]
        is_true = c2a == a
        true_scores = np.sort(column[is_true])[::-1]
        wrong = np.sort(column[~is_true])
        wrong_at_least = wrong.size - np.searchsorted(wrong, true_scores, side="left")
        out.append(np.arange(1, true_scores.size + 1) + wrong_at_least)
    return out


def _summary(best_ranks: np.ndarray, ap: np.ndarray) -> dict[str, float]:
    result = {f"R@{k}": float(np.mean(best_ranks <= k)) for k in KS}
    result["mAP@10"] = float(np.mean(ap))
    result["median_rank"] = float(np.median(best_ranks))
    return result


def retrieval_scores(similarity: np.ndarray, caption_to_audio: np.ndarray) -> dict:
    """Score text<->audio retrieval.

    similarity: `(n_captions, n_audio)` scores (cosine similarities, higher = closer).
    caption_to_audio: `(n_captions,)` int, the column of each caption's clip.
    Returns `{"t2a": {...}, "a2t": {...}}`, each with `R@1, R@5, R@10, mAP@10` (fractions in
    [0, 1]) and `median_rank` (1-based float). See the module doc for protocol and ties.
    """
    t2a = text_to_audio_ranks(similarity, caption_to_audio)
    t2a_ap = np.where(t2a <= MAP_CUTOFF, 1.0 / t2a, 0.0)

    per_clip = [r for r in audio_to_text_ranks(similarity, caption_to_audio) if r.size]
    a2t_best = np.array([r[0] for r in per_clip], dtype=np.int64)
    a2t_ap = np.array([average_precision_at(r, MAP_CUTOFF) for r in per_clip])
    return {"t2a": _summary(t2a, t2a_ap), "a2t": _summary(a2t_best, a2t_ap)}


def average_precision_at(sorted_ranks: np.ndarray, cutoff: int = MAP_CUTOFF) -> float:
    """AP@cutoff of one query whose true items sit at `sorted_ranks` (ascending, 1-based),
    normalised by the number of true items (items past the cutoff contribute 0)."""
    ranks = np.asarray(sorted_ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ValueError("average precision needs at least one true item")
    hits = ranks <= cutoff
    precision_at_hit = np.arange(1, ranks.size + 1)[hits] / ranks[hits]
    return float(precision_at_hit.sum() / ranks.size)


def audio_to_text_ranks_by_caption(
    similarity: np.ndarray, caption_to_audio: np.ndarray
) -> list[np.ndarray]:
    """-> for each clip, the 1-based ranks of its true captions in *caption order* (the order
    of `caption_to_audio`), the same ranks as `audio_to_text_ranks` before sorting (true
    captions tied with each other keep caption order)."""
    sim, c2a = _check(similarity, caption_to_audio)
    by_clip = np.ascontiguousarray(sim.T)
    out: list[np.ndarray] = []
    for a in range(sim.shape[1]):
        column = by_clip[a]
        is_true = c2a == a
        true_scores = column[is_true]
        wrong = np.sort(column[~is_true])
        wrong_at_least = wrong.size - np.searchsorted(wrong, true_scores, side="left")
        order = np.argsort(-true_scores, kind="stable")  # best first, ties in caption order
        place = np.empty_like(order)
        place[order] = np.arange(true_scores.size)
        out.append(place + 1 + wrong_at_least)
    return out


def laion_conventions(similarity: np.ndarray, caption_to_audio: np.ndarray) -> dict:
    """The scores LAION-CLAP's `evaluate_clotho_audiocaps` computes differently from
    `retrieval_scores` (same ranks, pessimistic ties):

    - A2T mAP@10 from each clip's true-caption ranks in caption order, never sorted:
      `sum_j j / r_j` over the ranks within 10 taken in that order, over the number of true
      captions (LAION divides by 5, Clotho's and AudioCaps' count);
    - T2A median rank as `floor(median(rank - 1)) + 1`.

    -> `{"a2t": {"mAP@10": x}, "t2a": {"median_rank": y}}`."""
    t2a = text_to_audio_ranks(similarity, caption_to_audio)
    aps = []
    for ranks in audio_to_text_ranks_by_caption(similarity, caption_to_audio):
        if not ranks.size:
            continue
        kept = ranks[ranks <= MAP_CUTOFF]
        aps.append(float((np.arange(1, kept.size + 1) / kept).sum() / ranks.size))
    return {
        "a2t": {"mAP@10": float(np.mean(aps))},
        "t2a": {"median_rank": float(np.floor(np.median(t2a - 1)) + 1)},
    }


def zeroshot_correct(similarity: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """`(n_clips, n_classes)` scores, `(n_clips,)` int true class -> `(n_clips,)` bool: the
    true class scores strictly higher than every other class (ties count as wrong)."""
    sim = np.asarray(similarity, dtype=np.float64)
    y = np.asarray(labels)
    if sim.ndim != 2 or y.shape != (sim.shape[0],):
        raise ValueError(f"expected (n, c) scores and (n,) labels, got {sim.shape}, {y.shape}")
    if sim.shape[0] and (y.min() < 0 or y.max() >= sim.shape[1]):
        raise ValueError(f"labels outside [0, {sim.shape[1]})")
    if np.isnan(sim).any():
        raise ValueError("similarity contains NaN")
    true = sim[np.arange(sim.shape[0]), y]
    return (sim >= true[:, None]).sum(axis=1) == 1


def zeroshot_accuracy(similarity: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in [0, 1] (pessimistic ties, see `zeroshot_correct`)."""
    correct = zeroshot_correct(similarity, labels)
    if correct.size == 0:
        raise ValueError("zero-shot accuracy needs at least one clip")
    return float(correct.mean())
