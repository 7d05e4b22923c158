"""Zero-shot audio-to-text classification: which of the given labels does each file sound like.

Each label becomes a prompt (`clapsearch.prompts`: "This is a sound of {label}." by default, the
wording LAION-CLAP was evaluated with) and is embedded once; each file is embedded with the
model's long-clip policy (`Embedder.embed_audio`: the normalised mean of its windows). Scores:

- single-label (default, two or more labels): `softmax(scale * cos(audio, prompt_i))` over
  the labels; they sum to 1 and answer "which one of these".
- multi-label (`--multi-label`, and always for a single label, where a softmax would be a
  constant 1.0): an independent `sigmoid(scale * (cos(audio, prompt_i) - cos(audio, reference)))`
  per label, where `reference` is the template filled with the generic word "something". CLAP
  has no trained per-label bias, and a raw `sigmoid(scale * cos)` is ~1 for every label, so the
  generic prompt is the zero point: a label scores above 0.5 when the audio is closer to it than
  to "a sound of something". A label's score never depends on which other labels are asked.

Every score also carries the raw cosine `cos(audio, prompt)`, and the per-window timeline
shows cosines only: with CLAP's large logit scale (~30-100) a difference of 0.05 in cosine is
already a softmax of 0.99, so probabilities of single 10 s windows read as certainties (98 of
120 windows at >= 0.99 in one measured recording, right or wrong), while cosines keep the
ranking and show how close the labels are. Cosines are comparable across files and windows
of one model, not across models.

`scale` is the model's own audio-to-text logit scale (`Embedder.logit_scale`: the trained
temperature of each backend).

Files are streamed window by window (`clapsearch.audio.iter_windows`, the index's grid: the
last window flush with the end), so a 2-hour recording costs one batch of memory; a file's
vector is the normalised mean of its window vectors, exactly `Embedder.embed_audio`'s policy
(fusion models: the file through the model's own fusion input). `timeline=True` also scores
every window on its own, for long recordings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clapsearch.errors import UsageError
from clapsearch.prompts import DEFAULT_TEMPLATE, fill, parse_labels, render

if TYPE_CHECKING:
    from clapsearch.embedder import Embedder

REFERENCE_LABEL = "something"


@dataclass(frozen=True)
class LabelScore:
    label: str
    score: float  # probability: softmax over labels, or an independent sigmoid (multi-label)
    cosine: float  # cos(audio, prompt), the raw similarity the score is computed from


@dataclass(frozen=True)
class LabelCosine:
    label: str
    cosine: float


@dataclass(frozen=True)
class WindowLabels:
    """Cosines of one window of a file with the labels (`timeline=True`; module doc: why
    not probabilities)."""

    start: float
    end: float
    labels: tuple[LabelCosine, ...]  # best first, at most `top`


@dataclass(frozen=True)
class Classification:
    path: str
    labels: tuple[LabelScore, ...]  # whole file, best first, at most `top`
    timeline: tuple[WindowLabels, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "labels": _labels_json(self.labels)}
        if self.timeline is not None:
            out["timeline"] = [
                {
                    "start": w.start,
                    "end": w.end,
                    "labels": [{"label": c.label, "cosine": c.cosine} for c in w.labels],
                }
                for w in self.timeline
            ]
        return out


def _labels_json(labels: Sequence[LabelScore]) -> list[dict[str, Any]]:
    return [{"label": s.label, "score": s.score, "cosine": s.cosine} for s in labels]


def label_scores(
    audio: np.ndarray,
    prompts: np.ndarray,
    scale: float,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """`(N, dim)` audio and `(L, dim)` prompt unit vectors -> `(N, L)` probabilities.

    reference None: softmax over labels (rows sum to 1). reference `(dim,)`: multi-label
    sigmoids against the reference prompt (module doc).
    """
    cos = audio.astype(np.float64) @ prompts.astype(np.float64).T
    if reference is not None:
        ref = audio.astype(np.float64) @ reference.astype(np.float64)
        return 1.0 / (1.0 + np.exp(-scale * (cos - ref[:, None])))
    logits = scale * cos
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def _order(scores: np.ndarray, top: int | None) -> np.ndarray:
    return np.argsort(-scores, kind="stable")[: top or len(scores)]


def _top(
    labels: Sequence[str], scores: np.ndarray, cosines: np.ndarray, top: int | None
) -> tuple[LabelScore, ...]:
    return tuple(
        LabelScore(labels[i], float(scores[i]), float(cosines[i])) for i in _order(scores, top)
    )


def _top_cosines(
    labels: Sequence[str], cosines: np.ndarray, top: int | None
) -> tuple[LabelCosine, ...]:
    return tuple(LabelCosine(labels[i], float(cosines[i])) for i in _order(cosines, top))


def classify(
    files: Sequence[str | Path],
    labels: Sequence[str],
    template: str = DEFAULT_TEMPLATE,
    multi_label: bool = False,
    top: int | None = None,
    timeline: bool = False,
    model: str | None = None,
    *,
    embedder: Embedder | None = None,
    device: str = "auto",
    precision: str = "auto",
) -> list[Classification]:
    """Score each file against `labels` (module doc); one `Classification` per file, in order.

    top: keep the best `top` labels per file (and per window), None for all.
    embedder: an already loaded model (tests, long-lived callers); else `model` is loaded.
    Raises UsageError for no labels or a bad template, AudioDecodeError for an unreadable file.
    """
    labels = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if not labels:
        raise UsageError("Give at least one label to classify against.")
    if not files:
        raise UsageError("Give at least one audio file to classify.")
    if top is not None and top < 1:
        raise UsageError(f"--top must be at least 1, not {top}.")
    prompt_texts = render(labels, template)  # a bad template fails before the model loads
    if embedder is None:
        from clapsearch.sources import load_embedder

        embedder = load_embedder(model, device=device, precision=precision)
    prompts = embedder.embed_text(prompt_texts)
    independent = multi_label or len(labels) == 1  # a softmax over one label is always 1.0
    reference = embedder.embed_text([fill(template, REFERENCE_LABEL)])[0] if independent else None
    scale = embedder.logit_scale
    fusion = embedder.audio_config.truncation == "fusion"
    out: list[Classification] = []
    for path, spans, vecs in window_embeddings(embedder, [str(f) for f in files]):
        if fusion:  # the model's own whole-clip input, not a mean of windows
            from clapsearch.audio import load_audio

            clip = embedder.embed_audio([load_audio(path, embedder.sample_rate)])[0]
        else:  # the long-clip policy of `Embedder.embed_audio`, from the same windows
            from clapsearch.index.ranking import mean_direction

            clip = mean_direction(vecs)
        scores = label_scores(clip[None], prompts, scale, reference)[0]
        cosines = prompts.astype(np.float64) @ clip.astype(np.float64)
        windows = None
        if timeline:
            per_window = vecs.astype(np.float64) @ prompts.astype(np.float64).T
            windows = tuple(
                WindowLabels(start, end, _top_cosines(labels, row, top))
                for (start, end), row in zip(spans, per_window, strict=True)
            )
        out.append(Classification(path, _top(labels, scores, cosines, top), windows))
    return out


def window_embeddings(
    embedder: Embedder, files: Sequence[str]
) -> Iterator[tuple[str, list[tuple[float, float]], np.ndarray]]:
    """Stream files as model windows (`clapsearch.audio.iter_windows`, the index's grid) ->
    per file, in order: `(path, [(start_s, end_s)] * n, (n, dim) unit vectors)`.

    Windows of consecutive files share forward batches (short clips are one window each), and
    memory stays at about one batch of windows whatever the files' lengths.
    """
    from clapsearch.audio import iter_windows

    batch = max(1, embedder.audio_batch_size)
    spans: list[list[tuple[float, float]]] = [[] for _ in files]
    vecs: list[list[np.ndarray]] = [[] for _ in files]
    waves: list[np.ndarray] = []
    owners: list[int] = []
    done = 0  # files yielded so far

    def flush() -> None:
        for owner, row in zip(owners, embedder.embed_audio(waves), strict=True):
            vecs[owner].append(row)
        waves.clear()
        owners.clear()

    for i, path in enumerate(files):
        for w in iter_windows(path, embedder.sample_rate, embedder.window_s):
            waves.append(w.waveform)
            owners.append(i)
            spans[i].append((w.start_s, w.end_s))
            if len(waves) >= batch:
                flush()
        ready = owners[0] if owners else i + 1  # files before this have every vector
        for j in range(done, ready):
            yield files[j], spans[j], np.stack(vecs[j])
            spans[j], vecs[j] = [], []
        done = max(done, ready)
    flush()
    for j in range(done, len(files)):
        yield files[j], spans[j], np.stack(vecs[j])


__all__ = [
    "Classification",
    "DEFAULT_TEMPLATE",
    "LabelCosine",
    "LabelScore",
    "WindowLabels",
    "classify",
    "label_scores",
    "parse_labels",
]
