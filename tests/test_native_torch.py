"""Both towers of a clapsearch checkpoint without transformers (`NativeTorchEmbedder`): the
whole model's audio vectors, a text query's text vectors, the same identity and temperature,
and no transformers import in an indexing process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, esc50_files

from clapsearch.audio import load_audio


def _pair(path: str, dtype=torch.float32):
    from clapsearch.backends.native import NativeEmbedder
    from clapsearch.backends.native_torch import NativeTorchEmbedder

    cpu = torch.device("cpu")
    return NativeTorchEmbedder(path, cpu, dtype), NativeEmbedder(path, cpu, dtype)


@pytest.mark.parametrize("which", ["default", "tiny"])
def test_same_vectors_identity_and_temperature_as_the_whole_model(which, tiny_native_dir):
    from clapsearch.sources.default import packaged_model_dir

    path = packaged_model_dir() if which == "default" else str(tiny_native_dir)
    light, full = _pair(path)
    assert light.model_identity == full.model_identity  # an index accepts either
    assert light.logit_scale == pytest.approx(full.logit_scale, rel=1e-6)
    assert light.sample_rate == full.sample_rate and light.dim == full.dim
    # real clips, one longer than a window (averaged windows), and a batch of several
    waves = [load_audio(str(f), full.sample_rate) for f in esc50_files(3)]
    waves.append(np.concatenate(waves))
    a, b = light.embed_audio(waves), full.embed_audio(waves)
    assert np.min(np.sum(a * b, axis=1)) > 0.99999
    texts = ["a dog barking in the rain", "an old wooden door creaking open", "x"]
    t, u = light.embed_text(texts), full.embed_text(texts)
    assert np.min(np.sum(t * u, axis=1)) > 0.99999
    assert not np.allclose(a[0], a[1], atol=1e-3)  # different clips, different vectors


def test_bfloat16_audio_tower_matches_the_whole_model_in_bfloat16():
    from clapsearch.sources.default import packaged_model_dir

    light, full = _pair(packaged_model_dir(), torch.bfloat16)
    waves = [load_audio(str(f), full.sample_rate) for f in esc50_files(2)]
    a, b = light.embed_audio(waves), full.embed_audio(waves)
    assert np.min(np.sum(a * b, axis=1)) > 0.9999


def test_a_tower_it_cannot_run_falls_back_to_the_whole_model(tmp_path, tiny_native_dir):
    from clapsearch.backends.native import NativeEmbedder
    from clapsearch.backends.native_text import UnsupportedTextTower
    from clapsearch.backends.native_torch import NativeTorchEmbedder
    from clapsearch.sources import load_embedder

    htsat = tmp_path / "htsat-like"
    shutil.copytree(tiny_native_dir, htsat)
    cfg_file = htsat / "clapsearch.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["model"]["audio_encoder"]["name"] = "htsat"
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedTextTower):
        NativeTorchEmbedder(str(htsat), torch.device("cpu"), torch.float32)
    no_json = tmp_path / "no-tokenizer-json"  # a text side it cannot run: the whole model
    shutil.copytree(tiny_native_dir, no_json)
    (no_json / "tokenizer" / "tokenizer.json").unlink()
    got = load_embedder(str(no_json), device="cpu", precision="fp32")
    assert type(got) is NativeEmbedder


def test_indexing_with_the_built_in_model_never_imports_transformers():
    code = (
        "import sys, numpy as np\n"
        "from clapsearch.sources import load_embedder\n"
        "e = load_embedder('default', device='cpu')\n"
        "e.embed_audio([np.zeros(e.sample_rate * 6, np.float32)])\n"
        "e.embed_text(['a dog barking'])\n"
        "print(type(e).__name__, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["NativeTorchEmbedder", "False"], out.stderr
