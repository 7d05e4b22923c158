"""Labelled clips for the benchmark suite: single- or multi-label, official folds or splits,
whole files or segments of them. The readers of the suite's data sets return a `LabelledSet`
(registered with task "labelled"); ESC-50 and UrbanSound8K, read as `ClassificationSet`s,
convert with `from_classification`.

A clip's `fold` is either a fold id ("1".."10", protocol "folds": leave-one-fold-out) or a
split name ("train", "val", "test", protocol "splits"). Data sets without official folds get
them from `assign_folds`, deterministically (a hash of the clip or speaker id, never a random
draw), so two runs and two machines score the same partition.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from clapsearch.datasets.base import ClassificationSet, MissingClip
from clapsearch.errors import UsageError

if TYPE_CHECKING:  # numpy is imported where it is used: `clapsearch --help` lists the layouts
    import numpy as np

SPLITS = ("train", "val", "test")
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".au", ".aiff", ".aif", ".m4a", ".opus")


@dataclass(frozen=True)
class LabelledClip:
    """One scored item: `labels` index the set's `class_names` (exactly one when single-
    label); `start_s` / `duration_s` cut a segment out of the file (None: to its end)."""

    path: str
    labels: tuple[int, ...]
    fold: str
    start_s: float = 0.0
    duration_s: float | None = None

    @property
    def name(self) -> str:
        base = Path(self.path).name
        if self.start_s or self.duration_s is not None:
            return f"{base}@{self.start_s:g}+{self.duration_s or 0:g}s"
        return base


@dataclass(frozen=True)
class LabelledSet:
    name: str
    class_names: tuple[str, ...]  # readable names ("crying baby"), in class-id order
    clips: tuple[LabelledClip, ...]
    protocol: str  # "folds" or "splits"
    multilabel: bool = False
    missing: tuple[MissingClip, ...] = ()
    notes: tuple[str, ...] = ()  # what a reader had to assume or leave out, one sentence each

    def targets(self) -> np.ndarray:
        """`(n_clips, n_classes)` bool: multi-hot (one-hot when single-label)."""
        import numpy as np

        out = np.zeros((len(self.clips), len(self.class_names)), dtype=bool)
        for i, clip in enumerate(self.clips):
            out[i, list(clip.labels)] = True
        return out

    @property
    def folds(self) -> tuple[str, ...]:
        """The folds (or splits) present, in order: numeric folds by number, splits as SPLITS."""
        present = {c.fold for c in self.clips}
        return tuple(sorted(present, key=fold_order))

    def drop(self, indices: Iterable[int], failures: Iterable[MissingClip] = ()) -> LabelledSet:
        """Without the clips at `indices`, which join `missing` as `failures` say why."""
        gone = set(indices)
        kept = tuple(c for i, c in enumerate(self.clips) if i not in gone)
        return replace(self, clips=kept, missing=self.missing + tuple(failures))


def fold_order(fold: str) -> tuple[int, int, str]:
    if fold in SPLITS:
        return (1, SPLITS.index(fold), fold)
    return (0, int(fold), fold) if fold.isdigit() else (2, 0, fold)


def from_classification(data: ClassificationSet) -> LabelledSet:
    """An official-fold single-label set (ESC-50, UrbanSound8K) as a LabelledSet."""
    clips = tuple(
        LabelledClip(p, (label,), str(fold))
        for p, label, fold in zip(data.audio_paths, data.labels, data.folds, strict=True)
    )
    return LabelledSet(data.name, data.class_names, clips, "folds", False, data.missing)


def labelled_set(
    name: str,
    class_names: Sequence[str],
    items: Iterable[tuple[Path, Sequence[int], str] | LabelledClip],
    protocol: str,
    multilabel: bool = False,
    notes: Sequence[str] = (),
) -> LabelledSet:
    """(path, label ids, fold) items or LabelledClips -> LabelledSet; files that are not on
    disk go to `missing`. UsageError (one sentence) when the metadata lists nothing, or none
    of its files exist."""
    clips: list[LabelledClip] = []
    missing: list[MissingClip] = []
    total = 0
    for item in items:
        total += 1
        clip = item if isinstance(item, LabelledClip) else _clip(*item)
        if not os.path.isfile(clip.path):
            missing.append(MissingClip(Path(clip.path).name, clip.path, "missing"))
            continue
        clips.append(clip)
    if total == 0:
        raise UsageError(f"the {name} metadata lists no clips.")
    if not clips:
        example = missing[0].path
        raise UsageError(
            f"none of the {total} clips of {name} were found on disk (e.g. {example})."
        )
    return LabelledSet(
        name, tuple(class_names), tuple(clips), protocol, multilabel, tuple(missing), tuple(notes)
    )


def _clip(path: Path, labels: Sequence[int], fold: str) -> LabelledClip:
    return LabelledClip(str(path), tuple(sorted(set(labels))), str(fold))


def assign_folds(
    groups: Sequence[str], k: int, salt: str, strata: Sequence[str] | None = None
) -> list[str]:
    """A fold ("1".."k") per item for data sets without official folds.

    Items sharing a group (a speaker, a source recording; or the file itself) share a fold.
    Groups are ordered by a hash of `salt/group` and dealt round-robin into the k folds,
    stratum (class) after stratum when `strata` is given, the deal continuing where the last
    stratum ended: within a class fold sizes differ by at most one, across all classes too,
    groups never straddle folds, and the partition is the same on every machine."""
    if strata is not None and len(strata) != len(groups):
        raise ValueError("strata must be as long as groups")
    stratum_of: dict[str, str] = {}
    for i, g in enumerate(groups):
        stratum_of.setdefault(g, strata[i] if strata is not None else "")
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for g, s in stratum_of.items():
        by_stratum[s].append(g)
    fold_of: dict[str, str] = {}
    dealt = 0  # the deal runs on across strata, so small classes do not all start at fold 1
    for stratum in sorted(by_stratum):
        members = by_stratum[stratum]
        ordered = sorted(members, key=lambda g: hashlib.sha1(f"{salt}/{g}".encode()).hexdigest())
        for g in ordered:
            fold_of[g] = str(dealt % k + 1)
            dealt += 1
    return [fold_of[g] for g in groups]


def audio_files(root: Path) -> list[Path]:
    """Every audio file under `root` (recursive, hidden entries skipped), sorted."""
    out = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if not f.startswith(".") and f.lower().endswith(AUDIO_EXTENSIONS):
                out.append(Path(folder) / f)
    return out


def first_dir(root: Path, candidates: Iterable[str], what: str) -> Path:
    """The first of `root / c` that is a folder; one sentence naming them all if none is."""
    candidates = list(candidates)
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    shown = " or ".join(f"{c}/" if c else "the folder itself" for c in candidates)
    raise UsageError(f"no {what} under {root} (expected {shown}).")
