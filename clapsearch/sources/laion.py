"""LAION-CLAP's own files (`laion_clap` package): `630k-best.pt`, `630k-audioset-best.pt`,
`630k-fusion-best.pt`, `630k-audioset-fusion-best.pt` (HTSAT-tiny), `music_audioset_*.pt`,
`music_speech_*.pt`, `music_speech_audioset_*.pt` (HTSAT-base), and PANN towers if a file has
one.

Recognised by content: a `torch.save` dict whose `state_dict` has `audio_branch.*`,
`text_branch.*` and `audio_projection.*` keys (with or without DDP's `module.` prefix). The file
becomes a `ClapsearchModel`: the HTSAT tower as transformers' `ClapAudioModel` (the key renames
of transformers' `convert_clap_original_pytorch_to_hf.py`), a PANN tower as clapsearch's CNN,
RoBERTa with its own pooler (dense + tanh on `<s>`, as LAION), LAION's two-layer ReLU heads.
Sizes are read from the tensors (HTSAT-tiny or -base, fusion or not).

Front end (LAION's `audio_cfg`): 48 kHz, 10 s windows, 1024-point FFT, hop 480, 64 mels from
50 Hz to 14 kHz; slaney filters on the waveform for non-fusion models (torchlibrosa inside
the model), HTK filters for the fusion input (`get_mel`); clips shorter than 10 s are
`repeatpad`ded. Texts: RoBERTa tokens truncated at 77, as `CLAP_Module.tokenizer`.

What LAION's own pipeline does and clapsearch deliberately does not (docs/checkpoints.md):
a random crop of long clips (and random fusion crops), a round trip through int16, and
`librosa.load`'s one-sample-longer resampling at 44.1 kHz input (240001 samples for a 5 s
clip), which changes its repeat padding.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clapsearch.config import AudioConfig
from clapsearch.errors import ModelLoadError
from clapsearch.sources._torchfile import load_tensors_file, peek_strings, state_dict_of
from clapsearch.sources.registry import ModelSource, register_source

if TYPE_CHECKING:  # torch and the models are imported when a file is loaded, not recognised
    import torch

TEXT_TOKENS = 77


def front_end(fusion: bool) -> AudioConfig:
    return AudioConfig(
        sample_rate=48_000,
        window_s=10.0,
        n_fft=1024,
        hop_length=480,
        n_mels=64,
        f_min=50.0,
        f_max=14_000.0,
        truncation="fusion" if fusion else "rand_trunc",
        padding="repeatpad",
    )


def _is_laion(strings) -> bool:
    strings = {s.removeprefix("module.") for s in strings}
    return any(s.startswith("audio_branch.") for s in strings) and any(
        s.startswith("text_branch.") for s in strings
    )


def recognise(path: str | Path) -> bool:
    """True for a file holding a LAION-CLAP model (by its keys, not its name)."""
    strings = peek_strings(path)
    return strings is not None and _is_laion(strings)


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    obj = load_tensors_file(path)
    key = "state_dict" if isinstance(obj, dict) and "state_dict" in obj else None
    state = state_dict_of(obj if key else {"state_dict": obj}, "state_dict", path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if not _is_laion(state):
        raise ModelLoadError(f"{path} is not a LAION-CLAP model file.")
    return state


def build(state: dict[str, torch.Tensor], what: str):
    """LAION's state dict -> (`ClapsearchModel` in eval mode, text vocabulary size)."""
    from clapsearch.features import mel_filterbank
    from clapsearch.models.clap import ClapsearchModel
    from clapsearch.models.config import AudioEncoderConfig, ModelConfig, TextEncoderConfig
    from clapsearch.sources import _towers as towers

    audio = towers.strip(state, "audio_branch.")
    text = towers.strip(state, "text_branch.")
    fusion = any(k.startswith(("fusion_model.", "patch_embed.fusion_model.")) for k in audio)
    if "patch_embed.proj.weight" in audio:
        enc = AudioEncoderConfig(
            name="htsat", hf_config=towers.swin_audio_config(audio, fusion), dropout=0.0
        )
        audio_map = {
            "audio_encoder.model." + k: v for k, v in towers.swin_to_transformers(audio).items()
        }
    elif "conv_block1.conv1.weight" in audio:
        if fusion:
            raise ModelLoadError(
                f"{what} has a fusion PANN audio tower, which clapsearch does not rebuild "
                f"(only HTSAT fusion towers)."
            )
        enc = towers.pann_config(audio)
        audio_map = {"audio_encoder." + k: v for k, v in audio.items()}
    else:
        raise ModelLoadError(f"{what} has a LAION audio tower clapsearch does not know.")
    if towers.text_family(text) != "roberta":
        raise ModelLoadError(
            f"{what} has a {towers.text_family(text) or 'non-transformers'} text tower; "
            f"clapsearch rebuilds LAION's RoBERTa text tower only."
        )
    config = ModelConfig(
        audio=front_end(fusion),
        audio_encoder=enc,
        text_encoder=TextEncoderConfig(
            name="roberta",
            hf_config=towers.bert_like_config(text, "roberta"),
            pooling="pooler",
            max_length=TEXT_TOKENS,
        ),
        embed_dim=int(state["audio_projection.2.weight"].shape[0]),
        projection="mlp",
    )
    if not fusion:  # the fusion input's filters are HTK (`get_mel`), not the stored slaney ones
        stored = audio.get("logmel_extractor.melW")
        towers.check_mel_filters(stored, mel_filterbank(config.audio), what)
    model = ClapsearchModel(config, load_weights=False)
    mapped = {
        **audio_map,
        **{"text_encoder.hf_model." + k: v for k, v in text.items()},
        **{k: v for k, v in state.items() if k.startswith(("audio_projection.", "text_projection."))},
    }  # fmt: skip
    if "logit_scale_a" in state:
        mapped["logit_scale"] = state["logit_scale_a"]
    towers.load_exactly(model, mapped, what, _unused)
    return model.eval(), int(config.text_encoder.hf_config["vocab_size"])


def _unused(key: str) -> bool:
    """LAION tensors with no part in the embedding: the torchlibrosa front end (replaced by
    clapsearch.features), AudioSet classifier heads, and position / token-type id buffers."""
    return (
        "spectrogram_extractor." in key
        or "logmel_extractor." in key
        or key.startswith(("audio_encoder.fc_audioset.", "audio_encoder.head."))
        or key.startswith("audio_encoder.tscam_conv.")
        or key.endswith(("position_ids", "token_type_ids"))
    )


def describe(model) -> str:
    """`htsat-tiny`, `htsat-base-fusion`, `cnn14`, ...: the audio tower a LAION file holds."""
    enc = model.config.audio_encoder
    if enc.name != "htsat":
        return enc.name
    width = int(enc.hf_config.get("patch_embeds_hidden_size", 0))
    size = {96: "tiny", 128: "base", 256: "large"}.get(width, f"w{width}")
    return f"htsat-{size}" + ("-fusion" if model.config.audio.truncation == "fusion" else "")


def load(path: str | Path):
    """-> (`ClapsearchModel`, tokenizer) for a LAION-CLAP `.pt` file."""
    from clapsearch.tokenization import load_tokenizer

    path = Path(path).expanduser()
    model, vocab = build(read_state(path), str(path))
    tokenizer = load_tokenizer(None, "roberta", vocab, str(path))
    tokenizer.model_max_length = TEXT_TOKENS
    return model, tokenizer


def _load(name: str, device, dtype, parts):
    from clapsearch.sources._files import file_embedder

    model, tokenizer = load(name)
    return file_embedder(model, tokenizer, name, "laion", describe(model), device, dtype)


SOURCE = register_source(
    ModelSource(
        kind="laion",
        formats="a LAION-CLAP .pt file (630k-*.pt, music_*.pt)",
        recognises=recognise,
        load=_load,
        order=31,
    )
)

__all__ = ["SOURCE", "TEXT_TOKENS", "build", "describe", "front_end", "load", "recognise"]
