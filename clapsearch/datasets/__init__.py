"""Dataset layouts -> typed lists of clips with captions or labels; no audio is decoded here.

One reader per layout, used by the benchmarks (`clapsearch.eval`), the trainer and the data
preparation alike:

    esc50.py         ESC-50            -> ClassificationSet (+ `read_esc50`, `esc50_part`)
    urbansound8k.py  UrbanSound8K      -> ClassificationSet
    clotho.py        Clotho            -> RetrievalSet (+ `read_clotho`)
    audiocaps.py     AudioCaps         -> RetrievalSet
    manifest.py      your CSV / JSONL  -> RetrievalSet (+ `read_manifest`; the one manifest rule)

`load_dataset(name, root, split)` finds a reader by name (`registry`); a new layout is one new
module here that decorates its loader with `register_layout` (see `registry`). Shared pieces
(the typed sets, CSV reading, "not found: expected X under Y" sentences) are in `base`.
"""

from clapsearch.datasets.base import (
    ClassificationSet,
    MissingClip,
    RetrievalSet,
    describe_missing,
    read_name_list,
    restrict,
)
from clapsearch.datasets.registry import (
    Layout,
    get_layout,
    layout_names,
    load_dataset,
    register_layout,
)

__all__ = [
    "ClassificationSet",
    "Layout",
    "MissingClip",
    "RetrievalSet",
    "describe_missing",
    "get_layout",
    "layout_names",
    "load_dataset",
    "read_name_list",
    "register_layout",
    "restrict",
]
