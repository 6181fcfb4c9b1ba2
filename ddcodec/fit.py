"""Fitting the network's weights to an image: Adam on MSE with a cosine learning rate, keeping the best iterate."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from tqdm import tqdm

from .model import Architecture, render
from .quant import ste_quantize


def pick_device(device: str = "auto") -> torch.device:
    """'auto' means CUDA when available, else CPU; 'cuda' without a GPU is an error for the caller to report."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA GPU is available")
    return torch.device(device)


def fit(
    arch: Architecture,
    target: torch.Tensor,
    z: torch.Tensor,
    weights: Sequence[torch.Tensor],
    iters: int,
    lr: float,
    step_codes: Sequence[int] | None = None,
    progress: bool = False,
    desc: str = "fit",
) -> tuple[list[torch.Tensor], float]:
    """Minimize MSE(render(weights), target) for `iters` Adam steps; return the best weights seen and their MSE.

    With `step_codes`, the forward pass uses the quantized weights (straight-through), so the best iterate is the
    best *quantized* network: quantization-aware fine-tuning.
    """
    params = [w.detach().clone().to(target.device).requires_grad_(True) for w in weights]
    opt = torch.optim.Adam(params, lr=lr)
    best, best_mse = [p.detach().clone() for p in params], math.inf
    bar = tqdm(range(iters), desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for it in bar:
        for group in opt.param_groups:
            group["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * it / iters)))
        used = ste_quantize(params, step_codes) if step_codes is not None else params
        loss = torch.mean((render(arch, used, z) - target) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        mse = loss.item()
        if mse < best_mse:
            best_mse, best = mse, [p.detach().clone() for p in params]
        opt.step()
        if progress and it % 10 == 0:
            bar.set_postfix(loss=f"{mse:.2e}", psnr=f"{-10 * math.log10(max(mse, 1e-12)):.2f}")
    if iters == 0:
        with torch.no_grad():
            used = ste_quantize(params, step_codes) if step_codes is not None else params
            best_mse = torch.mean((render(arch, used, z) - target) ** 2).item()
    return best, best_mse
