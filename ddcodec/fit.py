"""Fitting the weights to images: Adam on MSE (plus a rate term for coded latents) with a cosine learning rate.

A batch of B images of one size is fitted as B independent networks in one set of batched kernels: the loss is the
sum of the per-image losses, so each network's gradients (and Adam's per-weight updates) are those of its own image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Collection, Sequence

import torch
import torch.nn.functional as F

from .adam import Adam
from .architecture import Architecture
from .model import render_batch
from .progress import Progress
from .quant import ste_quantize
from .rate import context_bits, quantize_grids


def pick_device(device: str = "auto") -> torch.device:
    """'auto' means CUDA when available, else CPU; 'cuda' without a GPU is an error for the caller to report."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA GPU is available")
    return torch.device(device)


def per_image_mse(
    arch: Architecture, weights: Sequence[torch.Tensor], z: torch.Tensor, target: torch.Tensor, coarse: int = 0
) -> torch.Tensor:
    """MSE of each network's image against its target, shape (B,); with `coarse` = s, of the image rendered 2^s
    times smaller against the target shrunk as much (`target` may be given at either size)."""
    out = render_batch(arch, weights, z, coarse)
    return torch.mean((out - shrink(target, out.shape[2:])) ** 2, dim=(1, 2, 3))


def shrink(images: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Images (B, C, H, W) averaged down to `size` (area interpolation), or as they are if already that size."""
    return images if tuple(images.shape[2:]) == tuple(size) else F.interpolate(images, size=tuple(size), mode="area")


Estimate = Callable[[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]


def linear_context_bits(grids: list[torch.Tensor], clean: list[torch.Tensor], arm: list[torch.Tensor]
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """RateTerm's estimate for the linear context model of version 3 (rate.context_bits; no ARM tensors)."""
    return context_bits(grids, clean)


MIN_CALIBRATION_BITS = 1000.0  # below this the coder's fixed costs (model descriptors) dominate the ratio
CALIBRATION_RANGE = (0.5, 1.5)


@dataclass
class RateTerm:
    """lam · (estimated latent bits) / pixels added to each image's loss; with `target_bits`, lam is steered each
    iteration (multiplicatively, by `gain`) so that the bits of the rounded grids settle on the target: rate control
    in the loop. With `coded_bits`, those bits are the estimate scaled to what the coder really spends (its context
    model codes spatially correlated grids below the factorized estimate), measured every `every` iterations.
    `estimate(grids as the loss sees them, clean grids, ARM tensors)` gives the differentiable bits and those of the
    rounded clean grids, (B,) each: the linear context model's, or the ARM's (arm.arm_bits), whose tensors are
    network weights that the fit trains through this term."""

    lam: torch.Tensor  # (B,)
    target_bits: torch.Tensor | None = None  # (B,)
    gain: float = 0.01  # per iteration; 10 / iterations lets lam move e^10-fold over a fit at most
    floor: float = 0.0  # lam never goes below this (latents start at 0 and would otherwise overgrow at first)
    coded_bits: Callable[[list[torch.Tensor]], torch.Tensor] | None = None  # the coder's bits of rounded grids (B,)
    every: int = 100
    estimate: Estimate = linear_context_bits
    calibration: torch.Tensor | float = 1.0  # coded / estimated bits at the last measurement
    _steps: int = field(default=0, repr=False)

    def steer(self, grids: list[torch.Tensor], bits: torch.Tensor) -> None:
        """One step of lam towards the target, from the estimated bits of the grids once rounded."""
        if self.target_bits is None:
            return
        if self.coded_bits is not None and self._steps % self.every == 0:  # once the grids hold enough to measure
            ratio = (self.coded_bits([torch.round(g) for g in grids]) / bits.clamp_min(1.0)).clamp(*CALIBRATION_RANGE)
            self.calibration = torch.where(bits >= MIN_CALIBRATION_BITS, ratio, torch.as_tensor(self.calibration))
        self._steps += 1
        self.lam = (self.lam * torch.exp(self.gain * (bits * self.calibration / self.target_bits - 1).clamp(-1, 1))
                    ).clamp_min(self.floor)


def fit(
    arch: Architecture,
    target: torch.Tensor,
    z: torch.Tensor,
    weights: Sequence[torch.Tensor],
    iters: int,
    lr: float,
    steps: Sequence[torch.Tensor | float] | None = None,
    frozen: Collection[int] = (),
    progress: Progress | None = None,
    desc: str = "fit",
    label: str = "",
    rate: RateTerm | None = None,
    latent_noise: bool = False,
    keep_best: bool = True,
    coarse: int = 0,
    span: tuple[int, int] | None = None,
) -> tuple[list[torch.Tensor], list[float]]:
    """Minimize each image's loss for `iters` Adam steps; return the weights (the best seen per image, or the last
    with keep_best=False) and their MSEs.

    Shapes: target (B, C, H, W), z (B, c, h0, w0), each weight (B, ...). With `steps` (one broadcastable step per
    weight tensor), the forward pass uses the quantized weights (straight-through): quantization-aware fine-tuning.
    Latent grids (coded-input profile) are always quantized in the forward pass: uniform noise with
    `latent_noise`, else straight-through rounding; `rate` adds their estimated bits. Tensors in `frozen` stay.
    `coarse` = s fits the image 2^s times smaller (coarse-to-fine: most iterations on a fraction of the pixels).
    The learning rate follows a cosine from lr down to 2 % of it over the iterations, or, with `span` = (start,
    total), over iterations start .. start+iters of a `total`-iteration cosine: one schedule across fits in stages.
    """
    pixels = target.shape[2] * target.shape[3]  # the rate term's bits per pixel of the full-size image
    target = shrink(target, [-(-n >> coarse) for n in target.shape[2:]])
    params = [w.detach().clone().requires_grad_(t not in frozen) for t, w in enumerate(weights)]
    grids = sorted(arch.grid_indices)
    opt = Adam([p for p in params if p.requires_grad], lr=lr)
    gens = [torch.Generator(device=target.device).manual_seed(0) for _ in range(target.shape[0])]
    start, total = span or (0, iters)
    best = [p.detach().clone() for p in params]
    best_loss = torch.full((target.shape[0],), math.inf, device=target.device)
    best_mse = best_loss.clone()

    def losses(ps: list[torch.Tensor], noise: bool) -> tuple[torch.Tensor, torch.Tensor]:
        ws = ste_quantize(ps, steps) if steps is not None else list(ps)
        if grids:
            for t, g in zip(grids, quantize_grids([ps[t] for t in grids], noise, gens)):
                ws[t] = g
        mse = per_image_mse(arch, ws, z, target, coarse)
        if rate is None or not grids:
            return mse, mse
        bits, rounded_bits = rate.estimate([ws[t] for t in grids], [ps[t] for t in grids],
                                           [ws[t] for t in arch.arm_indices])
        with torch.no_grad():  # steered by what the rounded grids would cost, not by the noisy proxy
            rate.steer([ps[t] for t in grids], rounded_bits)
        return mse + rate.lam * bits / pixels, mse

    stage = progress.stage(desc, iters, label) if progress else None
    for it in range(iters):
        opt.lr = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (start + it) / total)))
        loss, mse = losses(params, latent_noise)
        opt.zero_grad()
        loss.sum().backward()
        with torch.no_grad():
            better = loss < best_loss if keep_best else torch.ones_like(loss, dtype=torch.bool)
            best_loss = torch.where(better, loss, best_loss)
            best_mse = torch.where(better, mse, best_mse)
            for b, p in zip(best, params):
                b.copy_(torch.where(better.view(-1, *[1] * (p.dim() - 1)), p, b))
        opt.step()
        if stage and it % 10 == 0:
            stage.update(it + 1, float(mse.detach().max()))
    if iters == 0 or not keep_best or latent_noise:  # the returned weights' MSE with their latents rounded
        best = best if keep_best else [p.detach().clone() for p in params]
        with torch.no_grad():
            best_mse = per_image_mse(arch, _rounded_grids(arch, best, steps), z, target, coarse)
    if stage:
        stage.close(float(best_mse.max()))
    return best, best_mse.tolist()


def _rounded_grids(arch: Architecture, weights: Sequence[torch.Tensor], steps) -> list[torch.Tensor]:
    """The weights (quantized with `steps` if given) with the latent grids rounded, as the decoder sees them."""
    ws = ste_quantize(weights, steps) if steps is not None else list(weights)
    for t in arch.grid_indices:
        ws[t] = torch.round(weights[t])
    return ws
