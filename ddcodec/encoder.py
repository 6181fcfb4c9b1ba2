"""Encoding: fit a Deep Decoder to the image, quantize its weights by rate-distortion, entropy-code, pack."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Sequence

import numpy as np
import torch

from .arm import arm_bits, arm_step_codes, refit_arm, round_latents
from .bitstream import Header, header_size, pack, parse
from .decoder import decode_array
from .entropy import CODERS, encode_ints
from .payload import encode_payload
from .errors import DecodeBudgetError, InputError
from .fit import RateTerm, fit, per_image_mse, pick_device
from .rate import grid_bits
from .limits import check_budget
from .images import ImageLike, to_array, write_bytes
from .metrics import psnr
from .architecture import Architecture
from .model import init_weights, network_input
from .progress import Progress
from .options import DEFAULT_INPUT, DEFAULT_ITERS, DEFAULT_LR, DEFAULT_TRIES, INPUTS
from .quant import allocate_steps, quantize, sensitivities, step_tensors
from .ratecontrol import BITS_PER_PARAM, Plan, bpp_for_psnr, plan

WARMUP_SHARE = 0.075  # iterations each try gets in the warm-up, as a share of --iters
WARMUP_COARSE = 2  # the warm-up fits the image 2^2 times smaller (1/16 of the pixels)
QAT_SHARE = 0.2  # part of the iterations spent on quantization-aware fine-tuning
QAT_LR_SCALE = 0.2
QUANT_MSE_SHARE = 0.1  # without a byte budget, quantization may add this share of the float fit's MSE
FINEST_MU, COARSEST_MU = 1e-14, 1e2  # the range of the quantization knob searched
BISECTION_STEPS = 16  # halvings of that range (37 in log mu) that _boundary_mu searches: to 6e-4 in log mu
MAX_ITERS = 10**7
PSNR_RETRIES = 3  # --psnr: times a network twice the size is tried when the fit falls short
LATENT_MARGIN = 0.9  # the latents aim at this share of what the weights leave, so that an overshoot still fits
LAMBDA_START = 2e-3  # coded input: the first rate weight (MSE per bit per pixel); rate control steers it
LAMBDA_FLOOR = 2e-4  # the least, in the full-size stage: where the latents cannot fill their bits (smooth images)
LATENT_SHARE_NO_BUDGET = 0.5  # coded input with --ratio: latents get about as many bits as the weights
COARSE_SHARE = 0.5  # part of the main fit run on the image at half size (coarse-to-fine: a quarter of the pixels)
CALIBRATE_EVERY = 100  # iterations between two measurements of the coder's real latent bits against the estimate


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


def encode(
    image: ImageLike,
    *,
    bpp: float | None = None,
    ratio: float | None = None,
    quality: int | None = None,
    psnr: float | None = None,
    input: str = DEFAULT_INPUT,
    iters: int = DEFAULT_ITERS,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    tries: int = DEFAULT_TRIES,
    coder: str = "range",
    device: str = "auto",
    progress: bool = False,
) -> EncodeResult:
    """Compress one image (path, PIL image or uint8 array) to .ddc bytes; the options are those of encode_many.

    Give at most one of `bpp` (a hard cap on bits per pixel), `ratio` (3·H·W / weights), `quality` (1..5; the
    default is 3) or `psnr` (dB: the smallest file found that reaches it). `input` "coded" (latent grids coded in
    the file too; the default) or "seed" (the paper's Deep Decoder: weights and a seed). `iters` fitting iterations
    at learning rate `lr`; `tries` seeds from `seed` in the warm-up; `coder` "range" or "zstd"; `device` "auto",
    "cpu" or "cuda"; `progress` shows a progress bar.
    """
    return encode_many([image], bpp=bpp, ratio=ratio, quality=quality, psnr=psnr, input=input, iters=iters, lr=lr,
                       seed=seed, tries=tries, coder=coder, device=device, progress=progress)[0]


def encode_many(
    images: Sequence[ImageLike],
    *,
    bpp: float | None = None,
    ratio: float | None = None,
    quality: int | None = None,
    psnr: float | None = None,
    iters: int = DEFAULT_ITERS,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    tries: int = DEFAULT_TRIES,
    coder: str = "range",
    device: str = "auto",
    batch: int | None = None,
    progress: bool = False,
    input: str = DEFAULT_INPUT,
) -> list[EncodeResult]:
    """Compress several images; those of one size are fitted together, `batch` at a time, in batched kernels.

    Choose the size with one of `bpp` (a hard cap on bits per pixel, header included), `ratio` (3·H·W / parameters)
    or `quality` (presets of bpp, 1..5), or ask for `psnr` (dB: the smallest file found whose decoded PSNR reaches
    it; the network is sized from a guess of the rate, doubled up to twice if the fit falls short); the default is
    quality 3. `batch` defaults to 16 on CUDA and 1 on the CPU, where batching saves little. Each result is the same
    as encoding its image alone, up to float rounding. The warm-up fits `tries` networks per image (seeds seed ..
    seed+tries-1) briefly and goes on with the best. `input` "coded" (the default) also fits latent grids with a
    rate term and codes them in the file; "seed" codes only the weights and the seed.
    """
    batch = check_options(bpp=bpp, ratio=ratio, quality=quality, psnr=psnr, input=input, iters=iters, lr=lr,
                          seed=seed, tries=tries, coder=coder, device=device, batch=batch)
    dev = pick_device(device)
    arrays = [to_array(image) for image in images]
    coded = input == "coded"
    if psnr is None:
        plans = [plan(*a.shape, bpp=bpp, ratio=ratio, quality=quality, coded_input=coded) for a in arrays]
    else:
        sized = [_psnr_plan(a.shape, bpp_for_psnr(psnr), coded) for a in arrays]
        plans = [p for p, _ in sized]
    for p in plans:  # the encoder refuses what the decoder would refuse, before any work
        try:
            check_budget(p.arch)
        except DecodeBudgetError as exc:
            raise InputError(f"image too large for ddcodec's decode limits: {exc}") from None
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
            fitted = _encode_batch(group, plans[chunk[0]], iters, lr, seed, tries, CODERS[coder], dev, reporter,
                                   psnr, label)
            for i, r in zip(chunk, fitted):
                results[i] = r
    if psnr is not None:  # a fit that fell short of the target is redone, alone, with a network twice the size
        for i, a in enumerate(arrays):
            guess = sized[i][1]
            for _ in range(PSNR_RETRIES):
                if results[i].psnr >= psnr:
                    break
                p, guess = _psnr_plan(a.shape, 2 * guess, coded)
                results[i] = _encode_batch([a], p, iters, lr, seed, tries, CODERS[coder], dev, reporter, psnr,
                                           f"image {i + 1}/{len(arrays)}, retry")[0]
            if results[i].psnr < psnr:
                raise InputError(f"--psnr {psnr} dB not reached (best {results[i].psnr:.2f} dB); try more --iters")
    return results


def check_options(
    *, bpp: float | None = None, ratio: float | None = None, quality: int | None = None, psnr: float | None = None,
    input: str = DEFAULT_INPUT, iters: int = DEFAULT_ITERS, lr: float = DEFAULT_LR, seed: int = 0,
    tries: int = DEFAULT_TRIES, coder: str = "range", device: str = "auto", batch: int | None = None,
) -> int:
    """Check encode_many's options (an InputError names the first one that cannot be used); return how many images
    one call fits together (`batch`, or its default for the device)."""
    if input not in INPUTS:
        raise InputError(f"unknown input profile {input!r} (choose from {', '.join(INPUTS)})")
    if coder not in CODERS:
        raise InputError(f"unknown coder {coder!r} (choose from {', '.join(CODERS)})")
    if not 1 <= iters <= MAX_ITERS:
        raise InputError(f"--iters must be in 1 .. {MAX_ITERS}, not {iters}")
    if tries < 1:
        raise InputError(f"--tries must be at least 1, not {tries}")
    if not 0 <= seed <= 2**64 - tries:
        raise InputError("--seed must be in 0 .. 2^64-1 minus the number of tries")
    for name, value in (("bpp", bpp), ("ratio", ratio), ("lr", lr)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InputError(f"--{name} must be a positive finite number, not {value}")
    if psnr is not None and not (math.isfinite(psnr) and 0 < psnr < 100):
        raise InputError(f"--psnr must be a number of dB between 0 and 100, not {psnr}")
    if sum(x is not None for x in (bpp, ratio, quality, psnr)) > 1:
        raise InputError("give at most one of --bpp, --ratio, --quality and --psnr")
    if batch is not None and batch < 1:
        raise InputError(f"--batch must be at least 1, not {batch}")
    try:
        dev = pick_device(device)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return batch or (16 if dev.type == "cuda" else 1)


def _encode_batch(
    pixels: list[np.ndarray], p: Plan, iters: int, lr: float, seed: int, tries: int, coder: int, dev: torch.device,
    progress: Progress | None, min_psnr: float | None = None, label: str = "",
) -> list[EncodeResult]:
    """Warm up, fit, allocate steps, fine-tune and code B images of one size as B networks in one batch."""
    start = time.perf_counter()
    arch, n = p.arch, len(pixels)
    target = torch.stack([torch.from_numpy(a.copy()).permute(2, 0, 1) for a in pixels]).float().div(255).to(dev)
    warmup_iters = int(iters * WARMUP_SHARE) if tries > 1 else 0  # the main fit goes on from the warm-up
    seeds, z, weights = _warm_up(arch, target, seed, tries, warmup_iters, lr, progress, label)
    qat_iters = int(iters * QAT_SHARE)
    main_iters = iters - warmup_iters - qat_iters
    grids = arch.grid_indices
    rate = None
    if grids:  # latents with noise and a steered rate term, then rounded
        rate = RateTerm(torch.full((n,), LAMBDA_START, device=dev), _latent_target(p, n, dev),
                        min(0.1, 10 / main_iters), LAMBDA_FLOOR, every=CALIBRATE_EVERY,
                        **_rate_model(arch))
    coarse_iters = int(main_iters * COARSE_SHARE) if arch.layers > 1 else 0
    stages = [(coarse_iters, 0, 1), (main_iters - coarse_iters, coarse_iters, 0)]  # (iterations, first, coarse)
    for stage_iters, first, coarse in (stage for stage in stages if stage[0]):
        if rate:  # lam may go below its start only at full size, once the latents have grown from 0
            rate.floor = LAMBDA_START if coarse else LAMBDA_FLOOR
        weights, mse_float = fit(arch, target, z, weights, stage_iters, lr, frozen=arch.bn_scales, progress=progress,
                                 desc="fit" if coarse == 0 else "fit, half size", label=label, rate=rate,
                                 latent_noise=bool(grids), keep_best=not grids, coarse=coarse,
                                 span=(first, main_iters))
    if grids:
        weights = round_latents(arch, weights)
        rate.target_bits = None
    fixed = arch.bn_scales | grids  # step code 0: BN scales (held at 1) and latent grids (integers)
    arm = arch.arm_indices
    with torch.no_grad():
        sens = sensitivities(lambda ws: per_image_mse(arch, ws, z, target), weights, skip=grids | set(arm))
    arm_codes = arm_step_codes(arch, weights)

    def allocate(b: int, mu: float) -> list[int]:
        """Image b's step codes at mu from the float fit; the ARM's chosen by _arm_codes."""
        codes = allocate_steps(mu, sens[b], [w[b] for w in weights], fixed)
        for t, c in zip(arm, arm_codes[b]):
            codes[t] = c
        return codes

    def stream(b: int, ws: list[torch.Tensor], mu: float) -> bytes:
        """Image b's file with weights ws[.][b], its steps allocated at mu; with an ARM, the smaller of the files
        with and without it (the linear context model: the ARM's own bits do not pay on the smallest images)."""
        header = Header(arch, seeds[b], coder, tuple(allocate(b, mu)))
        ints = quantize([w[b] for w in ws], header.step_codes)
        files = [pack(header, encode_payload(header, ints))]
        if arch.arm is not None:
            plain = Header(replace(arch, arm=None), seeds[b], coder, header.step_codes[: -len(arm)])
            files.append(pack(plain, encode_payload(plain, ints[: -len(arm)])))
        return min(files, key=len)

    def good(b: int, data: bytes) -> bool:
        """Whether image b's stream meets the target: the byte budget, or the PSNR asked for."""
        if p.budget:
            return len(data) <= p.budget
        return min_psnr is None or psnr(decode_array(data, dev), pixels[b]) >= min_psnr

    def prune_to_fit(b: int, ws: list[torch.Tensor]) -> None:
        """Zero image b's smallest latents (|v| <= 1, 2, 4, ...) until its coarsest stream fits the budget: the
        rate control in the loop can overshoot on short fits."""
        tau = 1.0
        while grids and p.budget and len(stream(b, ws, COARSEST_MU)) > p.budget and tau <= 2**16:
            for t in grids:
                ws[t][b] = torch.where(ws[t][b].abs() <= tau, 0.0, ws[t][b])
            tau *= 2

    for b in range(n):
        prune_to_fit(b, weights)
    mus = [
        _boundary_mu(lambda m, b=b: stream(b, weights, m), lambda d, b=b: good(b, d), p.budget is not None)
        if p.budget or min_psnr is not None
        else QUANT_MSE_SHARE * mse_float[b] / arch.n_params
        for b in range(n)
    ]
    codes = [allocate(b, mus[b]) for b in range(n)]
    tuned, _ = fit(arch, target, z, weights, qat_iters, lr * QAT_LR_SCALE, step_tensors(codes, weights),
                   arch.bn_scales | set(arm), progress=progress, desc="qat", label=label, rate=rate)
    tuned = round_latents(arch, refit_arm(arch, round_latents(arch, tuned)))
    for b in range(n):
        prune_to_fit(b, tuned)
    arm_codes = arm_step_codes(arch, tuned)
    datas = [
        _boundary_mu(lambda m, b=b: stream(b, tuned, m), lambda d, b=b: good(b, d), False, data=True)
        if min_psnr is not None
        else _coarsen_until_fits(lambda m, b=b: stream(b, tuned, m), mus[b], p.budget)
        for b in range(n)
    ]
    seconds = (time.perf_counter() - start) / n
    return [
        EncodeResult(data=data, arch=parse(data, budget=False)[0].arch, psnr=psnr(decode_array(data, dev), a),
                     psnr_float=10 * math.log10(1 / max(mse, 1e-12)), iters=iters, seconds=seconds, device=str(dev))
        for data, a, mse in zip(datas, pixels, mse_float)
    ]


def _psnr_plan(shape: tuple[int, ...], bpp: float, coded: bool) -> tuple[Plan, float]:
    """The network sized for `bpp` (doubled until one is possible), without a byte cap, for a PSNR target; and the
    bpp it was sized for, so that a retry can double it."""
    for _ in range(16):
        try:
            return Plan(plan(*shape, bpp=bpp, coded_input=coded).arch, None), bpp
        except InputError:
            bpp *= 2
    raise InputError("no network can be sized for this image")


def _rate_model(arch: Architecture) -> dict:
    """RateTerm's fields for the architecture's latent coding: the ARM's own estimate, or the linear context
    model's, calibrated against the coder's real bits."""
    if arch.arm is not None:
        return {"estimate": partial(arm_bits, arch.arm)}
    return {"coded_bits": _coded_grid_bits}


def _coded_grid_bits(rounded: list[torch.Tensor]) -> torch.Tensor:
    """What the range coder spends on each of B networks' rounded latent grids (each (B, h, w)), descriptors
    included; the estimate where the values are beyond the coder's range (early in a fit)."""
    per_image = [[g[b].cpu().numpy().astype(np.int64) for g in rounded] for b in range(rounded[0].shape[0])]
    try:
        bits = [8 * len(encode_ints(grids, CODERS["range"], range(len(grids)))) for grids in per_image]
    except ValueError:
        return grid_bits(rounded)
    return torch.tensor(bits, dtype=rounded[0].dtype, device=rounded[0].device)


def _latent_target(p: Plan, n: int, dev: torch.device) -> torch.Tensor:
    """Bits the latent grids of each of n images should settle on: the budget left after the planned weights."""
    weight_bits = p.arch.n_params * BITS_PER_PARAM
    total = 8 * p.budget if p.budget else weight_bits * (1 + LATENT_SHARE_NO_BUDGET)
    overhead = 8 * (header_size(p.arch.layers, len(p.arch.tensor_shapes()), arm=p.arch.arm) + 4)
    return torch.full((n,), max(LATENT_MARGIN * (total - overhead - weight_bits), 64.0), device=dev)


def _warm_up(
    arch: Architecture, target: torch.Tensor, seed: int, tries: int, iters: int, lr: float,
    progress: Progress | None, label: str = "",
) -> tuple[list[int], torch.Tensor, list[torch.Tensor]]:
    """Per image, the seed among seed .. seed+tries-1 whose network fits best after `iters` iterations.

    The seed is free (it is in the header); on Kodak crops the full fit's PSNR spreads by up to 0.9 dB over seeds and
    a short fit roughly predicts the ranking. The warm-up runs on the image shrunk 2^WARMUP_COARSE times
    (render_batch's `coarse`; latent grids stay 0), which costs a fraction of full-size iterations. Returns the
    chosen seeds, their inputs and warmed-up weights.
    """
    n, dev = target.shape[0], target.device
    inputs = [network_input(arch, seed + j, dev) for j in range(tries)]
    inits = [init_weights(arch, torch.Generator().manual_seed(seed + j)) for j in range(tries)]
    z = torch.stack(inputs * n)  # network b * tries + j: image b, seed + j
    weights = [torch.stack([init[t] for init in inits] * n).to(dev) for t in range(len(inits[0]))]
    if iters == 0:
        best = [b * tries for b in range(n)]
    else:
        coarse = min(WARMUP_COARSE, arch.layers - 1)
        weights, mse = fit(arch, target.repeat_interleave(tries, 0), z, weights, iters, lr,
                           frozen=arch.bn_scales | arch.grid_indices | set(arch.arm_indices), coarse=coarse,
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


def _boundary_mu(stream_for, good, larger_is_good: bool, data: bool = False):
    """By bisection on log mu, the mu nearest the boundary on its good side: the smallest mu (finest steps) whose
    stream fits a budget (larger_is_good), or the largest mu (smallest file) whose stream still reaches a PSNR.
    Returns mu, or its stream with data=True; an unreachable PSNR gives the finest stream the coder can hold."""
    lo, hi = math.log(FINEST_MU), math.log(COARSEST_MU)

    def ok(log_mu: float) -> bool:
        try:
            return good(stream_for(math.exp(log_mu)))
        except ValueError:  # steps so fine that the integers exceed the coder's range
            return False

    good_end, bad_end = (hi, lo) if larger_is_good else (lo, hi)
    if not ok(good_end):
        if larger_is_good:
            raise InputError("the target is smaller than the smallest possible file")
        return _coarsen_until_fits(stream_for, FINEST_MU, None) if data else FINEST_MU
    for _ in range(BISECTION_STEPS):
        mid = (good_end + bad_end) / 2
        good_end, bad_end = (mid, bad_end) if ok(mid) else (good_end, mid)
    return stream_for(math.exp(good_end)) if data else math.exp(good_end)
