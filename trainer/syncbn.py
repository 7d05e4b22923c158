"""BatchNorm over the global batch when training with several processes.

Under DDP each rank normalises its BatchNorm layers with the statistics of its own slice of
the batch, so 2 processes x 16 clips do not train like 1 process x 32 (the first-step loss of
the issue's check: 3.6056 against 3.5395). `sync_batchnorm: true` (the default) makes every
BatchNorm in training mode use the mean and variance of the whole global batch:

- on CUDA, torch's `nn.SyncBatchNorm` (fused kernels, NCCL);
- elsewhere (CPU / gloo, which `nn.SyncBatchNorm` refuses), `GlobalBatchNorm` below: the same
  computation with two differentiable all-reduces (whose backward all-reduces the gradients),
  so the gradient also flows through the global statistics as it does in one process.

Layers in eval mode (a frozen tower, validation) use their running statistics and never
communicate. The state-dict keys are BatchNorm's, so checkpoints load into plain models.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the backward sums the gradients over ranks too (every rank's loss
    depends on every rank's input through the result)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_reduce(x: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of `x` over all ranks."""
    return _AllReduceSum.apply(x)


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are those of the batch over all ranks."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """`(B, C, ...)` -> same shape; statistics over B and every dim after C, all ranks."""
        self._check_input_dim(input)
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return F.batch_norm(
                input,
                self.running_mean,
                self.running_var,
                self.weight,
                self.bias,
                self.training or not self.track_running_stats,
                self.momentum or 0.0,
                self.eps,
            )
        x = input.float()
        channels = x.shape[1]
        dims = [0, *range(2, x.dim())]
        shape = [1, channels] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() // channels], dtype=x.dtype, device=x.device)
        sums = all_reduce(torch.cat([x.sum(dims), count]))
        total = sums[-1].detach()
        mean = sums[:channels] / total
        centred = x - mean.view(shape)
        # Two passes (mean, then squared deviations): no E[x^2] - E[x]^2 cancellation.
        var = all_reduce(centred.square().sum(dims)) / total
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), float(total))
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(input.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: float) -> None:
        self.num_batches_tracked += 1
        momentum = self.momentum
        if momentum is None:  # cumulative moving average, as nn.BatchNorm
            momentum = 1.0 / float(self.num_batches_tracked)
        unbiased = var * (n / max(n - 1.0, 1.0))
        self.running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
        self.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of `module` -> a synchronised one (see module doc); in place where
    possible, returns the module."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        bn = GlobalBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
            device=module.running_mean.device if module.running_mean is not None else None,
        )
        bn.load_state_dict(module.state_dict())
        if module.affine:
            bn.weight.requires_grad_(module.weight.requires_grad)
            bn.bias.requires_grad_(module.bias.requires_grad)
        bn.train(module.training)
        return bn
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device))
    return module


__all__ = ["GlobalBatchNorm", "convert_sync_batchnorm"]
