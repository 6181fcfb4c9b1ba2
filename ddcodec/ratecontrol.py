"""Turning the user's size target (--bpp, --ratio or --quality) into an architecture and a byte budget."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .bitstream import MAX_LAYERS, MAX_WIDTH, header_size
from .errors import InputError
from .architecture import Architecture, ArmShape

QUALITY_BPP = {1: 0.15, 2: 0.25, 3: 0.4, 4: 0.6, 5: 1.0}  # --quality preset -> bits per pixel cap
DEFAULT_QUALITY = 3
BITS_PER_PARAM = 6.5  # what a weight costs after quantization and range coding, measured on Kodak crops
MODEL_BYTES_PER_TENSOR = 4  # typical size of one tensor's entropy-model descriptor
WEIGHT_SHARE = 0.35  # coded-input profile: part of the budget planned for the network's weights
MAX_CODED_WIDTH = 40  # coded-input profile: keeps the decoder near 2,000 multiply-adds per pixel
LATENTS_BY_SCALE = {0: 0, 1: 1, 2: 1, 3: 1, 4: 2}  # latent grids of a layer 2^-s below full size (s >= 4: 2)
ARM = ArmShape(neighbours=12, coarser=True, hidden=(8, 8))  # the coded-input profile's context model of the latents
MIN_ARM_LATENTS = 8192  # fewer latent values do not pay for the ARM's ~1,200 bits of weights (64x64: 1,280 values)


@dataclass(frozen=True)
class Plan:
    """The architecture to fit and, for --bpp, the largest file allowed in bytes."""

    arch: Architecture
    budget: int | None


def bpp_for_psnr(psnr: float) -> float:
    """A first guess of the rate that reaches `psnr` dB on a photograph: +2.2 dB per doubling from 21 dB at
    0.15 bpp (the seed profile on Kodak crops, v0.5), so that --psnr can size the network."""
    return min(max(0.15 * 2 ** ((psnr - 21) / 2.2), 0.05), 8.0)


def layers_for(height: int, width: int) -> int:
    """Depth whose input grid is about 16 pixels on the short side (5 upsamplings for 512, as in the paper)."""
    return int(min(max(round(math.log2(max(min(height, width), 1) / 16)) + 1, 1), MAX_LAYERS - 1))


def width_for(layers: int, channels: int, n_params: float, latent_channels: int = 0) -> int:
    """Largest equal width k whose network codes at most n_params weights (layers·k² + (layers + C + L)·k: the
    BatchNorm scales are constants, and L latent grids add a k-wide mixing column each)."""
    b = layers + channels + latent_channels
    k = int((-b + math.sqrt(b * b + 4 * layers * max(n_params, 0))) / (2 * layers))
    return min(k, MAX_WIDTH)


def latent_layout(layers: int) -> tuple[int, ...]:
    """Latent grids per hidden layer for the coded-input profile, by the layer's scale below full resolution."""
    return tuple(LATENTS_BY_SCALE.get(layers - 1 - i, LATENTS_BY_SCALE[max(LATENTS_BY_SCALE)]) for i in range(layers))


def plan(
    height: int, width: int, channels: int, bpp: float | None = None, ratio: float | None = None,
    quality: int | None = None, coded_input: bool = False,
) -> Plan:
    """Architecture (and byte budget) for one of the three ways of choosing the size; at most one may be given.

    The coded-input profile spends WEIGHT_SHARE of the budget on the network and the rest on latent grids."""
    if sum(x is not None for x in (bpp, ratio, quality)) > 1:
        raise InputError("give at most one of --bpp, --ratio and --quality")
    d = layers_for(height, width)
    latents = latent_layout(d) if coded_input else ()
    arm = ARM if coded_input and Architecture(height, width, channels, (1,) * (d + 1), latents).n_latents >= \
        MIN_ARM_LATENTS else None
    budget = None
    if bpp is None and ratio is None:
        q = DEFAULT_QUALITY if quality is None else quality
        if q not in QUALITY_BPP:
            raise InputError(f"--quality must be one of {sorted(QUALITY_BPP)}, not {q}")
        bpp = QUALITY_BPP[q]
    if bpp is not None:
        if not bpp > 0:
            raise InputError(f"--bpp must be positive, not {bpp}")
        budget = int(bpp * height * width / 8)
        n_tensors = 3 * d + 1 + len([n for n in latents if n]) + sum(latents) + 2 * len(arm.layer_shapes() if arm else [])
        weight_bits = 8 * (budget - header_size(d, n_tensors, arm=arm) - 4 - MODEL_BYTES_PER_TENSOR * n_tensors)
        n_params = weight_bits * (WEIGHT_SHARE if coded_input else 1) / BITS_PER_PARAM
    else:
        if not ratio > 0:
            raise InputError(f"--ratio must be positive, not {ratio}")
        n_params = 3 * height * width / ratio
    k = width_for(d, channels, n_params, sum(latents))
    if coded_input:
        k = min(k, MAX_CODED_WIDTH)
    if k < 2:
        what = f"--bpp {bpp}" if bpp is not None else f"compression factor {ratio}"
        raise InputError(f"{what} is too small for a {width}x{height} image (no network that small is useful)")
    return Plan(Architecture(height, width, channels, (k,) * (d + 1), latents, arm), budget)
