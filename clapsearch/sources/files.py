"""Model files (not folders): MS-CLAP `.pth` and LAION-CLAP `.pt`, recognised by content.

`load_file_embedder(path)` asks each file format whether the file is one of its own (by the
keys inside, never by the file's name or suffix) and wraps the rebuilt `ClapsearchModel` in the
same `Embedder` as clapsearch checkpoints, so windows, averaging and normalisation are shared.
The identity names the model by content, not by file name (`msclap:2023@<hash>`,
`laion:htsat-tiny-fusion@<hash>`, the hash of the file's bytes), so an index built with a file
accepts a renamed copy and refuses other weights.
"""

from __future__ import annotations

from pathlib import Path

import torch

from clapsearch.errors import ModelLoadError


def recognise_file(path: str | Path) -> str | None:
    """`msclap` / `laion` for a model file of that format, else None."""
    from clapsearch.sources import laion, msclap

    if msclap.recognise(path):
        return "msclap"
    if laion.recognise(path):
        return "laion"
    return None


def load_file_model(path: str | Path):
    """-> (`ClapsearchModel` in eval mode, tokenizer, label) for a recognised model file; the
    label (`msclap:2023`, `laion:htsat-base`) names what the file holds."""
    from clapsearch.sources import laion, msclap

    path = Path(path).expanduser()
    kind = recognise_file(path)
    if kind == "msclap":
        model, tokenizer, version = msclap.load(path)
        return model, tokenizer, f"msclap:{version}"
    if kind == "laion":
        model, tokenizer = laion.load(path)
        return model, tokenizer, f"laion:{laion.describe(model)}"
    raise ModelLoadError(
        f"{path} is not a model file clapsearch recognises (an MS-CLAP .pth or a LAION-CLAP .pt "
        f"holding its weights); model folders are transformers or clapsearch checkpoints."
    )


def load_file_embedder(path: str | Path, device: torch.device, dtype: torch.dtype):
    """The `Embedder` of an MS-CLAP / LAION-CLAP file on `device` in `dtype`."""
    from clapsearch.backends.native import NativeEmbedder
    from clapsearch.sources.torchfile import file_digest

    path = Path(path).expanduser()
    model, tokenizer, label = load_file_model(path)
    identity = f"{label}@{file_digest(path)}"
    embedder = NativeEmbedder.from_model(model.to(device=device, dtype=dtype), tokenizer, identity)
    embedder.name_or_path = str(path)
    return embedder


__all__ = ["load_file_embedder", "load_file_model", "recognise_file"]
