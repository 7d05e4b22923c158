"""The reference systems' files at their released sizes (slow): msclap's CNN14 and HTSAT-tiny,
LAION's HTSAT-tiny (fusion) and HTSAT-base, with tiny text towers.

The msclap files are read back by msclap's own loader, `CLAPWrapper(model_fp=..., version=...)`
(its yml, its model classes, its `load_state_dict`, its tokenizer setup), offline: its
`from_pretrained("gpt2" / "bert-base-uncased")` finds a one-layer text tower and the stand-in
tokenizers in a temporary hub cache. Only `read_audio` is replaced (torchaudio, see
tests/peers.py): it hands msclap clapsearch's decoded waveform.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clapsearch.features import clap_features, window_starts
from clapsearch.loading import load_embedder
from tests import peers
from tests.conftest import clotho_files, esc50_files

pytestmark = pytest.mark.slow
TEXTS = ["a dog barks", "wow! rain, on a tin roof", "birds chirp in the morning"]


def _waves(rate: int) -> list[np.ndarray]:
    from clapsearch.audio import load_audio

    return [
        load_audio(str(esc50_files(1)[0]), rate)[: 3 * rate],
        load_audio(str(clotho_files()[0]), rate),
    ]


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """Stand-in tokenizers, plus tiny `gpt2` / `bert-base-uncased` models where msclap's
    `AutoModel.from_pretrained` looks for them."""
    import huggingface_hub.constants

    peers.peers()
    cache = tmp_path / "hub"
    peers.install_public_tokenizers(cache)
    for repo, family in (("gpt2", "gpt2"), ("bert-base-uncased", "bert")):
        snapshot = next((cache / f"models--{repo}" / "snapshots").iterdir())
        (snapshot / "config.json").unlink()
        peers.tiny_text_tower(snapshot, family, width=768)  # msclap's yml: 768
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.mark.parametrize("version", ["2022", "2023"])
def test_msclap_released_sizes_through_msclaps_own_loader(version, hub, tmp_path):
    repo = "gpt2" if version == "2023" else "bert-base-uncased"
    text_dir = next((hub / f"models--{repo}" / "snapshots").iterdir())
    torch.manual_seed(3)
    clap = peers.build_msclap(version, text_dir, tiny=False, text_width=768)
    path = tmp_path / f"CLAP_weights_{version}.pth"
    torch.save({"model": clap.state_dict()}, str(path))
    del clap
    theirs = peers.peers().msclap_wrapper.CLAPWrapper(model_fp=str(path), version=version)
    theirs.tokenizer.encode_plus = theirs.tokenizer.__call__  # transformers 5, see peers.py
    ours = load_embedder(str(path), device="cpu", precision="fp32")
    assert ours.dim == 1024
    waves = _waves(44_100)
    window = ours.audio_config.window_samples
    want = []
    with torch.inference_mode():
        for wave in waves:
            pieces = []
            for start in window_starts(len(wave), window):
                piece = torch.from_numpy(wave[start : start + window])
                theirs.read_audio = lambda _path, resample=True, p=piece: (p[None], 44_100)
                batch = theirs.preprocess_audio(["clip"], resample=False)
                pieces.append(F.normalize(theirs._get_audio_embeddings(batch), dim=-1)[0])
            want.append(F.normalize(torch.stack(pieces).mean(0), dim=-1).numpy())
        want_text = F.normalize(theirs.get_text_embeddings(TEXTS), dim=-1).numpy()
    peers.assert_parity(f"msclap-{version} full size audio", ours.embed_audio(waves), want)
    peers.assert_parity(f"msclap-{version} full size text", ours.embed_text(TEXTS), want_text)


@pytest.mark.parametrize("size,fusion", [("tiny", True), ("base", False)])
def test_laion_released_sizes(size, fusion, hub, tmp_path):
    """HTSAT-tiny fusion (630k-*fusion-best.pt) and HTSAT-base (music_*.pt) as LAION's own
    `create_htsat_model` builds them."""
    from transformers import AutoTokenizer

    torch.manual_seed(5)
    cfg = peers.laion_audio_cfg("htsat", size)
    model = peers.build_laion("htsat", fusion, tiny=False, size=size)
    path = tmp_path / f"{size}.pt"
    peers.save_laion(model, path)
    ours = load_embedder(str(path), device="cpu", precision="fp32")
    waves = _waves(48_000)
    with torch.inference_mode():
        if fusion:
            feats, longer = clap_features([torch.from_numpy(w) for w in waves], ours.audio_config)
            samples = [{"mel_fusion": f, "longer": lg[None]} for f, lg in zip(feats, longer)]
            want = np.stack([model.get_audio_embedding([s])[0].numpy() for s in samples])
        else:
            get_audio_features = peers.laion_get_audio_features()
            want = []
            for wave in waves:
                vectors = []
                for start in window_starts(len(wave), 480_000):
                    piece = torch.from_numpy(wave[start : start + 480_000])
                    s = get_audio_features({}, piece, 480_000, "rand_trunc", "repeatpad", cfg)
                    vectors.append(model.get_audio_embedding([s])[0])
                want.append(F.normalize(torch.stack(vectors).mean(0), dim=-1).numpy())
            want = np.stack(want)
        tokenizer = AutoTokenizer.from_pretrained("roberta-base")
        tokens = tokenizer(
            TEXTS, padding="max_length", truncation=True, max_length=77, return_tensors="pt"
        )
        want_text = model.get_text_embedding(dict(tokens)).numpy()
    label = f"laion-htsat-{size}{'-fusion' if fusion else ''} full size"
    peers.assert_parity(f"{label} audio", ours.embed_audio(waves), want)
    peers.assert_parity(f"{label} text", ours.embed_text(TEXTS), want_text)
