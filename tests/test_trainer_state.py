"""Trainer state is stored without pickle: it round-trips exactly, and a crafted run folder
cannot run code when resumed."""

from __future__ import annotations

import json
import pickle
import random

import numpy as np
import pytest
import torch

from clapsearch.errors import UsageError
from tests.conftest import run_cli
from tests.trainer_fixtures import finish_tiny_run
from trainer.state import (
    STATE_JSON,
    STATE_TENSORS,
    read_state,
    rng_state,
    set_rng_state,
    write_state,
)


def _optim_state():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=2)
    plateau.step(1.0)
    return opt.state_dict(), plateau.state_dict()


def test_state_round_trips_optimizer_scheduler_rng_and_infinities(tmp_path):
    optimizer, scheduler = _optim_state()
    state = {
        "optimizer": optimizer,
        "scheduler": scheduler,
        "progress": {"best_score": float("-inf"), "step": 3},
        "rng": rng_state(),
    }
    write_state(tmp_path, state)
    json.loads((tmp_path / STATE_JSON).read_text())  # plain, standard JSON (no NaN/Infinity)
    back = read_state(tmp_path)
    assert back["progress"] == {"best_score": float("-inf"), "step": 3}
    assert back["scheduler"]["mode_worse"] == float("inf")
    assert back["optimizer"]["param_groups"] == optimizer["param_groups"]
    for key, value in optimizer["state"].items():  # int keys, tensors
        for name, tensor in value.items():
            assert torch.equal(back["optimizer"]["state"][key][name], tensor)
    # the restored RNGs draw exactly what the saved ones would
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(back["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # creating the file proves code ran


def test_a_crafted_run_folder_cannot_run_code_on_resume(tmp_path, capsys):
    path, out = finish_tiny_run(tmp_path)
    last = out / "last"
    marker = tmp_path / "pwned"
    # an attacker's folder: the old pickle format, with a payload
    (last / STATE_JSON).unlink()
    (last / STATE_TENSORS).unlink()
    with open(last / "trainer_state.pt", "wb") as f:
        pickle.dump({"optimizer": _Exploit(marker)}, f)
    code, _, err = run_cli(["train", "--config", str(path), "--resume"], capsys)
    assert code == 2 and "is not loaded (a pickle can run code" in err
    assert not marker.exists()

    # a JSON skeleton naming things that are not data is refused, not interpreted
    (last / STATE_JSON).write_text(
        json.dumps(
            {
                "format": "clapsearch-trainer-state",
                "format_version": 2,
                "rng": {"__class__": "os.system"},
            }
        )
    )
    (last / STATE_TENSORS).write_bytes(b"")
    with pytest.raises(UsageError, match="damaged or not clapsearch's"):
        read_state(last)


def test_resume_never_unpickles(tmp_path, monkeypatch):
    """The whole resume path runs with pickle and torch.load disabled."""
    from trainer import train
    from trainer.config import load_train_config

    path, out = finish_tiny_run(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling during resume")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    result = train(load_train_config(path, ["epochs=2"]), resume=True, override=True)
    assert result.steps == 2
