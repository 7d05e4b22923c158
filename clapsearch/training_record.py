"""Which audio a checkpoint trained on, so evaluation can say when it scores training clips.

A clapsearch checkpoint directory may hold `trained_on.json`:

    {"hash": "blake2b-128-clapsearch-v1", "count": N, "hashes": ["<32 hex>", ...]}

with the `clapsearch.hashing.content_hash` of every audio file the model saw in training
(sorted, unique). Content hashes rather than paths: a copy of a training clip under another
name or folder is still a training clip. `clapsearch train` writes it; `eval` reads it and
counts how many evaluated files are in it (`TrainingOverlap`). A model without the file (any
public checkpoint) is `unknown`, never "clean".
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from clapsearch.atomic import write_text
from clapsearch.hashing import HASH_NAME, content_hash

RECORD_FILE = "trained_on.json"


@dataclass(frozen=True)
class TrainingOverlap:
    """How many of the `evaluated` files the model trained on; `known` is False when the
    model carries no training record (then `trained` is 0 and means nothing)."""

    known: bool
    trained: int
    evaluated: int

    @property
    def warning(self) -> str | None:
        """One line for people, or None when there is nothing to warn about."""
        if not self.known or not self.trained:
            return None
        return (
            f"warning: the model trained on {self.trained} of the {self.evaluated} evaluated "
            f"clips; these scores overstate how it does on audio it has never heard."
        )

    def to_json(self) -> dict:
        return {"known": self.known, "trained": self.trained, "evaluated": self.evaluated}


def write_training_record(folder: str | os.PathLike, audio_paths: Iterable[str]) -> Path:
    """Hash every (existing) training file and write `folder/trained_on.json` atomically."""
    return write_training_hashes(
        folder, (content_hash(p) for p in audio_paths if os.path.isfile(p))
    )


def write_training_hashes(folder: str | os.PathLike, hashes: Iterable[str]) -> Path:
    """Write `folder/trained_on.json` from content hashes already computed (the trainer
    hashes clips as it reads them, including members of tar shards that are no file)."""
    unique = sorted(set(hashes))
    payload = {"hash": HASH_NAME, "count": len(unique), "hashes": unique}
    path = Path(folder) / RECORD_FILE
    write_text(path, json.dumps(payload) + "\n")
    return path


def read_training_hashes(folder: str | os.PathLike | None) -> frozenset[str] | None:
    """The hashes a checkpoint folder records, or None when it has no (readable) record."""
    if not folder:
        return None
    path = Path(folder) / RECORD_FILE
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if payload.get("hash") != HASH_NAME:
        return None
    return frozenset(payload.get("hashes", ()))


def model_folder(embedder: object) -> Path | None:
    """The checkpoint directory an embedder was loaded from, when it is a local directory."""
    name = getattr(embedder, "name_or_path", None)
    if not name:
        return None
    folder = Path(str(name)).expanduser()
    return folder if folder.is_dir() else None


def training_overlap(folder: str | os.PathLike | None, paths: Iterable[str]) -> TrainingOverlap:
    """Count the evaluated `paths` whose content the model at `folder` trained on."""
    paths = list(paths)
    hashes = read_training_hashes(folder)
    if hashes is None:
        return TrainingOverlap(False, 0, len(paths))
    trained = sum(1 for p in paths if os.path.isfile(p) and content_hash(p) in hashes)
    return TrainingOverlap(True, trained, len(paths))


__all__ = [
    "RECORD_FILE",
    "TrainingOverlap",
    "model_folder",
    "read_training_hashes",
    "training_overlap",
    "write_training_hashes",
    "write_training_record",
]
