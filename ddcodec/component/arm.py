"""The ARM in torch: the learned context model of the latent grids as a network (Cool-chic's auto-regressive model).

A small MLP shared by all grids maps each latent value's causal neighbours (armint.NEIGHBOURS) and, optionally, the
preceding grid's co-located value to the mean μ and log2 scale of a discrete Laplace: the model whose integer side
the coder implements (ddcodec/format/armint.py). Here: its initialisation, its inputs and its forward pass; its rate,
quantization and last fit are the encoder's (ddcodec/encoder/arm.py).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ddcodec.format import armint
from ddcodec.format.architecture import ArmShape

MAX_LOG2_SCALE = armint.MIN_LOG2_SCALE + (armint.LEVELS - 1) / armint.LEVELS_PER_OCTAVE

INIT_LOG2_SCALE = -2.0  # the ARM starts at b = 1/4: latents at 0 cost 0.05 bits each, as under the linear model


def init_arm(shape: ArmShape, generator: torch.Generator) -> list[torch.Tensor]:
    """Fresh ARM tensors, (weight, bias) per layer: hidden layers uniform in +-1/sqrt(fan_in) and zero biases; the
    output layer's weights zero, so that the ARM starts predicting μ = 0, log2 b = INIT_LOG2_SCALE everywhere (at
    b = 1 the rounded zeros of a fresh fit cost 1.1 bits each, and the rate control's λ ran up 100-fold before the
    ARM had learnt better)."""
    out = []
    layers = shape.layer_shapes()
    for j, (o, i) in enumerate(layers):
        bound = 0.0 if j == len(layers) - 1 else 1.0 / math.sqrt(i)
        out += [(torch.rand((o, i), generator=generator) * 2 - 1) * bound, torch.zeros(o)]
    out[-1][1] = INIT_LOG2_SCALE
    return out


def contexts(shape: ArmShape, grids: Sequence[torch.Tensor]) -> torch.Tensor:
    """The ARM's inputs for every value of B networks' grids (each (B, h, w), stream order): (B, values, inputs), the
    values in stream order (grid after grid, rows from the top), the neighbours 0 outside their grid."""
    pad = armint.PAD
    offsets = armint.NEIGHBOURS[: shape.neighbours]
    parts = []
    for g, grid in enumerate(grids):
        h, w = grid.shape[1:]
        p = F.pad(grid, (pad, pad, pad, 0))
        feats = [p[:, pad + dy : pad + dy + h, pad + dx : pad + dx + w] for dy, dx in offsets]
        if shape.coarser:
            if g == 0:
                feats.append(torch.zeros_like(grid))
            else:
                prev = grids[g - 1]
                rows = torch.arange(h, device=grid.device) * prev.shape[1] // h
                cols = torch.arange(w, device=grid.device) * prev.shape[2] // w
                feats.append(prev[:, rows][:, :, cols])
        parts.append(torch.stack(feats, -1).flatten(1, 2))
    return torch.cat(parts, 1)


def forward(arm: Sequence[torch.Tensor], x: torch.Tensor, as_coded: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """B networks' ARMs ((weight (B, out, in), bias (B, out)) per layer) on inputs (B, n, inputs): μ and log2 b,
    (B, n) each, the latter clamped to the coder's levels; with `as_coded`, both as the coder's tables hold them."""
    n_layers = len(arm) // 2
    for j in range(n_layers):
        x = torch.baddbmm(arm[2 * j + 1][:, None, :], x, arm[2 * j].transpose(1, 2))
        if j < n_layers - 1:
            x = torch.relu(x)
    mean, log2_scale = x[..., 0], x[..., 1].clamp(armint.MIN_LOG2_SCALE, MAX_LOG2_SCALE)
    return _as_coded(mean, log2_scale) if as_coded else (mean, log2_scale)


def _as_coded(mean: torch.Tensor, log2_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """μ floored to 1/FRAC and log2 b rounded to 1/LEVELS_PER_OCTAVE, as _armint.c codes them, with straight-through
    gradients: the ARM's last fit (refit_arm), to latents that no longer move. A fit with μ continuous learns means
    near 1/2 with small scales (a value 0 or 1 for one bit), which the coder's quarter-step means code at up to ~11
    bits (kodim14 at 0.15 bpp: coded 19 % above the estimate; kodim03, 768x512: 26-50 %); the whole fit through
    these straight-through values stopped the rate term (λ ran 10-fold up, two thirds of the latents nonzero)."""
    frac, levels = armint.FRAC, armint.LEVELS_PER_OCTAVE
    return (mean + (torch.floor(mean * frac) / frac - mean).detach(),
            log2_scale + (torch.round(log2_scale * levels) / levels - log2_scale).detach())
