"""The ARM's integer side: its fixed-point inference, its probability tables, and the rANS coding of the latent grids.

Torch-free and bit-exact on every machine (docs/FORMAT.md, "ARM (version 4)"): the ARM (ddcodec/encoder/arm.py trains it)
predicts each latent value from its causal neighbours in int64 fixed point (weights x 2^16, biases x 2^32, a shift by
16 after each layer, after Cool-chic's `armint.py`), its mean to a quarter and the log2 of its scale to one of LEVELS
levels; each (level, quarter) pair has a probability table built in integer arithmetic from a geometric ratio listed
below; the residual of the value from the mean's integer part is coded with rANS (Giesen's rans64: a 63-bit state,
32-bit words, 24-bit probabilities) in raster order, grid after grid. The sequential loops (the tables, each value's
context and MLP, the rANS steps) are C, compiled ahead of time with the package (`_armint.c`, built by setuptools from
pyproject.toml): one pass per payload in one thread, so results do not depend on the thread count, and nothing is
compiled or cached when a file is decoded. This module checks the ARM's values and lays the grids out for it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from ddcodec.format import _armint
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
    cum = np.zeros((LEVELS, FRAC, RESIDUALS + 1), np.int64)
    _armint.tables(RATIOS, cum)
    cum.flags.writeable = False  # shared by every call
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
    return _armint.encode(buffer, layout, *_network(arm, shape), cumulative_tables())


def stream_bits(grids: Sequence[np.ndarray], arm: Arm, shape: ArmShape) -> int:
    """Bits of the grids' ARM stream (encode_grids)."""
    return 8 * len(encode_grids(grids, arm, shape))


def decode_grids(data: bytes | memoryview, shapes: Sequence[tuple[int, int]], arm: Arm, shape: ArmShape) -> list[np.ndarray]:
    """The latent grids (int64, shaped) of an ARM stream; a stream that is damaged, ends early, holds words left
    over or decodes to a value beyond +-MAX_LATENT raises BitstreamError."""
    if len(data) % 4:
        raise BitstreamError("the ARM stream is not a whole number of 32-bit words")
    layout, size = _layout(shapes)
    buffer = np.zeros(size, np.int64)
    status = _armint.decode(data, buffer, layout, *_network(arm, shape), cumulative_tables())
    if status != OK:
        raise BitstreamError(_ERRORS[status])
    return _grids(buffer, layout)


def _network(arm: Arm, shape: ArmShape) -> tuple[np.ndarray, bool, np.ndarray, np.ndarray, np.ndarray]:
    """The ARM as _armint takes it: the neighbours' offsets (n, 2), `coarser`, the layers' widths (inputs, then each
    layer's outputs), and every layer's weights, then every layer's biases, each flattened into one int64 array."""
    weights, biases = arm
    dims = np.array([shape.inputs, *(b.shape[0] for b in biases)], np.int64)
    flat = [np.concatenate([np.ravel(t) for t in ts]).astype(np.int64) for ts in (weights, biases)]
    return np.ascontiguousarray(NEIGHBOURS[: shape.neighbours]), shape.coarser, dims, *flat
