"""Resumable training checkpoints and the process's random state, stored without pickle.

`OUT/last/` is a complete clapsearch checkpoint (usable with `--model`) plus the trainer's
state in two files:

    trainer_state.json          {"format": "clapsearch-trainer-state", "format_version": 2,
                                 "progress", "optimizer", "scheduler", "rng"}: plain JSON in
                                 which every tensor or array is a reference {"__t__": name}
    trainer_state.safetensors   those tensors by name

Nothing here can run code when read: JSON and safetensors hold data only, and the decoder
knows four markers (tensor, array, tuple, non-finite float, int-keyed map) and nothing else.
A `trainer_state.pt` from an older clapsearch (a pickle, which `torch.load` could make
execute anything) is refused, never opened. Weights and state are written in one atomic
directory write, so they never come from different steps.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError

from clapsearch.errors import UsageError

STATE_JSON = "trainer_state.json"
STATE_TENSORS = "trainer_state.safetensors"
LEGACY_STATE = "trainer_state.pt"
STATE_FORMAT = "clapsearch-trainer-state"
STATE_VERSION = 2


@dataclass
class Progress:
    """Where training is: `step` optimizer steps done; `epoch`/`batch` the next micro-batch.
    `global_batch`: clips per micro-batch over all processes when saved (0: unknown), so a
    resume with another batch size or process count can convert `batch`. `loss_sum` /
    `loss_count`: the current epoch's training losses (the plateau schedule's score without
    validation)."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    samples_seen: int = 0
    best_score: float = float("-inf")
    best_step: int = -1
    global_batch: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0


def rng_state() -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --- pickle-free encoding: JSON skeleton + named tensors -------------------------------------
def encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Nested dicts / lists / tuples of tensors, arrays, numbers, strings -> JSON-ready data;
    tensors and arrays go into `tensors` under fresh names."""
    if isinstance(obj, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = obj.detach().cpu().contiguous()
        return {"__t__": name}
    if isinstance(obj, np.ndarray):
        name = f"t{len(tensors)}"
        # int64 holds every uint32 (numpy's MT19937 key) exactly; the dtype restores it.
        tensors[name] = torch.from_numpy(np.ascontiguousarray(obj).astype(np.int64))
        return {"__np__": name, "dtype": obj.dtype.str}
    if isinstance(obj, (bool, str, type(None))):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else {"__float__": repr(x)}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [encode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: encode(v, tensors) for k, v in obj.items()}
        if all(isinstance(k, int) for k in obj):
            return {"__intmap__": [[k, encode(v, tensors)] for k, v in obj.items()]}
    raise TypeError(f"cannot store a {type(obj).__name__} in trainer state")


def decode(data: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of `encode`; anything unexpected raises ValueError."""
    if isinstance(data, list):
        return [decode(v, tensors) for v in data]
    if not isinstance(data, dict):
        if isinstance(data, (bool, int, float, str, type(None))):
            return data
        raise ValueError(f"unexpected {type(data).__name__}")
    if "__t__" in data:
        return tensors[str(data["__t__"])]
    if "__np__" in data:
        return tensors[str(data["__np__"])].numpy().astype(np.dtype(str(data["dtype"])))
    if "__float__" in data:
        value = float(str(data["__float__"]))
        if math.isfinite(value):
            raise ValueError("a finite float stored as non-finite")
        return value
    if "__tuple__" in data:
        return tuple(decode(v, tensors) for v in data["__tuple__"])
    if "__intmap__" in data:
        return {int(k): decode(v, tensors) for k, v in data["__intmap__"]}
    markers = [k for k in data if k.startswith("__")]
    if markers:
        raise ValueError(f"unknown marker {markers[0]!r}")
    return {k: decode(v, tensors) for k, v in data.items()}


def write_state(folder: Path, state: dict) -> None:
    """`state` -> `folder/trainer_state.json` + `folder/trainer_state.safetensors`."""
    import safetensors.torch

    tensors: dict[str, torch.Tensor] = {}
    skeleton = {
        "format": STATE_FORMAT,
        "format_version": STATE_VERSION,
        **{k: encode(v, tensors) for k, v in state.items()},
    }
    safetensors.torch.save_file(tensors, str(folder / STATE_TENSORS))
    (folder / STATE_JSON).write_text(json.dumps(skeleton, allow_nan=False) + "\n")


def read_state(folder: Path) -> dict:
    """The state written by `write_state`; a damaged or foreign file is one sentence."""
    import safetensors.torch

    path = folder / STATE_JSON
    if not path.is_file():
        if (folder / LEGACY_STATE).is_file():
            raise UsageError(
                f"{folder / LEGACY_STATE} is a pickle from an older clapsearch and is not "
                f"loaded (a pickle can run code when read); start a new output_dir, or resume "
                f"with the clapsearch version that wrote it."
            )
        raise UsageError(f"--resume: no resumable checkpoint in {folder} (no {STATE_JSON}).")
    try:
        skeleton = json.loads(path.read_text(encoding="utf-8"))
        if skeleton.get("format") != STATE_FORMAT:
            raise ValueError(f"format {skeleton.get('format')!r}")
        if int(skeleton.get("format_version", 0)) > STATE_VERSION:
            raise ValueError(f"version {skeleton.get('format_version')!r} is newer")
        tensors = safetensors.torch.load_file(str(folder / STATE_TENSORS))
        return {
            k: decode(v, tensors)
            for k, v in skeleton.items()
            if k not in ("format", "format_version")
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SafetensorError) as err:
        raise UsageError(
            f"the trainer state in {folder} is damaged or not clapsearch's ({short(err)}); start a "
            f"new output_dir or restore the folder."
        ) from None


def short(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's text, cut to `limit` characters (torch's load errors
    list every missing key)."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def save_resumable(
    folder: Path, model, tokenizer, optimizer, scheduler, progress: Progress, provenance, extra=None
) -> Path:
    """Model checkpoint + trainer state in one atomic directory write; `extra(tmp)` may add
    files (the trained-on record)."""
    from clapsearch.models import save_checkpoint

    def fill(tmp: Path) -> None:
        write_state(
            tmp,
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "progress": asdict(progress),
                "rng": rng_state(),
            },
        )
        if extra is not None:
            extra(tmp)

    return save_checkpoint(model, tokenizer, folder, provenance, extra=fill)


def load_resumable(folder: Path, model, optimizer, scheduler) -> Progress:
    """Restore weights, optimizer, scheduler and RNG from `folder`; -> the saved progress."""
    import safetensors.torch

    from clapsearch.models.checkpoint import WEIGHTS_FILE

    state = read_state(folder)
    device = next(model.parameters()).device
    try:
        safetensors.torch.load_model(
            model, str(folder / WEIGHTS_FILE), strict=True, device=str(device)
        )
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        known = {f.name for f in fields(Progress)}
        return Progress(**{k: v for k, v in state["progress"].items() if k in known})
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, SafetensorError) as err:
        raise UsageError(
            f"the checkpoint in {folder} does not fit this run's model or optimizer "
            f"({short(err)}); "
            f"start a new output_dir."
        ) from None
