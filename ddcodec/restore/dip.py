"""The Deep Image Prior's hourglass "skip" network (Ulyanov et al., CVPR 2018), written from its description.

Each scale halves the image with a strided 3x3 convolution, goes deeper, upsamples bilinearly and joins a 1x1 skip
branch; every convolution is followed by BatchNorm and LeakyReLU(0.2), padding reflects, the output is a sigmoid.
Images must be multiples of 2^scales on each side (restore.py pads to that).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SkipConfig:
    """Shape of a skip network: `scales` levels of `channels` channels, `skip` skip channels per level."""

    channels: int
    scales: int
    skip: int = 4
    input_channels: int = 32

    @property
    def multiple(self) -> int:
        """Side lengths must be multiples of this."""
        return 2**self.scales


def _conv(c_in: int, c_out: int, size: int, stride: int = 1) -> list[nn.Module]:
    """Reflection-padded convolution, BatchNorm, LeakyReLU."""
    pad = [nn.ReflectionPad2d(size // 2)] if size > 1 else []
    return pad + [nn.Conv2d(c_in, c_out, size, stride), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True)]


class _Level(nn.Module):
    """One scale: concat(skip(x), up(deeper(down(x)))) -> BN -> 3x3 conv -> 1x1 conv, at x's resolution."""

    def __init__(self, c_in: int, cfg: SkipConfig, depth: int) -> None:
        super().__init__()
        c = cfg.channels
        self.skip = nn.Sequential(*_conv(c_in, cfg.skip, 1))
        inner: list[nn.Module] = _conv(c_in, c, 3, stride=2) + _conv(c, c, 3)
        if depth > 1:
            inner.append(_Level(c, cfg, depth - 1))
        inner.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        self.deeper = nn.Sequential(*inner)
        self.merge = nn.Sequential(nn.BatchNorm2d(cfg.skip + c), *_conv(cfg.skip + c, c, 3), *_conv(c, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merge(torch.cat([self.skip(x), self.deeper(x)], dim=1))


class SkipNet(nn.Module):
    """The full network: input (B, input_channels, H, W) -> image (B, out_channels, H, W) in [0, 1]."""

    def __init__(self, cfg: SkipConfig, out_channels: int) -> None:
        super().__init__()
        self.body = _Level(cfg.input_channels, cfg, cfg.scales)
        self.head = nn.Conv2d(cfg.channels, out_channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.body(z)))
