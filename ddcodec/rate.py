"""Differentiable estimates of what the range coder will spend on the latent grids, for the rate term of the loss.

Each latent grid is coded under a discrete Laplace around 0 (the coder's two-sided geometric model, entropy.py);
while fitting, its values carry uniform noise (or straight-through rounding) and cost -log2 P(y) bits, with
P(y) = F(|y| + 1/2) - F(|y| - 1/2) for the Laplace CDF F whose scale is the one the coder's model fits to the grid's
mean magnitude before noise (not differentiated), so the estimate follows the model the coder fits to the rounded grid.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

MIN_SCALE = 0.05
MAX_BITS = 16.0  # one value costs at most this much in the estimate (the coder's tables have a floor too)
_LN2 = math.log(2.0)


def laplace_bits(y: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Bits of each (noisy or rounded) value y under a zero-mean discrete Laplace of the given scale (broadcast)."""
    a = y.abs()
    inv = 1.0 / scale
    # |y| >= 1/2: P = exp(-(|y| - 1/2)/b) · (1 - exp(-1/b)) / 2
    log_tail = -(a - 0.5) * inv + torch.log1p(-torch.exp(-inv)) - _LN2
    # |y| < 1/2: P = 1 - (exp(-(1/2 + |y|)/b) + exp(-(1/2 - |y|)/b)) / 2
    centre = 1 - 0.5 * (torch.exp(-(0.5 + a) * inv) + torch.exp(-(0.5 - a).clamp_min(0) * inv))
    log_centre = torch.log(centre.clamp_min(2.0**-MAX_BITS))
    log_p = torch.where(a >= 0.5, log_tail, log_centre)
    return (-log_p / _LN2).clamp(max=MAX_BITS)


def grid_bits(grids: Sequence[torch.Tensor], clean: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Estimated bits of B networks' latent grids, each (B, h, w): shape (B,). The Laplace scale of each grid is the
    mean magnitude of its `clean` values (without the training noise; default: the grids themselves)."""
    total = 0
    for g, c in zip(grids, clean or grids):
        flat = g.flatten(1)
        total = total + laplace_bits(flat, laplace_scale(c.detach().flatten(1).abs().mean(1, keepdim=True))).sum(1)
    return total


def laplace_scale(mean_magnitude: torch.Tensor) -> torch.Tensor:
    """The scale b of exp(-|q|/b) that the coder's two-sided geometric fits to integers of this mean magnitude m
    (its maximum-likelihood ratio r = (sqrt(1 + m²) - 1) / m, and b = -1 / ln r)."""
    m = mean_magnitude.clamp_min(1e-6)
    ratio = ((1 + m * m).sqrt() - 1) / m
    return (-1 / torch.log(ratio.clamp(1e-12, 1 - 1e-6))).clamp_min(MIN_SCALE)


def quantize_grids(grids: Sequence[torch.Tensor], noise: bool, generators: Sequence[torch.Generator] = ()
                   ) -> list[torch.Tensor]:
    """B networks' grids (B, h, w) as the forward pass sees them: with uniform noise of width 1 (the training proxy
    of rounding; network b's from generators[b], so that a network draws the same noise in a batch as alone), or
    rounded with a straight-through gradient (what the decoder will see)."""
    if noise:
        return [g + torch.stack([torch.rand(g.shape[1:], generator=gen, device=g.device) for gen in generators]) - 0.5
                for g in grids]
    return [g + (torch.round(g) - g).detach() for g in grids]
