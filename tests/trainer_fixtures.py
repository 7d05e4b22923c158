"""Helpers shared by the trainer tests: a tiny model config and a tiny finished run."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import esc50_files

TINY = {
    "audio": {"window_s": 1.0},
    "audio_encoder": {"name": "cnn6", "channels": [4, 4, 4, 4], "dropout": 0.0},
    "text_encoder": {
        "name": "bert",
        "tokenizer": "minilm",
        "max_length": 8,
        "hf_config": {
            "model_type": "bert",
            "vocab_size": 30522,
            "hidden_size": 8,
            "num_hidden_layers": 1,
            "num_attention_heads": 1,
            "intermediate_size": 8,
        },
    },
    "embed_dim": 4,
}


def tiny_run_config(tmp_path: Path, n_clips: int = 4, **changes) -> Path:
    """A config file for a one-epoch run of the TINY model on `n_clips` ESC-50 clips listed in
    a manifest (captions "x"); `changes` update the top level."""
    files = esc50_files(n_clips)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps({"path": str(f), "caption": "x"}) for f in files))
    config = {
        "model": TINY,
        "data": {"train": [{"kind": "manifest", "root": str(manifest)}], "workers": 0},
        "optim": {"lr": 0.003},
        "output_dir": str(tmp_path / "run"),
        "epochs": 1,
        "batch_size": 4,
        "tensorboard": False,
        "progress": False,
    }
    config.update(changes)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    return path


def finish_tiny_run(tmp_path: Path, **changes) -> tuple[Path, Path]:
    """Train `tiny_run_config` to the end; -> (config path, output folder)."""
    from trainer import train
    from trainer.config import load_train_config

    path = tiny_run_config(tmp_path, **changes)
    train(load_train_config(path))
    return path, tmp_path / "run"
