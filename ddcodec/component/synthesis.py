"""The synthesis of format version 4 in torch: learned x2 upsampling and the residual refinement of the output.

Both are what docs/FORMAT.md ("Synthesis (version 4)") and ddcodec/format/upsampling.py define, here for B networks at once
(a leading batch dimension on activations and weights) and differentiable, so that fitting trains them like the other
weights. Both start as today's network: the filters as the bilinear upsampling, the refinement's kernels at 0.
Source: Cool-chic 3.4's learned separable upsampling and Cool-chic/C3's residual 3x3 layers (Philippe et al., 2024;
Kim et al., 2024), adapted to the Deep Decoder's hidden features.

The upsampling runs as matrix products, which BLAS does several times faster than a loop of per-tap passes over the
activations (measured at 768x512 on one thread: forward about 100 ms against 200 ms per x2 of 40 channels; torch's
conv_transpose2d took 7x the bilinear upsampling): each run of RUN input samples along an axis, with the
samples either side that the filter reads, times a band matrix (B, 2·RUN, RUN + 2·pad) built from the taps,
gives the run's 2·RUN outputs. The backward is written by hand (see _upsample_axis_backward).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ddcodec.format.architecture import Architecture
from ddcodec.format.upsampling import RUN, band_masks, bilinear_taps



def initial_synthesis(arch: Architecture) -> dict[int, torch.Tensor]:
    """Tensor index -> initial value of the synthesis's tensors: bilinear filters, zero refinement kernels (so that
    the network renders exactly as without them)."""
    out: dict[int, torch.Tensor] = {}
    shapes = arch.tensor_shapes()
    if arch.learned_upsampling:
        t = arch.upsampling_filters
        out[t] = torch.from_numpy(bilinear_taps(arch.taps)).expand(shapes[t]).clone()
    for t in arch.refinement_kernels:
        out[t] = torch.zeros(shapes[t])
    return out


def upsampling_band(taps: torch.Tensor) -> torch.Tensor:
    """The band matrices (B, 2·RUN, RUN + 2·(K // 2)) of each network's filter taps (B, K), differentiable."""
    masks = torch.tensor(band_masks(taps.shape[1], RUN), dtype=taps.dtype, device=taps.device)
    return torch.einsum("bk,kol->bol", taps, masks)


def upsample(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """x (B, c, h, w) -> (B, c, 2h, 2w) with each network's learned filter taps (B, K), width first, then height;
    differentiable in both (model.render_batch fuses the same steps with the ReLU and statistics that follow)."""
    return _Upsample.apply(x, upsampling_band(taps))


def _pad(x: torch.Tensor, dim: int, left: int, right: int) -> torch.Tensor:
    """x with its first sample along `dim` repeated `left` times and its last `right` times."""
    n = x.shape[dim]
    parts = [x]
    for count, edge in ((left, 0), (right, n - 1)):
        size = list(x.shape)
        size[dim] = count
        parts.insert(0 if edge == 0 else len(parts), x.narrow(dim, edge, 1).expand(size))
    return torch.cat(parts, dim)


def _padded(x: torch.Tensor, dim: int, length: int) -> torch.Tensor:
    """x along `dim` with the samples that its runs' windows of `length` read beyond its edges (edge samples
    repeated): `pad` before it, `pad` and the last run's remainder after it."""
    n, pad = x.shape[dim], (length - RUN) // 2
    return _pad(x, dim, pad, pad + -(-n // RUN) * RUN - n)


def _upsample_axis(padded: torch.Tensor, band: torch.Tensor, dim: int, n: int) -> torch.Tensor:
    """x2 along `dim` (2: height, 3: width) of x (B, c, h, w) of n samples there, given as _padded(x): each run of
    RUN inputs, with the `pad` samples either side, times the band (B, 2·RUN, RUN + 2·pad) gives its 2·RUN outputs."""
    length = band.shape[2]
    windows = padded.unfold(dim, length, RUN)
    if dim == 3:  # windows (B, c, h, runs, L)
        b, c, h = padded.shape[:3]
        out = torch.matmul(windows.reshape(b, -1, length), band.transpose(1, 2)).view(b, c, h, -1)
    else:  # windows (B, c, runs, w, L)
        out = torch.matmul(band[:, None, None], windows.transpose(3, 4)).flatten(2, 3)
    return out.narrow(dim, 0, 2 * n)


def _upsample_axis_backward(g: torch.Tensor, padded: torch.Tensor, band: torch.Tensor, dim: int
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradients of x and of the band given g, that of _upsample_axis(padded, band, dim, n): each run's window
    gets band^T times its outputs' gradient, added where the windows overlap and folded from the padding onto the
    edge samples; the band gets the sum of the outputs' gradients times the windows."""
    n, length = g.shape[dim] // 2, band.shape[2]
    pad, runs = (length - RUN) // 2, -(-n // RUN)
    windows = padded.unfold(dim, length, RUN)
    extra = 2 * (runs * RUN - n)
    b = g.shape[0]
    if dim == 3:
        g = (F.pad(g, (0, extra)) if extra else g.contiguous()).view(b, -1, 2 * RUN)  # (B, c·h·runs, 2·RUN)
        g_band = torch.matmul(g.transpose(1, 2), windows.reshape(b, -1, length))
        g_windows = torch.matmul(g, band).view(*padded.shape[:3], runs, length)
    else:
        g = (F.pad(g, (0, 0, 0, extra)) if extra else g.contiguous()).unflatten(2, (runs, 2 * RUN))
        g_band = torch.matmul(g, windows).sum((1, 2))
        g_windows = torch.matmul(band.transpose(1, 2)[:, None, None], g)  # (B, c, runs, L, w)
    g_padded = g.new_zeros(*padded.shape[:dim], (runs + 1) * RUN, *padded.shape[dim + 1 :])
    runs_of = g_padded.unflatten(dim, (runs + 1, RUN))  # run r's samples: index r along dim, then RUN of them
    runs_of.narrow(dim, 0, runs).copy_(g_windows.narrow(dim + 1, 0, RUN))
    runs_of.narrow(dim, 1, runs).narrow(dim + 1, 0, length - RUN).add_(g_windows.narrow(dim + 1, RUN, length - RUN))
    g_x = g_padded.narrow(dim, pad, n).contiguous()
    if pad:
        g_x.narrow(dim, 0, 1).add_(g_padded.narrow(dim, 0, pad).sum(dim, keepdim=True))
        tail = g_padded.shape[dim] - pad - n
        g_x.narrow(dim, n - 1, 1).add_(g_padded.narrow(dim, pad + n, tail).sum(dim, keepdim=True))
    return g_x, g_band


def upsample_forward(x: torch.Tensor, band: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """x (B, c, h, w) -> (B, c, 2h, 2w) by the bands of upsampling_band, width first, without autograd; and what
    upsample_backward needs (each pass's padded input)."""
    padded_x = _padded(x, 3, band.shape[2])
    wide = _upsample_axis(padded_x, band, 3, x.shape[3])
    padded_wide = _padded(wide, 2, band.shape[2])
    return _upsample_axis(padded_wide, band, 2, x.shape[2]), (padded_x, padded_wide)


def upsample_backward(g: torch.Tensor, padded_x: torch.Tensor, padded_wide: torch.Tensor, band: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradients of x and of the band given g, that of upsample_forward's output, and what it saved."""
    g_wide, g_band_height = _upsample_axis_backward(g, padded_wide, band, 2)
    g_x, g_band_width = _upsample_axis_backward(g_wide, padded_x, band, 3)
    return g_x, g_band_height + g_band_width


class _Upsample(torch.autograd.Function):
    """upsample_forward and upsample_backward as one differentiable step."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, band: torch.Tensor):
        out, saved = upsample_forward(x, band)
        ctx.save_for_backward(*saved, band)
        return out

    @staticmethod
    def backward(ctx, g):
        return upsample_backward(g.contiguous(), *ctx.saved_tensors)


def refine(x: torch.Tensor, kernels: Sequence[torch.Tensor]) -> torch.Tensor:
    """x (B, C, H, W) <- x + K * x for each kernel K (B, C, C, k, k): a k x k convolution per network, edges
    replicated."""
    b, c, h, w = x.shape
    for kernel in kernels:
        pad = kernel.shape[-1] // 2
        padded = F.pad(x.reshape(1, b * c, h, w), (pad, pad, pad, pad), mode="replicate")
        x = x + F.conv2d(padded, kernel.reshape(b * c, c, *kernel.shape[-2:]), groups=b).view(b, c, h, w)
    return x
