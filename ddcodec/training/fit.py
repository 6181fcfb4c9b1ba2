"""Fitting the weights to images: Adam on MSE (plus a rate term for coded latents) with a cosine learning rate.

A batch of B images of one size is fitted as B independent networks in one set of batched kernels: the loss is the
sum of the per-image losses, so each network's gradients (and Adam's per-weight updates) are those of its own image.
"""

from __future__ import annotations

import math
from typing import Collection, Protocol, Sequence

import torch
import torch.nn.functional as F

from ddcodec.format.architecture import Architecture
from ddcodec.training.heap import retain_freed_memory
from ddcodec.component.model import render_batch
from ddcodec.training.optimizers import FitOptimizer
from ddcodec.training.presets import LR_FLOOR, Phase
from ddcodec.training.progress import Progress
from ddcodec.training.quantizer import LatentProxy, quantize_latents, ste_quantize

HARD = LatentProxy("hard")


class RateLoss(Protocol):
    """What the fit asks of a rate term on the latent grids, given by its caller (the encoder's is
    ddcodec.encoder.ratecontrol.RateTerm): λ per network (B,), a bit target (None: λ is not steered), the estimate
    of the grids' bits ((B,) differentiable, and (B,) of the rounded grids) and one step of λ towards the target."""

    lam: torch.Tensor
    target_bits: torch.Tensor | None

    def estimate(self, grids: list[torch.Tensor], clean: list[torch.Tensor], arm: list[torch.Tensor]
                 ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def steer(self, grids: list[torch.Tensor], bits: torch.Tensor, arm: list[torch.Tensor]) -> None: ...


def pick_device(device: str = "auto") -> torch.device:
    """'auto' means CUDA when available, else CPU; 'cuda' without a GPU is an error for the caller to report."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but no CUDA GPU is available")
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


def fit(
    arch: Architecture,
    target: torch.Tensor,
    z: torch.Tensor,
    weights: Sequence[torch.Tensor],
    phase: Phase,
    iters: int,
    lr: float,
    *,
    steps: Sequence[torch.Tensor | float] | None = None,
    frozen: Collection[int] = (),
    held: Sequence[bool] | None = None,
    rate: RateLoss | None = None,
    latent_gain: float = 1.0,
    optimizer: str = "adam",
    progress: Progress | None = None,
    label: str = "",
) -> tuple[list[torch.Tensor], list[float]]:
    """Run one phase of the schedule (ddcodec.training.presets.Phase) for `iters` Adam steps at peak learning rate
    lr · phase.lr; return the weights and their MSEs with the latent grids rounded (as the decoder sees them).

    Shapes: target (B, C, H, W), z (B, c, h0, w0), each weight (B, ...). With `steps` (one broadcastable step per
    weight tensor), the forward pass uses the quantized weights (straight-through): quantization-aware fine-tuning.
    Latent grids (coded-input profile) go through the phase's quantization proxy (ddcodec.training.quantizer), trained at
    `latent_gain` times the weights' learning rate (in integer units); `optimizer` "adam" or "soap"
    (ddcodec.training.optimizers); `rate` adds their estimated bits to the loss
    and steers its λ. Tensors in `frozen` stay; so do the latent grids of the images b with `held[b]`, at their
    rounded values. The phase's `coarse` = s fits the image 2^s times smaller.
    Returned weights: the best iterate by the loss where losses of different iterations compare (no noise, λ not
    steered), the best hard-rounded model tested every `phase.test_every` iterations, or else the last iterate.
    """
    retain_freed_memory()  # each iteration's activations reuse the last one's memory (see ddcodec.training.heap)
    pixels = target.shape[2] * target.shape[3]  # the rate term's bits per pixel of the full-size image
    target = shrink(target, [-(-n >> phase.coarse) for n in target.shape[2:]])
    params = [w.detach().clone().requires_grad_(t not in frozen) for t, w in enumerate(weights)]
    grids = sorted(arch.grid_indices)
    trained = [t for t, p in enumerate(params) if p.requires_grad]
    opt = FitOptimizer(optimizer, [params[t] for t in trained], [t in grids for t in trained], lr, latent_gain)
    gens = [torch.Generator(device=target.device).manual_seed(0) for _ in range(target.shape[0])]
    steered = rate is not None and rate.target_bits is not None
    comparable = not grids or not (steered or proxy_at(phase, 0).noisy)
    best = [p.detach().clone() for p in params]
    best_loss = torch.full((target.shape[0],), math.inf, device=target.device)
    if held is not None and len(held) != target.shape[0]:
        raise ValueError(f"held names {len(held)} images, the batch has {target.shape[0]}")
    hold = torch.tensor(held, device=target.device) if held is not None and any(held) else None

    def losses(ps: list[torch.Tensor], proxy: LatentProxy | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Each network's loss and MSE, its grids under `proxy` (None: rounded, without a gradient)."""
        ws = ste_quantize(ps, steps) if steps is not None else list(ps)
        if grids:
            shown = quantize_latents([ps[t] for t in grids], proxy or HARD, gens)
            if hold is not None:
                shown = [torch.where(hold.view(-1, 1, 1), torch.round(ps[t].detach()), g) for t, g in zip(grids, shown)]
            for t, g in zip(grids, shown):
                ws[t] = g
        mse = per_image_mse(arch, ws, z, target, phase.coarse)
        if rate is None or not grids:
            return mse, mse
        bits, rounded_bits = rate.estimate([ws[t] for t in grids], [ps[t] for t in grids],
                                           [ws[t] for t in arch.arm_indices])
        if proxy is None:
            return mse + rate.lam * rounded_bits / pixels, mse
        with torch.no_grad():  # steered by what the rounded grids would cost, not by the noisy proxy
            rate.steer([ps[t] for t in grids], rounded_bits, [ws[t] for t in arch.arm_indices])
        return mse + rate.lam * bits / pixels, mse

    def keep(loss: torch.Tensor) -> None:
        """Keep each network's parameters where `loss` is its best so far."""
        nonlocal best_loss
        better = loss < best_loss
        best_loss = torch.where(better, loss, best_loss)
        for b, p in zip(best, params):
            b.copy_(torch.where(better.view(-1, *[1] * (p.dim() - 1)), p, b))

    stage = progress.stage(phase.name, iters, label) if progress else None
    first, last = phase.cosine
    for it in range(iters):
        t = it / max(iters, 1)
        opt.set_lr(lr * phase.lr * cosine(first + (last - first) * t))
        loss, mse = losses(params, proxy_at(phase, t))
        opt.zero_grad()
        loss.sum().backward()
        with torch.no_grad():
            if comparable:
                keep(loss.detach())
            elif phase.test_every and it % phase.test_every == 0:
                keep(losses(params, None)[0])
        opt.step()
        if stage and it % 10 == 0:
            stage.update(it + 1, float(mse.detach().max()))
    with torch.no_grad():
        if phase.test_every and not comparable:
            keep(losses(params, None)[0])
        elif not comparable or iters == 0:
            best = [p.detach().clone() for p in params]
        best_mse = per_image_mse(arch, _rounded_grids(arch, best, steps), z, target, phase.coarse)
    if stage:
        stage.close(float(best_mse.max()))
    return best, best_mse.tolist()


def cosine(progress: float) -> float:
    """A cosine decay from 1 to presets.LR_FLOOR as `progress` goes from 0 to 1."""
    return LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress))


def proxy_at(phase: Phase, progress: float) -> LatentProxy:
    """The phase's latent quantization proxy at `progress` (0 .. 1) through it: temperature and noise interpolated
    linearly between their start and end values."""
    def lerp(pair: tuple[float, float]) -> float:
        return pair[0] + (pair[1] - pair[0]) * progress

    return LatentProxy(phase.latents, lerp(phase.temperature), phase.noise, lerp(phase.noise_param))


def _rounded_grids(arch: Architecture, weights: Sequence[torch.Tensor], steps) -> list[torch.Tensor]:
    """The weights (quantized with `steps` if given) with the latent grids rounded, as the decoder sees them."""
    ws = ste_quantize(weights, steps) if steps is not None else list(weights)
    for t in arch.grid_indices:
        ws[t] = torch.round(weights[t])
    return ws
