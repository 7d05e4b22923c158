"""The training files of a checkpoint, for its `trained_on.json` (`clapsearch.training_record`).

`package_default_model` writes the record from the checkpoint's own `provenance.train_config`
(its training manifests), so the packaged model says by content hash which clips it heard.
"""

from __future__ import annotations

from pathlib import Path

from clapsearch.datasets.manifest import read_manifest
from clapsearch.errors import UsageError


def training_files(train_config: dict, base: Path) -> list[str]:
    """The audio files of a checkpoint's training sources (`provenance.train_config`);
    relative manifest roots are against `base` (the directory training ran in)."""
    files: list[str] = []
    for src in train_config["data"]["train"]:
        if src.get("kind", "manifest") != "manifest":
            raise UsageError(
                f"trained_on.json is written for manifest sources only, not {src['kind']!r}."
            )
        root = Path(src["root"])
        root = root if root.is_absolute() else base / root
        files += [str(c.path) for c in read_manifest(root, split=src.get("split") or "")]
    return files
