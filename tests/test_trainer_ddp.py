"""DDP with BatchNorm in training mode: 2 processes x 16 clips train like 1 process x 32
(gloo on CPU), because BatchNorm statistics are synchronised and the gradient is that of the
global loss."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import esc50_files
from tests.trainer_fixtures import TINY

# BatchNorm in the CNN trains; nothing random differs between the runs (no dropout anywhere,
# no augmentation), so the only difference left is where the batch statistics come from.
MODEL = {
    **TINY,
    "audio_encoder": {"name": "cnn6", "channels": [4, 8, 8, 8], "dropout": 0.0},
    "text_encoder": {
        **TINY["text_encoder"],
        "hf_config": {
            **TINY["text_encoder"]["hf_config"],
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
        },
    },
}


def _config(tmp_path, out: str, batch_size: int, sync: bool = True):
    from trainer.config import TrainConfig, build

    manifest = tmp_path / "m.jsonl"
    if not manifest.exists():
        rows = [{"path": str(f), "caption": f"sound {f.stem}"} for f in esc50_files(32)]
        manifest.write_text("\n".join(json.dumps(r) for r in rows))
    return build(
        TrainConfig,
        {
            "model": MODEL,
            "data": {
                "train": [{"kind": "manifest", "root": str(manifest)}],
                "workers": 0,
                "cache_audio": True,
            },
            # clipping active (the gradient's scale matters); no warmup or decay to zero
            "optim": {"lr": 1e-3, "grad_clip": 0.5, "min_lr_ratio": 1.0},
            "output_dir": str(tmp_path / out),
            "epochs": 2,  # one step an epoch
            "batch_size": batch_size,
            "log_every": 1,
            "tensorboard": False,
            "progress": False,
            "threads": 1,
            "sync_batchnorm": sync,
        },
    )


def _rank(rank: int, world: int, ports: list[int], tmp_path) -> None:
    """One rank: the synchronised run, then the unsynchronised one (one spawn for both)."""
    from trainer.loop import train

    for port, (out, sync) in zip(ports, (("two", True), ("unsynced", False))):
        os.environ.update(
            RANK=str(rank),
            WORLD_SIZE=str(world),
            LOCAL_RANK=str(rank),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        train(_config(tmp_path, out, 32 // world, sync))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log(tmp_path, out: str) -> list[dict]:
    lines = (tmp_path / out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "loss" in r]


@pytest.mark.slow
def test_two_processes_of_16_equal_one_process_of_32_with_batchnorm_training(tmp_path):
    import torch.multiprocessing as mp

    from trainer.loop import train

    train(_config(tmp_path, "one", 32))
    mp.spawn(_rank, args=(2, [_free_port(), _free_port()], tmp_path), nprocs=2)

    one, two, unsynced = (_log(tmp_path, o) for o in ("one", "two", "unsynced"))
    for a, b in zip(one, two):  # steps 1 and 2: loss and the gradient norm before clipping
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    # per-rank statistics (the first release) differ at the first step already
    assert abs(one[0]["loss"] - unsynced[0]["loss"]) > 1e-3

    w1 = load_file(str(tmp_path / "one" / "last" / "model.safetensors"))
    w2 = load_file(str(tmp_path / "two" / "last" / "model.safetensors"))
    assert w1.keys() == w2.keys()
    for key in w1:
        if key.endswith("num_batches_tracked"):
            assert torch.equal(w1[key], w2[key]), key
        else:
            torch.testing.assert_close(w1[key], w2[key], atol=2e-5, rtol=1e-4, msg=key)
