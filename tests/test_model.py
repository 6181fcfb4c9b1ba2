import torch
import torch.nn.functional as F

from ddcodec.format.architecture import Architecture
from ddcodec.component.model import BN_EPS, init_weights, network_input, render


def plain_deep_decoder(arch, weights, z):
    """The textbook layer order, BatchNorm not folded: conv, upsample, ReLU, BatchNorm; conv, sigmoid; crop."""
    x = z[None]
    for i in range(arch.layers):
        w = weights[3 * i]
        if arch.latents and arch.latents[i]:  # coded input: latent grids concatenated to the layer's input
            x = torch.cat([x, torch.stack([weights[t] for t in arch.latent_grids[i]])[None]], 1)
            w = torch.cat([w, weights[arch.mixers[i]]], 1)
        x = F.conv2d(x, w[:, :, None, None])
        if i < arch.layers - 1:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.batch_norm(torch.relu(x), None, None, weights[3 * i + 1], weights[3 * i + 2], training=True, eps=BN_EPS)
    x = torch.sigmoid(F.conv2d(x, weights[3 * arch.layers][:, :, None, None]))
    return x[0, :, : arch.height, : arch.width]


def random_weights(arch):
    ws = init_weights(arch, torch.Generator().manual_seed(1))
    return [w + 0.3 * torch.randn(w.shape, generator=torch.Generator().manual_seed(i)) for i, w in enumerate(ws)]


def test_parameter_count_matches_the_paper():
    for k, n in [(32, 6624), (64, 25536), (128, 100224)]:
        assert Architecture(512, 512, 3, (k,) * 7).n_params == n == 6 * k * k + 15 * k


def test_render_equals_the_unfused_network_with_odd_sizes_and_unequal_widths():
    arch = Architecture(37, 50, 3, (5, 7, 6, 4))
    weights, z = random_weights(arch), network_input(arch, 3)
    assert arch.input_size == (10, 13)
    out = render(arch, weights, z)
    assert out.shape == (3, 37, 50)
    torch.testing.assert_close(out, plain_deep_decoder(arch, weights, z), atol=1e-5, rtol=1e-4)


def test_grayscale_single_layer():
    arch = Architecture(9, 11, 1, (4, 4))
    weights, z = random_weights(arch), network_input(arch, 0)
    torch.testing.assert_close(render(arch, weights, z), plain_deep_decoder(arch, weights, z), atol=1e-5, rtol=1e-4)


def test_coded_input_equals_concatenating_the_latent_grids():
    arch = Architecture(37, 50, 3, (5, 7, 6, 4), (2, 0, 1))
    weights, z = random_weights(arch), network_input(arch, 3)
    torch.testing.assert_close(render(arch, weights, z), plain_deep_decoder(arch, weights, z), atol=1e-5, rtol=1e-4)


def test_coarse_rendering_is_the_image_shrunk():
    from ddcodec.component.model import render_batch

    arch = Architecture(37, 50, 3, (5, 7, 6, 4))
    weights, z = random_weights(arch), network_input(arch, 3)
    assert render_batch(arch, [w[None] for w in weights], z[None], coarse=1).shape == (1, 3, 19, 25)
    assert render_batch(arch, [w[None] for w in weights], z[None], coarse=2).shape == (1, 3, 10, 13)


def test_freed_memory_is_kept_in_the_heap_under_glibc():
    import platform

    from ddcodec.training.heap import retain_freed_memory

    assert retain_freed_memory() == (platform.libc_ver()[0] == "glibc")


def test_upsampling_adjoint_is_the_gradient_of_bilinear_upsampling():
    from ddcodec.component.kernels import upsample2x_adjoint

    for shape in [(2, 3, 5, 7), (1, 2, 1, 1), (1, 1, 1, 4), (1, 2, 2, 3), (1, 1, 6, 2)]:
        x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
        y = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        g = torch.randn(y.shape, dtype=torch.float64)
        torch.testing.assert_close(upsample2x_adjoint(g), torch.autograd.grad(y, x, g)[0])


def test_gradients_equal_those_of_the_unfused_network():
    arch = Architecture(37, 50, 3, (5, 7, 6, 4), (2, 0, 1))
    z = network_input(arch, 3).double()
    target = torch.rand(3, 37, 50, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    grads = []
    for net in (render, plain_deep_decoder):
        weights = [w.double().requires_grad_() for w in random_weights(arch)]
        grads.append(torch.autograd.grad(((net(arch, weights, z) - target) ** 2).mean(), weights))
    for ours, textbook in zip(*grads):
        torch.testing.assert_close(ours, textbook)


def test_blocked_1x1_convolution_and_its_gradients_equal_one_matmul():
    from ddcodec.component.kernels import BLOCK, conv1x1

    gen = torch.Generator().manual_seed(5)
    w = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 3, 2 * BLOCK + 17, generator=gen, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 5, 2 * BLOCK + 17, generator=gen, dtype=torch.float64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # blocks only with one thread
    try:
        ours = conv1x1(w, x)
        ours_grads = torch.autograd.grad(ours, (w, x), g)
    finally:
        torch.set_num_threads(threads)
    plain = torch.bmm(w, x)
    torch.testing.assert_close(ours, plain)
    for a, b in zip(ours_grads, torch.autograd.grad(plain, (w, x), g)):
        torch.testing.assert_close(a, b)
