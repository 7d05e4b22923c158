"""The clapsearch checkpoint format: a directory any command accepts through `--model`.

    CKPT/
      clapsearch.json     {"format": "clapsearch-checkpoint", "format_version": 1,
                           "model": ModelConfig, "provenance": Provenance}
      model.safetensors   every weight of the ClapsearchModel (both towers, heads, logit_scale)
      tokenizer/          the text tower's tokenizer (`save_pretrained`)
      text_config/        the text tower's transformers config, so the tower is rebuilt with
                          `AutoModel.from_config` with no network and no source weights

Writes are atomic: everything goes to a temporary sibling directory, files are fsynced, and
the directory is renamed into place (an existing checkpoint is first renamed aside, then
removed), so a crash leaves either the old checkpoint or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clapsearch.atomic import atomic_directory_write
from clapsearch.config import from_dict, to_dict
from clapsearch.errors import ModelLoadError
from clapsearch.models.config import ModelConfig

FORMAT = "clapsearch-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "clapsearch.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
TEXT_CONFIG_DIR = "text_config"


@dataclass(frozen=True)
class Provenance:
    """Where a checkpoint's weights came from: data, amount of training, its validation scores."""

    data: tuple[str, ...] = ()
    steps: int = 0
    epochs: float = 0.0
    samples_seen: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    created: str = ""
    clapsearch_version: str = ""


def save_checkpoint(
    model,
    tokenizer,
    directory: str | Path,
    provenance: Provenance | None = None,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write `model` (a `ClapsearchModel`) and `tokenizer` as a checkpoint directory.

    `extra(tmp_dir)` may add files (the trainer's optimizer state) inside the same atomic
    write, so a resumable checkpoint's weights and state can never disagree."""
    import safetensors.torch

    import clapsearch

    prov = provenance or Provenance()
    prov_dict = to_dict(prov)
    prov_dict["created"] = prov.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    prov_dict["clapsearch_version"] = prov.clapsearch_version or clapsearch.__version__
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": to_dict(model.config),
        "provenance": prov_dict,
    }

    def fill(tmp: Path) -> None:
        # save_model de-duplicates tied tensors, which save_file refuses.
        safetensors.torch.save_model(model, str(tmp / WEIGHTS_FILE), {"format": "pt"})
        tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
        model.text_encoder.hf_model.config.save_pretrained(str(tmp / TEXT_CONFIG_DIR))
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if extra is not None:
            extra(tmp)

    return atomic_directory_write(Path(directory), fill)


def read_checkpoint_meta(directory: str | Path) -> tuple[ModelConfig, Provenance]:
    """Read `clapsearch.json` only (cheap): the model config and provenance."""
    path = Path(directory) / CONFIG_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(
            f"{path} is not a readable clapsearch checkpoint config ({err})."
        ) from None
    if meta.get("format") != FORMAT or int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelLoadError(
            f"{path} is not a clapsearch checkpoint of a version this clapsearch can read "
            f"(format {meta.get('format')!r} version {meta.get('format_version')!r})."
        )
    try:
        config = from_dict(ModelConfig, meta["model"])
        provenance = from_dict(Provenance, meta.get("provenance", {}))
    except (KeyError, TypeError, ValueError) as err:
        raise ModelLoadError(f"{path} has an invalid model config ({err}).") from None
    return config, provenance


def load_checkpoint(directory: str | Path, device: str = "cpu"):
    """-> (`ClapsearchModel` in eval mode, tokenizer, `ModelConfig`). Needs no network."""
    import safetensors.torch
    from transformers import AutoTokenizer

    from clapsearch.models.clap import ClapsearchModel

    folder = Path(directory).expanduser()
    config, _ = read_checkpoint_meta(folder)
    model = ClapsearchModel(config, load_weights=False, text_structure=folder / TEXT_CONFIG_DIR)
    try:
        safetensors.torch.load_model(model, str(folder / WEIGHTS_FILE), strict=True)
        tokenizer = AutoTokenizer.from_pretrained(str(folder / TOKENIZER_DIR))
    except (OSError, RuntimeError, ValueError) as err:
        raise ModelLoadError(f"Could not load the clapsearch checkpoint {folder}: {err}") from None
    return model.to(device).eval(), tokenizer, config


def weights_digest(directory: str | Path) -> str:
    """sha256 of `model.safetensors`, first 12 hex digits: the checkpoint's identity.

    Hashing tens of MB costs ~0.1 s, a tenth of a cold text query, so the digest is
    remembered in the user cache keyed by the file's path, size, inode, mtime and ctime (ctime
    cannot be set back by a user: rewritten weights always get hashed again)."""
    path = (Path(directory) / WEIGHTS_FILE).resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_ino}|{st.st_mtime_ns}|{st.st_ctime_ns}"
    cache = _digest_cache()
    if key in cache:
        return cache[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    digest = h.hexdigest()[:12]
    _remember_digest(cache, key, digest)
    return digest


DIGEST_CACHE_ENTRIES = 64


def _digest_cache_file() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("clapsearch")) / "weights-digests.json"


def _digest_cache() -> dict[str, str]:
    try:
        data = json.loads(_digest_cache_file().read_text())
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember_digest(cache: dict[str, str], key: str, digest: str) -> None:
    """Best effort: a read-only or full cache folder only costs the hash next time."""
    from clapsearch.atomic import write_text

    cache.pop(key, None)
    cache[key] = digest
    kept = dict(list(cache.items())[-DIGEST_CACHE_ENTRIES:])
    try:
        target = _digest_cache_file()
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text(target, json.dumps(kept))
    except OSError:
        pass
