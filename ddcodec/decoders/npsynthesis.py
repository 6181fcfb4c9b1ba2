"""The synthesis of format version 4 in NumPy, written from docs/FORMAT.md ("Synthesis (version 4)"): learned x2
upsampling by a separable symmetric filter (its definition: ddcodec/format/upsampling.py), and the residual
refinement of the output channels. Torch-free; the torch side (training, torch decoder) is
ddcodec/component/synthesis.py.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ddcodec.format.upsampling import RUN, band


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
