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
# The coder floors the ARM's μ output to 1/FRAC: the μ it codes with is on average this much below the output, which
# the rate term's continuous μ subtracts, so that the fit learns outputs a coder's floor rounds to the nearest
# quarter. Modelled as the output itself, the floor cost 22 % more bits than rounding on a 768x512 fit (kodim03 at
# 0.3 bpp: 91,060 estimated bits with μ floored, 74,567 rounded, 73,421 continuous; benchmarks/results/ablations.md).
FLOOR_BIAS = 0.5 / armint.FRAC


def init_arm(shape: ArmShape, generator: torch.Generator) -> list[torch.Tensor]:
    """Fresh ARM tensors, (weight, bias) per layer: hidden layers uniform in +-1/sqrt(fan_in) and zero biases; the
    output layer's weights zero and its μ bias FLOOR_BIAS, so that the ARM starts predicting μ = 0 (continuous and as
    coded), log2 b = INIT_LOG2_SCALE everywhere (at b = 1 the rounded zeros of a fresh fit cost 1.1 bits each, and
    the rate control's λ ran up 100-fold before the ARM had learnt better)."""
    out = []
    layers = shape.layer_shapes()
    for j, (o, i) in enumerate(layers):
        bound = 0.0 if j == len(layers) - 1 else 1.0 / math.sqrt(i)
        out += [(torch.rand((o, i), generator=generator) * 2 - 1) * bound, torch.zeros(o)]
    out[-1][0], out[-1][1] = FLOOR_BIAS, INIT_LOG2_SCALE
    return out


def forward(shape: ArmShape, arm: Sequence[torch.Tensor], grids: Sequence[torch.Tensor]
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """B networks' ARMs ((weight (B, out, in), bias (B, out)) per layer) on every value of their grids (each
    (B, h, w)): μ and log2 b, (B, values) each in stream order (grid after grid, rows from the top), the latter
    clamped to the coder's levels; μ is the output less FLOOR_BIAS, the mean of the coder's floored μ. The
    neighbours are 0 outside their grid, as armint codes them. Channels first: the first layer is a causal convolution of each grid
    (its neighbours' weights as a kernel, plus the co-located value of the preceding grid), the others one batched
    matrix product over all values, so that no (values x inputs) contexts tensor is built (half the time of
    gathering the contexts and multiplying them: benchmarks/results/stages-cpu.md)."""
    x = torch.relu(_first_layer(shape, arm[0], arm[1], grids))
    n_layers = len(arm) // 2
    for j in range(1, n_layers):
        x = torch.baddbmm(arm[2 * j + 1][:, :, None], arm[2 * j], x)
        if j < n_layers - 1:
            x = torch.relu(x)
    output, log2_scale = x[:, 0], x[:, 1].clamp(armint.MIN_LOG2_SCALE, MAX_LOG2_SCALE)
    return output - FLOOR_BIAS, log2_scale


def _first_layer(shape: ArmShape, weight: torch.Tensor, bias: torch.Tensor, grids: Sequence[torch.Tensor]
                 ) -> torch.Tensor:
    """The ARM's first linear layer (weight (B, out, inputs), bias (B, out)) on every value's inputs, (B, out,
    values): each grid convolved with a kernel that holds the weight of neighbour (dy, dx) at (dy + up, dx + side),
    the rest 0."""
    offsets = torch.as_tensor(armint.NEIGHBOURS[: shape.neighbours], device=weight.device)
    up, side = int(-offsets[:, 0].min()), int(offsets[:, 1].abs().max())
    batch, out = weight.shape[:2]
    kernel = weight.new_zeros(batch, out, up + 1, 2 * side + 1)
    kernel[:, :, offsets[:, 0] + up, offsets[:, 1] + side] = weight[:, :, : shape.neighbours]
    kernel = kernel.reshape(batch * out, 1, up + 1, 2 * side + 1)
    parts = []
    for g, grid in enumerate(grids):
        h, w = grid.shape[1:]
        padded = F.pad(grid, (side, side, up, 0))[None]
        y = F.conv2d(padded, kernel, groups=batch).view(batch, out, h * w)
        if shape.coarser and g > 0:
            y = y + weight[:, :, -1:] * _co_located(grids[g - 1], h, w).reshape(batch, 1, h * w)
        parts.append(y)
    return torch.cat(parts, 2) + bias[:, :, None]


def _co_located(coarser: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The value of the grid `coarser` (B, h', w') at each position of an h x w grid (row y reads row y·h' // h, as
    armint does): (B, h, w)."""
    rows = torch.arange(h, device=coarser.device) * coarser.shape[1] // h
    cols = torch.arange(w, device=coarser.device) * coarser.shape[2] // w
    return coarser[:, rows][:, :, cols]
