"""PANN CNN6 / CNN10 / CNN14 audio encoders (Kong et al., 2020), written in torch.

Same layer names as audioset_tagging_cnn (`bn0`, `conv_block1.conv1`, ..., `fc1`), so its
released `.pth` weights load with `pretrained=...` (the spectrogram layers and the AudioSet
classifier are ignored: features come from `clapsearch.features`). As in the paper:
batch norm over mel bins, conv blocks with 2x2 average pooling, mean over mel bins, then
max + mean over time, dropout and `fc1` with ReLU -> the clip embedding.

Input: `(B, C, frames, n_mels)` log-mel; only channel 0 is read (for `fusion` front ends that
is the whole-clip view).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from clapsearch.config import AudioConfig
from clapsearch.errors import ModelLoadError
from clapsearch.models.config import AudioEncoderConfig
from clapsearch.models.registry import AudioEncoder, register_encoder


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU, then pooling (CNN10 / CNN14)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool)


class ConvBlock5x5(nn.Module):
    """One 5x5 conv + BN + ReLU, then pooling (CNN6)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.bn1(self.conv1(x))), pool)


class PANN(AudioEncoder):
    """Shared body of the CNN family; subclasses set the block type and default widths."""

    block: type[nn.Module] = ConvBlock
    default_channels: tuple[int, ...] = ()
    last_block_pools: bool = True  # CNN14's sixth block keeps its resolution

    def __init__(self, cfg: AudioEncoderConfig, front_end: AudioConfig, load_weights: bool = True):
        super().__init__(cfg, front_end, load_weights)
        channels = tuple(cfg.channels) or self.default_channels
        embed = cfg.embed_dim or channels[-1]
        self.config = AudioEncoderConfig(
            name=cfg.name,
            channels=channels,
            embed_dim=embed,
            dropout=cfg.dropout,
            pretrained=cfg.pretrained,
        )
        self.dropout = cfg.dropout
        self.bn0 = nn.BatchNorm2d(front_end.n_mels)
        widths = (1, *channels)
        for i in range(len(channels)):
            self.add_module(f"conv_block{i + 1}", self.block(widths[i], widths[i + 1]))
        self.n_blocks = len(channels)
        self.fc1 = nn.Linear(channels[-1], embed)
        self.out_dim = embed
        if load_weights and cfg.pretrained:
            self.load_pann_weights(Path(cfg.pretrained))

    def forward(
        self, features: torch.Tensor, is_longer: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = features[:, :1]  # (B, 1, T, M)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # normalise each mel bin
        for i in range(self.n_blocks):
            keep = i == self.n_blocks - 1 and not self.last_block_pools
            x = getattr(self, f"conv_block{i + 1}")(x, (1, 1) if keep else (2, 2))
            x = F.dropout(x, self.dropout, self.training)
        x = x.mean(dim=3)  # (B, C, T')
        x = x.amax(dim=2) + x.mean(dim=2)  # (B, C)
        x = F.dropout(x, 0.5 * (self.dropout > 0), self.training)
        return F.relu(self.fc1(x))

    def load_pann_weights(self, path: Path) -> None:
        """Load an audioset_tagging_cnn `.pth` (strict on this encoder's own layers)."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as err:
            raise ModelLoadError(f"Could not read PANN weights {path}: {err}") from None
        state = state.get("model", state)
        own = self.state_dict()
        kept = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
        missing = set(own) - set(kept)
        if missing:
            raise ModelLoadError(
                f"{path} does not match {self.config.name} with channels {self.config.channels}"
                f" ({len(missing)} tensors missing or of another shape, e.g. {sorted(missing)[0]})."
            )
        self.load_state_dict(kept)


@register_encoder("cnn6")
class Cnn6(PANN):
    block = ConvBlock5x5
    default_channels = (64, 128, 256, 512)


@register_encoder("cnn10")
class Cnn10(PANN):
    default_channels = (64, 128, 256, 512)


@register_encoder("cnn14")
class Cnn14(PANN):
    default_channels = (64, 128, 256, 512, 1024, 2048)
    last_block_pools = False
