"""The ARM for the encoder: its differentiable rate and its quantization (the network itself is
ddcodec/component/arm.py).

A small MLP shared by all grids (Cool-chic's auto-regressive model) maps each latent value's causal neighbours
(armint.NEIGHBOURS) and, optionally, the preceding grid's co-located value to the mean μ and log2 scale of a discrete
Laplace, P(q) ∝ exp(-|q - μ|/b) over the integers: the model the coder's tables (armint.py) implement with μ to a
quarter and b on a quarter-octave grid, so that the rate term of the loss is the ARM's own estimate of the bits the
coder will spend. Its weights are network tensors like any other (Architecture.arm_indices): trained with the rest,
then quantized to power-of-two steps chosen by the bits they save (Cool-chic's per-module search), and coded in the
file.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ddcodec.format import armint
from ddcodec.format.architecture import Architecture, ArmShape
from ddcodec.format.entropy import RANGE, encode_ints
from ddcodec.component.arm import forward

STEP_SHIFTS = range(4, 13)  # a layer's step 2^-k is searched over these k (2^-12: weights within +-2^16)
DEFAULT_SHIFT = 8
_LN2 = math.log(2.0)


def discrete_laplace_bits(q: torch.Tensor, mean: torch.Tensor, log2_scale: torch.Tensor) -> torch.Tensor:
    """-log2 P(q) under P(k) = exp(-|k - μ|/b) / Z over the integers k, Z = Σ_k exp(-|k - μ|/b)
    = (exp(-f/b) + exp(-(1-f)/b)) / (1 - exp(-1/b)) with f = μ - floor(μ): the coder's model. For q between two
    integers (training noise), the linear interpolation of the bits of both: never below 0 (the pmf's formula at a
    non-integer q is not a density, and a fit drove latents and means to half-integers to make it negative)."""
    inv = torch.exp2(-log2_scale)
    f = mean - torch.floor(mean).detach()
    log_z = torch.logaddexp(-f * inv, (f - 1) * inv) - torch.log1p(-torch.exp(-inv))
    low = torch.floor(q).detach()
    t = q - low
    bits_low = (low - mean).abs() * inv + log_z
    bits_high = (low + 1 - mean).abs() * inv + log_z
    return (bits_low + t * (bits_high - bits_low)) / _LN2


def arm_bits(shape: ArmShape, grids: Sequence[torch.Tensor], clean: Sequence[torch.Tensor],
             arm: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The rate term's estimate (fit.RateTerm.estimate) for B networks' grids (each (B, h, w), as the loss sees them:
    noisy or rounded) and their ARM tensors, and the bits of the `clean` grids rounded (no gradient), (B,) each.

    The estimate's value is the bits of the grids under the ARM's Laplace, its inputs taken from the same grids; its
    gradient reaches the latents through the values coded (the ARM and its inputs held), and the ARM through the
    bits of the rounded grids, the values it will code (trained on the noisy ones it learnt scales as wide as the
    noise, and the rate term pulled the latents 4-5x less than the coder's model would: λ ran up 100-fold). Where
    the grids the loss sees hold the rounded
    values (hard or straight-through proxies: fine-tuning), one pass of the ARM serves both: the same values as two."""
    rounded = [torch.round(c.detach()) for c in clean]
    mean, log2_scale = forward(shape, arm, rounded)
    rounded_bits = discrete_laplace_bits(_values(rounded), mean, log2_scale).sum(1)
    if all(torch.equal(g.detach(), r) for g, r in zip(grids, rounded)):
        held = mean.detach(), log2_scale.detach()
    else:
        held = forward(shape, [a.detach() for a in arm], [g.detach() for g in grids])
    noisy = discrete_laplace_bits(_values(grids), *held).sum(1)
    return noisy + rounded_bits - rounded_bits.detach(), rounded_bits.detach()


def _values(grids: Sequence[torch.Tensor]) -> torch.Tensor:
    """B networks' grids (each (B, h, w)) as one row of values per network, (B, values), in stream order."""
    return torch.cat([g.flatten(1) for g in grids], 1)


def coded_grid_bits(shape: ArmShape, rounded: Sequence[torch.Tensor], arm: Sequence[torch.Tensor]) -> torch.Tensor:
    """What the integer coder (armint.py) spends on each of B networks' rounded grids (each (B, h, w)) under their
    ARM tensors (each (B, ...)) quantized at 2^-DEFAULT_SHIFT, (B,) bits: the rate term's calibration. Its tables
    (μ to a quarter, b on a quarter-octave grid) and the stream's last words cost ~20 % more than arm_bits on
    sparse crops (kodim14 at 0.15 bpp: 5,312 bits coded, 4,468 estimated with the same quantized ARM)."""
    out = []
    for b in range(rounded[0].shape[0]):
        grids = [g[b].detach().cpu().clamp(-armint.MAX_LATENT, armint.MAX_LATENT).numpy().astype(np.int64)
                 for g in rounded]
        ints = [np.round(np.clip(a[b].detach().cpu().double().numpy(), -bound, bound) * 2.0**DEFAULT_SHIFT
                         ).astype(np.int64) for a, bound in zip(arm, bounds(shape))]
        out.append(armint.stream_bits(grids, armint.fixed_point(ints, [-4 * DEFAULT_SHIFT] * len(ints)), shape))
    return torch.tensor(out, dtype=rounded[0].dtype, device=rounded[0].device)


def bounds(shape: ArmShape) -> list[float]:
    """The largest magnitude each ARM tensor may hold in a file (weights, biases: armint's fixed-point limits)."""
    return [b for _ in shape.layer_shapes() for b in (armint.MAX_FIXED_WEIGHT / 2.0**armint.MAX_WEIGHT_SHIFT,
                                                      armint.MAX_FIXED_BIAS / 2.0**armint.MAX_BIAS_SHIFT)]


def quantize_arm(shape: ArmShape, arm: Sequence[np.ndarray], grids: Sequence[np.ndarray]
                 ) -> tuple[list[np.ndarray], list[int], int]:
    """One network's ARM tensors (float, (weight, bias) per layer) quantized for coding its integer grids: a step
    2^-k per layer (its weight and bias), k in STEP_SHIFTS, chosen layer by layer (one pass from the output layer,
    the others at 2^-DEFAULT_SHIFT) by the bits of the ARM-coded grids plus those of the ARM's own tensors.
    Returns the integer tensors, their step codes (-4k) and the total bits."""
    layers = len(arm) // 2
    clamped = [np.clip(a, -b, b) for a, b in zip(arm, bounds(shape))]
    shifts = [DEFAULT_SHIFT] * layers

    def total(shifts: Sequence[int]) -> tuple[int, list[np.ndarray], list[int]]:
        codes = [-4 * k for k in shifts for _ in range(2)]
        ints = [np.round(a * 2.0**k).astype(np.int64) for a, k in zip(clamped, (k for k in shifts for _ in range(2)))]
        try:  # too fine a step can need longer tables than a payload may declare
            return armint.stream_bits(grids, armint.fixed_point(ints, codes), shape) + 8 * len(
                encode_ints(ints, RANGE)), ints, codes
        except ValueError:
            return 1 << 62, ints, codes

    best = total(shifts)
    for j in reversed(range(layers)):
        for k in STEP_SHIFTS:
            trial = shifts[:j] + [k] + shifts[j + 1:]
            result = total(trial)
            if result[0] < best[0]:
                best, shifts = result, trial
    bits, ints, codes = best
    return ints, codes, bits


def round_latents(arch: Architecture, weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """B networks' weights with the latent grids rounded (and, with an ARM, clamped to what it codes) and the ARM's
    tensors clamped to what its fixed point holds."""
    limit = armint.MAX_LATENT if arch.arm is not None else math.inf
    out = [torch.round(w).clamp(-limit, limit) if t in arch.grid_indices else w for t, w in enumerate(weights)]
    for t, bound in zip(arch.arm_indices, bounds(arch.arm) if arch.arm else []):
        out[t] = out[t].clamp(-bound, bound)
    return out


def arm_step_codes(arch: Architecture, weights: Sequence[torch.Tensor]) -> list[list[int]]:
    """Per network of B, the step codes of its ARM's tensors (quantize_arm on its rounded grids, as round_latents
    leaves them); empty lists without an ARM."""
    if arch.arm is None:
        return [[] for _ in range(weights[0].shape[0])]
    grids = sorted(arch.grid_indices)
    return [quantize_arm(arch.arm, [weights[t][b].detach().cpu().numpy() for t in arch.arm_indices],
                         [weights[t][b].detach().cpu().numpy().astype(np.int64) for t in grids])[1]
            for b in range(weights[0].shape[0])]
