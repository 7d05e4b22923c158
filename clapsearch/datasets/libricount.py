"""LibriCount10 0 dB (Stöter et al. 2018; Zenodo record 1216072): 5,720 five-second mixtures
of 0 to 10 LibriSpeech speakers talking at once.

    ROOT/test/<count>_<id>.wav   (+ a <count>_<id>.json of speaker details; or the files in
                                  ROOT itself)

The speaker count is the number before the first "_" of the file name (as HEAR's
libricount.py reads it). The published archive is only the original test set, so there are no
official folds: 5, dealt per count class by file-name hash (HEAR drew its 5 at random).
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

COUNTS = tuple(str(n) for n in range(11))
FOLDS = 5


@register_layout("libricount", "labelled", expects="test/<count>_<id>.wav")
def load_libricount(root: str | Path, split: str | None = None) -> LabelledSet:
    root = Path(root)
    no_split("LibriCount", split)
    folder = first_dir(root, ["test", ""], "LibriCount audio")
    files = []
    for path in sorted(folder.iterdir()):
        count = path.stem.split("_")[0]
        if path.suffix.lower() in AUDIO_EXTENSIONS and "_" in path.stem and count in COUNTS:
            files.append((path, COUNTS.index(count)))
    if not files:
        raise UsageError(f"no LibriCount mixtures under {folder} (expected <count>_<id>.wav).")
    folds = assign_folds(
        [p.name for p, _ in files], FOLDS, "libricount", [str(c) for _, c in files]
    )
    items = [(p, [c], f) for (p, c), f in zip(files, folds, strict=True)]
    return labelled_set("libricount", COUNTS, items, "folds")
