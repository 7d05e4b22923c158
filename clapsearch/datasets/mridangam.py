"""Mridangam Stroke Dataset 1.5 (Anantapadmanabhan et al. 2013; Zenodo record 4068196):
6,977 single strokes of the mridangam, 10 strokes played at 6 tonics.

    ROOT/<tonic>/<freesound id>__<user>__<stroke>-<tonic>-<n>.wav
        e.g. B/224030__akshaylaya__bheem-b-001.wav   (or under ROOT/mridangam_stroke_1.5/)

Strokes: bheem, cha, dheem, dhin, num, ta, tha, tham, thi, thom; tonics: b, c, csh, d, dsh,
e. Both are read from the file name, after the last "__" (as mirdata's mridangam_stroke loader
and HEAR's mridangam_stroke.py / mridangam_tonic.py do). One reader serves both tasks:
`target="stroke"` or `"tonic"`. No official folds: 5, dealt per class by file-name hash.
"""

from __future__ import annotations

from pathlib import Path

from clapsearch.datasets.base import no_split
from clapsearch.datasets.labelled import LabelledSet, assign_folds, audio_files, labelled_set
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError

STROKES = ("bheem", "cha", "dheem", "dhin", "num", "ta", "tha", "tham", "thi", "thom")
TONICS = ("b", "c", "csh", "d", "dsh", "e")
FOLDS = 5


def parse_name(name: str) -> tuple[str, str] | None:
    """`224030__akshaylaya__bheem-b-001.wav` -> ("bheem", "b"); None if not that pattern."""
    parts = Path(name).stem.split("__")[-1].split("-")
    if len(parts) < 3 or parts[-3].lower() not in STROKES or parts[-2].lower() not in TONICS:
        return None
    return parts[-3].lower(), parts[-2].lower()


@register_layout("mridangam", "labelled", expects="<tonic>/<id>__<user>__<stroke>-<tonic>-<n>.wav")
def load_mridangam(
    root: str | Path, split: str | None = None, target: str = "stroke"
) -> LabelledSet:
    root = Path(root)
    no_split("Mridangam", split)
    if target not in ("stroke", "tonic"):
        raise UsageError(f"Mridangam's target is stroke or tonic, not {target!r}.")
    classes = STROKES if target == "stroke" else TONICS
    files, skipped = [], 0
    for path in audio_files(root):
        parsed = parse_name(path.name)
        if parsed is None:
            skipped += 1
            continue
        files.append((path, classes.index(parsed[0] if target == "stroke" else parsed[1])))
    if not files:
        raise UsageError(
            f"no Mridangam strokes under {root} (expected <tonic>/<id>__<user>__<stroke>-"
            "<tonic>-<n>.wav files)."
        )
    folds = assign_folds([p.name for p, _ in files], FOLDS, "mridangam", [str(c) for _, c in files])
    items = [(p, [c], f) for (p, c), f in zip(files, folds, strict=True)]
    notes = (
        [f"{skipped} audio file(s) not named <stroke>-<tonic>-<n> were ignored."] if skipped else []
    )
    return labelled_set(f"mridangam_{target}", classes, items, "folds", notes=notes)
