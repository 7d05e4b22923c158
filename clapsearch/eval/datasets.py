"""Benchmark layouts -> typed lists of clips and captions (or labels); no audio is decoded here.

Retrieval (`RetrievalSet`): one entry per clip present on disk, its captions pointing at it.
- Clotho: `clotho_captions_{split}.csv` (`file_name, caption_1..caption_5`), audio in
  `{split}/` or `clotho_audio_{split}/`.
- AudioCaps: `{split}.csv` (`audiocap_id, youtube_id, start_time, caption`), one row per
  caption; rows sharing `(youtube_id, start_time)` are one clip. Downloaders name files
  differently, so the file is `pattern.format(youtube_id=..., start_time=..., audiocap_id=...)`
  under the audio folder (`{split}/` if it exists, else the root); a pattern with `*` or `?`
  is globbed (first match in sorted order).
- Manifest: CSV or JSONL of audio paths and captions (see `load_manifest`).
Classification (`ClassificationSet`): ESC-50 (`meta/esc50.csv` or `esc50.csv`, audio in
`audio/`) and UrbanSound8K (`metadata/UrbanSound8K.csv` or `UrbanSound8K.csv`, audio in
`audio/fold{N}/`). Class names have underscores replaced by spaces.

Clips whose file is absent are not dropped silently: they are listed in `missing` with the
reason, and their captions are excluded (as the papers do); the runner adds clips that fail
to decode.
"""

from __future__ import annotations

import bisect
import csv
import fnmatch
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from clapsearch.errors import UsageError

DEFAULT_AUDIOCAPS_PATTERN = "Y{youtube_id}.wav"


@dataclass(frozen=True)
class MissingClip:
    """A clip the benchmark lists that could not be scored; `reason` as in AudioDecodeError."""

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
    the benchmark (listed, present or missing), so a typo cannot silently shrink the set."""
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


# --- helpers -------------------------------------------------------------------------------
def _read_csv(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
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


def _first_existing(candidates: Iterable[Path], what: str) -> Path:
    candidates = list(candidates)
    for path in candidates:
        if path.exists():
            return path
    raise UsageError(f"no {what} found (looked for {', '.join(str(p) for p in candidates)}).")


def _build(name: str, clips: list[tuple[str, Path, list[str]]]) -> RetrievalSet:
    """(clip name, path, captions) in benchmark order -> RetrievalSet, absent files as missing."""
    paths: list[str] = []
    captions: list[str] = []
    owners: list[int] = []
    missing: list[MissingClip] = []
    for clip_name, path, clip_captions in clips:
        if not path.is_file():
            missing.append(MissingClip(clip_name, str(path), "missing"))
            continue
        # A clip without captions stays: a distractor in T2A, not an A2T query.
        clip_captions = [c for c in clip_captions if c]
        owners.extend([len(paths)] * len(clip_captions))
        captions.extend(clip_captions)
        paths.append(str(path))
    if not paths:
        raise UsageError(f"none of the {len(clips)} clips of {name} were found on disk.")
    if not captions:
        raise UsageError(f"{name} has no captions for the clips found on disk.")
    return RetrievalSet(name, tuple(paths), tuple(captions), tuple(owners), tuple(missing))


# --- retrieval -----------------------------------------------------------------------------
def load_clotho(root: str | Path, split: str = "evaluation") -> RetrievalSet:
    """Clotho (v1/v2) `split` (development, validation or evaluation) under `root`."""
    root = Path(root)
    csv_path = _first_existing([root / f"clotho_captions_{split}.csv"], "Clotho captions file")
    audio_dir = _first_existing(
        [root / split, root / f"clotho_audio_{split}"], f"Clotho audio folder for {split!r}"
    )
    rows = _read_csv(csv_path, ["file_name"])
    columns = sorted(
        (k for k in rows[0] if k.startswith("caption_")) if rows else [],
        key=lambda k: int(k.removeprefix("caption_")) if k[8:].isdigit() else 0,
    )
    if not columns:
        raise UsageError(f"{csv_path} has no caption_1.. columns.")
    clips = [(r["file_name"], audio_dir / r["file_name"], [r[k] for k in columns]) for r in rows]
    return _build(f"clotho/{split}", clips)


class _Listing:
    """A folder's file names, sorted once, for wildcard patterns: a glob per clip would list
    the folder once per clip (quadratic on AudioCaps train's ~50k files)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.names = sorted(os.listdir(folder)) if folder.is_dir() else []

    def first_match(self, pattern: str) -> Path | None:
        cut = min((pattern.find(ch) for ch in "*?[" if ch in pattern), default=len(pattern))
        prefix = pattern[:cut]
        for name in self.names[bisect.bisect_left(self.names, prefix) :]:
            if not name.startswith(prefix):
                break
            if fnmatch.fnmatchcase(name, pattern):
                return self.folder / name
        return None


def audiocaps_path(
    audio_dir: Path, pattern: str, row: dict[str, str], listing: _Listing | None = None
) -> Path:
    """Where `pattern` puts the clip of an AudioCaps row (`*`/`?` patterns match the first
    file in sorted order; a pattern with a `/` may only wildcard its last part)."""
    start = row["start_time"]
    try:
        start_num = float(start)
        start = str(int(start_num)) if start_num.is_integer() else start
    except ValueError:
        pass
    try:
        name = pattern.format(
            youtube_id=row["youtube_id"], start_time=start, audiocap_id=row.get("audiocap_id", "")
        )
    except (KeyError, IndexError, ValueError) as err:
        raise UsageError(
            f"audio pattern {pattern!r} may only use {{youtube_id}}, {{start_time}} and "
            f"{{audiocap_id}} ({err})."
        ) from err
    if not any(ch in name for ch in "*?["):
        return audio_dir / name
    folder, _, base = name.rpartition("/")
    if listing is None or listing.folder != audio_dir / folder:
        listing = _Listing(audio_dir / folder)
    return listing.first_match(base) or audio_dir / name


def load_audiocaps(
    root: str | Path,
    split: str = "test",
    pattern: str = DEFAULT_AUDIOCAPS_PATTERN,
    audio_dir: str | Path | None = None,
) -> RetrievalSet:
    """AudioCaps `split` (train, val or test): `{root}/{split}.csv`, audio found by `pattern`."""
    root = Path(root)
    csv_path = _first_existing([root / f"{split}.csv"], "AudioCaps captions file")
    if audio_dir is None:
        audio_dir = root / split if (root / split).is_dir() else root
    rows = _read_csv(csv_path, ["youtube_id", "start_time", "caption"])
    audio_dir = Path(audio_dir)
    folder = pattern.rpartition("/")[0]
    listing = _Listing(audio_dir / folder) if "{" not in folder else None
    clips: dict[tuple[str, str], tuple[str, Path, list[str]]] = {}
    for row in rows:
        key = (row["youtube_id"], row["start_time"])
        if key not in clips:
            path = audiocaps_path(audio_dir, pattern, row, listing)
            clips[key] = (f"{key[0]}_{key[1]}", path, [])
        clips[key][2].append(row["caption"])
    return _build(f"audiocaps/{split}", list(clips.values()))


_AUDIO_KEYS = ("audio", "path", "file_name", "filename", "file")


def _manifest_entry(record: dict, where: str) -> tuple[str, list[str]]:
    audio = next((record[k] for k in _AUDIO_KEYS if record.get(k)), None)
    if not audio:
        raise UsageError(f"{where} has no audio path (expected one of {', '.join(_AUDIO_KEYS)}).")
    captions: list[str] = []
    if isinstance(record.get("captions"), list):
        captions.extend(str(c) for c in record["captions"])
    if record.get("caption"):
        captions.append(str(record["caption"]))
    numbered = sorted(
        (k for k in record if k.startswith("caption_") and k[8:].isdigit()),
        key=lambda k: int(k[8:]),
    )
    captions.extend(str(record[k]) for k in numbered if record[k])
    return str(audio), [c.strip() for c in captions if str(c).strip()]


def load_manifest(path: str | Path, audio_root: str | Path | None = None) -> RetrievalSet:
    """A CSV or JSONL manifest of clips and captions.

    Each row/line names the audio (`audio`, `path`, `file_name`, `filename` or `file`) and
    captions (`caption`, `caption_1..caption_N`, or in JSONL a `captions` list). Rows repeating
    a path add captions to that clip (a caption repeated for the same clip counts once); a
    clip with no caption is a distractor (ranked by every caption, not itself a query).
    Relative paths are resolved against `audio_root` (default: the manifest's folder).
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"manifest {path} does not exist.")
    base = Path(audio_root) if audio_root else path.parent
    records: list[tuple[str, list[str]]] = []
    if path.suffix.lower() in (".jsonl", ".json"):
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise UsageError(f"{path} line {n} is not valid JSON ({err.msg}).") from err
                if not isinstance(record, dict):
                    raise UsageError(f"{path} line {n} is not a JSON object.")
                records.append(_manifest_entry(record, f"{path} line {n}"))
    else:
        for n, row in enumerate(_read_csv(path, []), start=2):
            records.append(_manifest_entry(row, f"{path} row {n}"))
    clips: dict[str, tuple[str, Path, list[str]]] = {}
    for audio, captions in records:
        if audio not in clips:
            clips[audio] = (audio, base / Path(audio).expanduser(), [])
        # The same caption twice for one clip (e.g. `caption` repeating `captions[0]`) would
        # count twice in A2T: keep the first.
        clips[audio][2].extend(c for c in captions if c not in clips[audio][2])
    if not clips:
        raise UsageError(f"manifest {path} lists no clips.")
    return _build(f"manifest/{path.name}", list(clips.values()))


# --- classification ------------------------------------------------------------------------
def _classification_set(name: str, items: list[tuple[Path, int, int, str]]) -> ClassificationSet:
    """(path, fold, class id, class name) -> ClassificationSet with classes ordered by id."""
    if not items:
        raise UsageError(f"the {name} metadata lists no clips.")
    names: dict[int, str] = {}
    for _, _, cid, cname in items:
        names.setdefault(cid, cname.replace("_", " ").strip())
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


def _int(row: dict[str, str], key: str, where: Path) -> int:
    try:
        return int(row[key])
    except ValueError as err:
        raise UsageError(f"{where} has a non-integer {key} {row[key]!r}.") from err


def load_esc50(root: str | Path) -> ClassificationSet:
    """ESC-50: `meta/esc50.csv` (official) or `esc50.csv`, clips in `audio/`."""
    root = Path(root)
    meta = _first_existing([root / "meta" / "esc50.csv", root / "esc50.csv"], "ESC-50 metadata")
    rows = _read_csv(meta, ["filename", "fold", "target", "category"])
    items = [
        (
            root / "audio" / r["filename"],
            _int(r, "fold", meta),
            _int(r, "target", meta),
            r["category"],
        )
        for r in rows
    ]
    return _classification_set("esc50", items)


def load_urbansound8k(root: str | Path) -> ClassificationSet:
    """UrbanSound8K: `metadata/UrbanSound8K.csv` or `UrbanSound8K.csv`, clips in
    `audio/fold{fold}/{slice_file_name}`."""
    root = Path(root)
    meta = _first_existing(
        [root / "metadata" / "UrbanSound8K.csv", root / "UrbanSound8K.csv"], "UrbanSound8K metadata"
    )
    rows = _read_csv(meta, ["slice_file_name", "fold", "classID", "class"])
    items = [
        (
            root / "audio" / f"fold{r['fold']}" / r["slice_file_name"],
            _int(r, "fold", meta),
            _int(r, "classID", meta),
            r["class"],
        )
        for r in rows
    ]
    return _classification_set("urbansound8k", items)
