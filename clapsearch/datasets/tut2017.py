"""TUT Acoustic Scenes 2017, development set (Mesaros et al., DCASE 2017 Task 1; Zenodo
record 400515): 4,680 10 s segments of 15 acoustic scenes, with a 4-fold cross-validation
setup.

    ROOT/meta.txt                               audio/<file>.wav<TAB>scene<TAB>recording id
    ROOT/evaluation_setup/fold<k>_evaluate.txt  audio/<file>.wav<TAB>scene   (k = 1..4)
    ROOT/audio/<file>.wav
    (ROOT may also be the folder holding TUT-acoustic-scenes-2017-development/)

A clip's fold is the k whose fold<k>_evaluate.txt lists it; fold<k>_train.txt is every other
development clip, so leave-one-fold-out over these folds is the official setup (the DCASE 2017
baseline's). The separate evaluation set (1,620 segments) is not read here.
"""

from __future__ import annotations

from pathlib import Path

from clapsearch.datasets.base import label_words, no_split
from clapsearch.datasets.labelled import LabelledSet, first_dir, labelled_set
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError

SCENES = (
    "beach",
    "bus",
    "cafe/restaurant",
    "car",
    "city_center",
    "forest_path",
    "grocery_store",
    "home",
    "library",
    "metro_station",
    "office",
    "park",
    "residential_area",
    "train",
    "tram",
)


def read_list(path: Path, columns: int) -> list[list[str]]:
    """Tab-separated lines with at least `columns` fields."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) < columns:
            raise UsageError(
                f"{path} line {n} has {len(parts)} tab-separated field(s), not {columns}."
            )
        out.append(parts)
    return out


@register_layout(
    "tut2017", "labelled", expects="meta.txt, evaluation_setup/fold<k>_evaluate.txt, audio/"
)
def load_tut2017(root: str | Path, split: str | None = None) -> LabelledSet:
    root = Path(root)
    no_split("TUT Acoustic Scenes 2017", split)
    base = first_dir(root, ["", "TUT-acoustic-scenes-2017-development"], "TUT 2017 development set")
    if not (base / "meta.txt").is_file():
        base = first_dir(root, ["TUT-acoustic-scenes-2017-development"], "TUT 2017 meta.txt")
    if not (base / "meta.txt").is_file():
        raise UsageError(f"no TUT 2017 meta.txt under {base}.")
    scene_of = {r[0]: r[1] for r in read_list(base / "meta.txt", 2)}
    fold_of: dict[str, str] = {}
    for k in range(1, 5):
        listing = base / "evaluation_setup" / f"fold{k}_evaluate.txt"
        if not listing.is_file():
            raise UsageError(
                f"no TUT 2017 fold list {listing.name} under {base / 'evaluation_setup'}."
            )
        for row in read_list(listing, 1):
            fold_of[row[0]] = str(k)
    items = []
    for rel, scene in scene_of.items():
        if scene not in SCENES:
            raise UsageError(f"{base / 'meta.txt'} has the scene {scene!r}, not one of the 15.")
        if rel in fold_of:
            items.append((base / rel, [SCENES.index(scene)], fold_of[rel]))
    notes = []
    if len(items) < len(scene_of):
        notes.append(f"{len(scene_of) - len(items)} clip(s) of meta.txt are in no evaluate list.")
    return labelled_set("tut2017", [label_words(s) for s in SCENES], items, "folds", notes=notes)
