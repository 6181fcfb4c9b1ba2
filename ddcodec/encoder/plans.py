"""The coded profile's plan as data: each measured choice that sizes a network and splits a byte budget, with the
ablation row that chose it (benchmarks/results/ablations.md).

ratecontrol.plan reads `ratecontrol.CODED`; a probe of another plan replaces it with `dataclasses.replace(CODED, ...)`
(benchmarks/latent_layout.py, benchmarks/synthesis.py). This module has no heavy imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

from ddcodec.format.architecture import ArmShape


@dataclass(frozen=True)
class CodedPlan:
    """How the coded-input profile turns a byte budget into an architecture.

    `bits_per_param`: what a weight costs once quantized and coded; `model_bytes_per_tensor`: a tensor's
    entropy-model descriptor; `weight_share`: the part of the budget planned for the network's weights (the latents
    get the rest); `max_width`: the width cap that keeps the decoder within its multiply-adds per pixel;
    `latents_by_scale`: latent grids of a layer 2^-s below full size (s past the last key: the last key's count);
    `upsampling_taps`, `refine_layers`, `refine_kernel`: the synthesis of format 4 (0 taps: bilinear upsampling);
    `arm`: the ARM's shape (None: the linear context model of format 3); the synthesis is left out below
    `min_synthesis_bpp` and where its weights exceed `max_synthesis_share` of a network at `max_weight_share`; the ARM is planned
    where `arm_saving` of the latents' bits repays its weights (`arm_bits_per_param` each) `arm_payback` times.
    `latent_margin`: the share of what the planned weights leave that the latents' bits are steered to, and
    `small_latent_margin` the share on images of fewer than `small_pixels` pixels;
    `calibrate_every`: iterations between two measurements of the coder's real latent bits against the estimate.
    `min_width_with_extras`: the least width of a network planned with the synthesis or the ARM (a narrower one is
    planned without the ARM, then without the synthesis; a bare network needs width 2).
    `lambda_start_by_bpp`: the rate weight λ's start by the budget's bits per pixel (read on log-log axes between
    the keys; the phases' floors are shares of its first value and never above the start, presets.Phase.lambda_floor);
    below the first value (a high budget) λ still starts at the first and is restarted as each fit phase begins
    (presets.Phase.lambda_restart) at `lambda_per_mse` · the network's MSE then (None: at the start), within the
    start and the first value, and may not fall below the start (ratecontrol.RateTerm.restart).
    `widths_by_scale` (a probe of fixed widths, `benchmarks/latent_layout.py --widths-by-scale`): each layer's width
    by its scale 2^-s below full size (s past the last key: the last key's width), fixed whatever the budget, with
    the synthesis and the ARM always in; None sizes an equal width from weight_share of the budget (v0.11).
    `sources`: field -> the ablation row (section and lever) that measured it."""

    bits_per_param: float
    model_bytes_per_tensor: int
    weight_share: float
    max_weight_share: float
    max_width: int
    latents_by_scale: Mapping[int, int]
    upsampling_taps: int
    refine_layers: int
    refine_kernel: int
    arm: ArmShape | None
    min_synthesis_bpp: float
    max_synthesis_share: float
    arm_saving: float
    arm_bits_per_param: float
    arm_payback: float
    latent_margin: float = 0.9
    small_latent_margin: float = 0.9
    small_pixels: int = 0
    calibrate_every: int = 100
    min_width_with_extras: int = 2
    widths_by_scale: Mapping[int, int] | None = None
    lambda_start_by_bpp: Mapping[float, float] = field(default_factory=lambda: MappingProxyType({0.0: 2e-3}))
    lambda_per_mse: float | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)


V0_11 = CodedPlan(
    bits_per_param=6.5, model_bytes_per_tensor=4, weight_share=0.35, max_weight_share=0.35, max_width=37,
    latents_by_scale=MappingProxyType({0: 0, 1: 1, 2: 1, 3: 1, 4: 2}),
    upsampling_taps=4, refine_layers=1, refine_kernel=3, arm=ArmShape(neighbours=12, coarser=True, hidden=(8, 8)),
    min_synthesis_bpp=0.3, max_synthesis_share=0.12, arm_saving=0.15, arm_bits_per_param=6, arm_payback=1.5,
    sources=MappingProxyType({
        "bits_per_param": "first codec: 'more weights, fewer bits' (6.5 / 4.5 / 3.5 bit per weight; 6.5 kept)",
        "model_bytes_per_tensor": "the typical descriptor of a tensor's entropy model (docs/FORMAT.md, 'Payload')",
        "weight_share": "v0.9: 'the network's share of the budget 0.5 instead of 0.35' (-0.36 dB)",
        "max_weight_share": "v0.9: the network's share of the budget, with which small images had a network",
        "max_width": "v0.11 full Kodak: width 37, the decoder's 2,500 multiply-adds per pixel at 768x512",
        "latents_by_scale": "v0.6: the coded-input profile's grids; v0.11 full Kodak: no full-size grid yet",
        "upsampling_taps": "v0.10 synthesis: learned upsampling (Cool-chic 3.4's 2 x 4 taps)",
        "refine_layers": "v0.10 synthesis: one residual 3x3 refinement",
        "refine_kernel": "v0.10 synthesis: one residual 3x3 refinement",
        "arm": "v0.10 ARM: 12 neighbours, the coarser grid, two hidden layers of 8",
        "min_synthesis_bpp": "v0.11 merged default: 'the synthesis only from 0.3 bpp' (kodim03 at 0.15 bpp: -1 dB)",
        "max_synthesis_share": "v0.11 merged default: 'where its weights are <= 12 % of the network's'",
        "arm_saving": "v0.10 ARM: ~15 % fewer bits than the linear context model",
        "arm_bits_per_param": "v0.10 ARM: ~1,200 bits for the 202 weights of its shape",
        "arm_payback": "v0.11 merged default: the ARM where its saving repays its weights 1.5 times",
        "latent_margin": "v0.9: the latents aim at 90 % of what the weights leave, so that an overshoot still fits",
        "calibrate_every": "v0.9: the coder's bits measured every 100 iterations",
        "lambda_start_by_bpp": "v0.9: λ starts at 2e-3 (MSE per bit per pixel) and rate control steers it",
    }),
)

# v0.12: the bits go to the latents, a full-size grid among them, and rate control aims at the whole budget
# (ablations.md, "v0.12 — the coded profile's plan"): +0.19 to +0.70 dB at 0.15-0.6 bpp on both full-preset images.
V0_12 = replace(
    V0_11, weight_share=0.15, max_width=36, latents_by_scale=MappingProxyType({0: 1, 1: 1, 2: 1, 3: 1, 4: 2}),
    latent_margin=1.0, small_pixels=1 << 17, calibrate_every=20,
    lambda_start_by_bpp=MappingProxyType({0.6: 2e-3, 1.2: 1e-4}), lambda_per_mse=0.25, min_width_with_extras=4,
    sources=MappingProxyType({
        **V0_11.sources,
        "weight_share": "v0.12 step 0: 'a full-size latent grid and the network at 15 % of the budget'",
        "latents_by_scale": "v0.12 step 0: one full-size latent grid",
        "max_width": "v0.12: the decoder's 2,500 multiply-adds per pixel at 768x512 with the full-size grid's ARM",
        "latent_margin": "v0.12: 'rate control aims at the whole budget and measures the coder often'",
        "small_latent_margin": "v0.12.0.dev1: 'the latents at 90 % on images under 2^17 pixels' (crops)",
        "small_pixels": "v0.12.0.dev1: 'the latents at 90 % on images under 2^17 pixels' (crops)",
        "calibrate_every": "v0.12: 'rate control aims at the whole budget and measures the coder often'",
        "lambda_start_by_bpp": "v0.12.0.dev2: 'λ restarted from the distortion' (its floor 1e-4 at 1.2 bpp; up to "
                               "0.6 bpp 2e-3 as before)",
        "min_width_with_extras": "v0.12.0.dev3: 'width 4 or more beside the synthesis or the ARM' (256x256 crops at "
                                 "0.3 bpp: width 3 with both 23.28 dB, width 6 with the synthesis alone 24.12)",
        "lambda_per_mse": "v0.12.0.dev3: 'κ = 0.25 for λ's restart' (dev2's 0.6: 'λ restarted from the distortion')",
    }),
)

# The decoder-complexity presets (`--complexity`): the coded profile's width cap, named by what the decoder then
# costs at 768x512 where the cap binds (1.2 bpp), in multiply-adds per pixel with the synthesis and the ARM
# (Architecture.macs_per_pixel + arm_macs_per_pixel): low 584, medium 1,316, high 2,499 (V0_12.max_width). Below
# the cap the width follows the budget as before (768x512 at 0.3 bpp: width 18 in medium and high). medium needs
# 5.3 % fewer bits than high on the full preset's two photos and 5.5 % fewer on the Kodak six (BD-rate), low 10.5 %
# more on the full preset; medium is the default since 0.12.0.dev5 (ablations.md, "v0.12.0.dev5", rows
# "--complexity low and medium on the full preset" and "medium as the default").
COMPLEXITY_WIDTHS: Mapping[str, int] = MappingProxyType({"low": 10, "medium": 23, "high": V0_12.max_width})
DEFAULT_COMPLEXITY = "medium"
