"""DCASE 2017 Task 4, "Large-scale weakly supervised sound event detection for smart cars"
(Mesaros et al. 2017; an AudioSet subset): 10 s YouTube clips, 17 warning and vehicle sound
classes, weak (clip-level) multi-label annotations; subtask A is audio tagging.

    ROOT/groundtruth_weak_label_training_set.csv     -> train (51,172 clips)
    ROOT/groundtruth_weak_label_testing_set.csv      -> val   (the development test set, 488)
    ROOT/groundtruth_weak_label_evaluation_set.csv   -> test  (1,103; also read from the
                                                        official repo's groundtruth_release/)
    audio anywhere under ROOT, named as listed or with the download script's "Y" prefix
                                                        (any audio extension)

Each line is `<ytid>_<start>_<end>.wav<TAB>start<TAB>end<TAB>label`, one line per label of a
clip (the format of the task's repository, ankitshah009/Task-4-Large-scale-weakly-supervised-
sound-event-detection-for-smart-cars, and of its evaluation/TaskAEvaluate.py). Without the
evaluation labels, the development test set is the test split (and there is no val).
"""

from __future__ import annotations

from pathlib import Path

from clapsearch.datasets.base import no_split
from clapsearch.datasets.labelled import LabelledSet, audio_files, labelled_set
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError

# sound_event_list_17_classes.txt of the task's repository, in its order.
CLASSES = (
    "Train horn",
    "Air horn, truck horn",
    "Car alarm",
    "Reversing beeps",
    "Bicycle",
    "Skateboard",
    "Ambulance (siren)",
    "Fire engine, fire truck (siren)",
    "Civil defense siren",
    "Police car (siren)",
    "Screaming",
    "Car",
    "Car passing by",
    "Bus",
    "Truck",
    "Motorcycle",
    "Train",
)
FILES = {
    "train": "groundtruth_weak_label_training_set.csv",
    "dev_test": "groundtruth_weak_label_testing_set.csv",
    "eval": "groundtruth_weak_label_evaluation_set.csv",
}


def read_weak_labels(path: Path) -> dict[str, set[str]]:
    """file name -> its labels, in file order."""
    out: dict[str, set[str]] = {}
    with open(path, encoding="utf-8-sig") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) != 4:
                raise UsageError(f"{path} line {n} is not `file<TAB>start<TAB>end<TAB>label`.")
            label = parts[3].strip()
            if label not in CLASSES:
                raise UsageError(f"{path} line {n} has the label {label!r}, not one of the 17.")
            out.setdefault(parts[0].strip(), set()).add(label)
    return out


def _find(root: Path, name: str) -> Path | None:
    for candidate in (root / name, root / "groundtruth_release" / name):
        if candidate.is_file():
            return candidate
    return None


@register_layout(
    "dcase2017_task4",
    "labelled",
    expects="groundtruth_weak_label_{training,testing,evaluation}_set.csv, audio anywhere",
)
def load_dcase2017_task4(root: str | Path, split: str | None = None) -> LabelledSet:
    root = Path(root)
    no_split("DCASE 2017 Task 4", split)
    found = {key: _find(root, name) for key, name in FILES.items()}
    if found["eval"] is None and found["dev_test"] is None:
        raise UsageError(
            f"no DCASE 2017 Task 4 test labels under {root} (expected {FILES['eval']} "
            f"or {FILES['dev_test']})."
        )
    roles = {"train": "train", "dev_test": "val", "eval": "test"}
    notes = []
    if found["eval"] is None:
        roles["dev_test"] = "test"
        notes.append(f"no {FILES['eval']}: the development test set is the test split.")
    if found["train"] is None:
        notes.append(f"no {FILES['train']}: nothing to train a probe on.")
    by_stem: dict[str, Path] = {}  # any audio format: a clip re-encoded to FLAC still counts
    for path in audio_files(root):
        by_stem.setdefault(path.stem, path)
    index = {c: i for i, c in enumerate(CLASSES)}
    items = []
    for key, role in roles.items():
        if found[key] is None:
            continue
        for name, labels in read_weak_labels(found[key]).items():
            stem = Path(name).stem
            path = by_stem.get(stem) or by_stem.get("Y" + stem) or root / name
            items.append((path, [index[x] for x in labels], role))
    return labelled_set("dcase2017_task4", CLASSES, items, "splits", True, notes)
