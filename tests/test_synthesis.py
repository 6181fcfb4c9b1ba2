"""The synthesis of format version 4 (learned upsampling, refinement): the torch and NumPy sides against the format's
textbook definition, their start from the version 3 network, the header fields and the profiles that use them."""

import dataclasses
import struct
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ddcodec
from benchmarks.decode_speed import random_stream
from ddcodec import BitstreamError
from ddcodec.decoders import npdecode
from ddcodec.decoders import npsynthesis
from ddcodec.format.upsampling import bilinear_taps
from ddcodec.encoder import ratecontrol
from ddcodec.component import synthesis
from ddcodec.decoders import torchdecode
from ddcodec.format.architecture import Architecture, ArmShape
from ddcodec.format.container import Header, header_size, pack, parse
from ddcodec.format.limits import decode_cost
from ddcodec.component.model import init_weights, network_input, render
from ddcodec.encoder.ratecontrol import plan

from .test_model import random_weights
from .test_npdecode import assert_same_up_to_rounding

SYNTHESIS = Architecture(37, 50, 3, (5, 7, 6, 4), (2, 0, 1), taps=4, refine=2)


def transposed_convolution_upsampling(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """The format's definition as Cool-chic writes it: per axis, a stride-2 transposed convolution with the symmetric
    kernel w_{K-1} .. w_0 w_0 .. w_{K-1} over the input with K // 2 samples repeated at each edge, cropped."""
    k, pad = taps.shape[0], taps.shape[0] // 2
    kernel = torch.cat([taps.flip(0), taps])
    b, c, h, w = x.shape
    y = F.pad(x.reshape(b * c, 1, h, w), (pad, pad, pad, pad), mode="replicate")
    y = F.conv_transpose2d(y, kernel.view(1, 1, -1, 1), stride=(2, 1))
    y = F.conv_transpose2d(y, kernel.view(1, 1, 1, -1), stride=(1, 2))
    start = k - 1 + 2 * pad
    return y[:, 0, start : start + 2 * h, start : start + 2 * w].reshape(b, c, 2 * h, 2 * w)


def textbook_network(arch, weights, z):
    """Conv, upsample (learned), ReLU, BatchNorm per layer; conv, refinement by conv2d, sigmoid; nothing fused."""
    x = z[None]
    for i in range(arch.layers):
        w = weights[3 * i]
        if arch.latents and arch.latents[i]:
            x = torch.cat([x, torch.stack([weights[t] for t in arch.latent_grids[i]])[None]], 1)
            w = torch.cat([w, weights[arch.mixers[i]]], 1)
        x = F.conv2d(x, w[:, :, None, None])
        if i < arch.layers - 1:
            x = transposed_convolution_upsampling(x, weights[arch.upsampling_filters][i])
        x = F.batch_norm(torch.relu(x), None, None, weights[3 * i + 1], weights[3 * i + 2], training=True, eps=1e-5)
    x = F.conv2d(x, weights[3 * arch.layers][:, :, None, None])[:, :, : arch.height, : arch.width]
    for t in arch.refinement_kernels:
        pad = arch.refine_kernel // 2
        x = x + F.conv2d(F.pad(x, (pad,) * 4, mode="replicate"), weights[t])
    return torch.sigmoid(x[0])


def trained_like(arch):
    """Random weights, filters near bilinear and small refinement kernels, as after some fitting."""
    weights = random_weights(arch)
    gen = torch.Generator().manual_seed(9)
    weights[arch.upsampling_filters] = (torch.tensor(bilinear_taps(arch.taps))
                                        + 0.1 * torch.randn(arch.layers - 1, arch.taps, generator=gen))
    for t in arch.refinement_kernels:
        weights[t] = 0.1 * torch.randn(weights[t].shape, generator=gen)
    return weights


@pytest.mark.parametrize("h,w", [(1, 1), (1, 5), (4, 3), (7, 10), (9, 17)])
@pytest.mark.parametrize("taps", [2, 3, 4, 8])
def test_learned_upsampling_is_the_transposed_convolution_and_starts_bilinear(h, w, taps):
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * w), dtype=torch.float64)
    filters = torch.rand(2, taps, generator=torch.Generator().manual_seed(taps), dtype=torch.float64)
    ours = synthesis.upsample(x, filters)
    for b in range(2):
        torch.testing.assert_close(ours[b : b + 1], transposed_convolution_upsampling(x[b : b + 1], filters[b]))
    bilinear = torch.from_numpy(bilinear_taps(taps)).double().expand(2, taps)
    torch.testing.assert_close(synthesis.upsample(x, bilinear),
                               F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
    numpy = npsynthesis.upsample(x[0].float().numpy(), filters[0].float().numpy())
    np.testing.assert_allclose(numpy, ours[0].float().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape,taps", [((2, 2, 3, 4), 4), ((1, 1, 1, 3), 5), ((1, 2, 9, 2), 8), ((2, 1, 2, 2), 2)])
def test_learned_upsampling_gradients(shape, taps):
    x = torch.rand(shape, dtype=torch.float64, requires_grad=True)
    filters = torch.rand(shape[0], taps, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(synthesis.upsample, (x, filters))


def test_refinement_is_a_replicate_padded_convolution_in_both_sides():
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 11, 13, generator=gen)
    kernels = [0.2 * torch.randn(2, 3, 3, side, side, generator=gen) for side in (3, 5)]
    ours = synthesis.refine(x, kernels)
    for b in range(2):
        y = x[b : b + 1]
        for k in kernels:
            y = y + F.conv2d(F.pad(y, (k.shape[-1] // 2,) * 4, mode="replicate"), k[b])
        torch.testing.assert_close(ours[b : b + 1], y)
        numpy = npsynthesis.refine(x[b].numpy(), [k[b].numpy() for k in kernels])
        np.testing.assert_allclose(numpy, ours[b].numpy(), rtol=1e-5, atol=1e-6)


def test_the_initialized_synthesis_renders_the_version_3_network():
    plain = Architecture(37, 50, 3, (5, 7, 6, 4), (2, 0, 1))
    weights = random_weights(plain)
    extended = init_weights(SYNTHESIS, torch.Generator().manual_seed(1))
    assert len(extended) == len(weights) + 1 + SYNTHESIS.refine  # new tensors at the end
    extended[: len(weights)] = weights
    z = network_input(plain, 3)
    torch.testing.assert_close(render(SYNTHESIS, extended, z), render(plain, weights, z), atol=1e-6, rtol=0)
    np.testing.assert_allclose(npdecode.render(SYNTHESIS, [w.numpy() for w in extended], z.numpy()),
                               npdecode.render(plain, [w.numpy() for w in weights], z.numpy()), atol=1e-6)


def test_render_and_its_gradients_equal_the_textbook_network():
    z = network_input(SYNTHESIS, 3).double()
    target = torch.rand(3, 37, 50, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    outputs, grads = [], []
    for net in (render, textbook_network):
        weights = [w.double().requires_grad_() for w in trained_like(SYNTHESIS)]
        outputs.append(net(SYNTHESIS, weights, z))
        grads.append(torch.autograd.grad(((outputs[-1] - target) ** 2).mean(), weights))
    torch.testing.assert_close(*outputs)
    for ours, textbook in zip(*grads):
        torch.testing.assert_close(ours, textbook)


@pytest.mark.parametrize("arch", [
    Architecture(50, 70, 3, (12,) * 5, (2, 1, 0, 1), taps=4, refine=2),
    Architecture(37, 53, 1, (5, 7, 9, 4), taps=3, refine=1, refine_kernel=5),
    Architecture(20, 30, 3, (8, 6), taps=2, refine=1),  # one layer: no upsampling, no filters coded
], ids=str)
def test_both_decoders_agree_on_made_up_version_4_files(arch):
    data = random_stream(arch, seed=5)
    assert data[4] == 4
    pixels = npdecode.decode_array(data)
    assert pixels.shape == (arch.height, arch.width, arch.channels) and pixels.std() > 5
    assert_same_up_to_rounding(pixels, torchdecode.decode_array(data))


@pytest.mark.parametrize("arm", [None, ArmShape(), ArmShape(8, False, (16,))])
def test_header_carries_the_synthesis_fields_and_header_size_counts_them(arm):
    arch = dataclasses.replace(SYNTHESIS, arm=arm)
    header = Header(arch, seed=7, coder=0, step_codes=tuple(range(len(arch.tensor_shapes()))))
    data = pack(header, b"payload")
    assert len(data) == header_size(3, len(arch.tensor_shapes()), arm=arm) + len(b"payload") + 4
    assert parse(data) == (header, b"payload")


def _synthesis_fields_offset(arch: Architecture) -> int:
    return 11 + 2 * (arch.layers + 1) + arch.layers + 10


@pytest.mark.parametrize("fields, message", [((1, 0, 3), "taps"), ((9, 0, 3), "taps"), ((0, 5, 3), "refinement"),
                                             ((0, 1, 4), "side"), ((0, 1, 9), "side")])
def test_bad_synthesis_fields_are_refused(fields, message):
    body = bytearray(pack(Header(SYNTHESIS, 7, 0, (0,) * len(SYNTHESIS.tensor_shapes())), b"")[:-4])
    offset = _synthesis_fields_offset(SYNTHESIS)
    body[offset : offset + 3] = bytes(fields)
    with pytest.raises(BitstreamError, match=message):
        parse(bytes(body) + struct.pack("<I", zlib.crc32(body)))


def test_synthesis_costs_are_counted():
    plain = Architecture(37, 50, 3, (5, 7, 6, 4), (2, 0, 1))
    # filters: 7 and 6 channels x 4 taps x 6 samples per input sample at 10x13 and 20x26; refinement 2 x 81 / px
    upsampling = (7 * 4 * 6 * 10 * 13 + 6 * 4 * 6 * 20 * 26) / (37 * 50)
    assert SYNTHESIS.macs_per_pixel() == pytest.approx(plain.macs_per_pixel() + upsampling + 2 * 81)
    assert decode_cost(SYNTHESIS).memory > decode_cost(plain).memory
    assert SYNTHESIS.n_synthesis_params == 2 * 4 + 2 * 81 and plain.n_synthesis_params == 0


def test_the_seed_profile_keeps_the_papers_deep_decoder():
    seed = plan(256, 256, 3, bpp=0.3).arch
    assert (seed.taps, seed.refine) == (0, 0) and seed.macs_per_pixel() == Architecture(
        256, 256, 3, seed.widths).macs_per_pixel()


def test_an_encoded_file_with_the_synthesis_decodes_alike_in_both_decoders(parrot, monkeypatch):
    monkeypatch.setattr(ratecontrol, "CODED", dataclasses.replace(ratecontrol.CODED, max_synthesis_share=1.0))  # planned even for a crop this small
    result = ddcodec.encode(parrot[:40, :48], bpp=6.0, iters=60, tries=1)
    arch = result.arch
    assert arch.learned_upsampling and arch.refine and result.data[4] == 4
    assert_same_up_to_rounding(npdecode.decode_array(result.data), torchdecode.decode_array(result.data))


def test_tiny_budgets_leave_the_synthesis_out():
    tiny, crop = plan(64, 64, 3, bpp=0.4, coded_input=True).arch, plan(256, 256, 3, bpp=0.6, coded_input=True).arch
    assert (tiny.taps, tiny.refine) == (0, 0) and tiny.widths[0] >= 2
    assert crop.learned_upsampling and crop.refine


def test_a_network_beside_the_synthesis_or_the_arm_keeps_a_useful_width():
    """A 256x256 crop at 0.3 bpp would be width 3 with both; it is planned with the synthesis alone, wider
    (CodedPlan.min_width_with_extras); 768x512 keeps both."""
    crop = plan(256, 256, 3, bpp=0.3, coded_input=True).arch
    assert crop.learned_upsampling and crop.arm is None and crop.widths[0] >= ratecontrol.CODED.min_width_with_extras
    photo = plan(512, 768, 3, bpp=0.3, coded_input=True).arch
    assert photo.learned_upsampling and photo.arm == ratecontrol.CODED.arm
