"""The Deep Decoder network in torch: its input, initial weights and forward pass as a function of the weights.

Per hidden layer: 1x1 convolution (no bias), x2 bilinear upsampling (all layers but the last; or a learned filter,
ddcodec.component.synthesis), ReLU, channel-wise BatchNorm with the image's own statistics and affine parameters; then a 1x1
convolution to the output channels, the synthesis's refinement if any, and a sigmoid. The weights are a flat list of tensors in the order of docs/FORMAT.md, so that fitting, quantization and
the bitstream all walk the same list.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ddcodec.format.architecture import BN_EPS, Architecture
from ddcodec.component.arm import init_arm
from ddcodec.component.kernels import conv1x1, upsample2x_adjoint
from ddcodec.format.seed import seeded_input
from ddcodec.component.synthesis import initial_synthesis, refine, upsample_backward, upsample_forward, upsampling_band


def network_input(arch: Architecture, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The fixed input tensor (widths[0], h0, w0) that the seed defines."""
    h0, w0 = arch.input_size
    return torch.from_numpy(seeded_input(seed, arch.widths[0], h0, w0)).to(device)


def init_weights(arch: Architecture, generator: torch.Generator) -> list[torch.Tensor]:
    """Fresh weights: convolutions and latent mixers uniform in +-1/sqrt(fan_in) (PyTorch's default), BN scale 1
    and shift 0, latent grids 0 (so a coded-input network starts as the seed-only one), the synthesis's filters
    bilinear and its refinement 0 (so that it starts as the version 3 network), the ARM as arm.init_arm."""
    weights = []
    grids = arch.grid_indices
    synthesis = initial_synthesis(arch)
    shapes = arch.tensor_shapes()
    for t, shape in enumerate(shapes[: len(shapes) - len(arch.arm_indices)]):
        if t in synthesis:
            weights.append(synthesis[t])
        elif t in grids:
            weights.append(torch.zeros(shape))
        elif len(shape) == 2:
            bound = 1.0 / math.sqrt(shape[1])
            weights.append((torch.rand(shape, generator=generator) * 2 - 1) * bound)
        else:
            weights.append(torch.ones(shape) if t % 3 == 1 else torch.zeros(shape))
    return weights + (init_arm(arch.arm, generator) if arch.arm else [])


def _add_relu_(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x = relu(x + bias) in place: one pass on the CPU (aten's fused kernel, which has no CUDA version), two on a
    GPU."""
    return torch.ops.aten._add_relu_(x, bias) if x.device.type == "cpu" else x.add_(bias).relu_()


class _UpsampleReluStats(torch.autograd.Function):
    """r = relu(upsample(a) + bias) with r's per-channel mean and biased variance, and a hand-written backward.

    Works on a batch of independent networks, flattened: a (B, c, h·w) of grid size (h, w), bias (B, c, 1) or None,
    r (B, c, 4·h·w) or, without the upsampling, a itself, rectified in place (no convolution saves its output for
    its backward). The bias is the folded BatchNorm shift of the convolution before (it commutes with the
    upsampling), added in the ReLU's pass instead of broadcast into the convolution's output first.
    Autograd would differentiate the statistics through half a dozen passes over r; here their gradient is one
    per-channel affine function of r (d var/d r = 2(r - mean)/n), added to the incoming gradient, then masked by the
    ReLU in place. The bias's gradient is summed after the upsampling's adjoint, which keeps sums: 4x fewer values.
    With `band` (B, ., .), the learned upsampling of ddcodec.component.synthesis replaces the bilinear one; its filter's gain
    does not commute with the bias, which is then added after the upsampling (the caller scales it by the gain) and
    its gradient summed before the adjoint.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, bias: torch.Tensor | None, size: tuple[int, int], upsample: bool,
                band: torch.Tensor | None = None):
        learned: tuple[torch.Tensor, ...] = ()
        if upsample and band is not None:
            r, saved = upsample_forward(a.unflatten(2, size), band)
            r, learned = r.flatten(2), (*saved, band)
        elif upsample:
            r = F.interpolate(a.unflatten(2, size), scale_factor=2, mode="bilinear", align_corners=False).flatten(2)
        else:
            r = a
            ctx.mark_dirty(a)
        r = torch.relu_(r) if bias is None else _add_relu_(r, bias)
        mean = r.mean(2)
        var = (torch.einsum("bcn,bcn->bc", r, r) / r.shape[2] - mean * mean).clamp_min(0)
        ctx.save_for_backward(r, mean, *learned)
        ctx.upsample, ctx.size = upsample, (2 * size[0], 2 * size[1])
        return r, mean, var

    @staticmethod
    def backward(ctx, g_r, g_mean, g_var):
        r, mean, *learned = ctx.saved_tensors
        n = r.shape[2]
        slope = ((2.0 / n) * g_var)[:, :, None]
        offset = (g_mean / n)[:, :, None] - slope * mean[:, :, None]
        g = offset + slope * r if g_r is None else torch.addcmul(g_r, r, slope).add_(offset)
        g = torch.ops.aten.threshold_backward.grad_input(g, r, 0, grad_input=g)  # zero where the ReLU was off
        if learned:
            g_bias = g.sum(2, keepdim=True) if ctx.needs_input_grad[1] else None
            g, g_band = upsample_backward(g.unflatten(2, ctx.size), *learned)
            return g.flatten(2), g_bias, None, None, g_band
        if ctx.upsample:
            g = upsample2x_adjoint(g.unflatten(2, ctx.size)).flatten(2)
        return g, g.sum(2, keepdim=True) if ctx.needs_input_grad[1] else None, None, None, None


def render_batch(
    arch: Architecture, weights: Sequence[torch.Tensor], z: torch.Tensor, coarse: int = 0
) -> torch.Tensor:
    """B independent networks at once: weights with a leading batch dimension, z (B, c, h0, w0) -> (B, C, H, W).

    Coded-input networks (arch.latents) add each latent layer's grids, mixed by their matrix, to the layer's
    convolution output: the same as concatenating them to its input. Each BatchNorm is folded into the next 1x1
    convolution (W·(a·x + b) = (W·diag a)·x + W·b): the same function, one pass less over the largest activations;
    the bias W·b is added in the ReLU's pass. Activations stay flat, (B, channels, pixels), their grid size aside.
    `coarse` = s > 0 (warm-up, coarse-to-fine fitting) skips the last s upsamplings, and the latent grids of the layers
    after the first skipped one (their size no longer matches): the same network renders the image 2^s times smaller,
    and its weights carry over to full size almost unchanged, since ReLU, BatchNorm and the 1x1 convolutions after a
    skipped upsampling nearly commute with it. Layer d-1 has no grids, so at s = 1 every grid takes part. The
    refinement (a fixed footprint in pixels) is skipped too.
    """
    b, _, h, wd = z.shape
    x, bias = z.flatten(2), None
    d = arch.layers
    mixers = arch.mixers
    for i in range(d + 1):
        w = weights[3 * i]
        if i > 0:
            w, bias = w * scale[:, None, :], torch.bmm(w, shift[:, :, None])
        x = conv1x1(w, x)
        if i in mixers and i < d - coarse:  # coded input: W·[x; L] = W_x·x + M·L (at the grids' own size)
            grids = torch.stack([weights[t] for t in arch.latent_grids[i]], 1).reshape(b, -1, h * wd)
            x = torch.baddbmm(x, weights[mixers[i]], grids)
        if i == d:
            break
        upsample = i < d - 1 - coarse
        band = None
        if upsample and arch.learned_upsampling:  # the filter's gain (its taps' sum, squared) scales the bias
            taps = weights[arch.upsampling_filters][:, i]
            band = upsampling_band(taps)
            bias = None if bias is None else bias * taps.sum(1).square()[:, None, None]
        x, mean, var = _UpsampleReluStats.apply(x, bias, (h, wd), upsample, band)
        h, wd = (2 * h, 2 * wd) if upsample else (h, wd)
        gamma, beta = weights[3 * i + 1], weights[3 * i + 2]
        scale = gamma * torch.rsqrt(var + BN_EPS)
        shift = beta - mean * scale
    x = (x + bias).unflatten(2, (h, wd))[:, :, : -(-arch.height >> coarse), : -(-arch.width >> coarse)]
    if arch.refine and not coarse:  # the refinement's kernels work at full size only
        x = refine(x, [weights[t] for t in arch.refinement_kernels])
    return torch.sigmoid(x)


def render(arch: Architecture, weights: Sequence[torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    """The image (channels, height, width) in [0, 1] of one network on its input z (c, h0, w0)."""
    return render_batch(arch, [w[None] for w in weights], z[None])[0]
