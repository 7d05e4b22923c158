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
from trainer.keywords import KeywordConfig

DEFAULT_TEMPLATES = ("the sound of {label}", "{label}", "a recording of {label}")


@dataclass(frozen=True)
class DataSource:
    """One dataset. `kind`: `esc50`, `clotho`, `audiocaps`, `manifest` (CSV/JSONL) or
    `webdataset` (tar shards in LAION-CLAP's layout, always streamed: `trainer.stream`).

    `root`: dataset folder (manifest: the file; webdataset: a folder of `.tar` shards, a glob,
    a `{000000..000099}` range or a text file listing shards). `split`: Clotho/AudioCaps split
    name, or for manifests the value of their `split` column to keep (empty: all rows).
    `stream` (manifests): read the rows one at a time in bounded memory instead of indexing
    them (for manifests of millions of rows; `trainer.stream`).
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
    stream: bool = False


@dataclass(frozen=True)
class DataConfig:
    """`clip_s`: training clip length. Window models (`rand_trunc`): 0 = the model's window;
    longer clips are cropped at a random offset, shorter ones fitted as the front end's
    `padding` says. Fusion models: the longest clip kept (0 = whole clips), cropped at random
    when longer, never padded, so the front end sees the real length (long clips train the
    fusion branch, with random crops). Training only; validation uses the inference path.
    Augmentation: random gain in +-`gain_db`, circular time shift up to `time_shift` of the
    clip, and with probability `mix_prob` a second clip mixed in, captions joined;
    `augment`: reverb, background noise, band limit, codec and bit-depth degradations
    (`trainer.augment.AugmentConfig`, all off by default). `keywords`: keyword-to-caption augmentation (`trainer.keywords`). `shuffle_buffer`:
    clips held for shuffling a streamed source (memory: that many encoded clips a worker).
    `val_batch`: validation clips decoded at a time (validation memory)."""

    train: tuple[DataSource, ...] = ()
    val: tuple[DataSource, ...] = ()
    clip_s: float = 0.0
    gain_db: float = 0.0
    time_shift: float = 0.0
    mix_prob: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    keywords: KeywordConfig = field(default_factory=KeywordConfig)
    workers: int = 2
    cache_audio: bool = False
    shuffle_buffer: int = 1000
    val_batch: int = 32


@dataclass(frozen=True)
class OptimConfig:
    """`name`: `adamw` (decoupled weight decay) or `adam` (MS-CLAP; `weight_decay` then adds
    an L2 term to the gradient). `audio_lr` / `text_lr` override `lr` for that tower's encoder
    (0 = `lr`): a pretrained text tower usually wants a smaller rate than a fresh CNN.
    `schedule`: `cosine` (linear warmup over `warmup_steps`, cosine down to `min_lr_ratio`,
    stepped every optimizer step) or `plateau` (MS-CLAP: the rate is multiplied by
    `plateau_factor` when the epoch's score has not improved for `plateau_patience` epochs;
    the score is `best_metric` on validation, or the epoch's mean training loss without
    validation)."""

    name: Literal["adamw", "adam"] = "adamw"
    schedule: Literal["cosine", "plateau"] = "cosine"
    plateau_factor: float = 0.1
    plateau_patience: int = 10
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
    `best_metric`: validation key that picks `best/` (`zeroshot`, `t2a.R@1`, `a2t.mAP@10`,
    `t2a.median_rank` (lower is better), ...; `auto`: `zeroshot` when a validation source is
    labelled (ESC-50), else `t2a.R@1`). `sync_batchnorm`: under several processes, BatchNorm
    statistics are computed over the global batch (as one process with the whole batch)."""

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
    best_metric: str = "auto"
    log_every: int = 10
    tensorboard: bool = True
    progress: bool = True
    threads: int = 0
    sync_batchnorm: bool = True


def build(cls: type, data: Any, where: str = "") -> Any:
    """Plain data -> (nested) frozen dataclass, including tuples of dataclasses.

    Every value is checked against its field's type, so a bad setting is one sentence naming
    it (`model.text_encoder.pooling must be one of 'mean', 'cls' (not 'max').`) instead of a
    traceback later: unknown keys, enumerated (`Literal`) values, numbers, booleans, strings;
    a scalar where a tuple is expected is a one-element tuple (`folds: 4`, one template)."""
    name = where or cls.__name__
    if not isinstance(data, dict):
        raise UsageError(f"{name} must be a mapping, not {_kind(data)}.")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise UsageError(f"{name} has no setting {unknown[0]!r} (known: {', '.join(names)}).")
    kwargs = {
        key: _value(hints[key], value, f"{where}.{key}" if where else key)
        for key, value in data.items()
    }
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise UsageError(f"invalid {name}: {err}.") from None


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"a {type(value).__name__} ({value!r})"


def _value(hint: Any, value: Any, where: str) -> Any:
    """Check / coerce one value against a field type (see `build`)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise UsageError(f"{where} must be one of {choices} (not {value!r}).")
        return value
    if origin is tuple:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(items))
        if len(items) != len(args):
            raise UsageError(f"{where} must be a list of {len(args)} values, not {_kind(value)}.")
        return tuple(_value(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, items)))
    if origin is dict:
        if not isinstance(value, dict):
            raise UsageError(f"{where} must be a mapping, not {_kind(value)}.")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{where} must be true or false, not {_kind(value)}.")
        return value
    if hint in (int, float):
        return _number(hint, value, where)
    if hint is str:
        if value is None:
            return ""  # `--set model.audio_encoder.pretrained=` (YAML reads nothing as null)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # YAML reads `split: 2020` as a number
        if not isinstance(value, str):
            raise UsageError(f"{where} must be a string, not {_kind(value)}.")
        return value
    return value


def _number(hint: type, value: Any, where: str) -> int | float:
    """YAML reads `3e-4` as a string (it wants `3.0e-4`); numbers in strings become numbers.
    An int field takes a float only when it is whole (`8.0`)."""
    what = "an integer" if hint is int else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{where} must be {what}, not {_kind(value)}.")
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{where} must be {what}, not {value!r}.") from None
    if hint is float:
        return number
    if not number.is_integer():
        raise UsageError(f"{where} must be {what}, not {value!r}.")
    return int(number)


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
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        here = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UsageError(
                    f"--set {key}: {here} names no item of a list of {len(node)} "
                    f"(use an index from 0 to {len(node) - 1})."
                )
            index: Any = int(part)
        elif isinstance(node, dict):
            index = part
            if not last:
                node.setdefault(part, {})
        else:
            raise UsageError(f"--set {key}: {'.'.join(parts[:depth])} is a single value.")
        if last:
            node[index] = _parse_value(raw)
        else:
            node = node[index]


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
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a mapping of settings, not {_kind(data)}.")
    for assignment in overrides:
        apply_override(data, assignment)
    cfg = build(TrainConfig, data)
    from trainer.checks import check_config

    check_config(cfg)
    return cfg
