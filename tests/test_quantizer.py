"""The latents' quantization proxies (ddcodec.training.quantizer) and the schedule's phases (ddcodec.training.presets, fit)."""

import dataclasses

import pytest
import torch

import ddcodec
from ddcodec.encoder.encode import check_options
from ddcodec.training.fit import proxy_at
from ddcodec.training.presets import DEFAULT_EFFORT, EFFORTS, Phase
from ddcodec.training.quantizer import MODES, LatentProxy, centred_noise, quantize_latents, softround


def _grid() -> torch.Tensor:
    return torch.linspace(-3, 3, 241).reshape(1, 1, -1).repeat(2, 1, 1).requires_grad_()


def test_softround_tends_to_rounding_and_keeps_integers():
    y = torch.linspace(-2.4, 2.4, 97) + 0.013  # no half-integers, where rounding breaks ties
    assert torch.allclose(softround(torch.arange(-3.0, 4.0), 0.3), torch.arange(-3.0, 4.0), atol=1e-6)
    assert (softround(y, 0.002) - torch.round(y)).abs().max() < 1e-3
    assert (softround(y, 10.0) - y).abs().max() < 0.01  # a high temperature is nearly the identity
    assert (softround(y, 0.3).diff() > 0).all()


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_gives_values_near_the_rounded_grid_and_the_gradient_it_promises(mode):
    g = _grid()
    proxy = LatentProxy(mode, temperature=0.2, noise="kumaraswamy", noise_param=2.0)
    gens = [torch.Generator().manual_seed(b) for b in range(2)]
    (shown,) = quantize_latents([g], proxy, gens)
    assert shown.shape == g.shape
    assert (shown - torch.round(g)).abs().max() <= 1.0 + 1e-6
    if mode in ("ste", "ste-softround", "hard"):
        assert torch.equal(shown.detach(), torch.round(g.detach()))
    if mode == "hard":
        assert not shown.requires_grad
        return
    shown.sum().backward()
    if mode == "ste":
        assert torch.equal(g.grad, torch.ones_like(g))
    else:
        assert torch.isfinite(g.grad).all() and (g.grad >= 0).all() and g.grad.sum() > 0


def test_noise_kinds_are_centred_with_the_promised_spread():
    gen = torch.Generator().manual_seed(0)
    uniform = centred_noise((20000,), LatentProxy(noise="uniform"), gen, torch.device("cpu"))
    peaked = centred_noise((20000,), LatentProxy(noise="kumaraswamy", noise_param=2.0), gen, torch.device("cpu"))
    flat = centred_noise((20000,), LatentProxy(noise="kumaraswamy", noise_param=1.0), gen, torch.device("cpu"))
    gauss = centred_noise((20000,), LatentProxy(noise="gaussian", noise_param=0.2), gen, torch.device("cpu"))
    for n in (uniform, peaked, flat):
        assert n.min() >= -0.5 and n.max() < 0.5 and abs(float(n.mean())) < 0.02
    assert float(peaked.std()) < float(uniform.std()) - 0.03  # shape 2 is peaked around its mode 1/2
    assert float(flat.std()) == pytest.approx(float(uniform.std()), abs=0.01)  # shape 1 is uniform
    assert float(gauss.std()) == pytest.approx(0.2, abs=0.01)


def test_a_network_draws_the_same_noise_alone_and_in_a_batch():
    g = torch.zeros(2, 3, 4)
    proxy = LatentProxy("noise")
    batch = quantize_latents([g], proxy, [torch.Generator().manual_seed(b) for b in range(2)])[0]
    alone = quantize_latents([g[1:]], proxy, [torch.Generator().manual_seed(1)])[0]
    assert torch.equal(batch[1:], alone)


def test_a_phase_anneals_its_temperature_and_noise_linearly():
    phase = Phase("p", 1.0, latents="noisy-softround", temperature=(0.3, 0.1), noise="kumaraswamy",
                  noise_param=(2.0, 1.0))
    assert proxy_at(phase, 0.0) == LatentProxy("noisy-softround", 0.3, "kumaraswamy", 2.0)
    mid = proxy_at(phase, 0.5)
    assert mid.temperature == pytest.approx(0.2) and mid.noise_param == pytest.approx(1.5)


def test_a_preset_round_trips_its_schedule():
    for preset in EFFORTS.values():
        copied = dataclasses.replace(preset)
        assert copied == preset and dataclasses.asdict(copied) == dataclasses.asdict(preset)
        assert sum(p.share for p in preset.fit + preset.finetune) + preset.warmup.share <= 1.0
        assert preset.with_iters(123).iters == 123 and preset.with_iters(None) is preset
    assert [p.iters for p in EFFORTS.values()] == sorted(p.iters for p in EFFORTS.values())


def test_effort_picks_the_preset_and_the_device_its_default():
    assert check_options(effort=1)[1] == EFFORTS[1]
    assert check_options(device="cpu")[1] == EFFORTS[DEFAULT_EFFORT]
    changed = check_options(effort=2, iters=50, tries=3)[1]
    assert changed.iters == 50 and changed.fit == EFFORTS[2].fit and changed.warmup.candidates == 3
    with pytest.raises(ddcodec.InputError, match="effort"):
        check_options(effort=0)


@pytest.mark.parametrize("mode", ["softround", "noisy-softround", "ste-softround"])
def test_the_encoder_runs_a_preset_of_each_soft_mode(parrot, mode):
    base = EFFORTS[1].with_iters(60)
    fit_phase = dataclasses.replace(base.fit[-1], latents=mode, noise="gaussian", noise_param=(0.2, 0.15),
                                    test_every=10)
    preset = dataclasses.replace(base, fit=base.fit[:-1] + (fit_phase,), latent_gain=4.0)
    result = ddcodec.encode(parrot, bpp=2.0, preset=preset, tries=1)
    assert result.bpp <= 2.0 and result.iters == 60
    assert result.psnr == pytest.approx(result.psnr, abs=1e-9) and result.psnr > 12
