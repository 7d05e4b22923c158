"""`--resume` continues the run in `OUT/last` with the settings it was started with.

The run's config is saved in `OUT/last/clapsearch.json` (provenance.train_config). A resume
compares it with the config given now:

- settings about *how* the run is watched or where it runs (`HARMLESS`: output, logging,
  threads, workers, device, checkpoint and eval cadence) may change freely (not the worker
  count of a streamed run: its order depends on it, `trainer.stream`);
- model settings never change (the saved weights are of that model); paths the initial
  weights were read from (`pretrained`, `tokenizer`) may, since a resume reads the weights
  from the checkpoint;
- anything else (learning rates, batch size, data, epochs, augmentation, process count) is
  refused, with every difference in the sentence, unless `--override` is given. With
  `--override` the new settings take effect from the resumed step: the optimizer's
  hyper-parameters are the new ones (the learning rate keeps the schedule's current
  multiplier), and the position inside the epoch is converted to the new global batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clapsearch.config import to_dict
from clapsearch.errors import UsageError
from trainer.config import TrainConfig, build

HARMLESS = (
    "output_dir",
    "progress",
    "log_every",
    "threads",
    "tensorboard",
    "device",
    "save_every",
    "eval_every",
    "data.workers",
)
# Optimizer hyper-parameters a param group holds and `--override` replaces.
HYPER = ("lr", "initial_lr", "weight_decay", "betas", "eps")


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: list(d) if isinstance(d, tuple) else d}


def _normalised(saved: dict) -> dict:
    """The saved config with today's defaults filled in (a run saved before a setting
    existed ran with its default)."""
    try:
        return to_dict(build(TrainConfig, saved))
    except UsageError:
        return saved


def _path_setting(key: str) -> bool:
    return key.startswith("model.") and key.rsplit(".", 1)[-1] in ("pretrained", "tokenizer")


def config_changes(saved: dict, now: TrainConfig) -> list[tuple[str, Any, Any]]:
    """(key, saved value, new value) for every setting that differs, HARMLESS ones and
    initial-weight paths left out."""
    from trainer.checks import streams

    old, new = _flat(_normalised(saved)), _flat(to_dict(now))
    keys = sorted(set(old) | set(new))
    harmless = set(HARMLESS)
    if any(streams(s) for s in now.data.train):
        harmless.discard("data.workers")  # streamed order depends on the worker count
    return [
        (k, old.get(k), new.get(k))
        for k in keys
        if old.get(k) != new.get(k) and k not in harmless and not _path_setting(k)
    ]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _listing(changes: list[tuple[str, Any, Any]]) -> str:
    return ", ".join(f"{k} {_show(a)} -> {_show(b)}" for k, a, b in changes)


def check_resume(folder: Path, cfg: TrainConfig, override: bool) -> list[tuple[str, Any, Any]]:
    """Refuse a resume whose settings differ from the saved run's (see module doc); -> the
    changes accepted (only with `override`)."""
    from clapsearch.errors import ModelLoadError
    from clapsearch.models import read_checkpoint_meta

    try:
        _, provenance = read_checkpoint_meta(folder)
    except ModelLoadError:
        raise UsageError(f"--resume: no resumable checkpoint in {folder}.") from None
    changes = config_changes(provenance.train_config, cfg)
    model = [c for c in changes if c[0].startswith("model.")]
    if model:
        raise UsageError(
            f"--resume cannot change model settings ({_listing(model)}): the weights in "
            f"{folder} are of the saved model; start a new output_dir."
        )
    if changes and not override:
        raise UsageError(
            f"--resume: the settings differ from the run saved in {folder} "
            f"({_listing(changes)}); pass --override to continue with the new settings, or "
            f"start a new output_dir."
        )
    return changes


def check_global_batch(saved: int, now: int, override: bool) -> None:
    """The micro-batch over all processes (batch_size x processes) must match, or be
    overridden."""
    if saved and saved != now and not override:
        raise UsageError(
            f"--resume: the saved run used {saved} clips per micro-batch over all processes, "
            f"this one {now} (another batch_size or process count); pass --override to "
            f"continue with the new global batch."
        )


def fresh_hyperparameters(optimizer) -> list[dict]:
    """The new config's hyper-parameters, read before the saved state overwrites them."""
    return [{k: g[k] for k in HYPER if k in g} for g in optimizer.param_groups]


def apply_hyperparameters(optimizer, scheduler, fresh: list[dict]) -> None:
    """Put the new config's hyper-parameters back after loading the saved state. The
    learning rate keeps the saved schedule's position: new lr = new initial lr x (saved lr /
    saved initial lr)."""
    if len(fresh) != len(optimizer.param_groups):
        raise UsageError(
            "--override cannot change which parameters train (freeze_audio, freeze_text or "
            "the per-tower rates) in a resumed run; start a new output_dir."
        )
    for group, new in zip(optimizer.param_groups, fresh):
        base = group.get("initial_lr", group["lr"]) or 1.0
        multiplier = group["lr"] / base
        for key, value in new.items():
            group[key] = value
        group["lr"] = new.get("initial_lr", new["lr"]) * multiplier
    if hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
    if hasattr(scheduler, "_last_lr"):
        scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]


__all__ = [
    "HARMLESS",
    "apply_hyperparameters",
    "check_global_batch",
    "check_resume",
    "config_changes",
    "fresh_hyperparameters",
]
