"""Shared fixtures: real audio from ../shared/data and tiny CLAP models built offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "data").resolve()
ESC50_DIR = DATA / "esc50-mini"
CLOTHO_DIR = DATA / "clotho-mini"


def esc50_files(n: int | None = None) -> list[Path]:
    files = sorted((ESC50_DIR / "audio").glob("*.flac"))
    if not files:
        pytest.skip(f"no ESC-50 clips under {ESC50_DIR}")
    return files[:n] if n else files


def clotho_files() -> list[Path]:
    files = sorted((CLOTHO_DIR / "evaluation").glob("*.wav"))
    if not files:
        pytest.skip(f"no Clotho clips under {CLOTHO_DIR}")
    return files


@pytest.fixture(scope="session")
def tiny_clap_dir(tmp_path_factory) -> Path:
    """A random tiny transformers `ClapModel` (rand_trunc front end) saved with its processor."""
    from clapsearch.synthetic_models import build_random_clap

    return build_random_clap(tmp_path_factory.mktemp("tiny_clap"), "tiny", "rand_trunc")


@pytest.fixture(scope="session")
def tiny_clap_fusion_dir(tmp_path_factory) -> Path:
    """Like `tiny_clap_dir` with `enable_fusion=True` and the HTK `fusion` front end."""
    from clapsearch.synthetic_models import build_random_clap

    return build_random_clap(tmp_path_factory.mktemp("tiny_clap_fusion"), "tiny", "fusion")


@pytest.fixture(scope="session")
def tiny_embedder(tiny_clap_dir):
    from clapsearch.loading import load_embedder

    return load_embedder(str(tiny_clap_dir), device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def tiny_native_dir(tmp_path_factory) -> Path:
    """A random tiny clapsearch checkpoint (CNN6 8..64 + 1-layer BERT, dim 16, 5 s window)."""
    import torch
    from transformers import AutoTokenizer

    from clapsearch.models import Provenance, build_model, save_checkpoint
    from clapsearch.models.presets import tiny_config

    torch.manual_seed(0)
    model = build_model(tiny_config()).eval()
    tokenizer = AutoTokenizer.from_pretrained(model.text_encoder.tokenizer_source())
    folder = tmp_path_factory.mktemp("tiny_native") / "tiny-native"
    return save_checkpoint(model, tokenizer, folder, Provenance(data=("random init",)))
