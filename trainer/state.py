"""Resumable training checkpoints and the process's random state.

`OUT/last/` is a complete clapsearch checkpoint (usable with `--model`) plus
`trainer_state.pt`: optimizer, scheduler, progress counters, best score and every RNG the run
draws from (torch CPU and CUDA, numpy, python). Both are written in one atomic directory
write, so weights and optimizer state never come from different steps.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from clapsearch.errors import UsageError

STATE_FILE = "trainer_state.pt"


@dataclass
class Progress:
    """Where training is: `step` optimizer steps done; `epoch`/`batch` the next micro-batch."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    samples_seen: int = 0
    best_score: float = float("-inf")
    best_step: int = -1


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


def save_resumable(
    folder: Path, model, tokenizer, optimizer, scheduler, progress: Progress, provenance
) -> Path:
    from clapsearch.models import save_checkpoint

    def extra(tmp: Path) -> None:
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "progress": asdict(progress),
                "rng": rng_state(),
            },
            tmp / STATE_FILE,
        )

    return save_checkpoint(model, tokenizer, folder, provenance, extra=extra)


def load_resumable(folder: Path, model, optimizer, scheduler) -> Progress:
    """Restore weights, optimizer, scheduler and RNG from `folder`; -> the saved progress."""
    import safetensors.torch

    from clapsearch.models.checkpoint import WEIGHTS_FILE

    state_path = folder / STATE_FILE
    if not state_path.is_file():
        raise UsageError(f"--resume: no resumable checkpoint in {folder} (no {STATE_FILE}).")
    device = next(model.parameters()).device
    safetensors.torch.load_model(model, str(folder / WEIGHTS_FILE), strict=True, device=str(device))
    state = torch.load(state_path, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return Progress(**state["progress"])
