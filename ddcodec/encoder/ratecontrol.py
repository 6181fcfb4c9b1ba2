"""Rate control, in one home: from the user's size target to an architecture and a byte budget, the latents' bit
target and the rate weight λ steered towards it during the fit, and the weights' quantization knob μ searched so
that the file fills the budget (or reaches a PSNR).

The walk of one encode (encode.py): `plan` sizes the network; `latent_rate_term` gives the fit its rate term
(λ · estimated latent bits / pixels, λ steered to the bits the weights leave, the estimate recalibrated against
the coder's real bits); after the fit, where the latents alone overshoot the budget or end over their bit target
(`RateTerm.over_target`), the encoder refits them with λ's steering hastened (`RateTerm.hasten`, presets.REFIT)
and `prune_to_fit` zeroes small latents if they still overshoot the budget;
`search_mu` bisects μ to the budget's boundary, and after fine-tuning `final_stream` gives the stream at that μ or
the first coarser one that still fits (where none does, the encoder keeps the file fine-tuning started from).
`psnr_plan` sizes the network for a PSNR target and its retries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Collection, Mapping

import numpy as np
import torch

from ddcodec.format.architecture import Architecture, ArmShape, layers_for, width_for
from ddcodec.encoder.plans import COMPLEXITY_WIDTHS, DEFAULT_COMPLEXITY, V0_12, CodedPlan
from ddcodec.encoder.arm import arm_bits
from ddcodec.encoder.arm import coded_grid_bits as arm_coded_bits
from ddcodec.format.container import header_size
from ddcodec.format.entropy import CODERS, encode_ints
from ddcodec.errors import InputError
from ddcodec.encoder.rate import context_bits, grid_bits

CODED: CodedPlan = V0_12  # the coded-input profile's measured plan (plans.py)
QUALITY_BPP = {1: 0.15, 2: 0.25, 3: 0.4, 4: 0.6, 5: 1.0}  # --quality preset -> bits per pixel cap
DEFAULT_QUALITY = 3
PSNR_RETRIES = 3  # psnr targets: times a network twice the size is tried when the fit falls short

LATENT_SHARE_NO_BUDGET = 0.5  # coded input with a ratio: latents get about as many bits as the weights
SETTLED_BAND = 0.1  # a low budget's λ restarts where the bits were last this close to their target (dev7)
REFIT_OVER_TARGET = 1.02  # latents whose coded bits end the fit over this × their share of the budget are refitted
#                           (dev8; kodim13 at 1.2 bpp 1.026× → +0.78 dB, ablations.md "the refit also where the
#                           latents end over their target")
MIN_CALIBRATION_BITS = 1000.0  # below this the coder's fixed costs (model descriptors) dominate the ratio
CALIBRATION_RANGE = (0.5, 1.5)

FINEST_MU, COARSEST_MU = 1e-14, 1e2  # the range of the quantization knob searched
BISECTION_STEPS = 16  # halvings of that range (37 in log mu) that search_mu makes: to 6e-4 in log mu
QUANT_MSE_SHARE = 0.1  # without a byte budget, quantization may add this share of the float fit's MSE


@dataclass(frozen=True)
class Plan:
    """The architecture to fit and, for --bpp, the largest file allowed in bytes."""

    arch: Architecture
    budget: int | None


def bpp_for_psnr(psnr: float) -> float:
    """A first guess of the rate that reaches `psnr` dB on a photograph: +2.2 dB per doubling from 21 dB at
    0.15 bpp (the seed profile on Kodak crops, v0.5), so that --psnr can size the network."""
    return min(max(0.15 * 2 ** ((psnr - 21) / 2.2), 0.05), 8.0)


def lambda_start(bpp: float | None) -> float:
    """The rate weight λ (MSE per bit per pixel) that rate control starts from for a budget of `bpp` bits per pixel:
    CODED.lambda_start_by_bpp read on log-log axes between its keys (its end values beyond them), or its first value
    without a budget."""
    table = CODED.lambda_start_by_bpp
    rates = sorted(table)
    if bpp is None or bpp <= rates[0]:
        return table[rates[0]]
    if bpp >= rates[-1]:
        return table[rates[-1]]
    return float(np.exp(np.interp(math.log(bpp), np.log(rates), np.log([table[r] for r in rates]))))


def by_layer(layers: int, by_scale: Mapping[int, int]) -> tuple[int, ...]:
    """A per-scale table (scale s: a layer 2^-s below full resolution; past the last key, the last key's value) read
    for each of `layers` hidden layers, the coarsest first."""
    return tuple(by_scale.get(layers - 1 - i, by_scale[max(by_scale)]) for i in range(layers))


def latent_layout(layers: int) -> tuple[int, ...]:
    """Latent grids per hidden layer for the coded-input profile, by the layer's scale below full resolution."""
    return by_layer(layers, CODED.latents_by_scale)


def preset_widths(layers: int, by_scale: Mapping[int, int]) -> tuple[int, ...]:
    """The widths of a decoder-complexity preset: the seeded input as wide as the coarsest layer, then each layer's."""
    widths = by_layer(layers, by_scale)
    return (widths[0], *widths)


def plan(
    height: int, width: int, channels: int, bpp: float | None = None, ratio: float | None = None,
    quality: int | None = None, coded_input: bool = False, complexity: str = DEFAULT_COMPLEXITY,
) -> Plan:
    """Architecture (and byte budget) for one of the three ways of choosing the size; at most one may be given.

    The coded-input profile (its measured plan: CODED) spends weight_share of the budget on the network and the rest
    on latent grids, with the version 4 synthesis (learned upsampling, refinement) and ARM where the budget leaves
    room for them: the ARM where its expected saving repays its weights (_arm_pays), the synthesis from
    min_synthesis_bpp with weights at most max_synthesis_share of the network's, and a network of width
    min_width_with_extras or more beside either of them, 2 or more without (on small budgets, without the ARM, then
    without the synthesis). `complexity` (plans.COMPLEXITY_WIDTHS) caps the coded profile's width by the decoder's
    cost. Raises InputError for a bad option or a budget too small for any useful network."""
    if sum(x is not None for x in (bpp, ratio, quality)) > 1:
        raise InputError("give at most one of bpp, ratio and quality")
    if bpp is None and ratio is None:
        q = DEFAULT_QUALITY if quality is None else quality
        if q not in QUALITY_BPP:
            raise InputError(f"quality must be one of {sorted(QUALITY_BPP)}, not {q}")
        bpp = QUALITY_BPP[q]
    if bpp is not None and not bpp > 0:
        raise InputError(f"bpp must be positive, not {bpp}")
    if ratio is not None and not ratio > 0:
        raise InputError(f"ratio must be positive, not {ratio}")
    max_width = min(CODED.max_width, complexity_width(complexity))
    d = layers_for(height, width)
    latents = latent_layout(d) if coded_input else ()
    if coded_input and CODED.widths_by_scale is not None:
        return _preset_plan(height, width, channels, d, latents, bpp, ratio)
    rate = bpp if bpp is not None else 8 * channels / ratio
    synthesis = ((CODED.upsampling_taps, CODED.refine_layers, CODED.refine_kernel)
                 if rate >= CODED.min_synthesis_bpp else ())
    extras = ([(synthesis, CODED.arm), (synthesis, None), ((), CODED.arm), ((), None)] if coded_input
              else [((), None)])
    budget = int(bpp * height * width / 8) if bpp is not None else None
    for synthesis, arm in extras:  # on small budgets, without the ARM, then without the synthesis, then neither
        shape = Architecture(height, width, channels, (1,) * (d + 1), latents, *synthesis, arm=arm)  # any width
        if budget is not None:
            n_tensors = len(shape.tensor_shapes())
            descriptors = CODED.model_bytes_per_tensor * n_tensors
            weight_bits = 8 * (budget - header_size(d, n_tensors, arm=arm) - 4 - descriptors)
            n_params = weight_bits * (CODED.weight_share if coded_input else 1) / CODED.bits_per_param
        else:
            n_params = 3 * height * width / ratio
        arm_params = arm.n_params if arm else 0
        k = width_for(d, channels, n_params - shape.n_synthesis_params - arm_params, sum(latents))
        ceiling = _weights_at_max_share(n_params, coded_input, budget)
        if coded_input:  # a small budget keeps a network of width 2 where CODED.max_weight_share holds one
            smallest = 2 if width_for(d, channels, ceiling - shape.n_synthesis_params - arm_params,
                                      sum(latents)) >= 2 else 0
            k = min(max(k, smallest), max_width)
        synthesis_fits = shape.n_synthesis_params <= CODED.max_synthesis_share * ceiling
        least = CODED.min_width_with_extras if synthesis or arm else 2
        if k >= least and synthesis_fits and _arm_pays(arm, n_params, budget):
            return Plan(Architecture(height, width, channels, (k,) * (d + 1), latents, *synthesis, arm=arm), budget)
    what = f"{bpp} bpp" if bpp is not None else f"compression factor {ratio}"
    raise InputError(f"{what} is too small for a {width}x{height} image (no network that small is useful)")


def _weights_at_max_share(n_params: float, coded_input: bool, budget: int | None) -> float:
    """The weights a byte budget holds at CODED.max_weight_share (v0.11's share), from n_params at weight_share: the
    ceiling a small budget's network may grow to, and what the synthesis is weighed against (max_synthesis_share was
    measured at that share); n_params itself without a budget or for the seed profile."""
    return n_params * CODED.max_weight_share / CODED.weight_share if coded_input and budget is not None else n_params


def _preset_plan(height: int, width: int, channels: int, d: int, latents: tuple[int, ...], bpp: float | None,
                 ratio: float | None) -> Plan:
    """The coded-input plan of a decoder-complexity preset (CODED.widths_by_scale): the widths fixed, the synthesis
    and the ARM always in, the latents given what the budget leaves; InputError where the network's planned bits
    alone exceed the budget."""
    arch = Architecture(height, width, channels, preset_widths(d, CODED.widths_by_scale), latents,
                        CODED.upsampling_taps, CODED.refine_layers, CODED.refine_kernel, arm=CODED.arm)
    rate = bpp if bpp is not None else 8 * channels / ratio
    if arch.n_params * CODED.bits_per_param > rate * height * width:
        raise InputError(f"{rate} bpp is too small for a {width}x{height} image with this decoder-complexity preset")
    return Plan(arch, int(bpp * height * width / 8) if bpp is not None else None)


def _arm_pays(arm: ArmShape | None, n_params: float, budget: int | None) -> bool:
    """Whether the ARM's expected saving on the latents' planned bits (what the budget leaves after n_params
    weights, or LATENT_SHARE_NO_BUDGET of their bits) repays its own weights CODED.arm_payback times; True without
    one."""
    if arm is None:
        return True
    weight_bits = n_params * CODED.bits_per_param
    share = CODED.weight_share
    latent_bits = weight_bits * ((1 - share) / share if budget is not None else LATENT_SHARE_NO_BUDGET)
    return CODED.arm_saving * latent_bits >= CODED.arm_payback * CODED.arm_bits_per_param * arm.n_params


def complexity_width(complexity: str) -> int:
    """The width cap of a decoder-complexity preset (plans.COMPLEXITY_WIDTHS); InputError for an unknown name."""
    if complexity not in COMPLEXITY_WIDTHS:
        raise InputError(f"complexity must be one of {', '.join(COMPLEXITY_WIDTHS)}, not {complexity!r}")
    return COMPLEXITY_WIDTHS[complexity]


def psnr_plan(shape: tuple[int, ...], bpp: float, coded: bool, complexity: str = DEFAULT_COMPLEXITY
              ) -> tuple[Plan, float]:
    """For a PSNR target: the network sized for `bpp` (doubled until one is possible), without a byte cap; and the
    bpp it was sized for, so that a retry can double it."""
    for _ in range(16):
        try:
            return Plan(plan(*shape, bpp=bpp, coded_input=coded, complexity=complexity).arch, None), bpp
        except InputError:
            bpp *= 2
    raise InputError("no network can be sized for this image")


# ---- the latents: λ steered to a bit target during the fit --------------------------------------------------------

Estimate = Callable[[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]


def linear_context_bits(grids: list[torch.Tensor], clean: list[torch.Tensor], arm: list[torch.Tensor]
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """RateTerm's estimate for the linear context model of version 3 (rate.context_bits; no ARM tensors)."""
    return context_bits(grids, clean)


@dataclass
class RateTerm:
    """lam · (estimated latent bits) / pixels added to each image's loss; with `target_bits`, lam is steered each
    iteration (multiplicatively, by `gain`) so that the bits of the rounded grids settle on the target: rate control
    in the loop. With `coded_bits`, those bits are the estimate scaled to what the coder really spends (its context
    model codes spatially correlated grids below the factorized estimate), measured every `every` iterations.
    `estimate(grids as the loss sees them, clean grids, ARM tensors)` gives the differentiable bits and those of the
    rounded clean grids, (B,) each: the linear context model's, or the ARM's (arm.arm_bits), whose tensors are
    network weights that the fit trains through this term; `coded_bits(rounded grids, ARM tensors)` is the
    matching coder's."""

    lam: torch.Tensor  # (B,)
    target_bits: torch.Tensor | None = None  # (B,)
    start: float = 0.0  # λ's start for the target (lambda_start): its floor once restarted, where below floor_base
    floor_base: float = 0.0  # λ's start at the lowest rates (lambda_start()): the phases' floors are shares of it
    per_mse: float | None = None  # κ: λ restarted at a phase's start is κ · the network's MSE (None: the start)
    gain: float = 0.01  # per iteration; 10 / iterations lets lam move e^10-fold over a fit at most
    floor: float = 0.0  # lam never goes below this (latents start at 0 and would otherwise overgrow at first)
    coded_bits: Callable[[list[torch.Tensor], list[torch.Tensor]], torch.Tensor] | None = None  # the coder's (B,)
    every: int = 100
    estimate: Estimate = linear_context_bits
    calibration: torch.Tensor | float = 1.0  # coded / estimated bits at the last measurement
    settled: torch.Tensor | None = None  # (B,) λ when the bits were last within SETTLED_BAND of the target (None:
    #                                      the start, until they are)
    margin: float = 1.0  # target_bits as a share of the latents' share of the budget (plans.CodedPlan.latent_margin)
    _steps: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.settled is None:
            self.settled = torch.full_like(self.lam, self.start)

    def steer(self, grids: list[torch.Tensor], bits: torch.Tensor, arm: list[torch.Tensor]) -> None:
        """One step of lam towards the target, from the estimated bits of the grids once rounded (and the ARM's
        tensors, with an ARM); where those bits are within SETTLED_BAND of the target, lam is also kept as `settled`,
        what a low budget's next phase restarts from."""
        if self.target_bits is None:
            return
        if self.coded_bits is not None and self._steps % self.every == 0:  # once the grids hold enough to measure
            coded = (self.coded_bits([torch.round(g) for g in grids], arm) / bits.clamp_min(1.0)).clamp(*CALIBRATION_RANGE)
            self.calibration = torch.where(bits >= MIN_CALIBRATION_BITS, coded, torch.as_tensor(self.calibration))
        self._steps += 1
        ratio = bits * self.calibration / self.target_bits
        within = (ratio - 1).abs() <= SETTLED_BAND
        self.settled = torch.where(within, self.lam, self.settled)
        self.lam = (self.lam * torch.exp(self.gain * steering_error(ratio))).clamp_min(self.floor)

    def enter(self, floor: float | None) -> None:
        """A new phase of the fit: λ's floor for it, a share of `floor_base` but never above λ's start (None:
        floor_base, so that it may not fall). A fit whose start is low (a high budget) thus holds λ at or above its
        start: let below it, the latents outgrew their share and starved the weights (ablations.md, "λ started by
        the target")."""
        self.floor = self.floor_base if floor is None else min(self.start, self.floor_base * floor)

    def restart(self, mse: torch.Tensor) -> None:
        """λ for a phase of the fit, given each network's MSE (B,) at full size as it begins (unchanged without a bit
        target); the phase's floor is then at most the start.
        - A high budget (its start below the lowest rates'): κ · MSE within [its start, the lowest rates' start], or
          its start without κ.
        - A low budget: λ when the latents' bits were last within SETTLED_BAND of their target (`settled`), or its
          start where they never were. What the half-size phase wound λ up to while the bits did not answer it is
          thus not carried into the full-size phase, where they answer it at once (kodim13 at 0.15 bpp: λ at 0.25,
          the bits 0.17× their target), and a λ the bits confirmed is (restarted at the start instead, kodim07 at
          0.15 bpp lost 1.2 dB; ablations.md, "v0.12.0.dev7").
        At a high budget the distortion tells a smooth photo from a textured one, whose λ at 1.2 bpp ends about 10×
        higher (R-D theory at high rates: dD/dR ∝ D; ablations.md, "λ restarted from the distortion", and
        "v0.12.0.dev4" for the half-size phase)."""
        if self.target_bits is None:
            return
        if self.start >= self.floor_base:
            self.lam = self.settled.clone()
        elif self.per_mse is None:
            self.lam = torch.full_like(mse, self.start)
        else:
            self.lam = (self.per_mse * mse).clamp(self.start, self.floor_base)
        self.floor = min(self.floor, self.start)

    def share_spent(self, grids: list[torch.Tensor], arm: list[torch.Tensor]) -> torch.Tensor | None:
        """What the coder spends on each network's rounded latent grids (each (B, ...)), with the ARM tensors `arm`,
        over the latents' share of the budget (target_bits / margin): (B,), or None without a target or a coder's
        count."""
        if self.target_bits is None or self.coded_bits is None:
            return None
        return self.coded_bits([torch.round(g) for g in grids], arm) * self.margin / self.target_bits

    def over_target(self, grids: list[torch.Tensor], arm: list[torch.Tensor]) -> list[bool]:
        """Whether each network's latents spend more than REFIT_OVER_TARGET × their share of the budget
        (share_spent): latents that leave the weights less than their planned share, which the overshoot's refit
        then takes back (all False without a target or a coder's count). Against the target itself, the margin of
        small images (0.9) refitted latents that still left the weights their share: 5 of the cpu preset's 24
        crops, −0.59 to +0.24 dB (ablations.md, dev8)."""
        spent = self.share_spent(grids, arm)
        return [False] * len(self.lam) if spent is None else (spent > REFIT_OVER_TARGET).tolist()

    def hasten(self, iters: int) -> None:
        """Steer λ, from where it is, towards the same target at the gain of a fit of `iters` iterations (the
        overshoot's refit: presets.REFIT)."""
        self.gain = steering_gain(iters)

    def fix(self) -> None:
        """Stop steering: λ keeps its last value (fine-tuning after the bits were allocated)."""
        self.target_bits = None


def latent_rate_term(p: Plan, n: int, steered_iters: int, device: torch.device, lmbda: float | None = None
                     ) -> RateTerm | None:
    """The rate term of n images' latent grids for a fit of `steered_iters` iterations (None without grids): λ
    starts at the lowest rates' lambda_start (for a high budget, restarted as each fit phase begins: RateTerm.restart)
    and is steered to the bits the budget leaves after the planned weights, or is `lmbda` throughout; the bits are
    the ARM's own estimate (arm.arm_bits) or the linear context model's, each calibrated against its coder's."""
    if not p.arch.grid_indices:
        return None
    shape = p.arch.arm
    model = (dict(estimate=partial(arm_bits, shape), coded_bits=partial(arm_coded_bits, shape)) if shape
             else dict(coded_bits=coded_grid_bits))
    if lmbda is not None:
        return RateTerm(torch.full((n,), lmbda, device=device), None, **model)
    start, low = lambda_start(8 * p.budget / (p.arch.height * p.arch.width) if p.budget else None), lambda_start(None)
    return RateTerm(torch.full((n,), low, device=device), _latent_target(p, n, device), start=start, floor_base=low,
                    per_mse=CODED.lambda_per_mse, gain=steering_gain(steered_iters), floor=low,
                    every=CODED.calibrate_every, margin=_latent_margin(p), **model)


def steering_error(ratio: torch.Tensor) -> torch.Tensor:
    """λ's relative step per unit of gain, from the ratio of the latents' coded bits to their target: ratio - 1,
    within ±1 (so λ rises at most e^gain per iteration where the bits are twice the target or more)."""
    return (ratio - 1).clamp(-1, 1)


def steering_gain(iters: int) -> float:
    """λ's steering gain for a fit of `iters` iterations: 10 / iters (λ may move e^10-fold over it at most), at
    most 0.1."""
    return min(0.1, 10 / max(iters, 1))


def _latent_target(p: Plan, n: int, device: torch.device) -> torch.Tensor:
    """Bits the latent grids of each of n images should settle on: the budget left after the planned weights."""
    weight_bits = p.arch.n_params * CODED.bits_per_param
    total = 8 * p.budget if p.budget else weight_bits * (1 + LATENT_SHARE_NO_BUDGET)
    overhead = 8 * (header_size(p.arch.layers, len(p.arch.tensor_shapes()), arm=p.arch.arm) + 4)
    return torch.full((n,), max(_latent_margin(p) * (total - overhead - weight_bits), 64.0), device=device)


def _latent_margin(p: Plan) -> float:
    """The share of what the planned weights leave that the latents' bits are steered to (CodedPlan.latent_margin,
    small_latent_margin on images of fewer than small_pixels pixels)."""
    small = p.arch.height * p.arch.width < CODED.small_pixels
    return CODED.small_latent_margin if small else CODED.latent_margin


def coded_grid_bits(rounded: list[torch.Tensor], arm: list[torch.Tensor] = ()) -> torch.Tensor:
    """What the range coder spends on each of B networks' rounded latent grids (each (B, h, w)) under the linear
    context model (no `arm`), descriptors included; the estimate where the values are beyond the coder's range
    (early in a fit)."""
    per_image = [[g[b].cpu().numpy().astype(np.int64) for g in rounded] for b in range(rounded[0].shape[0])]
    try:
        bits = [8 * len(encode_ints(grids, CODERS["range"], range(len(grids)))) for grids in per_image]
    except ValueError:
        return grid_bits(rounded)
    return torch.tensor(bits, dtype=rounded[0].dtype, device=rounded[0].device)


# ---- the weights: μ searched so that the stream fills the budget ------------------------------------------------

StreamFor = Callable[[float], bytes]  # the stream at a quantization knob mu


SPREAD = 2654435761  # Knuth's multiplicative hash constant: spreads the pruned latents over the grids
PRUNE_RESOLUTION = 1000  # the pruned count is bisected to 1/PRUNE_RESOLUTION of the nonzero latents


def overshoot(grids: Collection[int], stream_for: StreamFor, budget: int | None) -> int:
    """Bytes by which one network's stream at the weights' coarsest steps exceeds `budget`, what only the latents
    can take back (0 or less: it fits; 0 without latent grids or a budget)."""
    return len(stream_for(COARSEST_MU)) - budget if grids and budget else 0


def prune_to_fit(grids: Collection[int], ws: list[torch.Tensor], stream_for: StreamFor, budget: int | None) -> int:
    """Zero the fewest of one network's latents that let its coarsest stream fit the budget, the smallest
    magnitudes first (`ws`: views into the batch, changed in place): rate control in the loop can overshoot. Among
    equal magnitudes the order is a multiplicative hash of each value's position, so that the zeroed values are
    spread over the grids; the count is bisected, so that a few percent over the budget costs a few percent of the
    latents. (Zeroing every value of magnitude 1 at once, as it did before, took 92,612 of them and 27.4 → 19.1 dB on
    a 768x512 photo 5 % over; bisected, 44,502 and 20.5 dB; ablations.md, "v0.12.0.dev5".) Returns how many
    latents it zeroed."""
    if overshoot(grids, stream_for, budget) <= 0:
        return 0
    grids = sorted(grids)
    kept = [ws[t].clone() for t in grids]
    flat = torch.cat([k.flatten() for k in kept])
    position = torch.arange(flat.numel(), device=flat.device)
    key = flat.abs().to(torch.int64) * (1 << 32) + position * SPREAD % (1 << 32)
    order = position[flat != 0][torch.argsort(key[flat != 0])]

    def zero_first(count: int) -> bool:
        """The latents with the first `count` values of the order zeroed; whether the coarsest stream then fits."""
        pruned = flat.clone()
        pruned[order[:count]] = 0
        for t, part in zip(grids, torch.split(pruned, [k.numel() for k in kept])):
            ws[t].copy_(part.view_as(ws[t]))
        return len(stream_for(COARSEST_MU)) <= budget

    lo, hi = 0, len(order)  # lo: does not fit; hi: fits, or nothing left to zero
    step = max(1, len(order) // PRUNE_RESOLUTION)
    while hi - lo > step:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if zero_first(mid) else (mid, hi)
    zero_first(hi)
    return hi


def search_mu(stream_for: StreamFor, good: Callable[[bytes], bool], larger_is_good: bool, data: bool = False):
    """By bisection on log mu, the mu nearest the boundary on its good side: the smallest mu (finest steps) whose
    stream fits a budget (larger_is_good), or the largest mu (smallest file) whose stream still reaches a PSNR.
    Returns mu, or its stream with data=True; an unreachable PSNR gives the finest stream the coder can hold."""
    lo, hi = math.log(FINEST_MU), math.log(COARSEST_MU)

    def ok(log_mu: float) -> bool:
        try:
            return good(stream_for(math.exp(log_mu)))
        except ValueError:  # steps so fine that the integers exceed the coder's range
            return False

    good_end, bad_end = (hi, lo) if larger_is_good else (lo, hi)
    if not ok(good_end):
        if larger_is_good:
            raise InputError("the target is smaller than the smallest possible file")
        return final_stream(stream_for, FINEST_MU, None) if data else FINEST_MU
    for _ in range(BISECTION_STEPS):
        mid = (good_end + bad_end) / 2
        good_end, bad_end = (mid, bad_end) if ok(mid) else (good_end, mid)
    return stream_for(math.exp(good_end)) if data else math.exp(good_end)


def unbudgeted_mu(float_mse: float, n_params: int) -> float:
    """mu without a byte budget or PSNR target: quantization may add QUANT_MSE_SHARE of the float fit's MSE."""
    return QUANT_MSE_SHARE * float_mse / n_params


def lambda_mu(lmbda: float, pixels: int) -> float:
    """The weights' step allocation knob mu (nnquant.allocate_steps: a step s adds a·s² to the MSE and saves
    n·log2(s) bits) at the slope of the loss MSE + λ · bits / pixels: mu = λ / (2 ln 2 · pixels)."""
    return lmbda / (2 * math.log(2) * pixels)


def final_stream(stream_for: StreamFor, mu: float, budget: int | None) -> bytes:
    """The stream at mu or, as fine-tuning moved the weights, at the first coarser mu (x2^(1/4)) that fits, up to
    COARSEST_MU; raises InputError where none does (the latents alone overshoot the budget)."""
    if budget is None or len(stream_for(COARSEST_MU)) <= budget:
        for m in _coarser(mu):
            try:
                data = stream_for(m)
            except ValueError:  # integers out of the coder's range
                continue
            if budget is None or len(data) <= budget:
                return data
    raise InputError(f"no stream fits the target of {budget} bytes")


def _coarser(mu: float) -> list[float]:
    """mu, its coarser quarter-octave steps below COARSEST_MU, and COARSEST_MU."""
    steps = max(0, math.ceil(4 * math.log2(COARSEST_MU / mu)))
    return [m for m in (mu * 2 ** (i / 4) for i in range(steps)) if m < COARSEST_MU] + [COARSEST_MU]
