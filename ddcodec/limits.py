"""What a decode may cost, computed from the header alone and checked before anything is allocated.

Like Pillow's `Image.MAX_IMAGE_PIXELS`, the defaults are module settings a caller may raise for a trusted large file
(`ddcodec.limits.MAX_MEMORY = 4 << 30`), or pass per call (`ddcodec.decode(src, limits=Limits(...))`). The encoder
refuses what the decoder would refuse, so every file ddcodec writes decodes with the defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .architecture import Architecture
from .errors import DecodeBudgetError

MAX_PIXELS = 89_478_485  # generated pixels, Pillow's MAX_IMAGE_PIXELS
MAX_MEMORY = 1 << 30  # bytes at the decode's peak: two float32 activations, the weights and the coded integers
MAX_MACS = 10**11  # multiply-adds of the convolutions (a 768x512, k = 128 decode needs 9e9)
ACTIVATIONS_AT_PEAK = 3  # full-size float32 tensors a layer holds at once (input, upsampled output, a temporary)


@dataclass(frozen=True)
class Limits:
    """Ceilings for one decode; None fields take the module settings at the time of the check."""

    pixels: int | None = None
    memory: int | None = None
    macs: float | None = None


@dataclass(frozen=True)
class Cost:
    """What decoding a header's network costs: generated pixels, peak bytes and multiply-adds."""

    pixels: int
    memory: int
    macs: float


def decode_cost(arch: Architecture) -> Cost:
    """The cost of decoding `arch` (any profile), from its shape alone."""
    h, w = arch.layer_size(arch.layers - 1)
    widest = 0
    for i in range(arch.layers):
        hi, wi = arch.layer_size(min(i + 1, arch.layers - 1))
        widest = max(widest, arch.widths[i + 1] * hi * wi)
    values = sum(math.prod(s) for s in arch.tensor_shapes())
    memory = 4 * ACTIVATIONS_AT_PEAK * max(widest, arch.channels * h * w) + 12 * values  # int64 codes + float32
    arm_macs, arm_memory = arm_cost(arch)
    return Cost(pixels=h * w, memory=memory + arm_memory, macs=arch.macs_per_pixel() * arch.height * arch.width
                + arm_macs)


ARM_BYTES_PER_VALUE = 8  # the ARM decoder's coding buffer holds each latent value (and its padding) as an int64


def arm_cost(arch: Architecture) -> tuple[int, int]:
    """Multiply-adds and bytes of the ARM's decode of the latent grids, (0, 0) without an ARM: one prediction per
    latent value, in a coding buffer of the grids with PAD = 3 rows above and columns either side."""
    if arch.arm is None:
        return 0, 0
    padded = sum((h + 3) * (w + 6) for h, w in arch.grid_shapes())
    return arch.n_latents * arch.arm.macs_per_value(), ARM_BYTES_PER_VALUE * padded


def check_budget(arch: Architecture, limits: Limits | None = None) -> Cost:
    """The decode's cost, or a DecodeBudgetError naming the first limit it exceeds."""
    limits = limits or Limits()
    cost = decode_cost(arch)
    for what, value, limit, setting in (
        ("pixels", cost.pixels, limits.pixels or MAX_PIXELS, "MAX_PIXELS"),
        ("bytes of memory", cost.memory, limits.memory or MAX_MEMORY, "MAX_MEMORY"),
        ("multiply-adds", cost.macs, limits.macs or MAX_MACS, "MAX_MACS"),
    ):
        if value > limit:
            raise DecodeBudgetError(
                f"decoding this file needs {value:.3g} {what}, above the limit of {limit:.3g} "
                f"(raise ddcodec.limits.{setting} for a trusted file)")
    return cost
