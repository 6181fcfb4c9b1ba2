"""The coded-input profile (latent grids in the file), the rate estimate behind it, --psnr, and format version 1."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

import ddcodec
from ddcodec.format.architecture import Architecture
from ddcodec.format.container import parse
from ddcodec.decoders.decode import decode_array
from ddcodec.format.entropy import RANGE, encode_ints
from ddcodec.format.reader import read_ints
from ddcodec.training.fit import fit
from ddcodec.training.presets import REFIT, Phase
from ddcodec.encoder import ratecontrol
from ddcodec.encoder.encode import check_options
from ddcodec.encoder.plans import COMPLEXITY_WIDTHS
from ddcodec.demo import demo_photo
from ddcodec.encoder.ratecontrol import RateTerm
from ddcodec.metrics import psnr
from ddcodec.component.model import init_weights, network_input
from ddcodec.encoder.rate import context_bits, grid_bits

from .conftest import DATA
from .test_context import correlated_grid


@pytest.fixture(scope="module")
def coded(parrot) -> ddcodec.EncodeResult:
    return ddcodec.encode(parrot, bpp=2.0, iters=200, input="coded", seed=3)


def test_coded_round_trip_respects_the_budget(coded, parrot):
    header, _ = parse(coded.data)
    assert header.arch.coded_input and header.arch.latents == coded.arch.latents
    # A hard cap. At 200 iterations the v0.12 plan's latents (a full-size grid, the network at 15 %) spend 71 % of
    # this 64x64 budget, and give 27.76 dB where v0.11's plan spent 98 % for 27.10 (ablations.md, v0.12).
    assert 0.65 * 2.0 * 64 * 64 / 8 <= coded.n_bytes <= 2.0 * 64 * 64 / 8
    assert psnr(np.asarray(ddcodec.decode(coded.data)), parrot) == pytest.approx(coded.psnr, abs=0.01)
    flat = np.broadcast_to(parrot.mean((0, 1)).round().astype(np.uint8), parrot.shape)
    assert coded.psnr > psnr(flat, parrot) + 6


def test_decoding_on_another_thread_count_gives_identical_pixels(coded):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = decode_array(coded.data)
        torch.set_num_threads(2)
        two = decode_array(coded.data)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("scale", [0.3, 0.8, 2.0])
def test_rate_estimate_is_within_5_percent_of_the_coded_size(scale):
    """Grids of discrete-Laplace integers like fitted latents (64x64, mostly 0 and +-1 at small scales)."""
    rng = np.random.default_rng(0)
    grids = [np.round(rng.laplace(0, scale, (64, 64))).astype(np.int64) for _ in range(3)]
    estimate = float(grid_bits([torch.from_numpy(g).float()[None] for g in grids])[0])
    assert estimate == pytest.approx(8 * len(encode_ints(grids, RANGE)), rel=0.05)


def test_rate_estimate_is_close_on_a_fitted_file(coded):
    """On the tiny grids of a 64x64 fit the coder's histogram model can beat the Laplace: within 20 % (of the
    grids coded without their context model, whose descriptors outweigh its gain on grids this small; the latents
    trained at gain 4 have heavier tails than one Laplace per grid)."""
    header, ints = read_ints(coded.data)
    grids = [ints[t] for t in sorted(header.arch.grid_indices)]
    estimate = float(grid_bits([torch.from_numpy(g).float()[None] for g in grids])[0])
    assert estimate == pytest.approx(8 * len(encode_ints(grids, RANGE)), rel=0.20)


@pytest.mark.parametrize("seed", [0, 1])
def test_context_estimate_follows_the_context_coder_within_5_percent(seed):
    """On spatially correlated grids the coder's context model spends well below the factorized estimate; the
    estimate the fit uses knows the context and stays within 5 % of the coded size."""
    grids = [correlated_grid(64, 64, seed), correlated_grid(128, 96, seed + 2)]
    coded = 8 * len(encode_ints(grids, RANGE, grids=range(2)))
    tensors = [torch.from_numpy(g).float()[None] for g in grids]
    assert float(grid_bits(tensors)[0]) > 1.1 * coded
    assert float(context_bits(tensors)[1][0]) == pytest.approx(coded, rel=0.05)


def test_context_estimate_pulls_values_towards_their_prediction():
    """A value raised well above what its neighbours predict gets a gradient that lowers it."""
    clean = torch.from_numpy(correlated_grid(32, 32)).float()[None]
    grid = clean.clone()
    grid[0, 16, 16] += 6
    grid.requires_grad_()
    context_bits([grid], [clean])[0][0].backward()
    assert grid.grad[0, 16, 16] > 0 and torch.isfinite(grid.grad).all()


def test_a_larger_lambda_spends_fewer_latent_bits(parrot):
    arch = Architecture(64, 64, 3, (8,) * 4, (1, 1, 1))
    target = torch.from_numpy(parrot.copy()).permute(2, 0, 1)[None].float() / 255
    z = network_input(arch, 0)[None]
    weights = [w[None] for w in init_weights(arch, torch.Generator().manual_seed(0))]
    bits = []
    for lam in (1e-4, 1e-2):
        fitted, _ = fit(arch, target, z, weights, Phase("fit", 1.0), 150, 0.02, frozen=arch.bn_scales,
                        rate=RateTerm(torch.tensor([lam])))
        bits.append(float(context_bits([fitted[t] for t in sorted(arch.grid_indices)])[1][0]))
    assert bits[1] < 0.7 * bits[0]


def test_fine_tuning_holds_the_latents_of_the_images_it_is_told_to(parrot):
    """A phase with `held` keeps those images' latent grids at their rounded values and trains the others'
    (Phase.hold_filled: Cool-chic's frozen-latent fine-tuning where a budget is filled)."""
    arch = Architecture(64, 64, 3, (8,) * 4, (1, 1, 1))
    target = torch.from_numpy(parrot.copy()).permute(2, 0, 1)[None].float().div(255).repeat(2, 1, 1, 1)
    z = network_input(arch, 0)[None].repeat(2, 1, 1, 1)
    weights = [w[None].repeat(2, *[1] * w.dim()) for w in init_weights(arch, torch.Generator().manual_seed(0))]
    weights = [torch.round(w * 4) if t in arch.grid_indices else w for t, w in enumerate(weights)]
    fitted, _ = fit(arch, target, z, weights, Phase("qat", 1.0, latents="ste"), 20, 0.05, frozen=arch.bn_scales,
                    held=[True, False])
    grids = sorted(arch.grid_indices)
    assert all(torch.equal(fitted[t][0], weights[t][0]) for t in grids)
    assert any(not torch.equal(fitted[t][1], weights[t][1]) for t in grids)
    assert not torch.equal(fitted[0][0], weights[0][0])  # the network still trains


def test_lambda_alone_sets_the_files_size(parrot):
    """With λ given, the file's size follows from it (a larger λ, a smaller file), and the size of the network it was
    planned for (here 0.5 bpp) is no cap: a small λ spends more."""
    results = [ddcodec.encode(parrot, lmbda=lam, bpp=0.5, iters=60, tries=1) for lam in (1e-4, 1e-1)]
    assert results[0].n_bytes > results[1].n_bytes
    assert results[0].bpp > 0.5
    assert all(r.arch == results[0].arch for r in results)
    assert psnr(decode_array(results[0].data), parrot) == pytest.approx(results[0].psnr, abs=0.01)


def test_lambda_is_restarted_as_each_fit_phase_begins():
    """λ starts at the lowest rates' value; a phase's floor is a share of it, never above the target's own start;
    as a fit phase begins a high budget's λ restarts at κ · MSE within [its start, the lowest rates' start], its
    floor at most the start, and a low budget's λ at its start where its bits were never near their target."""
    low = ratecontrol.lambda_start(None)
    assert ratecontrol.lambda_start(0.15) == ratecontrol.lambda_start(0.6) == low > ratecontrol.lambda_start(1.2)
    for bpp in (0.3, 0.6, 0.8, 1.2):
        start = ratecontrol.lambda_start(bpp)
        rate = RateTerm(torch.tensor([0.25, 0.25]), torch.tensor([1e4, 1e4]), start=start, floor_base=low,
                        per_mse=0.6)
        rate.enter(None)
        assert rate.floor == low
        rate.enter(0.1)
        assert rate.floor == min(start, low * 0.1)
        rate.restart(torch.tensor([1e-5, 1.0]))
        if bpp <= 0.6:
            assert rate.floor == start * 0.1 and torch.equal(rate.lam, torch.tensor([low, low]))
        else:
            assert rate.lam.tolist() == pytest.approx([start, low]) and rate.floor <= start


def test_a_low_budget_restarts_lambda_where_the_bits_last_settled():
    """λ is carried into the next phase from its last value under which the bits were within SETTLED_BAND of their
    target: not what it wound up to while they stayed far over it (0.12.0.dev7)."""
    low = ratecontrol.lambda_start(None)
    rate = RateTerm(torch.tensor([0.01]), torch.tensor([1000.0]), start=low, floor_base=low, gain=0.1)
    rate.steer([], torch.tensor([1050.0]), [])  # within 10 %: settled at 0.01
    for _ in range(20):
        rate.steer([], torch.tensor([3000.0]), [])  # far over: λ winds up
    assert float(rate.lam[0]) > 0.05
    rate.restart(torch.tensor([0.01]))
    assert float(rate.lam[0]) == pytest.approx(0.01)


def test_latents_over_their_bit_target_are_flagged_for_the_refit():
    """Latents whose coded bits end more than REFIT_OVER_TARGET × their share of the budget (the target over its
    margin) are refitted: they leave the weights less than their planned share (0.12.0.dev8); without a target
    nothing is."""
    def coded(grids: list[torch.Tensor], arm: list[torch.Tensor]) -> torch.Tensor:
        """A coder whose bits are each network's sum of |values|."""
        return grids[0].abs().flatten(1).sum(1)

    grid = torch.tensor([[[101.0]], [[103.0]]])  # (B, h, w): 1.01× and 1.03× a target of 100 bits
    rate = RateTerm(torch.tensor([1e-3, 1e-3]), torch.tensor([100.0, 100.0]), coded_bits=coded)
    assert rate.over_target([grid], []) == [False, True]
    rate.margin = 0.9  # a small image's target is 90 % of the latents' share: 103 bits are within 1.02 × 111
    assert rate.over_target([grid], []) == [False, False]
    rate.fix()
    assert rate.over_target([grid], []) == [False, False]


def test_psnr_target_is_reached(parrot):
    result = ddcodec.encode(parrot, psnr=20.0, iters=150, tries=2)
    assert result.psnr >= 20.0
    assert psnr(decode_array(result.data), parrot) >= 20.0


@pytest.mark.parametrize("name, version", [("v1_kodim19_48x40", 1), ("v2_kodim05_40x48", 2), ("v3_kodim23_40x56", 3),
                                           ("v3_kodim05_48x40", 3)])
def test_earlier_versions_still_decode(name, version):
    """Files written by ddcodec 0.5 (format 1, seed input), 0.7 (format 2, coded input) and 0.9 (format 3, linear
    context model) decode as they did."""
    data = (DATA / f"{name}.ddc").read_bytes()
    assert data[4] == version
    expected = np.asarray(Image.open(DATA / f"{name}.png"))
    np.testing.assert_array_equal(ddcodec.decode(data, backend="torch", output="numpy"), expected)
    numpy_decoded = ddcodec.decode(data, backend="numpy", output="numpy").astype(int)
    assert np.abs(numpy_decoded - expected).max() <= 1  # float rounding may move a pixel by one level


def test_tensor_list_of_a_coded_architecture():
    arch = Architecture(37, 50, 3, (5, 7, 6, 4), (2, 0, 1))
    shapes = arch.tensor_shapes()
    assert shapes[arch.mixers[0]] == (7, 2) and shapes[arch.mixers[2]] == (4, 1)
    assert [shapes[t] for t in arch.latent_grids[0]] == [(10, 13)] * 2
    assert [shapes[t] for t in arch.latent_grids[2]] == [(40, 52)]
    assert arch.n_latents == 2 * 130 + 40 * 52


@pytest.mark.parametrize("kwargs", [dict(input="latent"), dict(psnr=float("nan")), dict(psnr=30, bpp=1),
                                    dict(lmbda=-1e-3), dict(lmbda=1e-3, psnr=30), dict(lmbda=1e-3, input="seed")])
def test_bad_profile_options_raise_input_error(parrot, kwargs):
    with pytest.raises(ddcodec.InputError):
        ddcodec.encode(parrot, iters=5, **kwargs)


def test_the_decoder_complexity_caps_the_coded_width():
    """low / medium / high cap a 768x512 photo's width at 1.2 bpp (where the cap binds) by the decoder's cost; at
    0.3 bpp the budget sizes it below medium's cap; a bad name, or a complexity for the seed profile, is refused."""
    widths = {c: ratecontrol.plan(512, 768, 3, bpp=1.2, coded_input=True, complexity=c).arch.widths[-1]
              for c in COMPLEXITY_WIDTHS}
    assert widths == dict(COMPLEXITY_WIDTHS) and widths["high"] == ratecontrol.CODED.max_width
    assert ratecontrol.plan(512, 768, 3, bpp=1.2, coded_input=True).arch.widths[-1] == widths["medium"]  # default
    assert (ratecontrol.plan(512, 768, 3, bpp=0.3, coded_input=True, complexity="medium")
            == ratecontrol.plan(512, 768, 3, bpp=0.3, coded_input=True))
    with pytest.raises(ddcodec.InputError, match="complexity must be one of"):
        check_options(complexity="fast")
    with pytest.raises(ddcodec.InputError, match="--input seed"):
        check_options(complexity="low", input="seed")


def test_a_low_complexity_file_has_the_narrow_network_it_asked_for():
    result = ddcodec.encode(demo_photo(), bpp=1.2, iters=4, tries=1, complexity="low")
    assert max(parse(result.data)[0].arch.widths) <= COMPLEXITY_WIDTHS["low"] < max(
        ratecontrol.plan(256, 256, 3, bpp=1.2, coded_input=True).arch.widths)


def test_an_overshoot_prunes_only_the_latents_it_needs_smallest_first():
    """Latents 5 % over the budget lose about 5 % of their nonzero values, all of magnitude 1, spread over both
    grids; the other tensors stay as they were."""
    gen = torch.Generator().manual_seed(0)
    grids = [torch.randint(-3, 4, shape, generator=gen).float() for shape in ((64, 64), (32, 32))]
    other = torch.randn(10, generator=gen)
    ws = [grids[0].clone(), other.clone(), grids[1].clone()]
    nonzero = lambda: int(sum((ws[t] != 0).sum() for t in (0, 2)))  # noqa: E731
    before = nonzero()
    budget = int(before / 1.05)
    zeroed_count = ratecontrol.prune_to_fit({0, 2}, ws, lambda mu: b"x" * nonzero(), budget)
    zeroed = [(g != 0) & (w == 0) for g, w in zip(grids, (ws[0], ws[2]))]
    assert before - budget <= before - nonzero() <= before - budget + before // ratecontrol.PRUNE_RESOLUTION + 1
    assert zeroed_count == before - nonzero()
    assert all(int(z.sum()) > 0 for z in zeroed) and all(g[z].abs().max() == 1 for g, z in zip(grids, zeroed))
    assert torch.equal(ws[1], other)


def test_latents_fitted_over_the_budget_are_refitted_under_it(parrot, monkeypatch):
    """Where the fit lands the latents' stream over the budget (here λ's start forced far too low), the encoder
    fits on for REFIT's iterations with λ's steering hastened (presets.REFIT) before the last resort of pruning;
    the file still keeps the budget, and the result says it was refitted."""
    monkeypatch.setattr(ratecontrol, "lambda_start", lambda bpp=None: 3e-5)
    hastened, hasten = [], ratecontrol.RateTerm.hasten
    monkeypatch.setattr(ratecontrol.RateTerm, "hasten",
                        lambda self, iters: hastened.append(iters) or hasten(self, iters))
    result = ddcodec.encode(parrot, bpp=2.0, iters=200, seed=7)
    assert result.n_bytes <= 2.0 * 64 * 64 / 8
    assert hastened == [int(200 * REFIT.share)]
    assert result.refitted and result.latents_pruned >= 0


def test_the_refit_steers_lambda_from_where_it_is():
    """REFIT lets λ move from where the fit left it, down to the full-size phase's floor: not up to the lowest
    rates' start, which would starve a high budget's latents."""
    rate = RateTerm(torch.tensor([1e-4]), torch.tensor([1000.0]), start=1e-4, floor_base=2e-3, floor=1e-4)
    rate.enter(REFIT.lambda_floor)
    rate.hasten(100)
    rate.steer([], torch.tensor([900.0]), [])
    assert rate.floor <= 1e-4 and float(rate.lam[0]) < 1e-4 and rate.gain == ratecontrol.steering_gain(100)
