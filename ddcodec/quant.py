"""Uniform per-tensor quantization of the weights, with steps allocated by rate-distortion.

Each tensor t gets a step 2^(code/4) (the code is one signed byte in the header). Steps are allocated with one
knob, mu: quantizing tensor t with step s adds about a_t·s² to the MSE (a_t is measured by injecting noise) and
costs about -n_t·log2(s) bits, so the Lagrangian optimum is s_t = sqrt(mu·n_t / a_t), which adds about mu to the
MSE per parameter. Quantization-aware fine-tuning then uses `ste_quantize`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

STEP_CODE_MIN, STEP_CODE_MAX = -128, 127


def step_from_code(code: int) -> float:
    """The quantization step that a header's step code stands for."""
    return 2.0 ** (code / 4)


def code_for_step(step: float) -> int:
    """The header code whose step is nearest to `step` in log scale, clamped to one signed byte."""
    return int(min(max(round(4 * math.log2(step)), STEP_CODE_MIN), STEP_CODE_MAX))


def quantize(weights: Sequence[torch.Tensor], codes: Sequence[int]) -> list[np.ndarray]:
    """Integer tensors round(w / step), as int64 numpy arrays."""
    return [torch.round(w.detach() / step_from_code(c)).cpu().numpy().astype(np.int64) for w, c in zip(weights, codes)]


def dequantize(ints: Sequence[np.ndarray], codes: Sequence[int]) -> list[torch.Tensor]:
    """Float32 weights from integer tensors and step codes."""
    return [torch.from_numpy(q.astype(np.float32) * np.float32(step_from_code(c))) for q, c in zip(ints, codes)]


def ste_quantize(weights: Sequence[torch.Tensor], codes: Sequence[int]) -> list[torch.Tensor]:
    """Quantized weights in the forward pass, identity in the backward pass (straight-through estimator)."""
    out = []
    for w, c in zip(weights, codes):
        step = step_from_code(c)
        out.append(w + (torch.round(w / step) * step - w).detach())
    return out


MAX_RELATIVE_BITS = 10  # no step is finer than a tensor's spread / 2^10, so integers stay in range


def spread(w: torch.Tensor) -> float:
    """The scale of a tensor's values: its standard deviation or mean magnitude, whichever is larger."""
    return max(float(w.std()) if w.numel() > 1 else 0.0, float(w.abs().mean()), 1e-3)


def sensitivities(mse_of, weights: Sequence[torch.Tensor], draws: int = 2, rel: float = 0.05) -> list[float]:
    """a_t per tensor: the MSE added by uniform noise of width s on tensor t, divided by s².

    `mse_of(weights)` evaluates the reconstruction error; the noise width is `rel` times the tensor's spread.
    """
    gen = torch.Generator().manual_seed(0)
    base = mse_of(weights)
    out = []
    for t, w in enumerate(weights):
        s = rel * spread(w)
        added = 0.0
        for _ in range(draws):
            noise = (torch.rand(w.shape, generator=gen) - 0.5).to(w.device) * s
            trial = list(weights)
            trial[t] = w + noise
            added += mse_of(trial) - base
        out.append(max(added / draws, 1e-12) / (s * s))
    return out


def allocate_steps(mu: float, sens: Sequence[float], weights: Sequence[torch.Tensor]) -> list[int]:
    """Step codes for the Lagrangian optimum s_t = sqrt(mu·n_t / a_t), never finer than spread / 2^10."""
    return [
        code_for_step(max(math.sqrt(mu * w.numel() / a), spread(w) * 2.0**-MAX_RELATIVE_BITS))
        for a, w in zip(sens, weights)
    ]
