"""The synthesis of format version 4 in NumPy, written from docs/FORMAT.md ("Synthesis (version 4)"): learned x2
upsampling by a separable symmetric filter, and the residual refinement of the output channels. Torch-free; the
torch side (training, torch decoder) is ddcodec/synthesis.py.

A learned filter of K distinct taps w_0 .. w_{K-1} upsamples an axis of n samples to 2n with half-pixel centres, like
the bilinear one: output 2k lies a quarter sample before input k, output 2k+1 a quarter after, and tap j weighs the
input sample at distance (2j+1)/4 (the same filter as Cool-chic's stride-2 transposed convolution with the symmetric
kernel w_{K-1} .. w_0 w_0 .. w_{K-1}). Input indices are clamped at the edges (replicate padding). w = (0.75, 0.25,
0, ...) is the bilinear upsampling exactly.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

BILINEAR = (0.75, 0.25)  # the first taps of the bilinear filter; the others are 0


def tap_offset(j: int) -> int:
    """Where tap j reads, relative to input k, for output 2k: 0, -1, +1, -2, +2, ... (nearest first); output 2k+1
    reads the mirror image, -offset."""
    return -((j + 1) // 2) if j % 2 else j // 2


@functools.lru_cache(maxsize=None)
def band_masks(taps: int, run: int) -> np.ndarray:
    """(taps, 2·run, run + 2·(taps // 2)) float32: mask j marks where tap j stands in the band matrix that maps a
    run of `run` input samples, with taps // 2 samples either side, to its 2·run outputs."""
    pad = taps // 2
    masks = np.zeros((taps, 2 * run, run + 2 * pad), np.float32)
    for j in range(taps):
        o = tap_offset(j)
        for m in range(run):
            masks[j, 2 * m, pad + m + o] = masks[j, 2 * m + 1, pad + m - o] = 1
    masks.setflags(write=False)
    return masks


def bilinear_taps(taps: int) -> np.ndarray:
    """The `taps` taps (float32) that make a learned filter the bilinear upsampling."""
    out = np.zeros(taps, np.float32)
    out[: len(BILINEAR)] = BILINEAR
    return out


def _pad_edges(x: np.ndarray, pad: int) -> np.ndarray:
    """x (n, ...) with its first and last samples repeated `pad` times along axis 0."""
    return np.concatenate([np.repeat(x[:1], pad, 0), x, np.repeat(x[-1:], pad, 0)])


def _upsample_axis(x: np.ndarray, taps: np.ndarray, axis: int, out: np.ndarray) -> np.ndarray:
    """x2 along `axis` with the filter `taps` into `out` (the axis twice as long)."""
    x_t, out_t = np.moveaxis(x, axis, 0), np.moveaxis(out, axis, 0)
    n, pad = x_t.shape[0], len(taps) // 2
    padded = _pad_edges(x_t, pad)
    even, odd = out_t[0::2], out_t[1::2]
    np.multiply(x_t, taps[0], out=even)
    odd[...] = even
    term = np.empty_like(even)
    for j in range(1, len(taps)):
        o = tap_offset(j)
        even += np.multiply(padded[pad + o : pad + o + n], taps[j], out=term)
        odd += np.multiply(padded[pad - o : pad - o + n], taps[j], out=term)
    return out


def upsample(x: np.ndarray, taps: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(..., h, w) -> (..., 2h, 2w) with the learned filter `taps` (float32, K), width first, then height."""
    *rest, h, w = x.shape
    wide = _upsample_axis(x, taps, -1, np.empty((*rest, h, 2 * w), np.float32))
    return _upsample_axis(wide, taps, -2, np.empty((*rest, 2 * h, 2 * w), np.float32) if out is None else out)


def refine(x: np.ndarray, kernels: Sequence[np.ndarray]) -> np.ndarray:
    """The refinement: per kernel K (C, C, k, k), x <- x + K * x (a k x k convolution, edges replicated), on the
    output channels' pre-sigmoid values x (C, H, W), float32. Each convolution is one product of K, as a C x C·k²
    matrix, with the k² shifted copies of x (rows in blocks, so that they stay in the cache)."""
    channels, height, width = x.shape
    for kernel in kernels:
        side = kernel.shape[-1]
        pad = side // 2
        padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
        matrix = kernel.transpose(0, 2, 3, 1).reshape(channels, -1)  # columns (dy, dx, c)
        rows = max(8192 // width, 1)
        out = np.empty_like(x)
        for r in range(0, height, rows):
            n = min(rows, height - r)
            shifted = np.stack([padded[:, r + dy : r + dy + n, dx : dx + width]
                                for dy in range(side) for dx in range(side)])
            out[:, r : r + n] = x[:, r : r + n] + (matrix @ shifted.reshape(side * side * channels, -1)
                                                   ).reshape(channels, n, width)
        x = out
    return x
