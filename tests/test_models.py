"""Model library: encoder registry, PANN / HTSAT / transformers towers, the two-tower model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clapsearch.audio import load_audio
from clapsearch.config import AudioConfig
from clapsearch.errors import ModelLoadError
from clapsearch.features import clap_features
from clapsearch.models import (
    AudioEncoder,
    AudioEncoderConfig,
    TextEncoderConfig,
    build_model,
    create_audio_encoder,
    create_text_encoder,
    list_models,
    projection_head,
    register_encoder,
)
from clapsearch.models.presets import minilm_path, tiny_config
from tests.conftest import esc50_files

FRONT = AudioConfig(window_s=5.0)


@pytest.fixture(scope="module")
def esc_features() -> torch.Tensor:
    """`(3, 1, 501, 64)` log-mel of three real ESC-50 clips."""
    waves = [torch.from_numpy(load_audio(p, 48_000)) for p in esc50_files(3)]
    features, _ = clap_features(waves, FRONT)
    return features


def test_registry_lists_every_builtin_encoder():
    models = list_models()
    assert {"cnn6", "cnn10", "cnn14", "htsat"} <= set(models["audio"])
    assert {"minilm", "bert", "roberta", "transformers"} <= set(models["text"])


def test_unknown_encoder_is_one_clear_error():
    with pytest.raises(ModelLoadError, match="Unknown audio encoder 'cnn99'.*cnn14"):
        create_audio_encoder("cnn99", AudioEncoderConfig(name="cnn99"))


def test_register_rejects_non_encoders_and_duplicate_names():
    with pytest.raises(TypeError):
        register_encoder("plain")(nn.Linear)

    class Other(AudioEncoder):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_encoder("cnn6")(Other)


@pytest.mark.parametrize(
    "name,channels",
    [("cnn6", (4, 8, 8, 16)), ("cnn10", (4, 8, 8, 16)), ("cnn14", (4, 4, 8, 8, 8, 16))],
)
def test_pann_embeds_real_clips_independently_of_batch(name, channels, esc_features):
    torch.manual_seed(0)
    enc = create_audio_encoder(name, AudioEncoderConfig(name=name, channels=channels), FRONT).eval()
    with torch.no_grad():
        batch = enc(esc_features)
        alone = enc(esc_features[1:2])
    assert batch.shape == (3, 16) and enc.out_dim == 16
    torch.testing.assert_close(batch[1:2], alone, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(batch[0], batch[1])  # different clips, different vectors


def test_pann_default_widths_follow_the_paper():
    enc = create_audio_encoder("cnn6", AudioEncoderConfig(name="cnn6"))
    assert enc.config.channels == (64, 128, 256, 512) and enc.out_dim == 512
    assert enc.conv_block1.conv1.kernel_size == (5, 5)


def test_pann_loads_audioset_tagging_cnn_weights(tmp_path):
    cfg = AudioEncoderConfig(name="cnn10", channels=(4, 8, 8, 16))
    src = create_audio_encoder("cnn10", cfg, FRONT)
    state = dict(src.state_dict())
    # The released .pth also holds the spectrogram front end and the AudioSet classifier.
    state["fc_audioset.weight"] = torch.zeros(527, 16)
    state["logmel_extractor.melW"] = torch.zeros(1025, 64)
    torch.save({"model": state, "iteration": 1}, tmp_path / "Cnn10.pth")
    loaded = create_audio_encoder(
        "cnn10",
        AudioEncoderConfig(
            name="cnn10", channels=(4, 8, 8, 16), pretrained=str(tmp_path / "Cnn10.pth")
        ),
        FRONT,
    )
    for key, value in src.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    with pytest.raises(ModelLoadError, match="does not match"):
        create_audio_encoder(
            "cnn10",
            AudioEncoderConfig(
                name="cnn10", channels=(4, 8, 8, 32), pretrained=str(tmp_path / "Cnn10.pth")
            ),
            FRONT,
        )


TINY_HTSAT = dict(
    hidden_size=64,
    patch_embeds_hidden_size=8,
    depths=[1, 1, 1, 1],
    num_attention_heads=[1, 2, 2, 4],
    window_size=8,
)


def test_htsat_from_a_tiny_clap_audio_config_runs(esc_features):
    enc = create_audio_encoder(
        "htsat", AudioEncoderConfig(name="htsat", hf_config=TINY_HTSAT)
    ).eval()
    waves = [torch.from_numpy(load_audio(p, 48_000)) for p in esc50_files(2)]
    features, longer = clap_features(waves, AudioConfig())
    with torch.no_grad():
        out = enc(features, longer)
    assert out.shape == (2, 64) and torch.isfinite(out).all()
    assert enc.config.hf_config["depths"] == [1, 1, 1, 1]


def test_htsat_takes_the_weights_of_a_transformers_clap_checkpoint(tiny_clap_dir):
    from transformers import ClapModel

    ref = ClapModel.from_pretrained(tiny_clap_dir).audio_model
    enc = create_audio_encoder(
        "htsat", AudioEncoderConfig(name="htsat", pretrained=str(tiny_clap_dir))
    )
    ours = enc.model.state_dict()
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(ours[key], value)
    # The resolved config rebuilds the same architecture without the source directory.
    rebuilt = create_audio_encoder("htsat", enc.config, load_weights=False)
    assert rebuilt.model.state_dict().keys() == ours.keys()


def _tiny_bert(pooling: str) -> TextEncoderConfig:
    return TextEncoderConfig(
        name="bert",
        tokenizer=minilm_path(),
        pooling=pooling,
        hf_config=dict(
            model_type="bert",
            vocab_size=30522,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
        ),
    )


def test_mean_pooling_ignores_padding_and_cls_takes_the_first_token():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_path())
    torch.manual_seed(0)
    enc = create_text_encoder("bert", _tiny_bert("mean")).eval()
    short = tok(["a dog barks"], return_tensors="pt")
    padded = tok(
        ["a dog barks", "rain falls on a tin roof in the night"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        a = enc(short["input_ids"], short["attention_mask"])
        b = enc(padded["input_ids"], padded["attention_mask"])[:1]
        hidden = enc.hf_model(**short).last_hidden_state
        enc.config = _tiny_bert("cls")
        cls = enc(short["input_ids"], short["attention_mask"])
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cls, hidden[:, 0])


def test_minilm_tower_loads_the_pretrained_sentence_encoder():
    from transformers import AutoTokenizer

    enc = create_text_encoder("minilm", TextEncoderConfig(name="minilm")).eval()
    tok = AutoTokenizer.from_pretrained(enc.tokenizer_source())
    batch = tok(
        ["a dog barks", "a dog is barking loudly", "quarterly stock market report"],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        v = torch.nn.functional.normalize(enc(batch["input_ids"], batch["attention_mask"]), dim=-1)
    assert enc.out_dim == 384
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.3  # random weights would not separate


def test_projection_heads():
    assert isinstance(projection_head("linear", 8, 4), nn.Linear)
    mlp = projection_head("mlp", 8, 4)
    assert mlp(torch.randn(2, 8)).shape == (2, 4) and len(mlp) == 3
    with pytest.raises(ValueError):
        projection_head("conv", 8, 4)


def test_clap_model_outputs_unit_rows_clamped_scale_and_freezes_per_tower(esc_features):
    torch.manual_seed(0)
    model = build_model(tiny_config())
    ids = torch.randint(0, 30522, (3, 7))
    audio, text, scale = model(esc_features, None, ids, torch.ones_like(ids))
    assert audio.shape == text.shape == (3, 16)
    torch.testing.assert_close(audio.norm(dim=-1), torch.ones(3))
    assert abs(scale.item() - 1 / 0.07) < 1e-3
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert model.scale().item() == pytest.approx(100.0)
    model.clamp_logit_scale()
    assert model.logit_scale.item() == pytest.approx(torch.log(torch.tensor(100.0)).item())

    model.freeze(audio=True)
    model.train()
    assert not any(p.requires_grad for p in model.audio_encoder.parameters())
    assert all(p.requires_grad for p in model.audio_projection.parameters())
    assert all(p.requires_grad for p in model.text_encoder.parameters())
    assert not model.audio_encoder.training and model.text_encoder.training


def test_msclap_projection_head_is_layernorm_of_a_gelu_residual_without_biases():
    from clapsearch.models import MSClapProjection

    torch.manual_seed(0)
    head = projection_head("msclap", 6, 4)
    assert isinstance(head, MSClapProjection)
    # the msclap package's state-dict names, bias-free linears
    assert sorted(head.state_dict()) == [
        "layer_norm.bias",
        "layer_norm.weight",
        "linear1.weight",
        "linear2.weight",
    ]
    x = torch.randn(3, 6)
    head.eval()  # dropout off
    e1 = x @ head.linear1.weight.T
    expected = torch.nn.functional.layer_norm(
        e1 + torch.nn.functional.gelu(e1) @ head.linear2.weight.T,
        (4,),
        head.layer_norm.weight,
        head.layer_norm.bias,
    )
    torch.testing.assert_close(head(x), expected)
    head.train()
    assert head.drop.p == 0.5 and not torch.equal(head(x), head(x))  # dropout 0.5 in training


def test_msclap_head_model_round_trips_through_a_checkpoint(tmp_path):
    import dataclasses

    from transformers import AutoTokenizer

    from clapsearch.models import load_checkpoint, save_checkpoint

    model = build_model(dataclasses.replace(tiny_config(), projection="msclap")).eval()
    tok = AutoTokenizer.from_pretrained(model.text_encoder.tokenizer_source())
    save_checkpoint(model, tok, tmp_path / "ck")
    loaded, _, config = load_checkpoint(tmp_path / "ck")
    assert config.projection == "msclap"
    ids = torch.randint(0, 30522, (2, 5))
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.encode_text(ids, torch.ones_like(ids)),
            model.encode_text(ids, torch.ones_like(ids)),
        )
