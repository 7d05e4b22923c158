"""CREMA-D (Cao et al. 2014; github.com/CheyneyComputerScience/CREMA-D): 7,442 sentences
spoken by 91 actors in six emotions.

    ROOT/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav   (or the files in ROOT itself)
        e.g. 1001_DFA_ANG_XX.wav: actor 1001, sentence DFA, anger, level unspecified

Emotions: ANG, DIS, FEA, HAP, NEU, SAD (the code in the file name, as the dataset's README
and tensorflow-datasets' crema_d read it). No official folds: 5 speaker-disjoint folds,
actors dealt by hash (HEAR's tfds_crema_d also scores 5-fold cross-validation).
"""

from __future__ import annotations

from pathlib import Path

from clapsearch.datasets.base import no_split
from clapsearch.datasets.labelled import (
    AUDIO_EXTENSIONS,
    LabelledSet,
    assign_folds,
    first_dir,
    labelled_set,
)
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError

EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
FOLDS = 5


def parse_name(name: str) -> tuple[str, str] | None:
    """`1001_DFA_ANG_XX.wav` -> ("1001", "ANG"); None if not that pattern."""
    parts = Path(name).stem.split("_")
    if len(parts) != 4 or not parts[0].isdigit() or parts[2] not in EMOTIONS:
        return None
    return parts[0], parts[2]


@register_layout("crema_d", "labelled", expects="AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav")
def load_crema_d(root: str | Path, split: str | None = None) -> LabelledSet:
    root = Path(root)
    no_split("CREMA-D", split)
    folder = first_dir(root, ["AudioWAV", ""], "CREMA-D audio")
    files = []
    for path in sorted(folder.iterdir()):
        parsed = parse_name(path.name) if path.suffix.lower() in AUDIO_EXTENSIONS else None
        if parsed:
            files.append((path, parsed[0], EMOTIONS.index(parsed[1])))
    if not files:
        raise UsageError(
            f"no CREMA-D clips under {folder} (expected <actor>_<sentence>_<emotion>_<level>.wav)."
        )
    folds = assign_folds([actor for _, actor, _ in files], FOLDS, "crema_d")
    items = [(p, [c], f) for (p, _, c), f in zip(files, folds, strict=True)]
    return labelled_set("crema_d", EMOTIONS, items, "folds")
