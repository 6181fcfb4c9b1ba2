"""The synthesis of format version 4 in NumPy, written from docs/FORMAT.md ("Synthesis (version 4)"): learned x2
upsampling by a separable symmetric filter, and the residual refinement of the output channels. Torch-free; the
torch side (training, torch decoder) is ddcodec/component/synthesis.py.

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
from numpy.lib.stride_tricks import as_strided

BILINEAR = (0.75, 0.25)  # the first taps of the bilinear filter; the others are 0
RUN = 8  # input samples per band product (at least twice the padding: 2·(K // 2) <= 8 for K <= 8)


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


def band(taps: np.ndarray) -> np.ndarray:
    """The band matrix (2·RUN, RUN + 2·(K // 2)), float32, that maps a run of RUN input samples along an axis, with
    the K // 2 samples either side that the filter reads, to the run's 2·RUN outputs."""
    return np.einsum("k,kol->ol", taps, band_masks(len(taps), RUN)).astype(np.float32)


def _pad_edges(x: np.ndarray, axis: int, left: int, right: int) -> np.ndarray:
    """x (contiguous) with its first sample along `axis` repeated `left` times and its last `right` times."""
    n = x.shape[axis]
    edges = [np.repeat(x.take([i], axis), count, axis) for i, count in ((0, left), (n - 1, right))]
    return np.concatenate([edges[0], x, edges[1]], axis)


def _upsample_width(x: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(g, h, n) -> (g, h, 2n): each run's window (copied out, so that one product serves them all) times the band."""
    g, h, n = x.shape
    length = matrix.shape[1]
    runs, pad = -(-n // RUN), (length - RUN) // 2
    padded = _pad_edges(x, 2, pad, pad + runs * RUN - n)
    windows = as_strided(padded, (g, h, runs, length), (*padded.strides[:2], RUN * padded.itemsize, padded.itemsize))
    out = (np.ascontiguousarray(windows).reshape(-1, length) @ matrix.T).reshape(g, h, 2 * runs * RUN)
    return out if runs * RUN == n else out[:, :, : 2 * n]


def _upsample_height(x: np.ndarray, matrix: np.ndarray, out: np.ndarray) -> np.ndarray:
    """(g, n, w) -> `out` (g, 2n, w): the band times each run's window, a block of whole rows."""
    g, n, w = x.shape
    length = matrix.shape[1]
    runs, pad = -(-n // RUN), (length - RUN) // 2
    padded = _pad_edges(np.ascontiguousarray(x), 1, pad, pad + runs * RUN - n)
    windows = as_strided(padded, (g, runs, length, w), (padded.strides[0], *np.multiply((RUN * w, w, 1), padded.itemsize)))
    if runs * RUN == n:
        np.matmul(matrix, windows, out=out.reshape(g, runs, 2 * RUN, w))
    else:
        out[...] = np.matmul(matrix, windows).reshape(g, 2 * runs * RUN, w)[:, : 2 * n]
    return out


def upsample(x: np.ndarray, taps: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(..., h, w) -> (..., 2h, 2w) with the learned filter `taps` (float32, K), width first, then height.

    Each axis runs as matrix products (band): as fast as the bilinear upsampling's three passes per axis, where a
    pass per tap was four times slower."""
    *rest, h, w = x.shape
    out = np.empty((*rest, 2 * h, 2 * w), np.float32) if out is None else out
    matrix = band(taps)
    wide = _upsample_width(np.ascontiguousarray(x, np.float32).reshape(-1, h, w), matrix)
    _upsample_height(wide, matrix, out.reshape(-1, 2 * h, 2 * w))
    return out


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
