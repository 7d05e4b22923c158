"""Microsoft's CLAP files (`msclap` package): `CLAP_weights_2022.pth`, `CLAP_weights_2023.pth`.

Recognised by content: a `torch.save` dict whose `model` entry has `audio_encoder.base.*`,
`audio_encoder.projection.*`, `caption_encoder.base.*` and `caption_encoder.projection.*`.
The file becomes a `ClapsearchModel` (so `clapsearch convert` writes it as a clapsearch
checkpoint) that computes what `msclap` computes on the same waveform and token ids:

2022  CNN14 audio tower; 44.1 kHz, 5 s windows, 1024-point FFT, hop 320, 64 slaney mels
      50-14000 Hz; BERT-base uncased text tower, last layer's [CLS]; 100-token texts.
2023  HTSAT-tiny audio tower; 44.1 kHz STFT, 7 s windows, hop 320, but mel filters built for
      32 kHz (fmax 14000): its wrapper ignores its yml and reads HTSAT's AudioSet config;
      GPT-2 text tower: " <|endoftext|>" appended, padded with id 0 (`!`), pooled at index
      (ids != 0).sum() - 1 (a `!` in the text moves that index: reproduced, not fixed);
      77-token texts.
both  projection LayerNorm(l1(x) + l2(gelu(l1(x)))), bias-free, 1024-d; clips shorter than the
      window are tiled and cut (`repeat`).

What msclap's own pipeline does and clapsearch deliberately does not (docs/checkpoints.md):
resampling with torchaudio, concatenating stereo channels instead of averaging them, a random
crop of long clips (here: consecutive windows, averaged), and no text truncation.

The captioning file (`clapcap_weights_2023.pth`) has no text encoder to search with and is
refused in one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clapsearch.config import AudioConfig
from clapsearch.errors import ModelLoadError
from clapsearch.sources._torchfile import load_tensors_file, peek_strings, state_dict_of
from clapsearch.sources.registry import ModelSource, register_source

if TYPE_CHECKING:  # torch and the models are imported when a file is loaded, not recognised
    import torch

AUDIO = "audio_encoder.base."
TEXT = "caption_encoder.base."
GPT2_SUFFIX = " <|endoftext|>"


@dataclass(frozen=True)
class Version:
    name: str
    audio: AudioConfig
    text_len: int


V2022 = Version(
    "2022",
    AudioConfig(
        sample_rate=44_100, window_s=5.0, n_fft=1024, hop_length=320, n_mels=64, f_min=50.0,
        f_max=14_000.0, truncation="rand_trunc", padding="repeat",
    ),
    text_len=100,
)  # fmt: skip
V2023 = Version(
    "2023",
    AudioConfig(
        sample_rate=44_100, window_s=7.0, n_fft=1024, hop_length=320, n_mels=64, f_min=50.0,
        f_max=14_000.0, truncation="rand_trunc", padding="repeat", filterbank_rate=32_000,
    ),
    text_len=77,
)  # fmt: skip


def kind_of(strings) -> str | None:
    """`clap` / `clapcap` from a file's key strings, else None."""
    if any(s.startswith("caption_encoder.base.") for s in strings) and any(
        s.startswith("audio_encoder.projection.") for s in strings
    ):
        return "clap"
    if any(s.startswith("clap.base.") for s in strings) and any(
        s.startswith("clap_project.") for s in strings
    ):
        return "clapcap"
    return None


def recognise(path: str | Path) -> bool:
    """True for a file holding an msclap model (by its keys, not its name)."""
    strings = peek_strings(path)
    return strings is not None and kind_of(strings) is not None


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    state = state_dict_of(load_tensors_file(path), "model", path)
    if kind_of(state) == "clapcap":
        raise ModelLoadError(
            f"{path} is MS-CLAP's captioning model (clapcap): it has no text encoder to search "
            f"with; use CLAP_weights_2023.pth for search."
        )
    if kind_of(state) != "clap":
        raise ModelLoadError(f"{path} is not an MS-CLAP model file.")
    return state


def build(state: dict[str, torch.Tensor], what: str):
    """The msclap state dict -> (`ClapsearchModel` in eval mode, text family, vocab size,
    `Version`)."""
    from clapsearch.features import mel_filterbank
    from clapsearch.models.clap import ClapsearchModel
    from clapsearch.models.config import AudioEncoderConfig, ModelConfig, TextEncoderConfig
    from clapsearch.sources import _towers as towers

    audio = towers.strip(state, AUDIO)
    text = towers.strip(state, TEXT)
    if "htsat.patch_embed.proj.weight" in audio:
        version = V2023
        swin = towers.strip(audio, "htsat.")
        enc = AudioEncoderConfig(name="htsat", hf_config=towers.swin_audio_config(swin, False))
        audio_map = {
            "audio_encoder.model." + k: v for k, v in towers.swin_to_transformers(swin).items()
        }
        mel = swin.get("logmel_extractor.melW")
    elif "conv_block1.conv1.weight" in audio:
        version = V2022
        enc = towers.pann_config(audio)
        audio_map = {"audio_encoder." + k: v for k, v in audio.items()}
        mel = audio.get("logmel_extractor.melW")
    else:
        raise ModelLoadError(f"{what} has an MS-CLAP audio tower clapsearch does not know.")
    family = towers.text_family(text)
    if family == "gpt2":
        text_cfg = TextEncoderConfig(
            name="transformers",
            hf_config=towers.gpt2_config(text),
            pooling="msclap_gpt2",
            max_length=version.text_len,
            suffix=GPT2_SUFFIX,
        )
    elif family == "bert":
        text_cfg = TextEncoderConfig(
            name="bert",
            hf_config=towers.bert_like_config(text, "bert"),
            pooling="cls",
            max_length=version.text_len,
        )
    else:
        raise ModelLoadError(f"{what} has an MS-CLAP text tower clapsearch does not know.")
    towers.check_mel_filters(mel, mel_filterbank(version.audio), what)
    embed_dim = int(state["audio_encoder.projection.linear1.weight"].shape[0])
    config = ModelConfig(
        audio=version.audio,
        audio_encoder=enc,
        text_encoder=text_cfg,
        embed_dim=embed_dim,
        projection="msclap",
    )
    model = ClapsearchModel(config, load_weights=False)
    mapped = {
        **audio_map,
        **{"audio_projection." + k: v for k, v in towers.strip(state, "audio_encoder.projection.").items()},
        **{"text_encoder.hf_model." + k: v for k, v in text.items()},
        **{"text_projection." + k: v for k, v in towers.strip(state, "caption_encoder.projection.").items()},
    }  # fmt: skip
    if "logit_scale" in state:
        mapped["logit_scale"] = state["logit_scale"]
    towers.load_exactly(model, mapped, what, _unused)
    return model.eval(), family, int(text_cfg.hf_config["vocab_size"]), version


def _unused(key: str) -> bool:
    """msclap tensors with no part in the embedding: the torchlibrosa front end (replaced by
    clapsearch.features), AudioSet classifier heads, BERT's pooler (msclap takes [CLS] of the
    last layer), GPT-2's causal-mask buffers, and position-id buffers."""
    return (
        "spectrogram_extractor." in key
        or "logmel_extractor." in key
        or key.startswith(("audio_encoder.fc_audioset.", "audio_encoder.tscam_conv."))
        or key.startswith("audio_encoder.head.")
        or key.startswith("text_encoder.hf_model.pooler.")
        or key.endswith((".attn.bias", ".attn.masked_bias", "position_ids", "token_type_ids"))
    )


def load_tokenizer_for(family: str, vocab: int, what: str):
    from clapsearch.tokenization import load_tokenizer

    tokenizer = load_tokenizer(None, family, vocab, what)
    if family == "gpt2":
        tokenizer.add_special_tokens({"pad_token": "!"})  # id 0, as msclap's wrapper
    return tokenizer


def load(path: str | Path):
    """-> (`ClapsearchModel`, tokenizer, version name) for an msclap `.pth` file."""
    path = Path(path).expanduser()
    model, family, vocab, version = build(read_state(path), str(path))
    return model, load_tokenizer_for(family, vocab, str(path)), version.name


def _load(name: str, device, dtype, parts):
    from clapsearch.sources._files import file_embedder

    model, tokenizer, version = load(name)
    return file_embedder(model, tokenizer, name, "msclap", version, device, dtype)


SOURCE = register_source(
    ModelSource(
        kind="msclap",
        formats="an MS-CLAP .pth file (CLAP_weights_2022/2023)",
        recognises=recognise,
        load=_load,
        order=30,
    )
)

__all__ = ["GPT2_SUFFIX", "SOURCE", "V2022", "V2023", "build", "kind_of", "load", "recognise"]
