"""The decoder in NumPy, written from docs/FORMAT.md alone: decoding needs no torch.

The forward pass is a function of (architecture, weights, input), like model.render, and folds each BatchNorm into
the next 1x1 convolution (W·(a·x + b) = (W·diag a)·x + W·b), which saves one pass over the largest activations.
Results match the torch decoder up to float rounding (the order of additions differs).

Speed (benchmarks/decode_speed.py): the work runs on a thread pool (NumPy releases the GIL) in pieces that stay in
the cache from one step to the next, with BLAS held to one thread meanwhile (threadpoolctl): its own threads, woken
for each piece, made decoding several times slower on a busy machine.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import numpy as np
from threadpoolctl import ThreadpoolController

from ddcodec.format.architecture import BN_EPS, Architecture
from ddcodec.errors import BitstreamError
from ddcodec.format.limits import BLOCK, DECODE_THREADS, Limits  # BLOCK: pixels per block, whose product stays in the cache
from ddcodec.decoders.npsynthesis import refine, upsample as learned_upsample
from ddcodec.format.container import Header
from ddcodec.format.reader import read_weights
from ddcodec.format.tiles import is_tiled
from ddcodec.format.seed import seeded_input

T = TypeVar("T")
MAX_THREADS = DECODE_THREADS  # worker threads; beyond the cores they only add overhead
NOT_FINITE = "the network's output is not finite: the file is damaged"
# One decode at a time per process: each already uses every core, and the BLAS limit is process-wide (two decodes
# in two threads would each restore the setting the other one made).
_ONE_AT_A_TIME = threading.Lock()


class Upsampled:
    """The memory of each upsampling's output, one buffer reused from layer to layer and, for a tiled file, from
    tile to tile. An upsampling's output is read only by the next convolution, so the next upsampling may write over
    it; a tile's largest (its full-size layer, 147 MB for 1008² tiles of width 34) allocated anew for each tile was
    new pages from the system, faulted in as they were written. Kept between tiles it does not raise the peak, which
    is while that buffer and the convolution's output it is made from are both held."""

    def __init__(self) -> None:
        self._buffer = np.empty(0, np.float32)

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialised float32 array of `shape` in the buffer, grown where it is too small (the last one is
        let go first: by now nothing reads it)."""
        n = math.prod(shape)
        if self._buffer.size < n:
            self._buffer = np.empty(0, np.float32)
            self._buffer = np.empty(n, np.float32)
        return self._buffer[:n].reshape(shape)


def _upsample_axis(x: np.ndarray, axis: int, out: np.ndarray) -> np.ndarray:
    """x2 bilinear along axis -2 or -1 of an array into `out`, half-pixel centres, edge samples clamped.

    Output 2k lies a quarter sample before input k, output 2k+1 a quarter after: x[k] + 0.25·(x[k∓1] − x[k]),
    from one temporary (the quarter steps) where 0.75·x and 0.25·x took two.
    """
    x_t, out_t = np.moveaxis(x, axis, 0), np.moveaxis(out, axis, 0)
    step = np.subtract(x_t[:-1], x_t[1:])
    step *= np.float32(0.25)
    np.add(x_t[1:], step, out=out_t[2::2])
    np.subtract(x_t[:-1], step, out=out_t[1:-1:2])
    out_t[0], out_t[-1] = x_t[0], x_t[-1]
    return out


def upsample(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(..., h, w) -> (..., 2h, 2w), bilinear with half-pixel centres (PyTorch's align_corners=False): width, then
    height."""
    *rest, h, w = x.shape
    wide = _upsample_axis(x, -1, np.empty((*rest, h, 2 * w), np.float32))
    return _upsample_axis(wide, -2, np.empty((*rest, 2 * h, 2 * w), np.float32) if out is None else out)


def _relu_stats(r: np.ndarray) -> np.ndarray:
    """ReLU in place on a (c, n) block; per row the sum and the sum of squares of what is left, (2, c) float64."""
    np.maximum(r, 0, out=r)
    return _stats(r)


def _stats(r: np.ndarray) -> np.ndarray:
    """Per row of a (c, n) block, the sum and the sum of squares, (2, c) in float64 (BLAS products, one pass each)."""
    sums = r @ np.ones(r.shape[1], np.float32)
    squares = np.matmul(r[:, None, :], r[:, :, None]).reshape(-1)
    return np.stack([sums, squares]).astype(np.float64)


def _batchnorm(total: np.ndarray, n: int, gamma: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm's per-channel (scale, shift) from the sums (2, c) of its input over n positions."""
    mean, power = total / n
    var = np.maximum(power - mean * mean, 0).astype(np.float32)
    scale = gamma / np.sqrt(var + np.float32(BN_EPS))
    return scale, beta - mean.astype(np.float32) * scale


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's thread pools, found once (threadpool_limits looks for them at every call: 0.3 ms)."""
    return ThreadpoolController()


def render(arch: Architecture, weights: Sequence[np.ndarray], z: np.ndarray, upsampled: Upsampled | None = None
           ) -> np.ndarray:
    """The image (channels, height, width) in [0, 1], float32, of the network with these weights on input z.

    Convolutions run in blocks of BLOCK pixels, each with what follows it: bias, ReLU and statistics in the last
    hidden layer, bias and sigmoid in the output; each upsampling, with its ReLU and statistics, one channel at a time.
    With the synthesis of version 4 (npsynthesis), the upsamplings use their learned filters, and the refinement
    works on the output convolution's cropped result before the sigmoid. `upsampled`: the upsamplings' memory, to
    reuse for the next render (a tiled file's next tile).
    """
    threads = min(os.cpu_count() or 1, MAX_THREADS)
    with (_ONE_AT_A_TIME,
          _blas().limit(limits=1, user_api="blas"),  # set where it is made: under the lock, so that it restores ours
          ThreadPoolExecutor(threads) as pool, np.errstate(all="ignore")):
        return _render(arch, weights, z, pool, upsampled or Upsampled())  # bounds.py refuses weights that overflow


def _render(arch: Architecture, weights: Sequence[np.ndarray], z: np.ndarray, pool: ThreadPoolExecutor,
            upsampled: Upsampled) -> np.ndarray:
    """render's layers, with `scale` and `shift` the previous BatchNorm carried into the next convolution."""
    d = arch.layers
    h, w = z.shape[1:]
    x = z.reshape(z.shape[0], -1)
    scale, shift = np.ones(z.shape[0], np.float32), np.zeros(z.shape[0], np.float32)
    filters = weights[arch.upsampling_filters] if arch.learned_upsampling else None
    mixers, grids = arch.mixers, arch.latent_grids
    if 0 in grids:
        x = np.concatenate([x, _stacked(weights, grids[0])])
    for i in range(d):
        conv, bias = weights[3 * i] * scale[None, :], weights[3 * i] @ shift
        if i in mixers:  # coded input: W·[x; L] = W_x·x + M·L, x's last rows the grids L
            conv = np.concatenate([conv, weights[mixers[i]]], 1)
        if i < d - 1:
            taps, joined = None if filters is None else filters[i], grids.get(i + 1, [])
            x = _conv(conv, bias, x, pool)  # (the input freed before the upsampling allocates its output)
            x, total = _upsample_relu_stats(x, h, w, pool, upsampled, taps, len(joined))
            if joined:
                x[x.shape[0] - len(joined) :] = _stacked(weights, joined)
            h, w = 2 * h, 2 * w
        else:
            x, total = _conv_relu_stats(conv, bias, x, pool)
        scale, shift = _batchnorm(total, x.shape[1], weights[3 * i + 1], weights[3 * i + 2])
    conv, bias = weights[3 * d] * scale[None, :], weights[3 * d] @ shift
    if not arch.refine:
        y = _sigmoid_conv(conv, bias, x, pool).reshape(-1, h, w)[:, : arch.height, : arch.width]
    else:
        logits = _conv(conv, bias, x, pool).reshape(-1, h, w)[:, : arch.height, : arch.width]
        y = refine(np.ascontiguousarray(logits), [weights[t] for t in arch.refinement_kernels])
        y = _sigmoid(y, y)
    if not np.isfinite(y).all():
        raise BitstreamError(NOT_FINITE)
    return y


def _stacked(weights: Sequence[np.ndarray], grids: Sequence[int]) -> np.ndarray:
    """The latent grids of these indices, one row each: (n, h·w)."""
    return np.stack([weights[t] for t in grids]).reshape(len(grids), -1)


def _blockwise(pool: ThreadPoolExecutor, conv: np.ndarray, bias: np.ndarray, x: np.ndarray,
               then: Callable[[np.ndarray, slice], T]) -> list[T]:
    """then(conv·x + bias, columns) for each block of BLOCK columns of x, on the pool; the list of what it returns.

    The block's product is still in the cache when `then` reads it."""
    def block(cols: slice) -> T:
        with np.errstate(all="ignore"):  # per thread: NumPy's error state is thread-local
            a = conv @ x[:, cols]
            a += bias[:, None]
            return then(a, cols)

    return list(pool.map(block, [slice(s, s + BLOCK) for s in range(0, x.shape[1], BLOCK)]))


def _conv(conv: np.ndarray, bias: np.ndarray, x: np.ndarray, pool: ThreadPoolExecutor) -> np.ndarray:
    """conv·x + bias."""
    out = np.empty((conv.shape[0], x.shape[1]), np.float32)

    def store(a: np.ndarray, cols: slice) -> None:
        out[:, cols] = a

    _blockwise(pool, conv, bias, x, store)
    return out


def _upsample_relu_stats(a: np.ndarray, h: int, w: int, pool: ThreadPoolExecutor, upsampled: Upsampled,
                         taps: np.ndarray | None = None, spare: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """relu(upsample(a)) (a: (c, h·w); bilinear, or the learned filter `taps`) and its per-channel sums (2, c), in
    groups of channels of about BLOCK pixels (one channel each at full resolution); the result has `spare` rows
    more, left unset (for the next layer's latent grids: no copy to join them), in `upsampled`'s memory."""
    c, group = a.shape[0], max(BLOCK // (h * w), 1)
    x = upsampled.empty((c + spare, 4 * h * w))

    def channels(rows: slice) -> np.ndarray:
        grids, out = a[rows].reshape(-1, h, w), x[rows].reshape(-1, 2 * h, 2 * w)
        with np.errstate(all="ignore"):  # per thread: NumPy's error state is thread-local
            up = upsample(grids, out) if taps is None else learned_upsample(grids, taps, out)
            return _relu_stats(up.reshape(up.shape[0], -1))

    groups = [slice(s, min(s + group, c)) for s in range(0, c, group)]
    return x, np.concatenate(list(pool.map(channels, groups)), axis=1)


def _conv_relu_stats(conv: np.ndarray, bias: np.ndarray, x: np.ndarray, pool: ThreadPoolExecutor
                     ) -> tuple[np.ndarray, np.ndarray]:
    """relu(conv·x + bias), written over x when x has rows enough, and its per-channel sums (2, c)."""
    c = conv.shape[0]
    out = x[:c] if c <= x.shape[0] else np.empty((c, x.shape[1]), np.float32)
    return out, sum(_blockwise(pool, conv, bias, x, lambda a, cols: _stats(np.maximum(a, 0, out=out[:, cols]))))


def _sigmoid_conv(conv: np.ndarray, bias: np.ndarray, x: np.ndarray, pool: ThreadPoolExecutor) -> np.ndarray:
    """sigmoid(conv·x + bias)."""
    y = np.empty((conv.shape[0], x.shape[1]), np.float32)
    _blockwise(pool, conv, bias, x, lambda a, cols: _sigmoid(a, y[:, cols]))
    return y


def _sigmoid(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """sigmoid(a) into `out`, using a's memory as scratch."""
    with np.errstate(all="ignore"):  # exp(-a) = inf for very negative a gives sigmoid 0, as it should
        np.exp(np.negative(a, out=a), out=a)
    a += 1
    return np.reciprocal(a, out=out)


def decode_array(data: bytes, limits: Limits | None = None) -> np.ndarray:
    """The decoded image of a .ddc stream as a uint8 array (H, W, C); a tiled one tile by tile."""
    if is_tiled(data):
        from ddcodec.decoders.tiled import decode_tiled

        return decode_tiled(data, limits, functools.partial(_pixels, upsampled=Upsampled()))
    return _pixels(*read_weights(data, limits))


def _pixels(header: Header, weights: list[np.ndarray], upsampled: Upsampled | None = None) -> np.ndarray:
    """The uint8 image (H, W, C) of a stream's header and weights (`upsampled`: render's)."""
    arch = header.arch
    z = seeded_input(header.seed, arch.widths[0], *arch.input_size)
    img = render(arch, weights, z, upsampled)
    img *= np.float32(255)
    np.rint(img, out=img)
    return img.clip(0, 255, out=img).astype(np.uint8).transpose(1, 2, 0).copy()
