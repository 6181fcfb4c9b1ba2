"""The decoder in NumPy, written from docs/FORMAT.md alone: decoding needs no torch.

The forward pass is a function of (architecture, weights, input), like model.render, and folds each BatchNorm into
the next 1x1 convolution (W·(a·x + b) = (W·diag a)·x + W·b), which saves one pass over the largest activations.
Results match the torch decoder up to float rounding (the order of additions differs).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from .architecture import BN_EPS, Architecture
from .limits import Limits
from .reader import read_weights
from .seed import seeded_input

MAX_THREADS = 8  # threads for the per-channel steps; beyond the cores they only add overhead


def _upsample_axis(x: np.ndarray, axis: int, out: np.ndarray) -> np.ndarray:
    """x2 bilinear along axis 0 or 1 of a 2-D array into `out`, half-pixel centres, edge samples clamped.

    Output 2k lies a quarter sample before input k, output 2k+1 a quarter after: 0.25·x[k∓1] + 0.75·x[k].
    """
    x_t, out_t = (x, out) if axis == 0 else (x.T, out.T)
    near = x_t * np.float32(0.75)
    far = x_t * np.float32(0.25)
    np.add(far[:-1], near[1:], out=out_t[2::2])
    np.add(far[1:], near[:-1], out=out_t[1:-1:2])
    out_t[0], out_t[-1] = x_t[0], x_t[-1]
    return out


def upsample(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(h, w) -> (2h, 2w), bilinear with half-pixel centres (PyTorch's align_corners=False): width, then height."""
    h, w = x.shape
    wide = _upsample_axis(x, 1, np.empty((h, 2 * w), np.float32))
    return _upsample_axis(wide, 0, np.empty((2 * h, 2 * w), np.float32) if out is None else out)


def _relu_stats(r: np.ndarray, bias: np.float32 | float = 0) -> tuple[float, float]:
    """Bias and ReLU in place on one channel; the sum and the sum of squares of what is left."""
    if bias:
        r += bias
    np.maximum(r, 0, out=r)
    flat = r.reshape(-1)
    return float(flat.sum(dtype=np.float32)), float(np.dot(flat, flat))


def render(arch: Architecture, weights: Sequence[np.ndarray], z: np.ndarray) -> np.ndarray:
    """The image (channels, height, width) in [0, 1], float32, of the network with these weights on input z.

    Each BatchNorm is folded into the next 1x1 convolution (W·(a·x + b) = (W·diag a)·x + W·b). After each
    convolution, the element-wise steps (upsampling, ReLU, statistics) run one channel at a time, so that the
    channel stays in the cache between them, and channels run on all cores (NumPy releases the GIL).
    """
    with ThreadPoolExecutor(min(os.cpu_count() or 1, MAX_THREADS)) as pool:
        return _render(arch, weights, z, pool)


def _render(arch: Architecture, weights: Sequence[np.ndarray], z: np.ndarray, pool: ThreadPoolExecutor) -> np.ndarray:
    """render's layers, with `scale` and `shift` the previous BatchNorm carried into the next convolution."""
    d = arch.layers
    h, w = z.shape[1:]
    x = z.reshape(z.shape[0], -1)
    scale, shift = np.ones(z.shape[0], np.float32), np.zeros(z.shape[0], np.float32)
    for i in range(d + 1):
        conv = weights[3 * i]
        a, bias = (conv * scale[None, :]) @ x, conv @ shift  # the bias is added channel by channel below
        if i in arch.mixers:  # coded input: W·[x; L] = W_x·x + M·L
            grids = np.stack([weights[t] for t in arch.latent_grids[i]]).reshape(-1, h * w)
            a += weights[arch.mixers[i]] @ grids
        if i == d:
            a += bias[:, None]
            break
        if i < d - 1:
            x = np.empty((a.shape[0], 2 * h, 2 * w), np.float32)
            stats = list(pool.map(lambda c, b, out: _relu_stats(upsample(c.reshape(h, w) + b, out)), a, bias, x))
            h, w = 2 * h, 2 * w
            x = x.reshape(a.shape[0], -1)
        else:
            x = a
            stats = list(pool.map(_relu_stats, x, bias))
        n = x.shape[1]
        mean, power = (np.array(stats, np.float64) / n).astype(np.float32).T
        var = np.maximum(power - mean * mean, 0)
        scale = weights[3 * i + 1] / np.sqrt(var + np.float32(BN_EPS))
        shift = weights[3 * i + 2] - mean * scale
    y = a.reshape(-1, h, w)[:, : arch.height, : arch.width]
    with np.errstate(over="ignore"):  # exp(-y) = inf for very negative y gives sigmoid 0, as it should
        return 1 / (1 + np.exp(-y))


def decode_array(data: bytes, limits: Limits | None = None) -> np.ndarray:
    """The decoded image of a .ddc stream as a uint8 array (H, W, C)."""
    header, weights = read_weights(data, limits)
    arch = header.arch
    z = seeded_input(header.seed, arch.widths[0], *arch.input_size)
    img = render(arch, weights, z)
    return np.rint(img * np.float32(255)).clip(0, 255).astype(np.uint8).transpose(1, 2, 0).copy()
