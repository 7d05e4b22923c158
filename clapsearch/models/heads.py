"""Projection heads: encoder output `(B, in_dim)` -> joint space `(B, out_dim)` (not normalised).

One registry of head kinds, named in `ModelConfig.projection`:

- `linear`: one `Linear` (with bias);
- `mlp`: `Linear -> ReLU -> Linear` with biases, LAION-CLAP's `audio_projection` /
  `text_projection` (keys `0.weight`, `0.bias`, `2.weight`, `2.bias`);
- `msclap`: MS-CLAP's `Projection`: `LayerNorm(l1(x) + dropout(l2(gelu(l1(x)))))` with
  bias-free linears and dropout 0.5 (keys `linear1.weight`, `linear2.weight`,
  `layer_norm.weight`, `layer_norm.bias`, the same names as the msclap package's state dicts,
  so its weights load without renaming).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class MSClapProjection(nn.Module):
    """MS-CLAP's projection head (Elizalde et al. 2022; the `msclap` package's `Projection`).

    The residual keeps the first linear map's output, so the head starts close to a plain
    linear projection; the LayerNorm (not an L2 norm) fixes the scale before the model's own
    normalisation. `dropout` is 0.5 as in MS-CLAP (active in training only).
    """

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.5):
        super().__init__()
        self.linear1 = nn.Linear(in_dim, out_dim, bias=False)
        self.linear2 = nn.Linear(out_dim, out_dim, bias=False)
        self.layer_norm = nn.LayerNorm(out_dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, in_dim)` -> `(B, out_dim)`."""
        embed1 = self.linear1(x)
        embed2 = self.drop(self.linear2(F.gelu(embed1)))
        return self.layer_norm(embed1 + embed2)


HEADS: dict[str, Callable[[int, int], nn.Module]] = {
    "linear": lambda i, o: nn.Linear(i, o),
    "mlp": lambda i, o: nn.Sequential(nn.Linear(i, o), nn.ReLU(), nn.Linear(o, o)),
    "msclap": lambda i, o: MSClapProjection(i, o),
}


def projection_head(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """Build the head named `kind` (one of `HEADS`)."""
    if kind not in HEADS:
        raise ValueError(f"projection must be one of {sorted(HEADS)}, not {kind!r}")
    return HEADS[kind](in_dim, out_dim)


__all__ = ["HEADS", "MSClapProjection", "projection_head"]
