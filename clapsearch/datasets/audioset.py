"""AudioSet (Gemmeke et al. 2017): 10 s YouTube segments, 527 classes of the AudioSet
ontology, multi-label. Google publishes the labels, not the audio: every copy is a partial
download, so clips not on disk are reported as missing, never an error.

    ROOT/eval_segments.csv                -> test
    ROOT/balanced_train_segments.csv      -> train
    ROOT/unbalanced_train_segments.csv    -> train, only the clips found on disk (a partial
                                             download of 2M videos is the norm; absent ones
                                             are not listed as missing)
    ROOT/class_labels_indices.csv         index, mid, display_name -> class order and names
      or ROOT/ontology.json               (without it: the ids found in the segment CSVs,
                                             named by the ontology's `name`)
    audio anywhere under ROOT, one file per video: <YTID>.*, Y<YTID>.*, <YTID>_<start>...
    or Y<YTID>_<start>_<end>.* (the names the common downloaders write)

Segment CSVs: `#` comment lines, then `YTID, start_seconds, end_seconds, "mid1,mid2,..."`
(research.google.com/audioset/download.html).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from clapsearch.datasets.base import no_split, read_csv
from clapsearch.datasets.labelled import LabelledSet, audio_files, labelled_set
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError

SEGMENTS = {
    "eval_segments.csv": "test",
    "balanced_train_segments.csv": "train",
    "unbalanced_train_segments.csv": "train",
}
YTID_LEN = 11  # YouTube video ids are 11 characters


def read_segments(path: Path) -> list[tuple[str, float, list[str]]]:
    """(YTID, start s, [mid, ...]) per segment line, comments skipped."""
    out = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = csv.reader((line for line in f if not line.startswith("#")), skipinitialspace=True)
        for n, row in enumerate(rows, start=1):
            if not row:
                continue
            try:
                out.append((row[0].strip(), float(row[1]), [m for m in row[3].split(",") if m]))
            except (IndexError, ValueError) as err:
                raise UsageError(
                    f'{path} segment {n} is not `YTID, start, end, "labels"`.'
                ) from err
    return out


def video_ids(stem: str) -> list[str]:
    """The YouTube ids a downloaded file's name may stand for (module doc)."""
    ids = []
    if len(stem) == YTID_LEN or (len(stem) > YTID_LEN and stem[YTID_LEN] == "_"):
        ids.append(stem[:YTID_LEN])
    n = YTID_LEN + 1
    if stem.startswith("Y") and (len(stem) == n or (len(stem) > n and stem[n] == "_")):
        ids.append(stem[1:n])
    return ids


def read_classes(root: Path, mids_seen: list[str]) -> tuple[list[str], list[str]]:
    """(mids, display names) in class order (module doc)."""
    indices = root / "class_labels_indices.csv"
    if indices.is_file():
        rows = read_csv(indices, ["index", "mid", "display_name"])
        rows.sort(key=lambda r: int(r["index"]))
        return [r["mid"] for r in rows], [r["display_name"] for r in rows]
    ontology = root / "ontology.json"
    if not ontology.is_file():
        raise UsageError(
            f"no AudioSet class list under {root} (expected class_labels_indices.csv or "
            "ontology.json)."
        )
    try:
        names = {e["id"]: e["name"] for e in json.loads(ontology.read_text(encoding="utf-8"))}
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(f"{ontology} is not the AudioSet ontology (id/name entries).") from err
    mids = sorted(set(mids_seen))
    return mids, [names.get(m, m) for m in mids]


@register_layout(
    "audioset",
    "labelled",
    expects="eval_segments.csv, balanced_train_segments.csv, class_labels_indices.csv, audio",
)
def load_audioset(root: str | Path, split: str | None = None) -> LabelledSet:
    root = Path(root)
    no_split("AudioSet", split)
    if not (root / "eval_segments.csv").is_file():
        raise UsageError(f"no AudioSet eval_segments.csv under {root}.")
    segments = {name: read_segments(root / name) for name in SEGMENTS if (root / name).is_file()}
    mids, names = read_classes(root, [m for rows in segments.values() for r in rows for m in r[2]])
    index = {m: i for i, m in enumerate(mids)}
    by_id: dict[str, Path] = {}
    for path in audio_files(root):
        for vid in video_ids(path.stem):
            by_id.setdefault(vid, path)
    items, notes, seen = [], [], set()
    for name, rows in segments.items():
        found = 0
        for ytid, _start, labels in rows:
            if ytid in seen:
                continue  # a video listed twice (eval and train) is scored once, as eval
            known = [index[m] for m in labels if m in index]
            path = by_id.get(ytid)
            if name.startswith("unbalanced") and path is None:
                continue
            seen.add(ytid)
            found += path is not None
            items.append((path or root / f"{ytid}.wav", known, SEGMENTS[name]))
        if name.startswith("unbalanced"):
            notes.append(f"unbalanced_train_segments.csv: {found} of {len(rows)} videos on disk.")
    return labelled_set("audioset", names, items, "splits", multilabel=True, notes=notes)
