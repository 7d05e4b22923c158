"""UrbanSound8K (Salamon et al. 2014): 8,732 urban sound excerpts, 10 classes, 10 folds.

ROOT/metadata/UrbanSound8K.csv  (official) or ROOT/UrbanSound8K.csv
     columns: slice_file_name, fold, classID, class, ...
ROOT/audio/fold<fold>/<slice_file_name>
"""

from __future__ import annotations

from pathlib import Path

from clapsearch.datasets.base import (
    ClassificationSet,
    as_int,
    classification_set,
    expect_one_of,
    no_split,
    read_csv,
)
from clapsearch.datasets.registry import register_layout

METADATA = ("metadata/UrbanSound8K.csv", "UrbanSound8K.csv")


@register_layout(
    "urbansound8k",
    "classification",
    expects="metadata/UrbanSound8K.csv or UrbanSound8K.csv, audio/fold<N>/",
)
def load_urbansound8k(root: str | Path, split: str | None = None) -> ClassificationSet:
    root = Path(root)
    no_split("UrbanSound8K", split)
    meta = expect_one_of(root, METADATA, "UrbanSound8K metadata")
    rows = read_csv(meta, ["slice_file_name", "fold", "classID", "class"])
    items = [
        (
            root / "audio" / f"fold{r['fold']}" / r["slice_file_name"],
            as_int(r, "fold", meta),
            as_int(r, "classID", meta),
            r["class"],
        )
        for r in rows
    ]
    return classification_set("urbansound8k", items)
