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
    memory += synthesis_memory(arch)
    return Cost(pixels=h * w, memory=memory, macs=arch.macs_per_pixel() * arch.height * arch.width)


def synthesis_memory(arch: Architecture) -> int:
    """Bytes the synthesis (format version 4) holds besides the layers' activations: a learned upsampling's
    one-axis intermediate (half its output) and the refinement's padded copy and output of the image's channels.
    Its multiply-adds are in arch.macs_per_pixel()."""
    upsampling = 0
    if arch.learned_upsampling:
        hi, wi = arch.layer_size(arch.layers - 2)
        upsampling = 4 * max(arch.widths[1:-1]) * 2 * hi * wi
    pad = arch.refine_kernel // 2
    refinement = 4 * arch.channels * ((arch.height + 2 * pad) * (arch.width + 2 * pad) + arch.height * arch.width)
    return upsampling + (refinement if arch.refine else 0)


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
