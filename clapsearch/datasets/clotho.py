"""Clotho v1/v2 (Drossos et al. 2020): 15-30 s clips with five human captions each.

    ROOT/clotho_captions_<split>.csv   columns: file_name, caption_1 .. caption_5
    ROOT/<split>/  or  ROOT/clotho_audio_<split>/   the audio

Splits: development, validation, evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clapsearch.datasets.base import RetrievalSet, expect_one_of, read_csv, retrieval_set
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError


@dataclass(frozen=True)
class ClothoClip:
    file_name: str
    path: Path
    captions: tuple[str, ...]  # caption_1, caption_2, ... in number order, blanks dropped


def read_clotho(root: str | Path, split: str = "evaluation") -> list[ClothoClip]:
    """Every clip of `split` the captions file lists, in its order (files need not exist)."""
    root = Path(root)
    csv_path = expect_one_of(root, [f"clotho_captions_{split}.csv"], "Clotho captions file")
    audio_dir = expect_one_of(
        root, [split, f"clotho_audio_{split}"], f"Clotho audio folder for {split!r}"
    )
    rows = read_csv(csv_path, ["file_name"])
    columns = sorted(
        (k for k in rows[0] if k.startswith("caption_") and k[8:].isdigit()) if rows else [],
        key=lambda k: int(k[8:]),
    )
    if not columns:
        raise UsageError(f"{csv_path} has no caption_1.. columns.")
    return [
        ClothoClip(r["file_name"], audio_dir / r["file_name"], tuple(r[k] for k in columns if r[k]))
        for r in rows
    ]


@register_layout(
    "clotho",
    "retrieval",
    default_split="evaluation",
    expects="clotho_captions_<split>.csv, <split>/ or clotho_audio_<split>/",
)
def load_clotho(root: str | Path, split: str | None = "evaluation") -> RetrievalSet:
    """Clotho `split` for text<->audio retrieval."""
    split = split or "evaluation"
    clips = [(c.file_name, c.path, list(c.captions)) for c in read_clotho(root, split)]
    return retrieval_set(f"clotho/{split}", clips)
