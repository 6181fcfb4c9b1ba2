"""Differentiable estimates of what the range coder will spend on the latent grids, for the rate term of the loss.

A value y (with uniform training noise, or straight-through rounded) costs -log2 P(y) bits under a discrete Laplace,
P(y) = F(|y| + 1/2) - F(|y| - 1/2), whose scale is the one the coder's two-sided geometric model fits to the rounded
values' mean magnitude (not differentiated). grid_bits takes one Laplace around 0 per grid (the coder's flat model);
context_bits, which the fit uses, the residual from the context model's prediction under its bucket's Laplace
(context.py), as the coder codes grids of at least 4x4.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ddcodec.format.context import BUCKETS, COEF_ONE, EDGES, TAPS

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


def context_bits(grids: Sequence[torch.Tensor], clean: Sequence[torch.Tensor] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimated bits of B networks' latent grids (each (B, h, w)) under the coder's context model (context.py):
    each value costs -log2 P of its residual from the integer prediction of its taps, under the Laplace of its
    bucket. The predictor's weights, the buckets and their scales are those the coder would fit to the rounded
    `clean` grids (default: the grids); the prediction is made from the neighbours as the loss sees them (with
    their training noise). None of these is differentiated: the gradient pulls each value towards what its
    neighbours predict (differentiating through the taps too, or predicting from the rounded neighbours, measured
    worse: benchmarks/results/ablations.md). Returns the estimate for `grids` and the bits of the rounded clean
    grids, (B,) each; all grids go through one pass, since on small images the per-operation cost dominates."""
    with torch.no_grad():
        rounded = [torch.round(c) for c in (clean or grids)]
        taps = [_taps(q) for q in rounded]
        coefs = _predictors(taps, rounded)
        residual = torch.cat([(q - _predict(c, t)).flatten(1) for q, c, t in zip(rounded, coefs, taps)], 1)
        edges = torch.as_tensor(EDGES, device=rounded[0].device)
        bucket = torch.cat([torch.bucketize(t.abs().sum(1).clamp_max(int(EDGES[-1])), edges, right=True).flatten(1)
                            + BUCKETS * j for j, t in enumerate(taps)], 1)
        scale = torch.gather(_bucket_scales(residual.abs(), bucket, BUCKETS * len(taps)), 1, bucket)
        rounded_bits = laplace_bits(residual, scale).sum(1)
        preds = [_predict(c, _taps(g)) for c, g in zip(coefs, grids)]  # from the grids as the loss sees them
    estimate = laplace_bits(torch.cat([(g - p).flatten(1) for g, p in zip(grids, preds)], 1), scale).sum(1)
    return estimate, rounded_bits


def _taps(g: torch.Tensor) -> torch.Tensor:
    """The context taps N, NW, NE, NN of every value of grids (B, h, w), zero outside: (B, 4, h, w)."""
    h, w = g.shape[1:]
    p = torch.nn.functional.pad(g, (1, 1, 2, 0))
    return torch.stack([p[:, 1:h + 1, 1:-1], p[:, 1:h + 1, :-2], p[:, 1:h + 1, 2:], p[:, :h, 1:-1]], 1)


def _predictors(taps: Sequence[torch.Tensor], grids: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per grid, the least-squares weights of its taps in units of 1/16, rounded and clipped as context.fit_coefs
    stores them: (B, 4) each, solved for all grids at once."""
    flat = [t.flatten(2).double() for t in taps]
    ridge = 1e-6 * torch.eye(TAPS, dtype=torch.double, device=flat[0].device)  # an all-zero grid solves to 0
    gram = torch.stack([t @ t.transpose(1, 2) for t in flat]) + ridge
    rhs = torch.stack([t @ q.flatten(1).double()[:, :, None] for t, q in zip(flat, grids)])
    coefs = torch.round(torch.linalg.solve(gram, rhs)[..., 0] * COEF_ONE).clamp(-128, 127)
    return list(coefs.to(grids[0].dtype))


def _predict(coefs: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """The coder's integer prediction floor((c·taps + 8) / 16) of grids from their taps."""
    return torch.floor((torch.einsum("bk,bkhw->bhw", coefs, taps) + COEF_ONE // 2) / COEF_ONE)


def _bucket_scales(magnitude: torch.Tensor, bucket: torch.Tensor, n: int) -> torch.Tensor:
    """The Laplace scale the coder fits to each of n buckets' residual magnitudes, per network: (B, n)."""
    sums = torch.zeros(magnitude.shape[0], n, dtype=magnitude.dtype, device=magnitude.device)
    counts = torch.zeros_like(sums)
    sums.scatter_add_(1, bucket, magnitude)
    counts.scatter_add_(1, bucket, torch.ones_like(magnitude))
    return laplace_scale(sums / counts.clamp_min(1))

