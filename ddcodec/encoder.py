"""Encoding: fit a Deep Decoder to the image, quantize its weights by rate-distortion, entropy-code, pack."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from .bitstream import Header, pack
from .decoder import decode_array
from .entropy import CODERS, encode_ints
from .errors import InputError
from .fit import fit, pick_device
from .images import ImageLike, to_array, write_bytes
from .metrics import psnr
from .model import Architecture, init_weights, network_input, render
from .quant import allocate_steps, quantize, sensitivities
from .ratecontrol import plan

DEFAULT_ITERS = 2000
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
    seconds: float
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


def encode(
    image: ImageLike,
    *,
    bpp: float | None = None,
    ratio: float | None = None,
    quality: int | None = None,
    iters: int = DEFAULT_ITERS,
    lr: float = 0.01,
    seed: int = 0,
    coder: str = "range",
    device: str = "auto",
    progress: bool = False,
) -> EncodeResult:
    """Compress an image (path, PIL image or uint8 array) to .ddc bytes.

    Choose the size with one of `bpp` (a hard cap on bits per pixel, header included), `ratio` (3·H·W / parameters)
    or `quality` (presets of bpp, 1..5); the default is quality 3.
    """
    start = time.perf_counter()
    if coder not in CODERS:
        raise InputError(f"unknown coder {coder!r} (choose from {', '.join(CODERS)})")
    if iters < 1:
        raise InputError(f"--iters must be at least 1, not {iters}")
    if not 0 <= seed < 2**64:
        raise InputError("--seed must be in 0 .. 2^64-1")
    try:
        dev = pick_device(device)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    pixels = to_array(image)
    h, w, c = pixels.shape
    p = plan(h, w, c, bpp=bpp, ratio=ratio, quality=quality)
    arch = p.arch
    target = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div(255).to(dev)
    z = network_input(arch, seed, dev)
    weights = [t.to(dev) for t in init_weights(arch, torch.Generator().manual_seed(seed))]

    qat_iters = int(iters * QAT_SHARE)
    weights, mse_float = fit(arch, target, z, weights, iters - qat_iters, lr, progress=progress, desc="fit")

    def mse_of(ws: list[torch.Tensor]) -> float:
        with torch.no_grad():
            return torch.mean((render(arch, ws, z) - target) ** 2).item()

    sens = sensitivities(mse_of, weights)

    def stream(ws: list[torch.Tensor], mu: float) -> bytes:
        codes = allocate_steps(mu, sens, weights)
        payload = encode_ints(quantize(ws, codes), CODERS[coder])
        return pack(Header(arch, seed, CODERS[coder], tuple(codes)), payload)

    mu = _fill_budget(lambda m: stream(weights, m), p.budget) if p.budget else QUANT_MSE_SHARE * mse_float / arch.n_params
    codes = allocate_steps(mu, sens, weights)
    tuned, _ = fit(arch, target, z, weights, qat_iters, lr * QAT_LR_SCALE, codes, progress=progress, desc="qat")
    data = _coarsen_until_fits(lambda m: stream(tuned, m), mu, p.budget)
    decoded = decode_array(data, dev)
    return EncodeResult(
        data=data,
        arch=arch,
        psnr=psnr(decoded, pixels),
        psnr_float=10 * math.log10(1 / max(mse_float, 1e-12)),
        iters=iters,
        seconds=time.perf_counter() - start,
        device=str(dev),
    )


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
