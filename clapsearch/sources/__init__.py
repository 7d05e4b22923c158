"""Model sources: every `--model` value becomes an `Embedder` here.

    registry.py      `ModelSource`, `register_source`; sources are asked in order and each
                     recognises a name BY CONTENT (a marker file, a config's model_type, a
                     file's header), never by its file name alone
    default.py       the alias "default": the small model packaged with clapsearch
    native.py        clapsearch checkpoint folders (`clapsearch.json`, written by the trainer)
    transformers.py  transformers CLAP folders (`config.json`, model_type "clap") and hub ids
    msclap.py        MS-CLAP `.pth` files (2022 CNN14 + BERT, 2023 HTSAT + GPT-2)
    laion.py         LAION-CLAP `.pt` files (HTSAT-tiny / -base, fusion or not; PANN towers)
    _towers.py       rebuilding those files' towers from their tensors' shapes
    _torchfile.py    reading `torch.save` files without running their pickles; key peeking
    _files.py        the `Embedder` and identity of a rebuilt file

What a source loads is an `Embedder` whose `model_identity` (`clapsearch.identity`) says which
weights it holds and how to load them again; indexes store that record.

A new checkpoint format is ONE new module here that calls `register_source` (see
`registry`); nothing else changes: `load_embedder` asks the registry, and the "not a model
clapsearch can load" sentence lists every registered format.

Precedence of the name: the explicit `--model` value, then `$CLAPSEARCH_MODEL`, then
"default".
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from clapsearch.identity import ModelIdentity, TextConfig
from clapsearch.sources.registry import (
    ALL_PARTS,
    ModelSource,
    canonical_name,
    find_source,
    register_source,
    sources,
    supported_formats,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from clapsearch.embedder import Embedder

DEFAULT_MODEL = "default"  # the packaged offline model: clapsearch/assets/default_model
MODEL_ENV = "CLAPSEARCH_MODEL"


def resolve_model_name(model: str | None) -> str:
    """`--model`, else `$CLAPSEARCH_MODEL`, else "default"."""
    return model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL


def load_embedder(
    model: str | None = None,
    device: str = "auto",
    precision: str = "auto",
    parts: Iterable[str] = ALL_PARTS,
) -> Embedder:
    """Load the model named by `model` (module doc) on `device` in `precision`.

    `parts`: the towers the caller will use ("audio", "text"); a source may skip the others
    (registry doc). Leaves torch's global grad mode alone: the embedders run under
    `inference_mode`, and a trainer in the same process must keep its gradients."""
    from clapsearch.sigint import native_section

    with native_section():  # torch's import and model loads call Python back from C++
        from clapsearch.device import resolve_device, resolve_dtype
        from clapsearch.sources.registry import load_with_sources

        name = resolve_model_name(model)
        dev = resolve_device(device)
        dtype = resolve_dtype(precision, dev)
        parts = frozenset(parts)
        if parts != frozenset({"text"}):  # a text-only load may never import transformers
            _quiet_transformers()
        return load_with_sources(name, dev, dtype, parts)


def _quiet_transformers() -> None:
    """Weight-loading bars and warnings are noise on every CLI call. transformers is not
    imported for this (most checkpoints load without it, and importing its logging alone
    costs ~18 MB and 0.5 s): when it is not loaded yet, its environment says the same at its
    import."""
    import os
    import sys

    if "transformers" not in sys.modules:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        if "huggingface_hub" in sys.modules:  # its constants were read at its import
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        return
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


__all__ = [
    "ALL_PARTS",
    "DEFAULT_MODEL",
    "MODEL_ENV",
    "ModelIdentity",
    "ModelSource",
    "TextConfig",
    "canonical_name",
    "find_source",
    "load_embedder",
    "register_source",
    "resolve_model_name",
    "sources",
    "supported_formats",
]
