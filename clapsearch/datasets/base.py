"""What every dataset reader shares: the typed sets it returns, CSV reading, and the one
sentence a user gets when a dataset is not where it was expected.

Readers list clips and their captions or labels; they never decode audio. A clip the dataset
lists but whose file is absent is not dropped silently: it goes to `missing` with the reason
(and its captions are excluded, as the papers do); runners add clips that fail to decode.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from clapsearch.errors import UsageError


@dataclass(frozen=True)
class MissingClip:
    """A clip the dataset lists that could not be scored; `reason` as in AudioDecodeError
    (`missing` when the file is absent)."""

    name: str
    path: str
    reason: str


def describe_missing(missing: tuple[MissingClip, ...]) -> str:
    """One line: how many clips were excluded, grouped by reason."""
    words = {"missing": "not found"}
    reasons = Counter(words.get(m.reason, m.reason.replace("_", " ")) for m in missing)
    return "excluded clips: " + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))


@dataclass(frozen=True)
class RetrievalSet:
    """Clips and captions; `caption_to_audio[i]` is the index in `audio_paths` of caption i."""

    name: str
    audio_paths: tuple[str, ...]
    captions: tuple[str, ...]
    caption_to_audio: tuple[int, ...]
    missing: tuple[MissingClip, ...] = ()

    def drop(self, indices: Iterable[int], failures: Iterable[MissingClip]) -> RetrievalSet:
        """Remove clips (by index in `audio_paths`) and their captions, recording why."""
        gone = set(indices)
        keep = [i for i in range(len(self.audio_paths)) if i not in gone]
        new_index = {old: new for new, old in enumerate(keep)}
        pairs = [
            (c, new_index[a])
            for c, a in zip(self.captions, self.caption_to_audio, strict=True)
            if a in new_index
        ]
        return replace(
            self,
            audio_paths=tuple(self.audio_paths[i] for i in keep),
            captions=tuple(c for c, _ in pairs),
            caption_to_audio=tuple(a for _, a in pairs),
            missing=self.missing + tuple(failures),
        )


@dataclass(frozen=True)
class ClassificationSet:
    """Labelled clips: `labels[i]` indexes `class_names`; `folds[i]` is the official fold."""

    name: str
    audio_paths: tuple[str, ...]
    labels: tuple[int, ...]
    folds: tuple[int, ...]
    class_names: tuple[str, ...]
    missing: tuple[MissingClip, ...] = ()

    def drop(self, indices: Iterable[int], failures: Iterable[MissingClip]) -> ClassificationSet:
        gone = set(indices)
        keep = [i for i in range(len(self.audio_paths)) if i not in gone]
        return replace(
            self,
            audio_paths=tuple(self.audio_paths[i] for i in keep),
            labels=tuple(self.labels[i] for i in keep),
            folds=tuple(self.folds[i] for i in keep),
            missing=self.missing + tuple(failures),
        )


DatasetT = TypeVar("DatasetT", RetrievalSet, ClassificationSet)


def read_name_list(path: str | Path) -> set[str]:
    """File names, one per line (blank lines and `#` comments ignored)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as err:
        raise UsageError(f"clip list {path} does not exist.") from err
    except UnicodeDecodeError as err:
        raise UsageError(f"clip list {path} is not UTF-8 text.") from err
    names = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    if not names:
        raise UsageError(f"clip list {path} names no clips.")
    return names


def restrict(dataset: DatasetT, names: set[str]) -> DatasetT:
    """Keep only the clips whose file name is in `names` (e.g. a held-out split); the rest
    are left out on purpose, so they do not count as missing. Every name must be a clip of
    the dataset (listed, present or missing), so a typo cannot silently shrink the set."""
    present = [Path(p).name for p in dataset.audio_paths]
    known = set(present) | {Path(m.path).name for m in dataset.missing}
    unknown = names - known
    if unknown:
        example = sorted(unknown)[0]
        raise UsageError(
            f"{len(unknown)} listed clip(s) are not in {dataset.name} (e.g. {example!r})."
        )
    out = dataset.drop([i for i, n in enumerate(present) if n not in names], ())
    return replace(out, missing=tuple(m for m in out.missing if Path(m.path).name in names))


# --- where a dataset's files are -----------------------------------------------------------
def require_dir(root: str | Path, what: str) -> Path:
    """`root` as a Path, or one sentence saying the dataset folder is not there."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UsageError(f"{what} root {root} is not a directory.")
    return root


def expect_one_of(root: Path, names: Iterable[str], what: str) -> Path:
    """The first of `root / name` that exists, else one sentence saying what was expected
    where: "no ESC-50 metadata under R (expected meta/esc50.csv or esc50.csv)."."""
    names = list(names)
    for name in names:
        if (root / name).exists():
            return root / name
    raise UsageError(f"no {what} under {root} (expected {' or '.join(names)}).")


def read_csv(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    """Rows of a UTF-8 CSV (a BOM is fine) as dicts, keys and values stripped; UsageError
    naming the file for bad text or a missing required column."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            fields = [name.strip() for name in reader.fieldnames or []]
    except UnicodeDecodeError as err:
        raise UsageError(f"{path} is not UTF-8 text ({err.reason}).") from err
    lacking = [name for name in required if name not in fields]
    if lacking:
        raise UsageError(f"{path} lacks the column(s) {', '.join(lacking)}.")
    return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in rows]


def as_int(row: dict[str, str], key: str, where: Path) -> int:
    try:
        return int(row[key])
    except ValueError as err:
        raise UsageError(f"{where} has a non-integer {key} {row[key]!r}.") from err


# --- building the typed sets ---------------------------------------------------------------
def retrieval_set(name: str, clips: list[tuple[str, Path, list[str]]]) -> RetrievalSet:
    """(clip name, path, captions) in dataset order -> RetrievalSet, absent files as missing.
    A clip without captions stays: a distractor in T2A, not an A2T query."""
    paths: list[str] = []
    captions: list[str] = []
    owners: list[int] = []
    missing: list[MissingClip] = []
    for clip_name, path, clip_captions in clips:
        if not path.is_file():
            missing.append(MissingClip(clip_name, str(path), "missing"))
            continue
        clip_captions = [c for c in clip_captions if c]
        owners.extend([len(paths)] * len(clip_captions))
        captions.extend(clip_captions)
        paths.append(str(path))
    if not paths:
        raise UsageError(f"none of the {len(clips)} clips of {name} were found on disk.")
    if not captions:
        raise UsageError(f"{name} has no captions for the clips found on disk.")
    return RetrievalSet(name, tuple(paths), tuple(captions), tuple(owners), tuple(missing))


def classification_set(name: str, items: list[tuple[Path, int, int, str]]) -> ClassificationSet:
    """(path, fold, class id, class name) -> ClassificationSet with classes ordered by id;
    underscores in class names become spaces ("crying_baby" -> "crying baby")."""
    if not items:
        raise UsageError(f"the {name} metadata lists no clips.")
    names: dict[int, str] = {}
    for _, _, cid, cname in items:
        names.setdefault(cid, label_words(cname))
    order = sorted(names)
    index = {cid: i for i, cid in enumerate(order)}
    paths, labels, folds, missing = [], [], [], []
    for path, fold, cid, _ in items:
        if not path.is_file():
            missing.append(MissingClip(path.name, str(path), "missing"))
            continue
        paths.append(str(path))
        labels.append(index[cid])
        folds.append(fold)
    if not paths:
        raise UsageError(f"none of the {len(items)} clips of {name} were found on disk.")
    return ClassificationSet(
        name,
        tuple(paths),
        tuple(labels),
        tuple(folds),
        tuple(names[c] for c in order),
        tuple(missing),
    )


def label_words(class_id: str) -> str:
    """A class id as words for a prompt: "crying_baby" -> "crying baby"."""
    return class_id.replace("_", " ").strip()


def no_split(name: str, split: str | None) -> None:
    """Layouts with folds, not named splits, refuse a split in one sentence."""
    if split:
        raise UsageError(f"{name} has folds, not named splits (got split {split!r}).")
