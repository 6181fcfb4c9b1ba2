"""The two untrained-network priors restoration fits: the Deep Decoder (model.py) and the Deep Image Prior (dip.py).

A prior is a generator of one image of a given size whose parameters Adam fits; calling it with a jitter adds
fresh Gaussian noise of that std to its fixed input (the Deep Image Prior's regularizer). Both generate a slightly
larger image when the size is not a multiple of what the network needs and crop it, so any size works.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ddcodec.restore.dip import SkipConfig, SkipNet
from ddcodec.errors import InputError
from ddcodec.format.architecture import Architecture, layers_for, width_for
from ddcodec.component.model import init_weights, network_input, render

PRIORS = ("dd", "dip")
DIP_PRESETS = {"cpu": SkipConfig(channels=24, scales=5), "full": SkipConfig(channels=128, scales=5)}
DD_PRESETS = {"cpu": 1.0, "full": 2.0}  # multiplier of the Deep Decoder's parameter budget


@dataclass
class Prior:
    """A network that generates an image (1, C, H, W) in [0, 1]; `parameters` are what Adam fits."""

    parameters: list[torch.Tensor]
    generate: object  # Callable[[float], torch.Tensor]: jitter std -> image

    def __call__(self, jitter: float = 0.0) -> torch.Tensor:
        return self.generate(jitter)


def make_prior(
    name: str, preset: str, height: int, width: int, channels: int, ratio: float, seed: int, device: torch.device
) -> Prior:
    """The prior `name` ('dd' or 'dip') at `preset` ('cpu' or 'full') for an image of the given size.

    The Deep Decoder gets about 3·H·W / ratio weights (its width sets how much noise it can fit); the skip network's
    shape is the preset's.
    """
    if preset not in DIP_PRESETS:
        raise InputError(f"unknown preset {preset!r} (choose from {', '.join(DIP_PRESETS)})")
    gen = torch.Generator().manual_seed(seed)
    if name == "dd":
        return _deep_decoder(height, width, channels, DD_PRESETS[preset] * 3 * height * width / ratio, seed, gen,
                             device)
    return _skip_net(DIP_PRESETS[preset], height, width, channels, gen, device)


def _deep_decoder(
    height: int, width: int, channels: int, n_params: float, seed: int, gen: torch.Generator, device: torch.device
) -> Prior:
    layers = layers_for(height, width)
    k = max(width_for(layers, channels, n_params), 4)
    arch = Architecture(height, width, channels, (k,) * (layers + 1))
    weights = [w.to(device).requires_grad_() for w in init_weights(arch, gen)]
    z = network_input(arch, seed, device)

    def generate(jitter: float) -> torch.Tensor:
        return render(arch, weights, z + jitter * torch.randn_like(z) if jitter else z)[None]

    return Prior(weights, generate)


def _skip_net(
    cfg: SkipConfig, height: int, width: int, channels: int, gen: torch.Generator, device: torch.device
) -> Prior:
    m = cfg.multiple
    padded = [max(math.ceil(s / m), 2) * m for s in (height, width)]  # the coarsest 3x3 convolution needs 2 px
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
        net = SkipNet(cfg, channels).to(device)
    z = (torch.rand((1, cfg.input_channels, *padded), generator=gen) * 0.1).to(device)

    def generate(jitter: float) -> torch.Tensor:
        return net(z + jitter * torch.randn_like(z) if jitter else z)[:, :, :height, :width]

    return Prior(list(net.parameters()), generate)
