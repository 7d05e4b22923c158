"""Training configs are checked before anything runs: one sentence per bad setting, no
traceback; `--resume` refuses changed settings unless `--override`; the logger says when
TensorBoard is off."""

from __future__ import annotations

import json

import pytest

from clapsearch.errors import UsageError
from tests.conftest import run_cli
from tests.trainer_fixtures import finish_tiny_run
from trainer.config import load_train_config

BASE = {
    "data": {"train": [{"kind": "esc50", "root": "../shared/data/esc50-mini"}]},
}


def _load(tmp_path, overrides: list[str], base: dict | None = None):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(base or BASE))
    return load_train_config(path, overrides)


# Each setting the issue found accepted without a word or ending in a traceback, and the
# sentence it now gets.
REFUSED = [
    ("precision=fp16", "precision must be one of 'auto', 'fp32', 'bf16' (not 'fp16')"),
    ("model.text_encoder.pooling=max", "model.text_encoder.pooling must be one of"),
    ("model.audio.truncation=fusoin", "model.audio.truncation must be one of"),
    ("model.audio.padding=zero", "model.audio.padding must be one of"),
    ("best_metric=t2a.R1", "best_metric 't2a.R1' is not a validation metric"),
    ("epochs=0", "epochs must be 1 or more (not 0)"),
    ("batch_size=0", "batch_size must be 1 or more (not 0)"),
    ("grad_accum=0", "grad_accum must be 1 or more (not 0)"),
    ("model.projection=MLP", "model.projection must be one of 'linear', 'mlp', 'msclap'"),
    ("data.train.0.folds=7", "data.train[0].folds must be ESC-50 folds 1 to 5 (not 7)"),
    ("data.train.0.templates=the sound", "template 'the sound' must contain {label}"),
    ("optim.lr=-0.001", "optim.lr must be greater than 0 (not -0.001)"),
    ("optim.lr=fast", "optim.lr must be a number, not 'fast'"),
    ("batch_size=2.5", "batch_size must be an integer, not 2.5"),
    ("tensorboard=maybe", "tensorboard must be true or false"),
    ("model.logit_scale_init=142.857", "is above model.logit_scale_max 100"),
    ("model.audio_encoder.name=cnn15", "model.audio_encoder.name must be one of"),
    ("data.train.0.kind=wav", "data.train[0].kind must be one of"),
    ("data.time_shift=2", "data.time_shift must be between 0 and 1 (not 2.0)"),
    ("model.audio.f_max=30000", "f_min < f_max <= sample_rate / 2"),
    ("optim.schedule=step", "optim.schedule must be one of 'cosine', 'plateau'"),
    ("data.train.3.root=x", "data.train.3 names no item of a list of 1"),
    ("data.train.0.root.x=1", "data.train.0.root is a single value"),
    ("modle.embed_dim=8", "TrainConfig has no setting 'modle'"),
]


@pytest.mark.parametrize("override,sentence", REFUSED)
def test_bad_settings_are_one_sentence(tmp_path, override, sentence):
    with pytest.raises(UsageError) as err:
        _load(tmp_path, [override])
    message = str(err.value)
    assert sentence in message, message
    assert "\n" not in message and message.endswith(".")


def test_zeroshot_needs_a_labelled_validation_source(tmp_path):
    base = {
        "data": {
            "train": [{"kind": "manifest", "root": "m.jsonl"}],
            "val": [{"kind": "manifest", "root": "m.jsonl"}],
        }
    }
    with pytest.raises(UsageError, match="needs a labelled validation source"):
        _load(tmp_path, ["best_metric=zeroshot"], base)
    from trainer.checks import resolved_best_metric

    assert resolved_best_metric(_load(tmp_path, [], base)) == "t2a.R@1"  # auto
    base["data"]["val"] = [{"kind": "esc50", "root": "x"}]
    assert resolved_best_metric(_load(tmp_path, [], base)) == "zeroshot"


def test_scalars_become_one_element_lists_and_logit_clipping_allows_a_high_init(tmp_path):
    cfg = _load(
        tmp_path,
        [
            "data.train.0.folds=4",
            "data.train.0.templates=the sound of {label}",
            "model.logit_cap=logits",
            "model.logit_scale_init=142.857",
        ],
    )
    assert cfg.data.train[0].folds == (4,)
    assert cfg.data.train[0].templates == ("the sound of {label}",)
    assert cfg.model.logit_scale_init == 142.857


def test_cli_prints_one_line_and_exits_2_on_a_bad_setting(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(BASE))
    code, out, err = run_cli(["train", "--config", str(path), "--set", "batch_size=0"], capsys)
    assert code == 2 and out == ""
    assert err.strip() == "error: batch_size must be 1 or more (not 0)."


def test_logger_says_when_tensorboard_is_missing(tmp_path, monkeypatch, capsys):
    import sys

    from trainer.loop import Logger

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    logger = Logger(tmp_path, enabled=True, tensorboard=True)
    assert logger.tb is None
    err = capsys.readouterr().err
    assert "TensorBoard logging is off" in err and "clapsearch[train]" in err
    logger.log(1, {"loss": 1.0})
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["loss"] == 1.0


# --- resume ----------------------------------------------------------------------------------
@pytest.fixture
def finished_run(tmp_path):
    return finish_tiny_run(tmp_path)


def test_resume_refuses_changed_settings_unless_overridden(finished_run):
    from trainer import train
    from trainer.state import read_state

    path, out = finished_run
    with pytest.raises(UsageError) as err:
        train(load_train_config(path, ["optim.lr=0.001", "epochs=2"]), resume=True)
    assert "epochs 1 -> 2" in str(err.value) and "optim.lr 0.003 -> 0.001" in str(err.value)
    assert "--override" in str(err.value)
    # harmless settings may change
    with pytest.raises(UsageError, match="batch_size 4 -> 2"):
        train(load_train_config(path, ["batch_size=2", "log_every=3"]), resume=True)
    # the model never: its weights are in the checkpoint
    with pytest.raises(UsageError, match="cannot change model settings .model.embed_dim 4 -> 8"):
        train(load_train_config(path, ["model.embed_dim=8"]), resume=True, override=True)

    result = train(
        load_train_config(path, ["optim.lr=0.001", "epochs=2"]), resume=True, override=True
    )
    assert result.steps == 2
    group = read_state(out / "last")["optimizer"]["param_groups"][0]
    assert group["initial_lr"] == 0.001  # the new rate took effect


def test_resume_with_a_model_change_never_tracebacks_through_the_cli(finished_run, capsys):
    path, _ = finished_run
    code, _, err = run_cli(
        ["train", "--config", str(path), "--resume", "--set", "model.embed_dim=8"], capsys
    )
    assert code == 2 and err.count("\n") == 1 and "cannot change model settings" in err
