"""Symmetric contrastive (InfoNCE) loss over the global batch, as CLIP / CLAP / open_clip.

With N pairs in the global batch, logits = scale * audio @ text.T (N x N); the loss is the mean
of cross-entropy over rows (audio -> text) and over columns (text -> audio), targets on the
diagonal. Under DDP each rank gathers every rank's embeddings so the negatives are global;
`all_gather` carries no gradient, so the rank puts its own tensors back in its slot and
gradients flow to the local embeddings only. Every rank computes the same global loss.

The gradients are per-rank *contributions* whose sum over ranks is the gradient of the global
loss: rank r's embeddings get their exact partial derivative (only rank r has them), and the
logit scale, which every rank sees whole, gets 1/world_size of its derivative on each rank.
DDP averages gradients over ranks, so the trainer multiplies the loss by world_size before
backward; the result is exactly the gradient one process would compute on the whole batch.
(open_clip's `gather_with_grad=False` leaves the average: embeddings' gradients 1/world_size
of the global one, the scale's whole, which Adam mostly hides but gradient clipping does not.)

`logit_clip` (MS-CLAP's `logit_cap: logits`): the logits are clipped to +-clip; entries below
the clip keep their gradient with respect to the scale, so the temperature keeps learning.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _all_gather(x: torch.Tensor) -> list[torch.Tensor]:
    """One tensor per rank (no gradient). A seam for tests, which patch it."""
    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x.contiguous())
    return out


def gather_features(
    audio: torch.Tensor, text: torch.Tensor, rank: int, world_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(B, d)` local -> `(world_size * B, d)` global, rank-major, local slot with gradient."""
    if world_size == 1:
        return audio, text
    all_audio = _all_gather(audio.detach())
    all_text = _all_gather(text.detach())
    all_audio[rank] = audio
    all_text[rank] = text
    return torch.cat(all_audio), torch.cat(all_text)


def contrastive_logits(
    audio: torch.Tensor,
    text: torch.Tensor,
    logit_scale: torch.Tensor,
    clip: float | None = None,
) -> torch.Tensor:
    """Unit rows `(N, d)`, `(N, d)` -> `(N, N)` audio-to-text logits, clipped to +-`clip`."""
    logits = logit_scale * audio @ text.T
    return logits if clip is None else logits.clamp(-clip, clip)


def symmetric_ce(logits: torch.Tensor) -> torch.Tensor:
    labels = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


class ClipLoss(nn.Module):
    """`forward(audio (B, d) unit, text (B, d) unit, logit_scale ()) -> scalar`.

    `rank`/`world_size` default to the process group's (1 process: plain local loss);
    `logit_clip` clips the logits (None: not clipped).
    """

    def __init__(
        self,
        rank: int | None = None,
        world_size: int | None = None,
        logit_clip: float | None = None,
    ):
        super().__init__()
        self.logit_clip = logit_clip
        dist_on = dist.is_available() and dist.is_initialized()
        self.rank = rank if rank is not None else (dist.get_rank() if dist_on else 0)
        self.world_size = (
            world_size if world_size is not None else (dist.get_world_size() if dist_on else 1)
        )

    def forward(
        self, audio: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor
    ) -> torch.Tensor:
        all_audio, all_text = gather_features(audio, text, self.rank, self.world_size)
        if self.world_size > 1:
            # Same value, 1/world_size of the gradient: the ranks' shares add up to one.
            share = logit_scale / self.world_size
            logit_scale = logit_scale.detach() - share.detach() + share
        return symmetric_ce(
            contrastive_logits(
                all_audio.float(), all_text.float(), logit_scale.float(), self.logit_clip
            )
        )
