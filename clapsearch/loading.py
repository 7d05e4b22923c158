"""Pick and load a model backend from one string: hub id, transformers dir or clapsearch dir.

Precedence: the explicit `--model` value, then `CLAPSEARCH_MODEL`, then `DEFAULT_MODEL` (the
small offline model shipped in the package; see docs/model-card.md).
A directory holding `clapsearch.json` is a clapsearch checkpoint (written by the trainer);
any other directory or a hub id goes to transformers' `ClapModel`.
"""

from __future__ import annotations

import os
from pathlib import Path

from clapsearch.embedder import Embedder

DEFAULT_MODEL = "default"  # the packaged offline model: clapsearch/assets/default_model
MODEL_ENV = "CLAPSEARCH_MODEL"
NATIVE_MARKER = "clapsearch.json"


def resolve_model_name(model: str | None) -> str:
    return model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL


def resolve_model_path(name: str) -> str:
    """`default` -> the packaged checkpoint directory; any other name is returned unchanged.

    Indexes record the alias, not the install path, so they survive reinstalls."""
    if name != DEFAULT_MODEL:
        return name
    from clapsearch.assets import default_model_dir
    from clapsearch.errors import ModelLoadError

    folder = default_model_dir()
    if folder is None:
        raise ModelLoadError(
            "The packaged default model is missing from this install (run `make default-model`); "
            "give --model or set CLAPSEARCH_MODEL."
        )
    return str(folder)


def is_native_checkpoint(name_or_path: str) -> bool:
    return (Path(name_or_path).expanduser() / NATIVE_MARKER).is_file()


def load_embedder(
    model: str | None = None, device: str = "auto", precision: str = "auto"
) -> Embedder:
    """Load the model named by `model` (see module doc) on `device` in `precision`.

    Leaves torch's global grad mode alone: the embedders run under `inference_mode`, and a
    trainer in the same process must keep its gradients."""
    from clapsearch.device import resolve_device, resolve_dtype

    name = resolve_model_path(resolve_model_name(model))
    dev = resolve_device(device)
    dtype = resolve_dtype(precision, dev)
    _quiet_transformers()
    if is_native_checkpoint(name):
        from clapsearch.backends.native import NativeEmbedder

        return NativeEmbedder(name, dev, dtype)
    from clapsearch.backends.hf import HFClapEmbedder

    return HFClapEmbedder(name, dev, dtype)


def _quiet_transformers() -> None:
    """Weight-loading bars and warnings are noise on every CLI call."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
