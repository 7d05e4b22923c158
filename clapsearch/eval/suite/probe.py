"""Supervised evaluation on frozen embeddings: the paper's Freeze_L1 and Freeze_L3.

The MS-CLAP paper keeps the pretrained audio encoder frozen and trains 1 (Freeze_L1) or 3
(Freeze_L3) fully connected layers on the task, with Adam at learning rate 1e-3 for 30 epochs,
on the task's folds or splits. What the paper does not state and we chose:
- input: the model's clip embedding in the joint space (unit vector, `Embedder.embed_audio`),
  the one vector every clapsearch backend exposes; the paper's head sat on the audio
  encoder's output, before the projection;
- Freeze_L3's hidden layers: `hidden` units (512), ReLU between the layers;
- batches of 64 clips, reshuffled every epoch with a seeded generator, so a run repeats
  exactly; cross-entropy for single-label tasks, binary cross-entropy on each class for
  multi-label ones (the softmax / sigmoid of the outputs are the probabilities we score);
- the epoch: the last one, unless the task has a validation split, then the epoch whose
  validation score is best (the first such epoch on a tie).
Embeddings are computed once per clip and cached on disk (`cache`); the heads are tiny, so
a probe over thousands of clips trains in seconds on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

PROBES = {"l1": 1, "l3": 3}  # --probe value -> number of fully connected layers
# Below this many clips a head trains on one thread: its matrices are so small that thread
# hand-offs dominate (30 epochs on 400 clips: 0.2 s on one thread, 13 s on two busy cores).
SMALL_PROBE = 50_000


@dataclass(frozen=True)
class ProbeConfig:
    layers: int = 1  # 1 = Freeze_L1, 3 = Freeze_L3
    hidden: int = 512
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0

    @property
    def name(self) -> str:
        return f"Freeze_L{self.layers}"


def build_head(dim: int, n_classes: int, layers: int, hidden: int) -> nn.Module:
    """`layers` fully connected layers `dim -> [hidden -> ...] -> n_classes`, ReLU between."""
    if layers < 1:
        raise ValueError("a probe needs at least one layer")
    widths = [dim] + [hidden] * (layers - 1) + [n_classes]
    modules: list[nn.Module] = []
    for i in range(layers):
        modules.append(nn.Linear(widths[i], widths[i + 1]))
        if i < layers - 1:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


def probabilities(head: nn.Module, x: np.ndarray, multilabel: bool) -> np.ndarray:
    """`(n, dim)` embeddings -> `(n, c)` softmax (single-label) or sigmoid (multi-label)."""
    head.eval()
    with torch.no_grad():
        logits = head(torch.as_tensor(x, dtype=torch.float32))
        out = torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1)
    return out.double().numpy()


def train_probe(
    x: np.ndarray,
    targets: np.ndarray,
    multilabel: bool,
    config: ProbeConfig = ProbeConfig(),
    val: tuple[np.ndarray, np.ndarray] | None = None,
    val_score: Callable[[np.ndarray, np.ndarray], float] | None = None,
) -> nn.Module:
    """Train a head on `(n, dim)` embeddings and `(n, c)` 0/1 targets (one-hot when single-
    label). With `val` = (x, targets) and `val_score(targets, probabilities)`, the returned
    head is the one after the epoch with the best validation score; else after the last.
    Deterministic for a given config and data; leaves torch's global RNG untouched."""
    x = np.asarray(x, dtype=np.float32)
    t = np.asarray(targets, dtype=np.float32)
    if x.ndim != 2 or t.ndim != 2 or x.shape[0] != t.shape[0] or x.shape[0] == 0:
        raise ValueError(f"need (n, dim) inputs and (n, c) targets, got {x.shape}, {t.shape}")
    threads = torch.get_num_threads()
    if x.shape[0] < SMALL_PROBE:
        torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            return _train(x, t, multilabel, config, val, val_score)
    finally:
        torch.set_num_threads(threads)


def _train(
    x: np.ndarray,
    t: np.ndarray,
    multilabel: bool,
    config: ProbeConfig,
    val: tuple[np.ndarray, np.ndarray] | None,
    val_score: Callable[[np.ndarray, np.ndarray], float] | None,
) -> nn.Module:
    torch.manual_seed(config.seed)
    head = build_head(x.shape[1], t.shape[1], config.layers, config.hidden)
    gen = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(head.parameters(), lr=config.lr)
    xs, ts = torch.from_numpy(x), torch.from_numpy(t)
    ys = ts.argmax(dim=1)
    loss_fn = nn.BCEWithLogitsLoss() if multilabel else nn.CrossEntropyLoss()
    best: tuple[float, dict] | None = None
    for _ in range(config.epochs):
        head.train()
        order = torch.randperm(xs.shape[0], generator=gen)
        for lo in range(0, xs.shape[0], config.batch_size):
            idx = order[lo : lo + config.batch_size]
            logits = head(xs[idx])
            loss = loss_fn(logits, ts[idx] if multilabel else ys[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if val is not None and val_score is not None:
            value = val_score(val[1], probabilities(head, val[0], multilabel))
            if best is None or value > best[0]:
                best = (value, {k: v.clone() for k, v in head.state_dict().items()})
    if best is not None:
        head.load_state_dict(best[1])
    head.eval()
    return head
