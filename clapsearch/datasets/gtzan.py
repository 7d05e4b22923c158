"""GTZAN (Tzanetakis & Cook 2002), two collections from marsyas.info:

Genres: 1,000 30 s excerpts, 10 genres, 100 each.
    ROOT/<genre>/<genre>.000NN.au   (the original genres.tar.gz: genres/blues/blues.00000.au;
                                      the Kaggle copy: Data/genres_original/... .wav)
    ROOT may also be the folder above: genres/, genres_original/ or Data/genres_original/.
Music/Speech: 128 30 s excerpts (64 music, 64 speech).
    ROOT/music_wav/*.wav, ROOT/speech_wav/*.wav   (or under ROOT/music_speech/)

Neither has official folds; the MS-CLAP paper uses 10. `assign_folds` deals each class's files
(by a hash of the file name) into 10 folds, so every fold holds every class (tensorflow-
datasets' gtzan and gtzan_music_speech have only a train split; HEAR drew its folds at random).
"""

from __future__ import annotations

from pathlib import Path

from clapsearch.datasets.base import label_words, no_split
from clapsearch.datasets.labelled import (
    AUDIO_EXTENSIONS,
    LabelledSet,
    assign_folds,
    first_dir,
    labelled_set,
)
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError

GENRES = (
    "blues",
    "classical",
    "country",
    "disco",
    "hiphop",
    "jazz",
    "metal",
    "pop",
    "reggae",
    "rock",
)
FOLDS = 10


def _audio_in(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
    )


def _folded(name: str, files: list[tuple[Path, int]], classes: list[str]) -> LabelledSet:
    folds = assign_folds([p.name for p, _ in files], FOLDS, name, strata=[str(c) for _, c in files])
    items = [(p, [c], f) for (p, c), f in zip(files, folds, strict=True)]
    return labelled_set(name, classes, items, "folds")


@register_layout("gtzan_genres", "labelled", expects="<genre>/<genre>.000NN.au|wav (10 genres)")
def load_gtzan_genres(root: str | Path, split: str | None = None) -> LabelledSet:
    root = Path(root)
    no_split("GTZAN Genres", split)
    candidates = ["", "genres", "genres_original", "Data/genres_original"]
    base = next((root / c for c in candidates if (root / c / "blues").is_dir()), None)
    if base is None:
        shown = ", ".join(f"{c}/blues/" if c else "blues/" for c in candidates)
        raise UsageError(f"no GTZAN genre folders under {root} (looked for {shown}).")
    files = []
    for i, genre in enumerate(GENRES):
        if (base / genre).is_dir():
            files.extend((p, i) for p in _audio_in(base / genre))
    if not files:
        raise UsageError(f"the GTZAN genre folders under {base} hold no audio files.")
    return _folded("gtzan_genres", files, [label_words(g) for g in GENRES])


@register_layout(
    "gtzan_music_speech", "labelled", expects="music_wav/ and speech_wav/ (or music_speech/...)"
)
def load_gtzan_music_speech(root: str | Path, split: str | None = None) -> LabelledSet:
    root = Path(root)
    no_split("GTZAN Music/Speech", split)
    base = first_dir(root, ["", "music_speech"], "GTZAN Music/Speech")
    if not (base / "music_wav").is_dir():
        base = first_dir(root, ["music_speech"], "GTZAN music_wav/ and speech_wav/ folders")
    files = []
    for i, folder in enumerate(("music_wav", "speech_wav")):
        if not (base / folder).is_dir():
            raise UsageError(f"no GTZAN {folder}/ folder under {base}.")
        files.extend((p, i) for p in _audio_in(base / folder))
    return _folded("gtzan_music_speech", files, ["music", "speech"])
