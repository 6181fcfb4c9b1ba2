"""The plain Deep Decoder as Heckel & Hand wrote it (an nn.Sequential of stock layers), to check and time against.

Per hidden layer: Conv2d(k_in, k_out, 1, bias=False), Upsample(x2, bilinear, align_corners=False) except in the last
hidden layer, ReLU, BatchNorm2d(k_out) in train mode (the batch's own statistics); then Conv2d(k, channels, 1,
bias=False) and Sigmoid. It computes the same function as ddcodec.component.model.render, without folding the BatchNorms.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ddcodec.component.model import BN_EPS, Architecture, render


def build(arch: Architecture) -> nn.Sequential:
    """The network for `arch`, in train mode (BatchNorm normalizes with the image's own statistics)."""
    layers: list[nn.Module] = []
    for i, (c_in, c_out) in enumerate(zip(arch.widths[:-1], arch.widths[1:])):
        layers.append(nn.Conv2d(c_in, c_out, 1, bias=False))
        if i < arch.layers - 1:
            layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        layers += [nn.ReLU(), nn.BatchNorm2d(c_out, eps=BN_EPS)]
    layers += [nn.Conv2d(arch.widths[-1], arch.channels, 1, bias=False), nn.Sigmoid()]
    return nn.Sequential(*layers).train()


def load_weights(net: nn.Sequential, weights: Sequence[torch.Tensor]) -> nn.Sequential:
    """Copy a ddcodec weight list (conv (c_out, c_in), BN gamma, BN beta, ..., output conv) into `net`."""
    params = [m for m in net if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    it = iter(weights)
    with torch.no_grad():
        for m in params:
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(next(it)[:, :, None, None])
            else:
                m.weight.copy_(next(it))
                m.bias.copy_(next(it))
    return net


def image(net: nn.Sequential, arch: Architecture, z: torch.Tensor) -> torch.Tensor:
    """The network's output for input z (c, h0, w0), cropped to the image: (channels, height, width)."""
    return net(z[None])[0, :, : arch.height, : arch.width]


def fit_step(net: nn.Sequential, opt: torch.optim.Optimizer, arch: Architecture, z: torch.Tensor,
             target: torch.Tensor) -> float:
    """One plain Adam iteration on the MSE (forward, loss, backward, step); returns the loss as ddcodec.training.fit reads it."""
    loss = torch.mean((image(net, arch, z) - target) ** 2)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def max_render_diff(arch: Architecture, weights: Sequence[torch.Tensor], z: torch.Tensor) -> float:
    """Max |ddcodec.component.model.render - this network| for the same weights and input: the fold of BatchNorm is exact."""
    net = load_weights(build(arch).to(z.device), weights)
    with torch.no_grad():
        return float((render(arch, weights, z) - image(net, arch, z)).abs().max())
