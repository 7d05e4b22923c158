"""LAION-CLAP `.pt` files load directly and embed as laion_clap's own code does.

Random-weight models are built with laion_clap's own `CLAP` class (tests/peers.py says what is
substituted and why), saved as its training saves them (`{"epoch", "name", "state_dict":
{"module.*"}}`), loaded by `clapsearch` through `--model FILE` and compared with laion_clap's
`get_audio_embedding` / `get_text_embedding` on the same waveform (our decoder's output:
LAION's int16 round trip and librosa's resampling are the pipeline noise docs/checkpoints.md
lists) and the same token ids (its `CLAP_Module.tokenizer` settings: 77 tokens).

Non-fusion models get the waveform padded by laion_clap's own `get_audio_features`; their mel
front end runs inside LAION's model (torchlibrosa). Fusion models: LAION computes the fusion
input with torchaudio (not installable here) and random crops, so the reference gets
clapsearch's fusion input (tests/test_features.py ties that front end to transformers'
`ClapFeatureExtractor`, LAION's port) and only the model is compared. Clips longer than the
window, non-fusion: LAION takes one random crop; the reference is each of clapsearch's windows
through LAION, averaged as clapsearch averages.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clapsearch.errors import ModelLoadError
from clapsearch.features import clap_features, window_starts
from clapsearch.loading import load_embedder
from tests import peers
from tests.conftest import clotho_files, esc50_files

TEXTS = [
    "a dog",
    "Rain, falling on a tin roof -- loud; (very) loud!",
    "wow! a bell?! rings.",
    " ".join(f"sound {i}, with birds, wind and a distant siren" for i in range(20)),  # > 77
]


def _setup(name, peer_files):
    from transformers import AutoTokenizer

    model, path = peer_files(name)
    ours = load_embedder(str(path), device="cpu", precision="fp32")
    return model, ours, path, AutoTokenizer.from_pretrained("roberta-base")


@pytest.fixture(scope="module")
def htsat(peer_files, hub):
    return _setup("laion-htsat", peer_files)


@pytest.fixture(scope="module")
def htsat_fusion(peer_files, hub):
    return _setup("laion-htsat-fusion", peer_files)


@pytest.fixture(scope="module")
def pann(peer_files, hub):
    return _setup("laion-pann", peer_files)


@pytest.fixture(scope="module")
def waves():
    """48 kHz mono: a 5 s ESC-50 clip, a 1.3 s cut of it and a 15-30 s Clotho clip."""
    from clapsearch.audio import load_audio

    esc = load_audio(str(esc50_files(1)[0]), 48_000)
    return [esc, esc[: int(1.3 * 48_000)], load_audio(str(clotho_files()[0]), 48_000)]


def _laion_audio(model, wave: np.ndarray) -> np.ndarray:
    """LAION's embedding of a clip from its own `get_audio_features` (repeatpad) and model,
    window by window when the clip is longer than the window (see module doc)."""
    get_audio_features = peers.laion_get_audio_features()
    cfg = peers.laion_audio_cfg("htsat")
    vectors = []
    for start in window_starts(len(wave), 480_000):
        piece = torch.from_numpy(wave[start : start + 480_000])
        sample = get_audio_features({}, piece, 480_000, "rand_trunc", "repeatpad", cfg)
        vectors.append(model.get_audio_embedding([sample])[0])
    return F.normalize(torch.stack(vectors).mean(0), dim=-1).numpy()


@pytest.mark.parametrize("fixture", ["htsat", "pann"])
def test_audio_matches_laion(fixture, request, waves):
    model, ours, _, _ = request.getfixturevalue(fixture)
    assert ours.sample_rate == 48_000 and ours.audio_config.truncation == "rand_trunc"
    got = ours.embed_audio(waves)
    with torch.inference_mode():
        want = np.stack([_laion_audio(model, w) for w in waves])
    peers.assert_parity(f"laion-{fixture} audio", got, want)


def test_fusion_audio_matches_laion_on_the_same_fusion_input(htsat_fusion, waves):
    model, ours, _, _ = htsat_fusion
    assert ours.audio_config.truncation == "fusion"
    got = ours.embed_audio(waves)
    features, longer = clap_features([torch.from_numpy(w) for w in waves], ours.audio_config)
    assert longer.tolist() == [False, False, True]
    samples = [{"mel_fusion": f, "longer": lg[None]} for f, lg in zip(features, longer)]
    with torch.inference_mode():
        want = np.stack([model.get_audio_embedding([s])[0].numpy() for s in samples])
    peers.assert_parity("laion-htsat-fusion audio", got, want)


@pytest.mark.parametrize("fixture", ["htsat", "htsat_fusion", "pann"])
def test_text_matches_laion(fixture, request):
    model, ours, _, tokenizer = request.getfixturevalue(fixture)
    # laion_clap's CLAP_Module.tokenizer: padding to 77, truncation at 77.
    tokens = tokenizer(
        TEXTS, padding="max_length", truncation=True, max_length=77, return_tensors="pt"
    )
    assert ours.count_tokens(TEXTS[-1]) > 77
    with torch.inference_mode():
        want = model.get_text_embedding(dict(tokens)).numpy()
    peers.assert_parity(f"laion-{fixture} text", ours.embed_text(TEXTS), want)


def test_identity_names_the_tower_and_hashes_the_content(htsat, htsat_fusion, pann):
    assert htsat[1].identity.startswith("laion:htsat-w16@")  # the tests' 16-wide HTSAT
    assert htsat_fusion[1].identity.startswith("laion:htsat-w16-fusion@")
    assert pann[1].identity.startswith("laion:cnn14@")


def test_file_without_module_prefix_loads_too(htsat, tmp_path):
    """LAION's loader strips DDP's `module.` when present; a file saved without it is the
    same model."""
    model, ours, _, _ = htsat
    path = tmp_path / "plain.pt"
    torch.save({"state_dict": model.state_dict()}, str(path))
    again = load_embedder(str(path), device="cpu", precision="fp32")
    np.testing.assert_allclose(again.embed_text(TEXTS[:2]), ours.embed_text(TEXTS[:2]), atol=1e-6)


def test_fusion_pann_is_refused_in_one_sentence(tmp_path, hub):
    model = peers.build_laion("pann", fusion=True)
    path = tmp_path / "pann-fusion.pt"
    peers.save_laion(model, path)
    with pytest.raises(ModelLoadError, match="fusion PANN audio tower"):
        load_embedder(str(path), device="cpu", precision="fp32")


def test_pickled_code_in_a_file_is_never_run(htsat, tmp_path):
    """A `.pt` whose pickle names a callable (here `os.system`) loads its tensors; the
    callable becomes inert data instead of running."""
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    state = torch.load(str(htsat[2]), weights_only=True)
    state["evil"] = Evil()
    path = tmp_path / "evil.pt"
    torch.save(state, str(path), pickle_protocol=pickle.HIGHEST_PROTOCOL)
    ours = load_embedder(str(path), device="cpu", precision="fp32")
    assert not (tmp_path / "ran").exists()
    assert ours.embed_text(["a dog"]).shape == (1, 32)


def test_legacy_torch_save_format_is_recognised_too(htsat, tmp_path):
    """Files written before torch 1.6 (`_use_new_zipfile_serialization=False`) are pickles,
    not zip archives: recognised from the key strings at their head."""
    from clapsearch.sources import find_source

    model, ours, _, _ = htsat
    path = tmp_path / "legacy.pt"
    state = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state}, str(path), _use_new_zipfile_serialization=False)
    assert find_source(str(path)).kind == "laion"
    again = load_embedder(str(path), device="cpu", precision="fp32")
    assert again.identity.split("@")[0] == ours.identity.split("@")[0]
    np.testing.assert_allclose(again.embed_text(TEXTS[:2]), ours.embed_text(TEXTS[:2]), atol=1e-6)
