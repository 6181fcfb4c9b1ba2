"""Encoder on CUDA, decoder on CUDA and on CPU (skipped where no GPU is present; run by benchmarks/gpu.sh)."""

import numpy as np
import pytest
import torch

import ddcodec
from ddcodec.decoders.decode import decode_array
from ddcodec.metrics import psnr

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


@pytest.mark.parametrize("profile", ["seed", "coded"])
def test_cuda_encode_decodes_to_the_reported_psnr_on_gpu_and_cpu(parrot, profile):
    result = ddcodec.encode(parrot, bpp=2.0, iters=300, device="cuda", input=profile)
    assert result.device.startswith("cuda")
    assert psnr(decode_array(result.data, "cuda"), parrot) == pytest.approx(result.psnr, abs=0.01)
    assert psnr(decode_array(result.data, "cpu"), parrot) == pytest.approx(result.psnr, abs=0.05)


def test_cuda_render_matches_cpu(parrot):
    from ddcodec.format.architecture import Architecture
    from ddcodec.component.model import init_weights, network_input, render

    arch = Architecture(64, 64, 3, (16,) * 4, (1, 1, 0))
    weights = init_weights(arch, torch.Generator().manual_seed(0))
    weights = [w + torch.randn(w.shape, generator=torch.Generator().manual_seed(t)).round() if t in arch.grid_indices
               else w for t, w in enumerate(weights)]
    cpu = render(arch, weights, network_input(arch, 0))
    gpu = render(arch, [w.cuda() for w in weights], network_input(arch, 0, "cuda")).cpu()
    assert float((cpu - gpu).abs().max()) < 1e-4
    assert np.isfinite(gpu.numpy()).all()


def test_cuda_encode_with_every_v010_piece_decodes_alike_on_cpu(parrot, monkeypatch):
    """The synthesis and the ARM (planned even for a crop this small), SOAP and the latent gain, fitted on CUDA: the
    NumPy decoder on the CPU reproduces the PSNR the encoder reported."""
    import dataclasses

    from ddcodec.encoder import ratecontrol
    from ddcodec.training.presets import EFFORTS

    monkeypatch.setattr(ratecontrol, "CODED",
                        dataclasses.replace(ratecontrol.CODED, max_synthesis_share=1.0, arm_payback=0.0))
    preset = dataclasses.replace(EFFORTS[1], optimizer="soap", latent_gain=4.0)
    result = ddcodec.encode(parrot, bpp=2.0, iters=300, device="cuda", preset=preset)
    assert result.arch.learned_upsampling and result.arch.refine
    assert psnr(decode_array(result.data, "cpu"), parrot) == pytest.approx(result.psnr, abs=0.05)
