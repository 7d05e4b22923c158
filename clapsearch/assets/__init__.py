"""Files shipped inside the package: the offline default model and the demo's sample sounds.

`default_model/` is a clapsearch checkpoint trained offline (see docs/model-card.md and
`make default-model`); `demo_sounds/` is the folder `make demo` indexes (ATTRIBUTION.md).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def assets_dir() -> Path:
    return Path(str(files(__name__)))


def default_model_dir() -> Path | None:
    """The packaged default model's checkpoint directory, or None when it is not installed."""
    path = assets_dir() / "default_model"
    return path if (path / "clapsearch.json").is_file() else None


def demo_sounds_dir() -> Path:
    return assets_dir() / "demo_sounds"
