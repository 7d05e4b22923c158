"""`TrainConfig`: everything one training run needs, read from YAML/JSON plus `--set` overrides.

    model:  a clapsearch `ModelConfig` (front end, towers, heads)
    data:   training and validation sources, clip length, augmentation, loader workers
    optim:  AdamW, warmup + cosine schedule, clipping
    the rest: batch size, epochs, accumulation, precision, checkpoint/eval cadence, output dir

`--set a.b.c=VALUE` overrides one key; VALUE is parsed as YAML (`3e-4`, `[8, 16]`, `true`),
and integer parts index lists (`data.train.0.part=test`).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from clapsearch.errors import UsageError
from clapsearch.models.config import ModelConfig
from trainer.augment import AugmentConfig

DEFAULT_TEMPLATES = ("the sound of {label}", "{label}", "a recording of {label}")


@dataclass(frozen=True)
class DataSource:
    """One dataset. `kind`: `esc50`, `clotho`, `audiocaps` or `manifest` (CSV/JSONL).

    `root`: dataset folder (manifest: the file). `split`: Clotho/AudioCaps split name, or for
    manifests the value of their `split` column to keep (empty: all rows).
    ESC-50: `folds` keeps only those official folds; `part` (`train`, `val`, `test`, `all`)
    applies the recording-level hold-out of `clapsearch.datasets.esc50.esc50_part` (for collections
    like esc50-mini whose clips sit in one fold); `templates` turn a label into captions
    (`clapsearch.prompts` syntax: "the sound of {label}").
    """

    kind: str = "manifest"
    root: str = ""
    split: str = ""
    folds: tuple[int, ...] = ()
    part: Literal["all", "train", "val", "test"] = "all"
    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    audio_pattern: str = "Y{youtube_id}.wav"


@dataclass(frozen=True)
class DataConfig:
    """`clip_s`: training clip length (0 = the model's window): longer clips are cropped at a
    random offset, shorter ones repeat-padded (training only; validation uses the inference
    path). Augmentation: random gain in +-`gain_db`, circular time shift up to `time_shift`
    of the clip, and with probability `mix_prob` a second clip mixed in, captions joined;
    `augment`: reverb, background noise, band limit, codec and bit-depth degradations
    (`trainer.augment.AugmentConfig`, all off by default)."""

    train: tuple[DataSource, ...] = ()
    val: tuple[DataSource, ...] = ()
    clip_s: float = 0.0
    gain_db: float = 0.0
    time_shift: float = 0.0
    mix_prob: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    workers: int = 2
    cache_audio: bool = False


@dataclass(frozen=True)
class OptimConfig:
    """`audio_lr` / `text_lr` override `lr` for that tower's encoder (0 = `lr`): a
    pretrained text tower usually wants a smaller rate than a freshly initialised CNN."""

    lr: float = 1e-4
    audio_lr: float = 0.0
    text_lr: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-8
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """`batch_size` is per process; the contrastive batch is `batch_size * world_size` (the
    loss gathers across ranks); one optimizer step sees `grad_accum` micro-batches, each its
    own contrastive problem. `max_steps` (optimizer steps, 0 = `epochs` worth) ends training
    early. `save_every`: steps between resumable checkpoints (0 = only at epoch ends).
    `best_metric`: validation key that picks `best/` (`zeroshot`, `t2a.R@1`, ...)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    output_dir: str = "runs/clap"
    epochs: int = 10
    max_steps: int = 0
    batch_size: int = 32
    grad_accum: int = 1
    seed: int = 0
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    freeze_audio: bool = False
    freeze_text: bool = False
    text_top_layers: int = 0  # with freeze_text: the top N text layers still train
    save_every: int = 0
    eval_every: int = 1
    best_metric: str = "zeroshot"
    log_every: int = 10
    tensorboard: bool = True
    progress: bool = True
    threads: int = 0


def build(cls: type, data: Any) -> Any:
    """Plain data -> (nested) frozen dataclass, including tuples of dataclasses; unknown keys
    are one clear error naming the key."""
    if not dataclasses.is_dataclass(cls):
        return data
    if not isinstance(data, dict):
        raise UsageError(f"{cls.__name__} must be a mapping, not {type(data).__name__}.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UsageError(f"{cls.__name__} has no setting {unknown[0]!r} (known: {sorted(names)}).")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        args = typing.get_args(hint)
        if dataclasses.is_dataclass(hint):
            value = build(hint, value)
        elif typing.get_origin(hint) is tuple and args and dataclasses.is_dataclass(args[0]):
            value = tuple(build(args[0], v) for v in value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = _coerce(hint, value, f"{cls.__name__}.{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """YAML reads `3e-4` as a string (it wants `3.0e-4`); numbers in strings become numbers."""
    if hint in (float, int) and isinstance(value, str):
        try:
            return hint(float(value)) if hint is int else float(value)
        except ValueError:
            raise UsageError(f"{where} must be a number, not {value!r}.") from None
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_override(data: dict, assignment: str) -> None:
    """Apply one `a.b.c=value` to nested dicts/lists in place."""
    if "=" not in assignment:
        raise UsageError(f"--set expects key=value, got {assignment!r}.")
    key, _, raw = assignment.partition("=")
    parts = key.strip().split(".")
    node: Any = data
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = _parse_value(raw)
    else:
        node[last] = _parse_value(raw)


def read_config_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist.")
    import yaml

    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text) or {}
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise UsageError(
            f"config file {path} is not valid {path.suffix[1:].upper()}: {err}"
        ) from None


def load_train_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    """Read `path` (YAML or JSON; None = defaults), apply `--set` overrides, build."""
    data = read_config_file(path) if path else {}
    for assignment in overrides:
        apply_override(data, assignment)
    try:
        return build(TrainConfig, data)
    except (TypeError, ValueError) as err:
        raise UsageError(f"invalid training config: {err}") from None
