"""`clapsearch convert`: the reference systems' files become self-contained folders that embed
exactly as the files do, with no tokenizer installed and (for transformers folders) through
transformers' own `ClapModel` pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from clapsearch.loading import load_embedder
from tests.conftest import clotho_files, esc50_files, run_cli

TEXTS = ["a dog barks", "wow! rain, on a tin roof", "birds chirp in the morning"]


@pytest.fixture
def no_tokenizers(tmp_path, monkeypatch):
    """An empty hub cache: a converted folder must carry its own tokenizer."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))


def _waves(rate: int) -> list[np.ndarray]:
    from clapsearch.audio import load_audio

    short = load_audio(str(esc50_files(1)[0]), rate)
    return [short[: 2 * rate], short, load_audio(str(clotho_files()[0]), rate)]


def _same(a, b) -> None:
    """Two embedders of one model: every audio and text vector equal (float32 noise)."""
    rate = a.sample_rate
    np.testing.assert_allclose(a.embed_audio(_waves(rate)), b.embed_audio(_waves(rate)), atol=2e-5)
    np.testing.assert_allclose(a.embed_text(TEXTS), b.embed_text(TEXTS), atol=2e-5)


@pytest.mark.parametrize("name", ["msclap-2022", "msclap-2023", "laion-htsat-fusion"])
def test_clapsearch_format_embeds_as_the_file(name, peer_files, hub, tmp_path, capsys):
    _, path = peer_files(name)
    original = load_embedder(str(path), device="cpu", precision="fp32")
    dest = tmp_path / "converted"
    code, out, err = run_cli(["convert", str(path), str(dest), "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["format"] == "clapsearch"
    assert report["kind"] == original.identity.split("@")[0]
    assert {p.name for p in dest.iterdir()} >= {
        "clapsearch.json",
        "model.safetensors",
        "tokenizer",
        "text_config",
    }
    meta = json.loads((dest / "clapsearch.json").read_text())
    assert meta["model"]["audio"] == json.loads(json.dumps(original.audio_config.__dict__))
    with pytest.MonkeyPatch.context() as patch:
        import huggingface_hub.constants

        patch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
        converted = load_embedder(str(dest), device="cpu", precision="fp32")
        # text queries load the text side alone (torch-only BERT for the 2022 tower)
        text_only = load_embedder(str(dest), device="cpu", precision="fp32", parts={"text"})
    _same(original, converted)
    assert text_only.identity == converted.identity
    np.testing.assert_allclose(text_only.embed_text(TEXTS), original.embed_text(TEXTS), atol=2e-5)


def test_laion_to_transformers_matches_laion_through_transformers_own_pipeline(
    peer_files, hub, tmp_path, no_tokenizers
):
    """The transformers folder: `ClapModel.from_pretrained` + `ClapProcessor` (transformers'
    code, no clapsearch) give LAION's own text embeddings, and clapsearch loads it with the
    same vectors as the `.pt`."""
    from transformers import ClapModel, ClapProcessor

    model, path = peer_files("laion-htsat")
    with pytest.MonkeyPatch.context() as patch:
        import huggingface_hub.constants

        patch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
        original = load_embedder(str(path), device="cpu", precision="fp32")
        tokenizer = original.tokenizer
        from clapsearch.convert import convert

        convert(str(path), tmp_path / "hf", "transformers")
    hf = ClapModel.from_pretrained(str(tmp_path / "hf")).eval()
    processor = ClapProcessor.from_pretrained(str(tmp_path / "hf"))
    assert processor.tokenizer.model_max_length == 77
    tokens = tokenizer(
        TEXTS, padding="max_length", truncation=True, max_length=77, return_tensors="pt"
    )
    with torch.inference_mode():
        want = model.get_text_embedding(dict(tokens)).numpy()  # laion_clap's own
        got = hf.get_text_features(**processor(text=TEXTS, padding=True, return_tensors="pt"))
    got = torch.nn.functional.normalize(got.pooler_output, dim=-1).numpy()
    np.testing.assert_allclose(got, want, atol=2e-5)
    _same(original, load_embedder(str(tmp_path / "hf"), device="cpu", precision="fp32"))


def test_transformers_folder_without_tokenizer_is_repaired(tmp_path, hub):
    """The bug of issue 13's first line, fixed at the source: converting the folder writes the
    roberta-base tokenizer it was missing (found offline) into the new folder."""
    import shutil

    from clapsearch.convert import convert
    from clapsearch.synthetic_models import build_random_clap

    full = build_random_clap(tmp_path / "full", "tiny", vocab_size=50265)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "model.safetensors", "preprocessor_config.json"):
        shutil.copy(full / name, broken / name)
    convert(str(broken), tmp_path / "fixed", "transformers")
    assert (tmp_path / "fixed" / "tokenizer.json").is_file()
    _same(
        load_embedder(str(full), device="cpu", precision="fp32"),
        load_embedder(str(tmp_path / "fixed"), device="cpu", precision="fp32"),
    )


@pytest.mark.parametrize("name", ["msclap-2023", "laion-pann"])
def test_transformers_format_refused_where_transformers_has_no_architecture(
    name, peer_files, hub, tmp_path, capsys
):
    _, path = peer_files(name)
    code, out, err = run_cli(
        ["convert", str(path), str(tmp_path / "x"), "--format", "transformers"], capsys
    )
    assert code == 2 and out == ""
    assert "transformers has no architecture" in err and "--format clapsearch" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_existing_destination_is_never_overwritten(peer_files, hub, tmp_path, capsys):
    _, path = peer_files("msclap-2022")
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    code, _, err = run_cli(["convert", str(path), str(dest)], capsys)
    assert code == 2 and "already exists" in err
    assert (dest / "keep.txt").read_text() == "mine"
