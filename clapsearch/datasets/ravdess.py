"""RAVDESS (Livingstone & Russo 2018; Zenodo record 1188976), audio-only speech and song:
2,452 recordings of 24 actors (1,440 speech + 1,012 song) in eight emotions.

    ROOT/**/Actor_<NN>/<modality>-<channel>-<emotion>-<intensity>-<statement>-<rep>-<actor>.wav
        e.g. Actor_01/03-01-06-01-02-01-01.wav (Audio_Speech_Actors_01-24.zip and
        Audio_Song_Actors_01-24.zip unpack to these folders)

The seven two-digit codes are the dataset's file-name convention: modality 03 = audio-only
(01/02, video files, are skipped), channel 01 = speech, 02 = song, emotion 01 neutral,
02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised. No official folds:
5 speaker-disjoint folds, actors dealt by hash.
"""

from __future__ import annotations

from pathlib import Path

from clapsearch.datasets.base import no_split
from clapsearch.datasets.labelled import LabelledSet, assign_folds, audio_files, labelled_set
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
FOLDS = 5


def parse_name(name: str) -> tuple[str, int] | None:
    """`03-01-06-01-02-01-12.wav` -> (actor "12", emotion index 5); None for other names and
    for video-modality files."""
    codes = Path(name).stem.split("-")
    if len(codes) != 7 or not all(len(c) == 2 and c.isdigit() for c in codes):
        return None
    if codes[0] != "03" or not 1 <= int(codes[2]) <= len(EMOTIONS):
        return None
    return codes[6], int(codes[2]) - 1


@register_layout("ravdess", "labelled", expects="Actor_NN/03-CC-EE-II-SS-RR-AA.wav")
def load_ravdess(root: str | Path, split: str | None = None) -> LabelledSet:
    root = Path(root)
    no_split("RAVDESS", split)
    files = []
    for path in audio_files(root):
        parsed = parse_name(path.name)
        if parsed:
            files.append((path, *parsed))
    if not files:
        raise UsageError(
            f"no RAVDESS audio-only clips under {root} (expected Actor_NN/03-CC-EE-II-SS-RR-AA.wav)."
        )
    folds = assign_folds([actor for _, actor, _ in files], FOLDS, "ravdess")
    items = [(p, [c], f) for (p, _, c), f in zip(files, folds, strict=True)]
    return labelled_set("ravdess", EMOTIONS, items, "folds")
