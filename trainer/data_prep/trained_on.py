"""`trained_on.json`: the content hashes of every audio file a checkpoint trained on.

Format (PLAN.md): `{"hash": "blake2b-128-clapsearch-v1", "count": N, "hashes": [sorted hex]}`,
each hash `indexer.scan.content_hash(path, size)` of a file the training manifests name, so
evaluation can warn when it scores a clip the model has heard (by content, whatever its path).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from clapsearch.datasets.manifest import read_manifest
from clapsearch.errors import UsageError

HASH_NAME = "blake2b-128-clapsearch-v1"
FILE_NAME = "trained_on.json"


def file_hash(path: str | Path) -> str:
    from indexer.scan import content_hash

    return content_hash(str(path), os.path.getsize(path))


def training_files(train_config: dict, base: Path) -> list[Path]:
    """The audio files of a checkpoint's training sources (`provenance.train_config`);
    relative manifest roots are against `base` (the directory training ran in)."""
    files: list[Path] = []
    for src in train_config["data"]["train"]:
        if src.get("kind", "manifest") != "manifest":
            raise UsageError(
                f"trained_on.json is written for manifest sources only, not {src['kind']!r}."
            )
        root = Path(src["root"])
        root = root if root.is_absolute() else base / root
        files += [c.path for c in read_manifest(root, split=src.get("split") or "")]
    return files


def hashes_of(paths: list[Path]) -> list[str]:
    return sorted({file_hash(p) for p in paths})


def write_trained_on(folder: Path, hashes: list[str]) -> Path:
    from clapsearch.atomic import write_text

    data = {"hash": HASH_NAME, "count": len(hashes), "hashes": sorted(hashes)}
    path = folder / FILE_NAME
    write_text(path, json.dumps(data) + "\n")
    return path


def read_trained_on(folder: Path) -> set[str]:
    path = folder / FILE_NAME
    if not path.is_file():
        return set()
    data = json.loads(path.read_text())
    if data.get("hash") != HASH_NAME:
        raise UsageError(f"{path} uses hash {data.get('hash')!r}, not {HASH_NAME}.")
    return set(data["hashes"])
