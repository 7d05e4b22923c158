"""clapsearch checkpoint folders (`clapsearch.models.checkpoint`, written by `clapsearch
train`): recognised by their `clapsearch.json`; loaded as a `NativeEmbedder`."""

from __future__ import annotations

from clapsearch.sources.registry import ModelSource, local_path, register_source

# == clapsearch.models.checkpoint.CONFIG_FILE; not imported from there, which imports torch
# (the indexer recognises sources before it knows whether it needs a model at all)
CONFIG_FILE = "clapsearch.json"


def is_checkpoint_folder(name: str) -> bool:
    return (local_path(name) / CONFIG_FILE).is_file()


def _load(name, device, dtype, parts):
    if parts == frozenset({"text"}):  # text queries: the text side alone, no transformers
        from clapsearch.backends.native_text import NativeTextEmbedder, UnsupportedTextTower

        try:
            return NativeTextEmbedder(name, device, dtype)
        except UnsupportedTextTower:
            pass  # a text tower it cannot reproduce exactly: load the whole model
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
