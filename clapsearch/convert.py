"""`clapsearch convert SRC DST`: any model clapsearch loads -> a self-contained folder.

Sources: an MS-CLAP `.pth`, a LAION-CLAP `.pt`, a transformers CLAP folder or hub id, or a
clapsearch checkpoint. Formats written (atomically: a crash leaves no half folder):

- `clapsearch`: the clapsearch checkpoint format (models/checkpoint.py): config with the
  front end and text rules (filter-bank rate, pooling, suffix), weights in safetensors, the
  tokenizer, the text tower's config. Every source converts to it.
- `transformers`: a `ClapModel` folder (config.json, model.safetensors, tokenizer files,
  preprocessor_config.json) that `ClapModel.from_pretrained` and clapsearch both load. Only
  models transformers has an architecture for: LAION-CLAP's HTSAT + RoBERTa (fusion or not).
  MS-CLAP (CNN14 / GPT-2 towers, its own head) and PANN towers are refused in one sentence.

Either way the result loads with no package of the reference systems installed and no network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from clapsearch.errors import ModelLoadError, UsageError

FORMATS = ("clapsearch", "transformers")


@dataclass(frozen=True)
class Converted:
    source: str
    kind: str  # msclap:2022, msclap:2023, laion:htsat-tiny, ..., transformers, clapsearch
    destination: str
    format: str

    def to_json(self) -> dict:
        return dict(self.__dict__)


# --- any source -> ClapsearchModel ------------------------------------------------------------
def load_as_clapsearch(source: str):
    """-> (`ClapsearchModel` in eval mode on the CPU, tokenizer, kind) for any model source:
    the registry says which source takes `source` (by content), as for every `--model`."""
    from clapsearch.sources import canonical_name, find_source
    from clapsearch.sources.registry import unrecognised

    found = find_source(source)
    if found is None:
        raise unrecognised(source)
    name = canonical_name(source)
    if found.kind == "msclap":
        from clapsearch.sources import msclap

        model, tokenizer, version = msclap.load(name)
        return model, tokenizer, f"msclap:{version}"
    if found.kind == "laion":
        from clapsearch.sources import laion

        model, tokenizer = laion.load(name)
        return model, tokenizer, f"laion:{laion.describe(model)}"
    if found.kind == "hf":
        model, tokenizer = from_transformers(name)
        return model, tokenizer, "transformers"
    if found.kind in ("clapsearch", "default"):
        from clapsearch.models.checkpoint import load_checkpoint

        if found.kind == "default":
            from clapsearch.sources.default import packaged_model_dir

            name = packaged_model_dir()
        model, tokenizer, _ = load_checkpoint(Path(name))
        return model, tokenizer, "clapsearch"
    raise UsageError(f"clapsearch convert does not read {found.formats} models.")


def from_transformers(name_or_path: str):
    """A transformers CLAP folder / hub id -> (`ClapsearchModel`, tokenizer): the same HTSAT
    tower, RoBERTa with its pooler, the two-layer heads; front end from its preprocessor."""
    from transformers import ClapConfig

    from clapsearch.backends.hf import (
        _read_preprocessor,
        _resolve_files,
        audio_config_from_preprocessor,
    )
    from clapsearch.models.clap import ClapsearchModel
    from clapsearch.models.config import AudioEncoderConfig, ModelConfig, TextEncoderConfig
    from clapsearch.models.htsat import _read_state
    from clapsearch.sources import _towers as towers
    from clapsearch.tokenization import load_tokenizer

    folder = _resolve_files(name_or_path)
    try:
        config = ClapConfig.from_pretrained(str(folder))
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{folder} is not a transformers CLAP folder ({err}).") from None
    text = _hf_kwargs(config.text_config)
    model_config = ModelConfig(
        audio=audio_config_from_preprocessor(_read_preprocessor(folder)),
        audio_encoder=AudioEncoderConfig(
            name="htsat", hf_config=_hf_kwargs(config.audio_config), dropout=0.0
        ),
        text_encoder=TextEncoderConfig(
            name="roberta",
            hf_config={"model_type": "roberta", **text},
            pooling="pooler",
            max_length=int(text.get("max_position_embeddings", 514)) - 2,
        ),
        embed_dim=int(config.projection_dim),
        projection="mlp",
    )
    model = ClapsearchModel(model_config, load_weights=False)
    state = {_from_hf_key(k): v for k, v in _read_state(folder).items()}
    state = {k: v for k, v in state.items() if k}
    towers.load_exactly(model, state, str(name_or_path), lambda k: k.endswith("_ids"))
    tokenizer = load_tokenizer(folder, "roberta", int(text["vocab_size"]), str(name_or_path))
    return model.eval(), tokenizer


def _hf_kwargs(sub_config) -> dict:
    skip = {"transformers_version", "architectures", "model_type", "_name_or_path", "dtype"}
    return {k: v for k, v in sub_config.to_diff_dict().items() if k not in skip}


_HEAD_HF = {".0.": ".linear1.", ".2.": ".linear2."}


def _from_hf_key(key: str) -> str:
    """transformers `ClapModel` key -> `ClapsearchModel` key ("" for tensors it has no use
    for: LAION's second temperature)."""
    if key.startswith("text_model."):
        return "text_encoder.hf_model." + key[len("text_model.") :]
    if key.startswith("audio_model."):
        return "audio_encoder.model." + key[len("audio_model.") :]
    if key.startswith(("audio_projection.", "text_projection.")):
        for ours, hf in _HEAD_HF.items():
            key = key.replace(hf, ours)
        return key
    if key == "logit_scale_a":
        return "logit_scale"
    return ""


def _to_hf_key(key: str) -> str:
    if key.startswith("text_encoder.hf_model."):
        return "text_model." + key[len("text_encoder.hf_model.") :]
    if key.startswith("audio_encoder.model."):
        return "audio_model." + key[len("audio_encoder.model.") :]
    if key.startswith(("audio_projection.", "text_projection.")):
        for ours, hf in _HEAD_HF.items():
            key = key.replace(ours, hf)
        return key
    return key


# --- ClapsearchModel -> a transformers ClapModel ----------------------------------------------
def to_transformers_model(model):
    """The same model as a transformers `ClapModel`, or one sentence saying why not."""
    from transformers import ClapConfig, ClapModel

    from clapsearch.sources import _towers as towers

    cfg = model.config
    text_type = cfg.text_encoder.hf_config.get("model_type") or getattr(
        model.text_encoder.hf_model.config, "model_type", ""
    )
    if not (
        cfg.audio_encoder.name == "htsat"
        and text_type == "roberta"
        and cfg.text_encoder.pooling == "pooler"
        and cfg.projection == "mlp"
        and not cfg.audio.filterbank_rate
    ):
        raise UsageError(
            f"transformers has no architecture for this model ({cfg.audio_encoder.name} audio, "
            f"{text_type or cfg.text_encoder.name} text, {cfg.projection} heads); write it with "
            f"--format clapsearch."
        )
    text = model.text_encoder.hf_model.config.to_diff_dict()
    text = {k: v for k, v in text.items() if k not in ("model_type", "architectures")}
    hf_config = ClapConfig(
        text_config=text,
        audio_config=dict(model.audio_encoder.model.config.to_diff_dict()),
        projection_dim=cfg.embed_dim,
    )
    hf_model = ClapModel(hf_config).eval()
    state = {_to_hf_key(k): v for k, v in model.state_dict().items()}
    state["logit_scale_a"] = state["logit_scale_t"] = state.pop("logit_scale")
    towers.load_exactly(hf_model, state, "the converted model", lambda k: False)
    return hf_model


def feature_extractor_for(audio):
    """transformers' `ClapFeatureExtractor` with this front end's settings."""
    from transformers import ClapFeatureExtractor

    return ClapFeatureExtractor(
        feature_size=audio.n_mels,
        sampling_rate=audio.sample_rate,
        hop_length=audio.hop_length,
        max_length_s=int(audio.window_s),
        fft_window_size=audio.n_fft,
        frequency_min=audio.f_min,
        frequency_max=audio.f_max,
        truncation=audio.truncation,
        padding=audio.padding,
    )


def write_transformers(model, tokenizer, destination: Path) -> Path:
    from transformers import ClapProcessor

    from clapsearch.atomic import atomic_directory_write

    hf_model = to_transformers_model(model)
    tokenizer.model_max_length = model.config.text_encoder.max_length
    extractor = feature_extractor_for(model.config.audio)

    def fill(tmp: Path) -> None:
        hf_model.save_pretrained(str(tmp))
        ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(str(tmp))
        extractor.save_pretrained(str(tmp))  # preprocessor_config.json, as hub checkpoints
        tokenizer.save_pretrained(str(tmp))

    return atomic_directory_write(destination, fill)


def convert(source: str, destination: str | Path, fmt: str = "clapsearch") -> Converted:
    """Write `source` as a `fmt` folder at `destination` (see module doc)."""
    from clapsearch.models.checkpoint import Provenance, save_checkpoint

    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
    destination = Path(destination).expanduser()
    if destination.exists() and (destination.is_file() or any(destination.iterdir())):
        raise UsageError(f"{destination} already exists; give a new folder to write.")
    if Path(source).expanduser().resolve() == destination.resolve():
        raise UsageError("the destination must differ from the source.")
    model, tokenizer, kind = load_as_clapsearch(source)
    if fmt == "transformers":
        write_transformers(model, tokenizer, destination)
    else:
        note = f"converted by `clapsearch convert` from {Path(source).name} ({kind})"
        with torch.no_grad():
            save_checkpoint(model, tokenizer, destination, Provenance(notes=note))
    return Converted(str(source), kind, str(destination), fmt)


__all__ = ["FORMATS", "Converted", "convert", "from_transformers", "load_as_clapsearch"]
