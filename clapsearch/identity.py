"""`ModelIdentity`: which model made a set of vectors, as a typed record.

An index stores it (`index_meta.model_identity`, JSON) and refuses vectors from any other
model; `Library` and the indexer reload the index's model by its `name`. Two loads of the
same weights have the same `key` wherever the files sit (the digest hashes the weights, the
label is the hub id or folder name), so a renamed copy of a checkpoint still matches.

    kind    the model source that loads it ("hf", "clapsearch", ...; `clapsearch.sources`)
    name    what `load_embedder` takes to load it again: a hub id, an absolute path, or the
            alias "default" (indexes built with the packaged model survive reinstalls)
    label   the short human name in `key` (hub id or folder name)
    digest  hash of the weights (12 hex digits)
    dim     embedding size
    audio   the audio front end (`AudioConfig`)
    text    what the text side reads (`TextConfig`)

`key` ("hf:laion/clap-htsat-unfused@1a2b3c4d5e6f") is the compact form first-release indexes
recorded as `model`; `Embedder.identity` is this key.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from clapsearch.config import AudioConfig, from_dict, to_dict


@dataclass(frozen=True)
class TextConfig:
    """What a model's text side reads: the longest token sequence (longer texts are cut), the
    tokenizer it was given when that is a public one (`openai-community/gpt2`; "" for one
    shipped with the checkpoint), how token states are pooled (`TextEncoderConfig.pooling`;
    "" where not recorded) and what is appended to every text."""

    max_tokens: int = 0
    tokenizer: str = ""
    pooling: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class ModelIdentity:
    """See module doc."""

    kind: str
    name: str
    label: str
    digest: str = ""
    dim: int = 0
    audio: AudioConfig | None = None  # None: not recorded (an index from before records)
    text: TextConfig | None = None

    @property
    def key(self) -> str:
        """The compact identity: `kind:label@digest` (`kind:label` without a digest)."""
        return f"{self.kind}:{self.label}" + (f"@{self.digest}" if self.digest else "")

    def to_json(self) -> str:
        return json.dumps(to_dict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelIdentity:
        data = json.loads(text)
        audio, text_cfg = data.pop("audio", None), data.pop("text", None)
        return cls(
            **data,
            audio=from_dict(AudioConfig, audio) if audio is not None else None,
            text=from_dict(TextConfig, text_cfg) if text_cfg is not None else None,
        )

    def with_name(self, name: str) -> ModelIdentity:
        return dataclasses.replace(self, name=name)

    @classmethod
    def from_legacy(cls, model: str, model_source: str = "", dim: int = 0) -> ModelIdentity:
        """An index written before identities were records stored `model` ("kind:label@digest")
        and, later, `model_source` (the name it was loaded by). This reads them, once, when
        such an index is opened; nothing else parses identity strings. Without a recorded
        source, a label that looks like a hub id (and is no local path) is the name to load;
        otherwise `name` is empty and the usual default applies (`clapsearch.sources`)."""
        kind, _, rest = model.partition(":")
        label, _, digest = rest.rpartition("@") if "@" in rest else (rest, "", "")
        name = model_source
        if not name and label.count("/") == 1 and not Path(label).expanduser().exists():
            name = label
        return cls(kind=kind, name=name, label=label, digest=digest, dim=dim)


__all__ = ["ModelIdentity", "TextConfig"]
