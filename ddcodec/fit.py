"""Fitting the weights to images: Adam on MSE with a cosine learning rate, keeping each image's best iterate.

A batch of B images of one size is fitted as B independent networks in one set of batched kernels: the loss is the
sum of the per-image MSEs, so each network's gradients (and Adam's per-weight updates) are those of its own image.
"""

from __future__ import annotations

import math
from typing import Collection, Sequence

import torch

from .model import Architecture, render_batch
from .progress import Progress
from .quant import ste_quantize


def pick_device(device: str = "auto") -> torch.device:
    """'auto' means CUDA when available, else CPU; 'cuda' without a GPU is an error for the caller to report."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA GPU is available")
    return torch.device(device)


def per_image_mse(
    arch: Architecture, weights: Sequence[torch.Tensor], z: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """MSE of each network's image against its target, shape (B,)."""
    return torch.mean((render_batch(arch, weights, z) - target) ** 2, dim=(1, 2, 3))


def fit(
    arch: Architecture,
    target: torch.Tensor,
    z: torch.Tensor,
    weights: Sequence[torch.Tensor],
    iters: int,
    lr: float,
    steps: Sequence[torch.Tensor] | None = None,
    frozen: Collection[int] = (),
    progress: Progress | None = None,
    desc: str = "fit",
    label: str = "",
) -> tuple[list[torch.Tensor], list[float]]:
    """Minimize each image's MSE for `iters` Adam steps; return the best weights seen per image and their MSEs.

    Shapes: target (B, C, H, W), z (B, c, h0, w0), each weight (B, ...). With `steps` (one broadcastable tensor per
    weight tensor), the forward pass uses the quantized weights (straight-through), so the best iterate is the best
    *quantized* network: quantization-aware fine-tuning. Tensors whose index is in `frozen` keep their values.
    """
    params = [w.detach().clone().requires_grad_(t not in frozen) for t, w in enumerate(weights)]
    opt = torch.optim.Adam([p for p in params if p.requires_grad], lr=lr)
    best = [p.detach().clone() for p in params]
    best_mse = torch.full((target.shape[0],), math.inf, device=target.device)
    stage = progress.stage(desc, iters, label) if progress else None
    for it in range(iters):
        for group in opt.param_groups:
            group["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * it / iters)))
        mse = per_image_mse(arch, ste_quantize(params, steps) if steps is not None else params, z, target)
        opt.zero_grad(set_to_none=True)
        mse.sum().backward()
        with torch.no_grad():
            better = mse < best_mse
            best_mse = torch.where(better, mse, best_mse)
            for b, p in zip(best, params):
                b.copy_(torch.where(better.view(-1, *[1] * (p.dim() - 1)), p, b))
        opt.step()
        if stage and it % 10 == 0:
            stage.update(it + 1, float(mse.detach().max()))
    if iters == 0:
        with torch.no_grad():
            best_mse = per_image_mse(arch, ste_quantize(best, steps) if steps is not None else best, z, target)
    if stage:
        stage.close(float(best_mse.max()))
    return best, best_mse.tolist()
