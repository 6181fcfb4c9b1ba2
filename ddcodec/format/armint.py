"""The ARM's integer side: its fixed-point inference, its probability tables, and the rANS coding of the latent grids.

Torch-free and bit-exact on every machine (docs/FORMAT.md, "ARM (version 4)"): the ARM (ddcodec/encoder/arm.py trains it)
predicts each latent value from its causal neighbours in int64 fixed point (weights x 2^16, biases x 2^32, a shift by
16 after each layer, after Cool-chic's `armint.py`), its mean to a quarter and the log2 of its scale to one of LEVELS
levels; each (level, quarter) pair has a probability table built in integer arithmetic from a geometric ratio listed
below; the residual of the value from the mean's integer part is coded with rANS (Giesen's rans64: a 63-bit state,
32-bit words, 24-bit probabilities) in raster order, grid after grid. The coding loops are compiled with numba: one
sequential pass per payload, single-threaded, so results do not depend on the thread count.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numba
import numpy as np

from ddcodec.format.architecture import ArmShape
from ddcodec.errors import BitstreamError

# Causal neighbours (dy, dx) in priority order, nearest first (ties: the current row, then the rows above from the
# nearest, left before right): an ARM with n neighbours uses the first n. 24 = the 7x7 causal half-window.
NEIGHBOURS = np.array([
    (0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0), (-1, -2), (-1, 2), (-2, -1), (-2, 1), (-2, -2), (-2, 2),
    (0, -3), (-3, 0), (-1, -3), (-1, 3), (-3, -1), (-3, 1), (-2, -3), (-2, 3), (-3, -2), (-3, 2), (-3, -3), (-3, 3),
], dtype=np.int64)
MAX_LATENT = 511  # |latent value| <= this in a file with an ARM (the encoder clamps, the decoder refuses)
RESIDUALS = 4 * MAX_LATENT + 1  # residual q - floor(mean) in -2·MAX_LATENT .. 2·MAX_LATENT
FRAC = 4  # the mean is coded to 1/FRAC (_predict's shifts are written for 4)
LEVELS_PER_OCTAVE = 4
MIN_LOG2_SCALE = -4  # level l is the scale 2^(MIN_LOG2_SCALE + l / LEVELS_PER_OCTAVE)
LEVELS = 49  # scales 2^-4 .. 2^8
# Level l's geometric ratio per 1/FRAC of distance, round(2^16 · exp(-1 / (FRAC · scale_l))) (part of the format).
RATIOS = np.array([
    1200, 2268, 3874, 6075, 8869, 12192, 15933, 19953, 24109, 28267, 32314, 36162, 39750, 43041, 46019, 48681,
    51039, 53111, 54917, 56484, 57835, 58997, 59992, 60842, 61565, 62181, 62703, 63145, 63520, 63836, 64104,
    64329, 64520, 64681, 64816, 64930, 65026, 65107, 65175, 65232, 65280, 65321, 65355, 65384, 65408, 65428,
    65446, 65460, 65472], dtype=np.int64)
MAX_WIDTH = 32  # an ARM layer has at most this many inputs and outputs
PRECISION = 24  # probabilities are frequencies out of 2^24
ONE = 16  # fixed point: weights and activations x 2^16, biases x 2^32
MAX_WEIGHT_SHIFT, MAX_BIAS_SHIFT = 16, 32  # a weight's step is 2^-k with k <= 16; a bias's with k <= 32
MAX_FIXED_WEIGHT, MAX_FIXED_BIAS = 1 << 20, 1 << 40  # |weight| <= 16, |bias| <= 256
MAX_ACTIVATION = 1 << 30  # a hidden activation (x 2^16) is clamped to 0 .. 2^30
RANS_LOW = 1 << 31  # the rANS state stays in 2^31 .. 2^63 - 1
OK, OUT_OF_WORDS, OUT_OF_RANGE, BAD_STATE = 0, 1, 2, 3
_ERRORS = {OUT_OF_WORDS: "the ARM stream ends before its values do", OUT_OF_RANGE:
           f"an ARM-coded latent value beyond +-{MAX_LATENT}", BAD_STATE: "the ARM stream's state is not valid"}


@lru_cache(maxsize=1)
def cumulative_tables() -> np.ndarray:
    """Cumulative frequencies (LEVELS, FRAC, RESIDUALS + 1), int64, of every (level, quarter) table: residual r
    (index r + 2·MAX_LATENT) weighs g(|FRAC·r - f|) with g(0) = 2^32, g(j+1) = max(1, floor(g(j)·ratio / 2^16));
    frequency = 1 + floor(weight·(2^24 - RESIDUALS) / total weight), and what the floors leave goes to the first
    residual of largest weight, so that every table adds up to exactly 2^24."""
    return _build_tables(RATIOS, FRAC, MAX_LATENT, PRECISION)


@numba.njit(cache=True)
def _build_tables(ratios: np.ndarray, frac: int, max_latent: int, precision: int) -> np.ndarray:
    n = 4 * max_latent + 1
    cum = np.zeros((len(ratios), frac, n + 1), np.int64)
    g = np.empty(frac * (2 * max_latent + 1) + 1, np.int64)
    w = np.empty(n, np.int64)
    for lv in range(len(ratios)):
        g[0] = 1 << 32
        for j in range(1, len(g)):
            g[j] = max(1, (g[j - 1] * ratios[lv]) >> 16)
        for f in range(frac):
            total, best = 0, 0
            for i in range(n):
                w[i] = g[abs(frac * (i - 2 * max_latent) - f)]
                total += w[i]
                if w[i] > w[best]:
                    best = i
            spare = (1 << precision) - n
            for i in range(n):
                cum[lv, f, i + 1] = cum[lv, f, i] + 1 + (w[i] * spare) // total
            left = (1 << precision) - cum[lv, f, n]
            for i in range(best + 1, n + 1):
                cum[lv, f, i] += left
    return cum


Arm = tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]  # fixed-point (weights (out, in), biases) per layer


def fixed_point(ints: Sequence[np.ndarray], codes: Sequence[int]) -> Arm:
    """The ARM's fixed-point layers from its integer tensors (weight (out, in), bias (out,) per layer) and their
    step codes: weights x 2^16 and biases x 2^32, int64. A step must be a power of two, 2^-k (code -4k), k <= 16 for
    a weight and k <= 32 for a bias, and the values within +-16 and +-256; anything else raises BitstreamError."""
    layers: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for t, (q, code) in enumerate(zip(ints, codes)):
        top, bound = (MAX_WEIGHT_SHIFT, MAX_FIXED_WEIGHT) if t % 2 == 0 else (MAX_BIAS_SHIFT, MAX_FIXED_BIAS)
        k = -code // 4
        if code % 4 or not 0 <= k <= top:
            raise BitstreamError(f"ARM tensor {t} has step code {code}: not a power of two 2^-k with 0 <= k <= {top}")
        q = np.asarray(q, np.int64)
        if np.abs(q).max(initial=0) > bound >> (top - k):
            raise BitstreamError(f"ARM tensor {t} holds values beyond +-{bound / 2.0 ** top:g}")
        layers[t % 2].append(np.ascontiguousarray(q << (top - k)))
    return tuple(layers[0]), tuple(layers[1])


PAD = 3  # rows above and columns either side of a grid in the coding buffer: the widest neighbourhood's reach


def _layout(shapes: Sequence[tuple[int, int]]) -> tuple[np.ndarray, int]:
    """(n, 3) int64: each grid's height, width and the offset of its padded copy ((h + PAD) x (w + 2·PAD), the
    grid in the bottom rows, between the side columns) in the coding buffer; and the buffer's size."""
    sizes = [(h + PAD) * (w + 2 * PAD) for h, w in shapes]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return np.array([(h, w, o) for (h, w), o in zip(shapes, offsets)], np.int64).reshape(-1, 3), int(offsets[-1])


def _grids(buffer: np.ndarray, layout: np.ndarray) -> list[np.ndarray]:
    """The grids out of the coding buffer."""
    return [buffer[o : o + (h + PAD) * (w + 2 * PAD)].reshape(h + PAD, w + 2 * PAD)[PAD:, PAD:-PAD].copy()
            for h, w, o in layout]


def encode_grids(grids: Sequence[np.ndarray], arm: Arm, shape: ArmShape) -> bytes:
    """The ARM stream of the latent grids (each (h, w) integers within +-MAX_LATENT, in stream order): u32 words,
    little-endian. Raises ValueError for a value out of range."""
    grids = [np.asarray(g, np.int64) for g in grids]
    if max((np.abs(g).max(initial=0) for g in grids), default=0) > MAX_LATENT:
        raise ValueError(f"latent values beyond +-{MAX_LATENT} cannot be ARM-coded")
    layout, size = _layout([g.shape for g in grids])
    buffer = np.zeros(size, np.int64)
    for g, (h, w, o) in zip(grids, layout):
        buffer[o : o + (h + PAD) * (w + 2 * PAD)].reshape(h + PAD, w + 2 * PAD)[PAD:, PAD:-PAD] = g
    words = _encode(buffer, layout, NEIGHBOURS[: shape.neighbours], shape.coarser, *arm, cumulative_tables())
    return words.astype("<u4").tobytes()


def stream_bits(grids: Sequence[np.ndarray], arm: Arm, shape: ArmShape) -> int:
    """Bits of the grids' ARM stream (encode_grids)."""
    return 8 * len(encode_grids(grids, arm, shape))


def decode_grids(data: bytes, shapes: Sequence[tuple[int, int]], arm: Arm, shape: ArmShape) -> list[np.ndarray]:
    """The latent grids (int64, shaped) of an ARM stream; a stream that is damaged, ends early, holds words left
    over or decodes to a value beyond +-MAX_LATENT raises BitstreamError."""
    if len(data) % 4:
        raise BitstreamError("the ARM stream is not a whole number of 32-bit words")
    words = np.frombuffer(data, "<u4").astype(np.int64)
    layout, size = _layout(shapes)
    buffer = np.zeros(size, np.int64)
    status = _decode(words, buffer, layout, NEIGHBOURS[: shape.neighbours], shape.coarser, *arm,
                     cumulative_tables())
    if status != OK:
        raise BitstreamError(_ERRORS[status])
    return _grids(buffer, layout)


@numba.njit(cache=True, inline="always")
def _inputs(buffer, layout, g, y, x, offsets, coarser, a):
    """Fill `a` with the ARM's inputs for value (y, x) of grid g, x 2^16: the neighbours (0 outside the grid: the
    buffer's padding) and, with `coarser`, the co-located value of grid g-1 (0 for the first grid). Returns whether
    any is not 0."""
    w, o = layout[g, 1], layout[g, 2]
    row = w + 2 * PAD
    any_set = False
    for k in range(len(offsets)):
        a[k] = buffer[o + (y + PAD + offsets[k, 0]) * row + x + PAD + offsets[k, 1]] << 16
        any_set |= a[k] != 0
    if coarser:
        v = 0
        if g > 0:
            hp, wp, op = layout[g - 1, 0], layout[g - 1, 1], layout[g - 1, 2]
            v = buffer[op + (y * hp // layout[g, 0] + PAD) * (wp + 2 * PAD) + x * wp // w + PAD]
        a[len(offsets)] = v << 16
        any_set |= v != 0
    return any_set


@numba.njit(cache=True, inline="always")
def _mlp(weights, biases, a, b):
    """The ARM on inputs `a` (overwritten; `b` is scratch): (mean in 1/FRAC, clamped to +-MAX_LATENT; level)."""
    last = len(weights) - 1
    for layer in range(len(weights)):
        wl, bl = weights[layer], biases[layer]
        for j in range(wl.shape[0]):
            acc = bl[j]
            for i in range(wl.shape[1]):
                acc += wl[j, i] * a[i]
            acc >>= 16
            b[j] = acc if layer == last else min(max(acc, 0), MAX_ACTIVATION)
        for j in range(wl.shape[0]):
            a[j] = b[j]
    mean = min(max(a[0] >> 14, -MAX_LATENT * FRAC), MAX_LATENT * FRAC)  # x FRAC / 2^16, floored
    level = min(max(((a[1] - MIN_LOG2_SCALE * 65536) * LEVELS_PER_OCTAVE + 32768) >> 16, 0), LEVELS - 1)
    return mean, level


@numba.njit(cache=True)
def _encode(buffer, layout, offsets, coarser, weights, biases, cum):
    n = 0
    for g in range(len(layout)):
        n += layout[g, 0] * layout[g, 1]
    a, b = np.zeros(MAX_WIDTH, np.int64), np.zeros(MAX_WIDTH, np.int64)
    zero = _mlp(weights, biases, a, b)
    start, freq = np.empty(n, np.int64), np.empty(n, np.int64)
    i = 0
    for g in range(len(layout)):
        w, o = layout[g, 1], layout[g, 2]
        for y in range(layout[g, 0]):
            for x in range(w):
                mean, level = zero
                if _inputs(buffer, layout, g, y, x, offsets, coarser, a):  # else the MLP of all zeros, once
                    mean, level = _mlp(weights, biases, a, b)
                s = buffer[o + (y + PAD) * (w + 2 * PAD) + x + PAD] - (mean >> 2) + 2 * MAX_LATENT
                start[i] = cum[level, mean & 3, s]
                freq[i] = cum[level, mean & 3, s + 1] - start[i]
                i += 1
    out = np.empty(n + 2, np.int64)
    m = 0
    state = RANS_LOW
    for i in range(n - 1, -1, -1):
        if state >= (((RANS_LOW >> PRECISION) << 32) * freq[i]):
            out[m] = state & 0xFFFFFFFF
            state >>= 32
            m += 1
        state = ((state // freq[i]) << PRECISION) + state % freq[i] + start[i]
    out[m], out[m + 1] = state & 0xFFFFFFFF, state >> 32
    return out[: m + 2][::-1].copy()


@numba.njit(cache=True, inline="always")
def _find(row, slot):
    """The index i with row[i] <= slot < row[i + 1], searched outwards from residual 0 (where most values are, so
    that the search touches few cache lines), then by bisection."""
    lo, step = 2 * MAX_LATENT, 1
    if row[lo] <= slot:
        hi = lo + 1
        while row[hi] <= slot:
            lo, step = hi, 2 * step
            hi = min(lo + step, RESIDUALS)
    else:
        hi = lo
        lo = hi - 1
        while row[lo] > slot:
            hi, step = lo, 2 * step
            lo = max(hi - step, 0)
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if row[mid] <= slot:
            lo = mid
        else:
            hi = mid
    return lo


@numba.njit(cache=True)
def _decode(words, buffer, layout, offsets, coarser, weights, biases, cum):
    if len(words) < 2 or words[0] >= (1 << 31):
        return BAD_STATE
    state = (words[0] << 32) | words[1]
    if state < RANS_LOW:
        return BAD_STATE
    pos = 2
    mask = (1 << PRECISION) - 1
    a, b = np.zeros(MAX_WIDTH, np.int64), np.zeros(MAX_WIDTH, np.int64)
    zero = _mlp(weights, biases, a, b)
    for g in range(len(layout)):
        w, o = layout[g, 1], layout[g, 2]
        for y in range(layout[g, 0]):
            for x in range(w):
                mean, level = zero
                if _inputs(buffer, layout, g, y, x, offsets, coarser, a):  # else the MLP of all zeros, once
                    mean, level = _mlp(weights, biases, a, b)
                row = cum[level, mean & 3]
                slot = state & mask
                s = _find(row, slot)
                state = (row[s + 1] - row[s]) * (state >> PRECISION) + slot - row[s]
                if state < RANS_LOW:
                    if pos >= len(words):
                        return OUT_OF_WORDS
                    state = (state << 32) | words[pos]
                    pos += 1
                q = s - 2 * MAX_LATENT + (mean >> 2)
                if q < -MAX_LATENT or q > MAX_LATENT:
                    return OUT_OF_RANGE
                buffer[o + (y + PAD) * (w + 2 * PAD) + x + PAD] = q
    return OK if state == RANS_LOW and pos == len(words) else BAD_STATE
