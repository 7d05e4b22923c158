"""Training loop: exact resume on CPU, and `clapsearch train` end to end with a tiny model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from clapsearch.config import to_dict
from tests.conftest import esc50_files
from trainer.config import TrainConfig, build
from trainer.state import read_state

TINY_MODEL = {
    "audio": {"window_s": 1.0},
    "audio_encoder": {"name": "cnn6", "channels": [4, 8, 8, 16], "dropout": 0.2},
    "text_encoder": {
        "name": "bert",
        "tokenizer": "minilm",
        "max_length": 16,
        "hf_config": {
            "model_type": "bert",
            "vocab_size": 30522,
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
        },
    },
    "embed_dim": 8,
}


def _manifest(path, files, split_of):
    rows = [
        {"path": str(f), "caption": f"sound {f.stem.split('-')[-1]}", "split": split_of(i)}
        for i, f in enumerate(files)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


def _config(tmp_path, out: str, **extra) -> TrainConfig:
    manifest = _manifest(
        tmp_path / "m.jsonl", esc50_files(12), lambda i: "val" if i >= 8 else "train"
    )
    data = {
        "model": TINY_MODEL,
        "data": {
            "train": [{"kind": "manifest", "root": manifest, "split": "train"}],
            "val": [],
            "gain_db": 6,
            "time_shift": 0.2,
            "mix_prob": 0.5,
            "workers": 0,
            "cache_audio": True,
        },
        "optim": {"lr": 3e-3, "warmup_steps": 1},
        "output_dir": str(tmp_path / out),
        "epochs": 2,
        "batch_size": 4,
        "save_every": 3,
        "tensorboard": False,
        "progress": False,
        "log_every": 1,
    }
    data.update(extra)
    return build(TrainConfig, data)


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_the_uninterrupted_one(tmp_path):
    from trainer.loop import train

    full = train(_config(tmp_path, "full"))
    assert full.steps == 4 and full.epochs == 2

    def stop_at_3(progress):
        if progress.step == 3:  # mid-epoch 2, right after `last/` was written
            raise Interrupt

    with pytest.raises(Interrupt):
        train(_config(tmp_path, "cut"), on_step=stop_at_3)
    resumed = train(_config(tmp_path, "cut"), resume=True)
    assert resumed.steps == 4 and resumed.samples_seen == full.samples_seen

    a = load_file(str(tmp_path / "full" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # and training did change the weights
    state = read_state(tmp_path / "full" / "last")
    assert state["progress"]["step"] == 4 and state["scheduler"]["last_epoch"] == 4


@pytest.mark.slow
def test_train_cli_writes_best_and_last_checkpoints_usable_as_models(tmp_path):
    from typer.testing import CliRunner

    from clapsearch.cli import app
    from clapsearch.models import read_checkpoint_meta
    from clapsearch.sources import load_embedder

    manifest = _manifest(
        tmp_path / "m.jsonl", esc50_files(12), lambda i: "val" if i >= 8 else "train"
    )
    cfg = tmp_path / "c.json"
    cfg.write_text(
        json.dumps(
            {
                "model": TINY_MODEL,
                "data": {
                    "train": [{"kind": "manifest", "root": manifest, "split": "train"}],
                    "val": [{"kind": "manifest", "root": manifest, "split": "val"}],
                    "workers": 1,
                },
                "output_dir": str(tmp_path / "run"),
                "epochs": 1,
                "batch_size": 2,
                "grad_accum": 2,
                "progress": False,
                "best_metric": "t2a.R@1",
            }
        )
    )
    result = CliRunner().invoke(
        app, ["train", "--config", str(cfg), "--set", "optim.lr=1e-3", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["samples_seen"] == 8  # 4 batches, 2 per step
    for name in ("last", "best"):
        emb = load_embedder(str(tmp_path / "run" / name), device="cpu", precision="fp32")
        assert emb.embed_text(["a dog"]).shape == (1, 8)
    _, prov = read_checkpoint_meta(tmp_path / "run" / "best")
    assert prov.steps == 2 and "manifest" in prov.data[0]
    assert set(prov.metrics["manifest/m.jsonl:val"]) >= {"t2a.R@1", "a2t.R@5"}
    assert prov.train_config["optim"]["lr"] == 1e-3
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert any("val" in r for r in records) and any("loss" in r for r in records)
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))


def test_train_cli_rejects_a_bad_config_in_one_sentence(tmp_path):
    from typer.testing import CliRunner

    from clapsearch.cli import app
    from clapsearch.errors import UsageError

    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 1\n")
    result = CliRunner().invoke(app, ["train", "--config", str(cfg)])
    assert isinstance(result.exception, UsageError)
    assert "lists no data.train sources" in str(result.exception)


@pytest.mark.slow
def test_torchrun_two_processes_train_and_write_one_checkpoint(tmp_path):
    """DDP over gloo on CPU: both ranks step together (the global batch is 2 x 2 clips)."""
    import subprocess
    import sys
    from pathlib import Path

    cfg = _config(tmp_path, "ddp", epochs=1, batch_size=2, save_every=0, max_steps=2)
    path = tmp_path / "ddp.json"
    path.write_text(json.dumps(to_dict(cfg)))
    torchrun = Path(sys.executable).parent / "torchrun"
    out = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "trainer",
            "--config",
            str(path),
            "--set",
            "threads=1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])  # printed by rank 0 only
    assert summary["steps"] == 2 and summary["samples_seen"] == 8
    state = read_state(tmp_path / "ddp" / "last")
    assert state["progress"]["step"] == 2


def test_text_top_layers_trains_only_the_top_of_a_frozen_text_tower():
    from clapsearch.models import build_model
    from clapsearch.models.config import ModelConfig
    from trainer.loop import unfreeze_top_layers

    model_cfg = dict(TINY_MODEL)
    model_cfg["text_encoder"] = dict(TINY_MODEL["text_encoder"])
    model_cfg["text_encoder"]["hf_config"] = {
        **TINY_MODEL["text_encoder"]["hf_config"],
        "num_hidden_layers": 2,
    }
    model = build_model(build(ModelConfig, model_cfg))
    model.freeze(text=True)
    unfreeze_top_layers(model.text_encoder, 1)
    trainable = {n for n, p in model.text_encoder.named_parameters() if p.requires_grad}
    assert trainable and all(".layer.1." in n for n in trainable)
    assert not model.text_encoder.training  # still eval mode: no dropout
    with pytest.raises(Exception, match="no 3 layers"):
        unfreeze_top_layers(model.text_encoder, 3)
