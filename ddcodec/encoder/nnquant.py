"""Uniform per-tensor quantization of the weights, with steps allocated by rate-distortion.

Each tensor t gets a step 2^(code/4) (the code is one signed byte in the header). Steps are allocated with one
knob, mu: quantizing tensor t with step s adds about a_t·s² to the MSE (a_t is measured by injecting noise) and
costs about -n_t·log2(s) bits, so the Lagrangian optimum is s_t = sqrt(mu·n_t / a_t), which adds about mu to the
MSE per parameter. Quantization-aware fine-tuning then uses training.quantizer.ste_quantize.
"""

from __future__ import annotations

import math
from typing import Collection, Sequence

import numpy as np
import torch

from ddcodec.format.container import step_from_code

STEP_CODE_MIN, STEP_CODE_MAX = -128, 127


def code_for_step(step: float) -> int:
    """The header code whose step is nearest to `step` in log scale, clamped to one signed byte."""
    return int(min(max(round(4 * math.log2(step)), STEP_CODE_MIN), STEP_CODE_MAX))


def quantize(weights: Sequence[torch.Tensor], codes: Sequence[int]) -> list[np.ndarray]:
    """Integer tensors round(w / step), as int64 numpy arrays."""
    return [torch.round(w.detach() / step_from_code(c)).cpu().numpy().astype(np.int64) for w, c in zip(weights, codes)]


def step_tensors(codes: Sequence[Sequence[int]], weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per weight tensor (B, ...), the steps of the B networks' codes (codes[b][t]) shaped to broadcast over it."""
    return [
        torch.tensor([step_from_code(c[t]) for c in codes], device=w.device).view(-1, *[1] * (w.dim() - 1))
        for t, w in enumerate(weights)
    ]


MAX_RELATIVE_BITS = 10  # no step is finer than a tensor's spread / 2^10, so integers stay in range


def spread(w: torch.Tensor) -> float:
    """The scale of a tensor's values: its standard deviation or mean magnitude, whichever is larger."""
    return max(float(w.std()) if w.numel() > 1 else 0.0, float(w.abs().mean()), 1e-3)


def sensitivities(
    mse_of, weights: Sequence[torch.Tensor], draws: int = 2, rel: float = 0.05, skip: Collection[int] = ()
) -> list[list[float]]:
    """a[b][t]: the MSE that uniform noise of width s on tensor t adds to network b's image, divided by s².

    `weights` are batched (B, ...) and `mse_of(weights)` returns the B reconstruction errors; the noise width is
    `rel` times each network's spread of that tensor. Each draw is antithetic (+noise and -noise), so the gradient's
    first-order term cancels and only the curvature that quantization pays for is measured. Tensors in `skip`
    (not allocated a step) get a[b][t] = 1 without being measured.
    """
    gen = torch.Generator().manual_seed(0)
    base = mse_of(weights).double().cpu()
    out = torch.empty(len(base), len(weights), dtype=torch.float64)
    out[:, list(skip)] = 1.0
    for t, w in enumerate(weights):
        if t in skip:
            continue
        s = torch.tensor([rel * spread(wb) for wb in w], dtype=torch.float64)
        added = torch.zeros_like(base)
        for _ in range(draws):
            noise = ((torch.rand(w.shape, generator=gen) - 0.5) * s.float().view(-1, *[1] * (w.dim() - 1))).to(w.device)
            for sign in (1, -1):
                trial = list(weights)
                trial[t] = w + sign * noise
                added += mse_of(trial).double().cpu() - base
        out[:, t] = (added / (2 * draws)).clamp_min(1e-12) / s**2
    return out.tolist()


def allocate_steps(
    mu: float, sens: Sequence[float], weights: Sequence[torch.Tensor], ones: Collection[int] = ()
) -> list[int]:
    """Step codes for the Lagrangian optimum s_t = sqrt(mu·n_t / a_t), between spread / 2^10 and the spread.

    The upper bound keeps a tensor whose measured sensitivity is tiny from being rounded away altogether. Tensors
    in `ones` (held at 1 by the encoder) get step 1, so that they code as one constant.
    """
    return [
        0 if t in ones
        else code_for_step(min(max(math.sqrt(mu * w.numel() / a), spread(w) * 2.0**-MAX_RELATIVE_BITS), spread(w)))
        for t, (a, w) in enumerate(zip(sens, weights))
    ]
