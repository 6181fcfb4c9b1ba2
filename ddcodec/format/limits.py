"""What a decode may cost, computed before the work and checked before anything is allocated for it.

The decode is a sequence of stages (entropy decoding, dequantization, the seeded input, the synthesis network); each
has a cost function here giving its work and its memory. `decode_cost` adds them: twice per file, from the header
alone (the payload's least cost) before the payload is read, and again once the payload's descriptors are parsed
(`PayloadFacts`: its tables, rows and symbols) before any symbol is decoded. A stage added later (an ARM, a
refinement convolution) adds its own cost function to `_stages`.

Work is counted in multiply-adds, and what is not a multiply-add in multiply-add equivalents: the time the NumPy
decoder takes for it, over the time it takes for a multiply-add (about 15 per ns on one core of the machine it was
measured on). Memory is the peak of what the stages hold at once, in bytes, counted for the NumPy decoder.

The default limits grow with the image the file declares (`default_limits`: an allowance plus so much per pixel, up
to ceilings), so that a small file declaring a small image is refused what only a large photo needs. Like Pillow's
`Image.MAX_IMAGE_PIXELS`, they are module settings a caller may change (`ddcodec.format.limits.MEMORY_PER_PIXEL`,
`MAX_MEMORY = 4 << 30`), or a caller passes its own per call, applied as given (`ddcodec.decode(src,
limits=Limits(...))`, `ddcodec decode --max-memory 4G`). The encoder refuses what the decoder would refuse, so every
file ddcodec writes decodes with the defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ddcodec.format.architecture import Architecture
from ddcodec.format.armint import FRAC, LEVELS, PAD, RESIDUALS
from ddcodec.errors import DecodeBudgetError

MAX_PIXELS = 89_478_485  # generated pixels, Pillow's MAX_IMAGE_PIXELS
MAX_MEMORY = 1 << 30  # bytes at the decode's peak, whatever the image's size
MAX_MACS = 3 * 10**10  # multiply-adds and their equivalents of one network (a file of format 1 to 4, or a tile of a
#                        tiled file), whatever the image's size: about 2 s on one core

# The default budget grows with the image's declared size (its height x width, the output's pixels): a fixed
# allowance and so much per pixel, up to the ceilings above, so that a small file declaring a small image cannot ask
# for what a large photo needs. The per-pixel rates are what the seed profile's default (--quality 3, 0.4 bpp) needs
# at 768x512 (width 62: 498 bytes and 25,213 multiply-adds per pixel above the allowances), plus 4 % and 3 %; every
# plan of the default coded profile needs less (V0_12 scanned over sides 1 to 1024, one and three channels, any --bpp
# up to 8: at most 437 bytes and 18,900 per pixel, at 900x900 and 0.8 bpp). A 768x512 image gets 0.22 GB and 1.07e10
# (about 0.8 s on one core of this CPU); the largest crafted files of each kind within it decoded in at most 0.83 s
# CPU and 152 MB above `import ddcodec` (benchmarks/budget_edge.py, benchmarks/results/budget-edge.json; measured
# memory was about 70 % of the estimate). The seed profile's higher
# qualities at 768x512 (quality 4: 619 bytes per pixel) need a smaller image or the decoder's --max-memory.
MEMORY_ALLOWANCE = 16 << 20  # bytes: the ARM's tables (3.2 MB) and the decoder's small objects, with room
MEMORY_PER_PIXEL = 520  # bytes per declared pixel
MACS_ALLOWANCE = 5 * 10**8  # multiply-add equivalents (about 30 ms)
MACS_PER_PIXEL = 26_000  # multiply-add equivalents per declared pixel (a 4032x3024 photo's tiles: 3.2e11 at most)

# Work of what is not a multiply-add, in multiply-add equivalents (measured: benchmarks/results/fuzz-structured.json)
SEED_VALUE_WORK = 400  # one SplitMix64 value of the seeded input (26 ns)
SYMBOL_WORK = 600  # one range-coded symbol, decoded, then re-encoded for the end-of-data check (40 ns)
TABLE_ENTRY_WORK = 200  # one probability-table entry: read or filled, then the coder's model built from it
TABLE_STEP_WORK = 8000  # one step of the geometric table's integer recurrence (a Python step, 500 ns)
ROW_WORK = 1 << 18  # one row of a context-coded grid: prediction, buckets, bookkeeping (about 20 µs)
CALL_WORK = 1 << 15  # one call of the range decoder (a tensor, or one bucket of one row; about 2 µs)
ZSTD_BYTE_WORK = 16  # one decompressed byte of a zstd payload, and its widening to int64 (1 ns)
ACTIVATION_WORK = 128  # one activation value written: bias, upsampling, ReLU, statistics, BatchNorm, sigmoid (8 ns)
ACTIVATION_ROW_WORK = 4096  # one row of one channel of an activation: the elementwise passes' per-row overhead, which
#                             dominates on thin images (16384 x 1: rows of one to a few values; 250 ns)

# Memory the NumPy decoder holds besides whole arrays
SMALL_OBJECTS = 1 << 20  # the decoder's small arrays and Python objects, all stages together
DECODE_THREADS = 8  # the NumPy decoder's worker threads at most (npdecode.MAX_THREADS)
BLOCK = 8192  # pixels per block of its convolutions (npdecode.BLOCK)
SEED_CHUNK = 1 << 16  # seeded values generated at a time (seed.py), each with up to 6 uint64 temporaries
TABLE_ENTRY_BYTES = 20  # a table entry: its float64 weight, its float64 build and the coder's own (4 bytes)
CONTEXT_CELL_BYTES = 40  # a context-coded grid's cell while it decodes: padded int64 values and magnitudes, the
#                          decoded row's temporaries and the flat int64 copy


@dataclass(frozen=True)
class Limits:
    """Ceilings for one decode; None fields take the module settings at the time of the check."""

    pixels: int | None = None
    memory: int | None = None
    macs: float | None = None


@dataclass(frozen=True)
class Cost:
    """What a decode costs: generated pixels, peak bytes and work (multiply-adds and their equivalents)."""

    pixels: int
    memory: int
    macs: float


@dataclass(frozen=True)
class PayloadFacts:
    """What a payload's descriptors declare, before any symbol is decoded (entropy.read_payload).

    symbols: values range-coded (not constants); table_entries: entries of every declared table (built or not);
    table_steps: steps of the geometric recurrence those tables need at most; rows: rows of context-coded grids;
    calls: range-decoder calls at most (flat tensors, and each row's non-constant buckets); widest_grid: cells of
    the largest context-coded grid, padding included; zstd_width: bytes per value of a zstd payload (0: range
    coded); payload_bytes: the payload's length."""

    symbols: int = 0
    table_entries: int = 0
    table_steps: int = 0
    rows: int = 0
    calls: int = 0
    widest_grid: int = 0
    zstd_width: int = 0
    payload_bytes: int = 0


@dataclass(frozen=True)
class Stage:
    """One stage's cost: work; `peak`, the bytes it adds at its height to what earlier stages left; `left`, the
    change in what is held once it is done (its outputs kept, its inputs released)."""

    work: float
    peak: int
    left: int


def decode_cost(arch: Architecture, payload: PayloadFacts | None = None) -> Cost:
    """The cost of decoding `arch` (any profile): from the header alone (payload None: the least any payload costs),
    or with what the payload's descriptors declare."""
    held = peak = 0
    work = 0.0
    for stage in _stages(arch, payload or PayloadFacts()):
        peak = max(peak, held + stage.peak)
        held += stage.left
        work += stage.work
    h, w = arch.layer_size(arch.layers - 1)
    return Cost(pixels=h * w, memory=peak + SMALL_OBJECTS, macs=work)


def _stages(arch: Architecture, payload: PayloadFacts) -> list[Stage]:
    """Every stage of a decode, in order."""
    return [entropy_cost(arch, payload), arm_cost(arch, payload), dequantize_cost(arch), seed_cost(arch),
            synthesis_cost(arch), output_cost(arch)]


def _values(arch: Architecture) -> tuple[int, int]:
    """(all coded values, the largest tensor's)."""
    sizes = [math.prod(s) for s in arch.tensor_shapes()]
    return sum(sizes), max(sizes)


def entropy_cost(arch: Architecture, p: PayloadFacts) -> Stage:
    """Entropy decoding: the int64 values (kept); range coding: the declared tables, the symbols kept for the
    re-encode check, the words (read, and written again), the largest context-coded grid while it decodes, a flat
    tensor's int32 symbols widened to int64; zstd: the payload's copy, the decompressed bytes and their int64 copy."""
    n, largest = _values(arch)
    if arch.arm is not None:  # the grids come from the ARM stream (arm_cost), not from the entropy coder
        largest = max((math.prod(s) for t, s in enumerate(arch.tensor_shapes()) if t not in arch.grid_indices),
                      default=0)
    if p.zstd_width:
        return Stage(ZSTD_BYTE_WORK * p.zstd_width * n, 8 * n + p.zstd_width * n + 2 * p.payload_bytes, 8 * n)
    work = (SYMBOL_WORK * p.symbols + TABLE_ENTRY_WORK * p.table_entries + TABLE_STEP_WORK * p.table_steps
            + ROW_WORK * p.rows + CALL_WORK * p.calls)
    transient = max(CONTEXT_CELL_BYTES * p.widest_grid, 12 * largest if p.symbols else 0)
    peak = 8 * n + 4 * p.symbols + TABLE_ENTRY_BYTES * p.table_entries + 3 * p.payload_bytes + transient
    return Stage(work, peak, 8 * n)


ARM_BYTES_PER_VALUE = 8  # the ARM decoder's coding buffer holds each latent value (and its padding) as an int64
ARM_TABLE_BYTES = 8 * LEVELS * FRAC * (RESIDUALS + 1)  # its probability tables, int64 (3.2 MB; built once a process)
# The ARM's work per latent value (measured with benchmarks/arm_cost.py on this CPU: _armint.c, one core; the time of
# a value's coding over the time of a multiply-add of the synthesis, 1/15 ns):
ARM_VALUE_WORK = 1000  # its context, rANS step and table search at their slowest (wide residuals, tables out of cache)
ARM_MAC_WORK = 5  # one of the MLP's int64 multiply-adds (scalar: 0.31 ns, against 1/15 ns for the synthesis's)
ARM_OUTPUT_WORK = 32  # one output of one of its layers: bias, shift, clamp and copy (2 ns)


def arm_cost(arch: Architecture, payload: PayloadFacts | None = None) -> Stage:
    """The ARM's decode of the latent grids (nothing without an ARM): one prediction and one rANS step per latent
    value, each at its slowest (the MLP runs for every value, the residuals are wide), in a coding buffer of the
    grids with 3 rows above and 3 columns either side (armint.PAD), with the probability tables, while the payload
    (its `payload_bytes`, when its descriptors are known) is still held."""
    if arch.arm is None:
        return Stage(0, 0, 0)
    held = payload.payload_bytes if payload else 0
    padded = sum((h + PAD) * (w + 2 * PAD) for h, w in arch.grid_shapes())
    outputs = sum(o for o, _ in arch.arm.layer_shapes())
    per_value = ARM_VALUE_WORK + ARM_MAC_WORK * arch.arm.macs_per_value() + ARM_OUTPUT_WORK * outputs
    return Stage(arch.n_latents * per_value, ARM_BYTES_PER_VALUE * padded + ARM_TABLE_BYTES + held, 0)


def dequantize_cost(arch: Architecture) -> Stage:
    """The float32 weights from the integers (a temporary the size of the largest tensor); the integers released."""
    n, largest = _values(arch)
    return Stage(n, 4 * n + 4 * largest, 4 * n - 8 * n)


def seed_cost(arch: Architecture) -> Stage:
    """The seeded input (float32, kept), generated SEED_CHUNK values at a time."""
    n = arch.widths[0] * math.prod(arch.input_size)
    return Stage(SEED_VALUE_WORK * n, 4 * n + 6 * 8 * SEED_CHUNK, 4 * n)


def synthesis_cost(arch: Architecture) -> Stage:
    """The network's layers and its output convolution (npdecode.render): the multiply-adds and each activation
    value's elementwise work; in memory, per layer its input (with the latent grids stacked and joined), the
    convolution's output, then either each thread's block of the product, or the upsampled output and each
    thread's upsampling temporaries (one channel, or BLOCK pixels' worth of channels, at twice the width)."""
    peak = values = rows = 0
    for i in range(arch.layers):
        h, w = arch.layer_size(i)
        c_in, c_out = arch.widths[i], arch.widths[i + 1]
        lat = arch.latents[i] if arch.latents else 0
        x_in = c_in * h * w if i else 0  # layer 0's input is the seeded input, counted there
        joining = x_in + (c_in + 2 * lat) * h * w if lat else 0  # the input, the joined input and the stacked grids
        held = (c_in + lat) * h * w if lat else x_in
        blocks = DECODE_THREADS * BLOCK * c_out
        upsampled = 4 * c_out * h * w + min(DECODE_THREADS, c_out) * 4 * max(h * w, BLOCK)
        peak = max(peak, 4 * joining, 4 * (held + c_out * h * w + max(blocks, upsampled if i < arch.layers - 1 else 0)))
        scale = 2 if i < arch.layers - 1 else 1
        values += c_out * h * w * scale * scale
        rows += c_out * h * scale
    h, w = arch.layer_size(arch.layers - 1)
    values += arch.channels * h * w
    rows += arch.channels * h
    work = arch.macs_per_pixel() * arch.height * arch.width + ACTIVATION_WORK * values + ACTIVATION_ROW_WORK * rows
    return Stage(work, peak + synthesis_memory(arch), 0)


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


def output_cost(arch: Architecture) -> Stage:
    """The output convolution and the image: the last activation (written over the last layer's input where that
    has rows enough, so that input's rows, latent grids included, stay held), the float32 output and each thread's
    block of it, then its 8-bit copies (the array, its (H, W, C) copy, and the bytes Pillow's plugin hands on)."""
    h, w = arch.layer_size(arch.layers - 1)
    lat = arch.latents[-1] if arch.latents else 0
    last, image = max(arch.widths[-1], arch.widths[-2] + lat) * h * w, arch.channels * h * w
    return Stage(0, 4 * (last + image + DECODE_THREADS * BLOCK * arch.channels) + 3 * image, 0)


def tiled_cost(tiles: Sequence[Cost], values: int) -> Cost:
    """A tiled file's cost (format version 5) from its tiles', decoded one at a time into the output of `values`
    8-bit values: pixels and work add up; memory is the largest tile's plus the output (the array, its copy and
    the bytes Pillow's plugin hands on: 3 bytes per value)."""
    return Cost(pixels=sum(c.pixels for c in tiles), memory=max(c.memory for c in tiles) + 3 * values,
                macs=sum(c.macs for c in tiles))


def default_limits(height: int, width: int, tiled: bool = False) -> Limits:
    """The default limits of a decode whose declared image is height x width: MAX_PIXELS; the memory and the work
    of the allowance plus so much per pixel (MEMORY_PER_PIXEL, MACS_PER_PIXEL), the memory up to MAX_MEMORY, the
    work up to MAX_MACS but for a tiled file (its tiles are each held to MAX_MACS)."""
    pixels = height * width
    macs = MACS_ALLOWANCE + MACS_PER_PIXEL * pixels
    return Limits(pixels=MAX_PIXELS, memory=min(MAX_MEMORY, MEMORY_ALLOWANCE + MEMORY_PER_PIXEL * pixels),
                  macs=macs if tiled else min(MAX_MACS, macs))


def check_budget(arch: Architecture, limits: Limits | None = None, payload: PayloadFacts | None = None) -> Cost:
    """The decode's cost (from the header, and the payload's descriptors when given), or a DecodeBudgetError
    naming the first limit it exceeds (those of `limits` it gives, else default_limits for arch's image)."""
    return check_cost(decode_cost(arch, payload), limits, default_limits(arch.height, arch.width))


def check_tiled_budget(tiles: Sequence[tuple[Architecture, PayloadFacts | None]], height: int, width: int,
                       channels: int, limits: Limits | None = None) -> Cost:
    """A tiled file's cost (tiled_cost) from its tiles' architectures (and payload descriptors when given), or a
    DecodeBudgetError naming the first limit it exceeds (those of `limits` it gives, else default_limits for the
    height x width image)."""
    cost = tiled_cost([decode_cost(a, p) for a, p in tiles], height * width * channels)
    return check_cost(cost, limits, default_limits(height, width, tiled=True))


def check_cost(cost: Cost, limits: Limits | None, defaults: Limits) -> Cost:
    """`cost`, or a DecodeBudgetError naming the first limit it exceeds: each of `limits` given, else its default
    (`defaults`); the message says how to raise it."""
    limits = limits or Limits()
    for what, value, given, default, option, ceiling, rate in (
        ("pixels", cost.pixels, limits.pixels, defaults.pixels, "MAX_PIXELS", MAX_PIXELS, "MAX_PIXELS"),
        ("bytes of memory", cost.memory, limits.memory, defaults.memory, "MAX_MEMORY", MAX_MEMORY, "MEMORY_PER_PIXEL"),
        ("multiply-adds (or their equivalent)", cost.macs, limits.macs, defaults.macs, "MAX_MACS", MAX_MACS,
         "MACS_PER_PIXEL"),
    ):
        limit = given or default
        if value > limit:
            setting = rate if not given and limit != ceiling else option  # the module setting that sets it
            raise DecodeBudgetError(
                f"decoding this file needs {value:.3g} {what}, above the limit of {limit:.3g} "
                f"(for a trusted file, raise it: `ddcodec decode --{option.lower().replace('_', '-')}`, "
                f"limits=ddcodec.Limits({option[4:].lower()}=...) or ddcodec.format.limits.{setting})")
    return cost
