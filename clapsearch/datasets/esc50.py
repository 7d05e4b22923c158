"""ESC-50 (Piczak 2015): 2,000 five-second clips, 50 classes, 5 official folds.

    ROOT/meta/esc50.csv  (the official layout) or ROOT/esc50.csv
         columns: filename, fold, target, category [, src_file, take, esc10]
    ROOT/audio/<filename>

Used by the zero-shot benchmark (`load_esc50`), the trainer (label captions, the
recording-level hold-out `esc50_part`) and the default model's data preparation alike.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clapsearch.datasets.base import (
    ClassificationSet,
    as_int,
    classification_set,
    expect_one_of,
    label_words,
    no_split,
    read_csv,
)
from clapsearch.datasets.registry import register_layout

METADATA = ("meta/esc50.csv", "esc50.csv")


@dataclass(frozen=True)
class Esc50Clip:
    """One row of the ESC-50 metadata. `recording` is the source recording (`src_file`; the
    file name when the column is absent): the A/B/C takes of one recording are near-copies."""

    filename: str
    path: Path
    fold: int
    target: int
    category: str  # as in the CSV: "crying_baby"
    recording: str
    esc10: bool = False

    @property
    def label(self) -> str:
        """The class as words, for prompts: "crying baby"."""
        return label_words(self.category)


def read_esc50(root: str | Path) -> list[Esc50Clip]:
    """Every clip the metadata lists, in its order (files need not exist)."""
    root = Path(root)
    meta = expect_one_of(root, METADATA, "ESC-50 metadata")
    rows = read_csv(meta, ["filename", "fold", "target", "category"])
    return [
        Esc50Clip(
            filename=r["filename"],
            path=root / "audio" / r["filename"],
            fold=as_int(r, "fold", meta),
            target=as_int(r, "target", meta),
            category=r["category"],
            recording=r.get("src_file") or r["filename"],
            esc10=r.get("esc10") == "True",
        )
        for r in rows
    ]


@register_layout("esc50", "classification", expects="meta/esc50.csv or esc50.csv, audio/")
def load_esc50(root: str | Path, split: str | None = None) -> ClassificationSet:
    """ESC-50 for zero-shot classification: labels are class ids in target order."""
    no_split("ESC-50", split)
    items = [(c.path, c.fold, c.target, c.category) for c in read_esc50(root)]
    return classification_set("esc50", items)


def esc50_part(category: str, recording: str, recordings_of_class: Sequence[str]) -> str:
    """Recording-level hold-out (for collections whose clips sit in one fold): a class's
    source recordings are ordered by a hash of their id; positions 0, 5, ... are `test`,
    2, 7, ... `val`, the rest `train`. Takes of one recording stay together (they are
    near-duplicates), and every class with >= 1 recording has a test clip."""
    order = sorted(
        recordings_of_class, key=lambda s: hashlib.sha1(f"{category}/{s}".encode()).hexdigest()
    )
    return {0: "test", 2: "val"}.get(order.index(recording) % 5, "train")


def holdout_parts(clips: Sequence[Esc50Clip]) -> dict[str, str]:
    """file name -> `train`, `val` or `test` by `esc50_part`, over the clips given."""
    recordings: dict[str, set[str]] = defaultdict(set)
    for c in clips:
        recordings[c.category].add(c.recording)
    ordered = {cat: sorted(recs) for cat, recs in recordings.items()}
    return {c.filename: esc50_part(c.category, c.recording, ordered[c.category]) for c in clips}
