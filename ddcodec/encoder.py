"""Encoding: fit a Deep Decoder to the image, quantize its weights by rate-distortion, entropy-code, pack."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .bitstream import Header, pack
from .decoder import decode_array
from .entropy import CODERS, encode_ints
from .errors import InputError
from .fit import fit, per_image_mse, pick_device
from .images import ImageLike, to_array, write_bytes
from .metrics import psnr
from .model import Architecture, init_weights, network_input
from .progress import Progress
from .quant import allocate_steps, quantize, sensitivities, step_tensors
from .ratecontrol import Plan, plan

DEFAULT_ITERS = 2000
DEFAULT_LR = 0.02
DEFAULT_TRIES = 8  # seeds tried in the warm-up; the best one's network is fitted on
WARMUP_SHARE = 0.075  # iterations each try gets in the warm-up, as a share of --iters
QAT_SHARE = 0.2  # part of the iterations spent on quantization-aware fine-tuning
QAT_LR_SCALE = 0.2
QUANT_MSE_SHARE = 0.1  # without a byte budget, quantization may add this share of the float fit's MSE


@dataclass
class EncodeResult:
    """A compressed image and what it cost."""

    data: bytes
    arch: Architecture
    psnr: float  # of the decoded file, on the encoder's device
    psnr_float: float  # of the unquantized network
    iters: int
    seconds: float  # wall time; images fitted in one batch share it equally
    device: str

    @property
    def n_bytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        return 8 * len(self.data) / (self.arch.height * self.arch.width)

    @property
    def n_params(self) -> int:
        return self.arch.n_params

    def save(self, path: str | os.PathLike) -> None:
        """Write the .ddc file atomically."""
        write_bytes(path, self.data)


def encode(image: ImageLike, **options) -> EncodeResult:
    """Compress one image (path, PIL image or uint8 array) to .ddc bytes; the options are encode_many's."""
    return encode_many([image], **options)[0]


def encode_many(
    images: Sequence[ImageLike],
    *,
    bpp: float | None = None,
    ratio: float | None = None,
    quality: int | None = None,
    iters: int = DEFAULT_ITERS,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    tries: int = DEFAULT_TRIES,
    coder: str = "range",
    device: str = "auto",
    batch: int | None = None,
    progress: bool = False,
) -> list[EncodeResult]:
    """Compress several images; those of one size are fitted together, `batch` at a time, in batched kernels.

    Choose the size with one of `bpp` (a hard cap on bits per pixel, header included), `ratio` (3·H·W / parameters)
    or `quality` (presets of bpp, 1..5); the default is quality 3. `batch` defaults to 16 on CUDA and 1 on the CPU,
    where batching saves little. Each result is the same as encoding its image alone, up to float rounding.
    The warm-up fits `tries` networks per image (seeds seed .. seed+tries-1) briefly and goes on with the best.
    """
    if coder not in CODERS:
        raise InputError(f"unknown coder {coder!r} (choose from {', '.join(CODERS)})")
    if iters < 1:
        raise InputError(f"--iters must be at least 1, not {iters}")
    if not 0 <= seed <= 2**64 - tries:
        raise InputError("--seed must be in 0 .. 2^64-1 minus the number of tries")
    if tries < 1:
        raise InputError(f"--tries must be at least 1, not {tries}")
    try:
        dev = pick_device(device)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    batch = batch or (16 if dev.type == "cuda" else 1)
    arrays = [to_array(image) for image in images]
    plans = [plan(*a.shape, bpp=bpp, ratio=ratio, quality=quality) for a in arrays]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.shape, []).append(i)
    results: list[EncodeResult | None] = [None] * len(arrays)
    n_batches = sum(math.ceil(len(m) / batch) for m in groups.values())
    reporter = Progress(iters * n_batches) if progress else None
    for members in groups.values():
        for k in range(0, len(members), batch):
            chunk = members[k : k + batch]
            group = [arrays[i] for i in chunk]
            label = f"image {'+'.join(str(i + 1) for i in chunk)}/{len(arrays)}"
            fitted = _encode_batch(group, plans[chunk[0]], iters, lr, seed, tries, CODERS[coder], dev, reporter, label)
            for i, r in zip(chunk, fitted):
                results[i] = r
    return results


def _encode_batch(
    pixels: list[np.ndarray], p: Plan, iters: int, lr: float, seed: int, tries: int, coder: int, dev: torch.device,
    progress: Progress | None, label: str = "",
) -> list[EncodeResult]:
    """Warm up, fit, allocate steps, fine-tune and code B images of one size as B networks in one batch."""
    start = time.perf_counter()
    arch, n = p.arch, len(pixels)
    target = torch.stack([torch.from_numpy(a.copy()).permute(2, 0, 1) for a in pixels]).float().div(255).to(dev)
    warmup_iters = int(iters * WARMUP_SHARE) if tries > 1 else 0  # the main fit goes on from the warm-up
    seeds, z, weights = _warm_up(arch, target, seed, tries, warmup_iters, lr, progress, label)
    qat_iters = int(iters * QAT_SHARE)
    weights, mse_float = fit(arch, target, z, weights, iters - warmup_iters - qat_iters, lr, frozen=arch.bn_scales,
                             progress=progress, label=label)
    with torch.no_grad():
        sens = sensitivities(lambda ws: per_image_mse(arch, ws, z, target), weights)

    def stream(b: int, ws: list[torch.Tensor], mu: float) -> bytes:
        """Image b's file with weights ws[.][b], its steps allocated at mu from the float fit."""
        codes = allocate_steps(mu, sens[b], [w[b] for w in weights], arch.bn_scales)
        ints = quantize([w[b] for w in ws], codes)
        return pack(Header(arch, seeds[b], coder, tuple(codes)), encode_ints(ints, coder))

    mus = [
        _fill_budget(lambda m, b=b: stream(b, weights, m), p.budget) if p.budget
        else QUANT_MSE_SHARE * mse_float[b] / arch.n_params
        for b in range(n)
    ]
    codes = [allocate_steps(mus[b], sens[b], [w[b] for w in weights], arch.bn_scales) for b in range(n)]
    tuned, _ = fit(arch, target, z, weights, qat_iters, lr * QAT_LR_SCALE, step_tensors(codes, weights),
                   arch.bn_scales, progress=progress, desc="qat", label=label)
    datas = [_coarsen_until_fits(lambda m, b=b: stream(b, tuned, m), mus[b], p.budget) for b in range(n)]
    seconds = (time.perf_counter() - start) / n
    return [
        EncodeResult(data=data, arch=arch, psnr=psnr(decode_array(data, dev), a),
                     psnr_float=10 * math.log10(1 / max(mse, 1e-12)), iters=iters, seconds=seconds, device=str(dev))
        for data, a, mse in zip(datas, pixels, mse_float)
    ]


def _warm_up(
    arch: Architecture, target: torch.Tensor, seed: int, tries: int, iters: int, lr: float,
    progress: Progress | None, label: str = "",
) -> tuple[list[int], torch.Tensor, list[torch.Tensor]]:
    """Per image, the seed among seed .. seed+tries-1 whose network fits best after `iters` iterations.

    The seed is free (it is in the header); on Kodak crops the full fit's PSNR spreads by up to 0.9 dB over seeds and
    a short fit roughly predicts the ranking. Returns the chosen seeds, their inputs and warmed-up weights.
    """
    n, dev = target.shape[0], target.device
    inputs = [network_input(arch, seed + j, dev) for j in range(tries)]
    inits = [init_weights(arch, torch.Generator().manual_seed(seed + j)) for j in range(tries)]
    z = torch.stack(inputs * n)  # network b * tries + j: image b, seed + j
    weights = [torch.stack([init[t] for init in inits] * n).to(dev) for t in range(len(inits[0]))]
    if iters == 0:
        best = [b * tries for b in range(n)]
    else:
        weights, mse = fit(arch, target.repeat_interleave(tries, 0), z, weights, iters, lr, frozen=arch.bn_scales,
                           progress=progress, desc="warm-up", label=label)
        best = [b * tries + min(range(tries), key=lambda j: mse[b * tries + j]) for b in range(n)]
    return [seed + i % tries for i in best], z[best], [w[best] for w in weights]


def _coarsen_until_fits(stream_for, mu: float, budget: int | None) -> bytes:
    """The stream at mu or, as fine-tuning moved the weights, at the first coarser mu (x2^(1/4)) that fits."""
    for _ in range(400):
        try:
            data = stream_for(mu)
            if budget is None or len(data) <= budget:
                return data
        except ValueError:  # integers out of the coder's range
            pass
        mu *= 2**0.25
    raise InputError(f"no stream fits the target of {budget} bytes")


def _fill_budget(stream_for, budget: int) -> float:
    """The smallest mu (finest steps) whose stream fits the budget, by bisection on log mu."""
    lo, hi = math.log(1e-14), math.log(1e2)

    def fits(log_mu: float) -> bool:
        try:
            return len(stream_for(math.exp(log_mu))) <= budget
        except ValueError:  # steps so fine that the integers exceed the coder's range
            return False

    if not fits(hi):
        raise InputError(f"the target of {budget} bytes is smaller than the smallest possible file")
    for _ in range(24):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if fits(mid) else (mid, hi)
    return math.exp(hi)
