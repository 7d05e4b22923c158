"""The `Embedder` of an MS-CLAP / LAION-CLAP file: the rebuilt `ClapsearchModel` behind the same
`NativeEmbedder` as clapsearch checkpoints (windows, averaging, normalisation shared).

The identity names the model by content, not by file name (`msclap:2023@<hash>`,
`laion:htsat-tiny-fusion@<hash>`, the hash of the file's bytes), so an index built with a file
accepts a renamed copy and refuses other weights; it records the front end, the text rules
(pooling, suffix, token limit) and which public tokenizer was used.
"""

from __future__ import annotations

from dataclasses import replace


def file_embedder(model, tokenizer, name: str, kind: str, label: str, device, dtype):
    from clapsearch.backends.native import NativeEmbedder
    from clapsearch.sources._torchfile import file_digest

    embedder = NativeEmbedder.from_model(model.to(device=device, dtype=dtype), tokenizer, label)
    identity = embedder.model_identity
    embedder.model_identity = replace(
        identity,
        kind=kind,
        name=name,
        digest=file_digest(name),
        text=replace(identity.text, tokenizer=str(getattr(tokenizer, "name_or_path", ""))),
    )
    embedder.name_or_path = name
    return embedder
