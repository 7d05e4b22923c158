"""Zero-shot classification: probabilities, multi-label independence, timeline windows, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import clotho_files, esc50_files, run_cli

from clapsearch.audio import load_audio
from clapsearch.classify import (
    classify,
    label_scores,
    parse_labels,
)
from clapsearch.errors import AudioDecodeError, UsageError
from clapsearch.features import window_starts

LABELS = ["dog", "rain", "siren", "church bells"]


def test_softmax_matches_reference_and_sums_to_one(words_embedder):
    files = esc50_files(3)
    results = classify(files, LABELS, embedder=words_embedder)
    scale = words_embedder.logit_scale
    assert scale == pytest.approx(math.exp(float(words_embedder.model.logit_scale_a.detach())))
    prompts = words_embedder.embed_text([f"This is a sound of {lab}." for lab in LABELS])
    audio = words_embedder.embed_audio([load_audio(str(f), 48_000) for f in files])
    logits = scale * audio.astype(np.float64) @ prompts.T.astype(np.float64)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    for res, row in zip(results, expected, strict=True):
        got = {s.label: s.score for s in res.labels}
        assert sum(got.values()) == pytest.approx(1.0, abs=1e-6)
        for label, p in zip(LABELS, row, strict=True):
            assert got[label] == pytest.approx(p, rel=1e-4, abs=1e-7)
        scores = [s.score for s in res.labels]
        assert scores == sorted(scores, reverse=True)


def test_multi_label_scores_are_independent_of_other_labels(words_embedder):
    files = esc50_files(2)
    full = classify(files, LABELS, multi_label=True, embedder=words_embedder)
    part = classify(files, LABELS[1:3], multi_label=True, embedder=words_embedder)
    for a, b in zip(full, part, strict=True):
        fa = {s.label: s.score for s in a.labels}
        for s in b.labels:
            assert fa[s.label] == pytest.approx(s.score, rel=1e-5)
        assert all(0.0 < v < 1.0 for v in fa.values())


def test_multi_label_sigmoid_against_reference_prompt():
    audio = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    prompts = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    ref = np.array([0.0, 1.0], dtype=np.float32)
    got = label_scores(audio, prompts, 10.0, reference=ref)
    cos = audio @ prompts.T
    expected = 1 / (1 + np.exp(-10.0 * (cos - (audio @ ref)[:, None])))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[1, 1] < 0.5 < got[0, 0]  # below the reference prompt: under 0.5


def test_top_keeps_best_labels(words_embedder):
    files = esc50_files(1)
    every = classify(files, LABELS, embedder=words_embedder)[0]
    best2 = classify(files, LABELS, top=2, embedder=words_embedder)[0]
    assert best2.labels == every.labels[:2]


def test_timeline_has_one_entry_per_window(words_embedder):
    path = clotho_files()[0]
    wave = load_audio(str(path), 48_000)
    res = classify([path], LABELS, timeline=True, top=1, embedder=words_embedder)[0]
    window = words_embedder.audio_config.window_samples
    starts = window_starts(len(wave), window)
    assert len(wave) > window  # a long clip: several windows
    assert len(res.timeline) == len(starts) >= 2
    assert [w.start for w in res.timeline] == pytest.approx([s / 48_000 for s in starts])
    assert res.timeline[-1].end == pytest.approx(len(wave) / 48_000)
    assert all(len(w.labels) == 1 for w in res.timeline)
    # each window is scored on its own audio, as a raw cosine (not a saturating softmax)
    prompts = words_embedder.embed_text([f"This is a sound of {lab}." for lab in LABELS])
    vec = words_embedder.embed_audio([wave[starts[-1] : starts[-1] + window]])
    cos = (vec @ prompts.T)[0]
    best = res.timeline[-1].labels[0]
    assert best.label == LABELS[int(np.argmax(cos))]
    assert best.cosine == pytest.approx(float(cos.max()), abs=1e-5)
    assert set(res.to_dict()["timeline"][0]["labels"][0]) == {"label", "cosine"}
    # the whole file is scored as `embed_audio` embeds it (normalised mean of its windows)
    clip = words_embedder.embed_audio([wave])
    whole = label_scores(clip, prompts, words_embedder.logit_scale)
    assert res.labels[0].score == pytest.approx(float(whole[0].max()), rel=1e-4)
    assert res.labels[0].cosine == pytest.approx(float((clip @ prompts.T).max()), abs=1e-5)


def test_one_label_is_scored_against_the_reference_not_a_softmax_of_one(words_embedder):
    """A softmax over one label is always 1.000; alone, a label gets the multi-label score."""
    files = esc50_files(3)
    alone = classify(files, ["dog"], embedder=words_embedder)
    among = classify(files, ["dog", *LABELS[1:]], multi_label=True, embedder=words_embedder)
    for a, b in zip(alone, among, strict=True):
        dog = next(s for s in b.labels if s.label == "dog")
        assert a.labels[0].score == pytest.approx(dog.score, rel=1e-6)
        assert a.labels[0].cosine == pytest.approx(dog.cosine, abs=1e-6)
    assert len({round(r.labels[0].score, 6) for r in alone}) > 1  # not a constant


def test_bad_arguments_are_usage_errors(words_embedder):
    files = esc50_files(1)
    with pytest.raises(UsageError, match="at least one label"):
        classify(files, [" ", ""], embedder=words_embedder)
    with pytest.raises(UsageError, match="template"):
        classify(files, LABELS, template="no slot", embedder=words_embedder)
    assert parse_labels("dog, rain,,siren\nrain\n cat ") == ["dog", "rain", "siren", "cat"]


def test_unreadable_file_is_one_sentence(words_embedder, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioDecodeError):
        classify([bad], LABELS, embedder=words_embedder)


def test_cli_json_lines_and_errors(tiny_clap_words_dir, capsys, tmp_path):
    files = [str(f) for f in esc50_files(2)]
    model = ["--model", str(tiny_clap_words_dir), "--device", "cpu", "--precision", "fp32"]
    code, out, _ = run_cli(
        ["classify", *files, "--labels", "dog,rain,siren", "--json", *model], capsys
    )
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["path"] for r in rows] == files
    assert all(sum(s["score"] for s in r["labels"]) == pytest.approx(1.0) for r in rows)
    assert {s["label"] for s in rows[0]["labels"]} == {"dog", "rain", "siren"}

    code, out, err = run_cli(["classify", files[0], *model], capsys)
    assert code == 2 and "--labels" in err and out == ""

    labels_file = tmp_path / "labels.txt"
    labels_file.write_bytes(b"dog\n\xff\xfe rain\n")
    code, _, err = run_cli(
        ["classify", files[0], "--labels-file", str(labels_file), *model], capsys
    )
    assert code == 2 and "UTF-8" in err and len(err.strip().splitlines()) == 1

    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"")
    code, _, err = run_cli(["classify", str(bad), "--labels", "dog", *model], capsys)
    assert code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
