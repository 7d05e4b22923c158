"""clapsearch checkpoint folders (`clapsearch.models.checkpoint`, written by `clapsearch
train`): recognised by their `clapsearch.json`; loaded without transformers where the towers
allow (`_load`), else as a `NativeEmbedder`."""

from __future__ import annotations

from clapsearch.sources.registry import ModelSource, local_path, register_source

# == clapsearch.models.checkpoint.CONFIG_FILE; not imported from there, which imports torch
# (the indexer recognises sources before it knows whether it needs a model at all)
CONFIG_FILE = "clapsearch.json"


def is_checkpoint_folder(name: str) -> bool:
    return (local_path(name) / CONFIG_FILE).is_file()


def _load(name, device, dtype, parts):
    """Without transformers where the checkpoint allows: the text side alone for text queries
    (`NativeTextEmbedder`), both towers in plain torch otherwise (`NativeTorchEmbedder`); a
    tower those cannot reproduce exactly loads the whole model (`NativeEmbedder`)."""
    from clapsearch.backends.native_text import NativeTextEmbedder, UnsupportedTextTower

    try:
        if parts == frozenset({"text"}):
            return NativeTextEmbedder(name, device, dtype)
        from clapsearch.backends.native_torch import NativeTorchEmbedder

        return NativeTorchEmbedder(name, device, dtype)
    except UnsupportedTextTower:
        pass
    from clapsearch.backends.native import NativeEmbedder

    return NativeEmbedder(name, device, dtype)


SOURCE = register_source(
    ModelSource(
        kind="clapsearch",
        formats=f"a clapsearch checkpoint folder ({CONFIG_FILE})",
        recognises=is_checkpoint_folder,
        load=_load,
        order=10,
    )
)
