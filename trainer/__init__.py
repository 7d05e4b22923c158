"""clapsearch's trainer: contrastive CLAP training from one process to torchrun DDP.

    from trainer import load_train_config, train
    result = train(load_train_config("configs/esc50_small.yaml", ["epochs=2"]))

Builds on the `clapsearch` library (models, features, metrics); the library never imports it.
"""

from __future__ import annotations

from trainer.config import TrainConfig, load_train_config


def train(cfg: TrainConfig, resume: bool = False, on_step=None, override: bool = False):
    """See `trainer.loop.train` (imported lazily: torch and transformers are heavy)."""
    from trainer.loop import train as _train

    return _train(cfg, resume=resume, on_step=on_step, override=override)


__all__ = ["TrainConfig", "load_train_config", "train"]
