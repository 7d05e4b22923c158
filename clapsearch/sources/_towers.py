"""Rebuild a foreign checkpoint's towers from its tensors: sizes come from shapes, not names.

MS-CLAP `.pth` and LAION `.pt` files carry weights only; their code rebuilds the towers from a
yml / json config and downloads the text tower's config from the hub. Here every size is read
off the tensors (layer counts from key indices, widths from weight shapes, Swin heads and
window from the relative-position tables), so a file loads offline and tiny test models load
exactly like released ones. The one size no tensor holds is the number of attention heads of
a text transformer: every BERT, RoBERTa and GPT-2 these files use has 64-wide heads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import torch

from clapsearch.errors import ModelLoadError
from clapsearch.models.config import AudioEncoderConfig

HEAD_WIDTH = 64
Tensors = Mapping[str, torch.Tensor]


def strip(state: Tensors, prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix`, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _count(state: Tensors, pattern: str) -> int:
    """1 + the largest index matched by `pattern`'s group (0 when nothing matches)."""
    rx = re.compile(pattern)
    found = [int(m.group(1)) for k in state if (m := rx.match(k))]
    return max(found) + 1 if found else 0


def _heads(hidden: int) -> int:
    if hidden % HEAD_WIDTH:
        raise ModelLoadError(f"a text tower {hidden} wide does not split into 64-wide heads.")
    return hidden // HEAD_WIDTH


# --- text towers ------------------------------------------------------------------------------
def bert_like_config(state: Tensors, model_type: str) -> dict:
    """`hf_config` of a BERT / RoBERTa `*Model` state dict (keys `embeddings.*`, `encoder.*`)."""
    words = state["embeddings.word_embeddings.weight"]
    hidden = int(words.shape[1])
    config = dict(
        model_type=model_type,
        vocab_size=int(words.shape[0]),
        hidden_size=hidden,
        num_hidden_layers=_count(state, r"encoder\.layer\.(\d+)\."),
        num_attention_heads=_heads(hidden),
        intermediate_size=int(state["encoder.layer.0.intermediate.dense.weight"].shape[0]),
        max_position_embeddings=int(state["embeddings.position_embeddings.weight"].shape[0]),
        type_vocab_size=int(state["embeddings.token_type_embeddings.weight"].shape[0]),
    )
    if model_type == "roberta":  # roberta-base's values (BERT's defaults differ)
        config.update(layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    return config


def gpt2_config(state: Tensors) -> dict:
    """`hf_config` of a `GPT2Model` state dict (keys `wte`, `wpe`, `h.N.*`, `ln_f`)."""
    hidden = int(state["wte.weight"].shape[1])
    return dict(
        model_type="gpt2",
        vocab_size=int(state["wte.weight"].shape[0]),
        n_positions=int(state["wpe.weight"].shape[0]),
        n_embd=hidden,
        n_layer=_count(state, r"h\.(\d+)\."),
        n_head=_heads(hidden),
        n_inner=int(state["h.0.mlp.c_fc.weight"].shape[1]),
    )


def text_family(state: Tensors) -> str | None:
    """`bert`, `roberta` or `gpt2` from a text tower's keys and shapes, else None.

    RoBERTa has one token type and position ids offset by its pad id 1 (514 positions);
    BERT has two token types."""
    if "wte.weight" in state:
        return "gpt2"
    if "embeddings.word_embeddings.weight" not in state:
        return None
    types = state.get("embeddings.token_type_embeddings.weight")
    return "roberta" if types is not None and types.shape[0] == 1 else "bert"


# --- audio towers -----------------------------------------------------------------------------
def pann_config(state: Tensors, dropout: float = 0.2) -> AudioEncoderConfig:
    """CNN6 / CNN10 / CNN14 (audioset_tagging_cnn layout: `conv_blockN`, `fc1`) from shapes."""
    blocks = max(_count(state, r"conv_block(\d+)\.") - 1, 0)  # numbered from 1
    if blocks == 0 or "fc1.weight" not in state:
        raise ModelLoadError("the audio tower is not a PANN CNN (no conv blocks and fc1).")
    channels = tuple(int(state[f"conv_block{i + 1}.conv1.weight"].shape[0]) for i in range(blocks))
    five = state["conv_block1.conv1.weight"].shape[-1] == 5
    name = "cnn6" if five else {4: "cnn10", 6: "cnn14"}.get(blocks, "")
    if not name or (five and blocks != 4) or state["conv_block1.conv1.weight"].shape[1] != 1:
        raise ModelLoadError(
            f"the audio tower is a PANN variant clapsearch does not rebuild ({blocks} blocks)."
        )
    return AudioEncoderConfig(
        name=name,
        channels=channels,
        embed_dim=int(state["fc1.weight"].shape[0]),
        dropout=dropout,
    )


def swin_audio_config(state: Tensors, fusion: bool) -> dict:
    """`ClapAudioConfig` kwargs of an HTSAT (Swin) state dict in Ke Chen's layout
    (`patch_embed`, `layers.N.blocks.M`, `norm`), as MS-CLAP and LAION-CLAP save it."""
    layers = _count(state, r"layers\.(\d+)\.")
    depths = [_count(state, rf"layers\.{i}\.blocks\.(\d+)\.") for i in range(layers)]
    tables = [
        state[f"layers.{i}.blocks.0.attn.relative_position_bias_table"] for i in range(layers)
    ]
    window = (math.isqrt(int(tables[0].shape[0])) + 1) // 2
    patch = state["patch_embed.proj.weight"]
    config = dict(
        patch_embeds_hidden_size=int(patch.shape[0]),
        patch_size=int(patch.shape[-1]),
        patch_stride=[int(patch.shape[-2]), int(patch.shape[-1])],
        depths=depths,
        num_attention_heads=[int(t.shape[1]) for t in tables],
        window_size=window,
        hidden_size=int(state["norm.weight"].shape[0]),
        num_mel_bins=int(state["bn0.weight"].shape[0]),
        enable_fusion=fusion,
    )
    mask = state.get("layers.0.blocks.1.attn_mask")
    if mask is not None:  # (windows, w*w, w*w) over the first layer's (spec / stride)^2 grid
        config["spec_size"] = math.isqrt(int(mask.shape[0])) * window * int(patch.shape[-1])
    if fusion:
        config["fusion_type"] = "aff_2d"
    return config


_SWIN_RENAMES = (
    ("attn.proj.", "attention.output.dense."),
    ("attn.relative_position", "attention.self.relative_position"),
    ("norm1.", "layernorm_before."),
    ("norm2.", "layernorm_after."),
    ("mlp.fc1.", "intermediate.dense."),
    ("mlp.fc2.", "output.dense."),
)
# Front-end buffers (our features replace them), classifier heads, and buffers transformers
# recomputes: not part of the embedding.
_SWIN_UNUSED = re.compile(
    r"^(spectrogram_extractor|logmel_extractor|tscam_conv|head|spec_augmenter)\.|\.attn_mask$"
)


def swin_to_transformers(state: Tensors) -> dict[str, torch.Tensor]:
    """Ke Chen's HTSAT keys -> transformers `ClapAudioModel` keys (`audio_encoder.*`); the
    fused qkv projection is split into query / key / value."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if _SWIN_UNUSED.search(key):
            continue
        if key.startswith("bn0."):
            key = "batch_norm." + key[4:]
        for old, new in _SWIN_RENAMES:
            key = key.replace(old, new)
        if ".attn.qkv." in key:
            for part, chunk in zip(("query", "key", "value"), value.chunk(3, dim=0)):
                out["audio_encoder." + key.replace("attn.qkv", f"attention.self.{part}")] = chunk
            continue
        out["audio_encoder." + key] = value
    return out


# Buffers a model fills at init with constants (arange / zeros): a file need not carry them.
_CONSTANT_BUFFERS = ("position_ids", "token_type_ids")


def load_exactly(module: torch.nn.Module, state: Tensors, what: str, ignore: Callable) -> None:
    """Load `state` into `module`, every parameter and buffer covered: a file that leaves one
    at its random init is refused, never half-loaded. `ignore(key)` names the file's tensors
    that are known to play no part (front-end buffers, classifier heads)."""
    own = module.state_dict()
    missing = sorted(k for k in own if k not in state and not k.endswith(_CONSTANT_BUFFERS))
    unexpected = sorted(k for k in state if k not in own and not ignore(k))
    wrong = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        example = (missing or unexpected or wrong)[0]
        raise ModelLoadError(
            f"{what} does not match the architecture rebuilt from it ({len(missing)} tensors "
            f"missing, {len(unexpected)} unexpected, {len(wrong)} of another shape, e.g. "
            f"{example})."
        )
    module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


def check_mel_filters(stored: torch.Tensor | None, ours, what: str) -> None:
    """The file's own mel filters (torchlibrosa's `melW`, `(n_freqs, n_mels)`) must equal the
    front end clapsearch will feed the tower: a model whose filters differ would get features
    it was never trained on."""
    if stored is None:
        return
    import numpy as np

    stored = stored.detach().float().cpu().numpy()
    if stored.shape != ours.shape or float(np.abs(stored - ours).max()) > 1e-5:
        raise ModelLoadError(
            f"{what} holds mel filters that differ from the front end clapsearch rebuilds for "
            f"it; it is not a model this loader knows."
        )


__all__ = [
    "bert_like_config",
    "check_mel_filters",
    "gpt2_config",
    "load_exactly",
    "pann_config",
    "strip",
    "swin_audio_config",
    "swin_to_transformers",
    "text_family",
]
