"""Beijing Opera Percussion Instrument Dataset 1.0 (Tian et al. 2014; CompMusic, Zenodo
record 1285212): 236 strokes of the four percussion instruments of jingju.

    ROOT/**/<...>.wav   (or under ROOT/beijing_opera_percussion_instrument_1.0/)

Classes: bangu (clapper drum), daluo (large gong), naobo (cymbals), xiaoluo (small gong). The
instrument is the one named by the file's folder or, failing that, by its file name (HEAR's
beijing_opera.py takes it from `name.split("__")[-1].split("-")[-2]`, e.g. `...__bangu-1.wav`);
files naming none of the four are ignored and counted in a note. No official folds: 5, dealt
per class by file-name hash (HEAR drew its 5 at random).
"""

from __future__ import annotations

import re
from pathlib import Path

from clapsearch.datasets.base import no_split
from clapsearch.datasets.labelled import LabelledSet, assign_folds, audio_files, labelled_set
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError

INSTRUMENTS = ("bangu", "daluo", "naobo", "xiaoluo")
FOLDS = 5


def instrument_of(path: Path, root: Path) -> str | None:
    """The instrument a file belongs to (module doc), or None."""
    for folder in reversed(path.relative_to(root).parts[:-1]):
        if folder.lower() in INSTRUMENTS:
            return folder.lower()
    tokens = re.split(r"[^a-z]+", path.stem.split("__")[-1].lower())
    named = [t for t in tokens if t in INSTRUMENTS]
    return named[0] if named else None


@register_layout("beijing_opera", "labelled", expects="wav files naming bangu/daluo/naobo/xiaoluo")
def load_beijing_opera(root: str | Path, split: str | None = None) -> LabelledSet:
    root = Path(root)
    no_split("Beijing Opera Percussion", split)
    files, skipped = [], 0
    for path in audio_files(root):
        inst = instrument_of(path, root)
        if inst is None:
            skipped += 1
        else:
            files.append((path, INSTRUMENTS.index(inst)))
    if not files:
        raise UsageError(
            f"no Beijing Opera percussion clips under {root} (expected wav files whose folder "
            "or name is bangu, daluo, naobo or xiaoluo)."
        )
    folds = assign_folds(
        [p.relative_to(root).as_posix() for p, _ in files],
        FOLDS,
        "beijing_opera",
        [str(c) for _, c in files],
    )
    items = [(p, [c], f) for (p, c), f in zip(files, folds, strict=True)]
    notes = [f"{skipped} audio file(s) naming no instrument were ignored."] if skipped else []
    return labelled_set("beijing_opera", INSTRUMENTS, items, "folds", notes=notes)
