"""The encode's schedule as data: the warm-up, the phases of fitting, and the effort levels that pick them.

As Cool-chic's training presets do, a preset says everything the fit does besides the image and its budget: how
many candidate networks the warm-up tries and how many survive each round, then each phase's share of the
iterations, its learning rate (a window of one cosine decay), the image's scale, and how the latent grids are
quantized while they train (ddcodec.training.quantizer: mode, soft-round temperature and noise, annealed linearly over the
phase). The encoder runs the `fit` phases, rounds the latents, allocates the weights' quantization steps by
rate-distortion (after the `refit` phase where the latents overshoot the budget or their share of it), then runs
the `finetune` phases with the weights quantized (straight-through) and codes the result.

`--effort` picks one of EFFORTS; `--iters` overrides its iteration count and keeps its shares. This module has no
heavy imports (the command line builds its help from it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

LR_FLOOR = 0.02  # a cosine decay ends at this share of its peak learning rate


@dataclass(frozen=True)
class Phase:
    """One phase of the fit.

    `share`: part of the preset's iterations; `lr`: peak learning rate as a multiple of the encode's; `cosine`:
    the part (start, end) of one cosine decay from the peak to LR_FLOOR · peak that the phase runs over (phases that
    share one schedule split it: (0, 0.5) then (0.5, 1)); `coarse` = s renders the image 2^s times smaller (the
    last s upsamplings skipped); `latents`: the latent quantization proxy (quantizer.MODES), with `temperature` and
    `noise_param` (Kumaraswamy shape or Gaussian std) annealed linearly from their first to their second value;
    `lambda_floor`: the rate weight λ's floor while rate control steers it, as a share of λ's start at the lowest
    rates and never above this fit's own start (None: the lowest rates' start; RateTerm.enter); `lambda_restart`:
    λ restarted as the phase begins, for a high budget (RateTerm.restart);
    `test_every`: every so many iterations the model with hard-rounded latents is evaluated and the best such model
    kept (0: keep the last iterate, or the best by the phase's own loss when it draws no noise); `hold_filled`: a
    fine-tuning phase holds an image's latents at their rounded values (no gradient; Cool-chic's last phase) where
    its stream as fine-tuning starts fills at least this share of the byte budget, and trains the others' under
    `latents` (None, or no byte budget: none held).
    """

    name: str
    share: float
    lr: float = 1.0
    cosine: tuple[float, float] = (0.0, 1.0)
    coarse: int = 0
    latents: str = "noise"
    temperature: tuple[float, float] = (0.3, 0.3)
    noise: str = "uniform"
    noise_param: tuple[float, float] = (1.0, 1.0)
    lambda_floor: float | None = None
    lambda_restart: bool = False
    test_every: int = 0
    hold_filled: float | None = None


@dataclass(frozen=True)
class WarmUp:
    """Candidate networks (seeds s, s+1, ...) fitted briefly on the image shrunk 2^coarse times: round r fits the
    best `survivors[r]` of the previous round (all candidates in the first) for `share` of the iterations each."""

    candidates: int = 8
    survivors: tuple[int, ...] = (8,)
    share: float = 0.075
    coarse: int = 2


@dataclass(frozen=True)
class Preset:
    """Iterations, the warm-up, the fit and fine-tuning phases, the optimizer, and the latents' gain: the learning
    rate of the latent grids in integer units, as a multiple of the weights' (the same updates as storing
    round(gain · y) with y trained at the weights' rate, as Cool-chic and C3 do). `refit`: a phase run, after the
    fit, only for the images whose latents overshoot the byte budget at the weights' coarsest steps or end over their
    share of it (ratecontrol.REFIT_OVER_TARGET), λ's steering hastened to its iterations (None: none); its
    iterations come on top of `iters`."""

    iters: int
    warmup: WarmUp = field(default_factory=WarmUp)
    fit: tuple[Phase, ...] = ()
    finetune: tuple[Phase, ...] = ()
    refit: Phase | None = None
    latent_gain: float = 1.0
    optimizer: str = "adam"  # or "soap" (ddcodec.training.optimizers)

    def with_iters(self, iters: int | None) -> Preset:
        """The same schedule over `iters` iterations (None: unchanged)."""
        return self if iters is None else dataclasses.replace(self, iters=iters)

    def phase_iters(self, phase: Phase) -> int:
        """Iterations of one phase."""
        return int(self.iters * phase.share)

    def warmup_iters(self) -> int:
        """Iterations of each warm-up round, for each network it fits (0 without a warm-up)."""
        return int(self.iters * self.warmup.share) if self.warmup.candidates > 1 else 0


_LAMBDA_FLOOR = 0.1  # at full size λ may fall to a tenth of its low-rate start, so that smooth images fill the budget

# v0.9's schedule: half of the main fit at half size, uniform noise on the latents, then quantization-aware
# fine-tuning at a fifth of the learning rate; since v0.11 the latents train at 4x the weights' learning rate. A high
# budget's λ is restarted from the distortion as each fit phase begins (0.12.0.dev2 at full size, dev4 at half size
# too: ablations.md, "v0.12.0.dev4").
V09_FIT = (
    Phase("fit, half size", 0.3625, cosine=(0.0, 0.5), coarse=1, lambda_restart=True),
    Phase("fit", 0.3625, cosine=(0.5, 1.0), lambda_floor=_LAMBDA_FLOOR, lambda_restart=True),
)
# Fine-tuning holds the latents of a filled budget where they are (Cool-chic's last phase): +0.30 and +0.13 dB at
# 0.3 bpp and +0.20 at 1.2 on the full preset, where moving them can only grow a stream that the budget then
# rejects; an image that leaves the budget unspent (kodim03 at 1.2 bpp: -0.2 dB held) trains them straight-through
# into the spare bytes (ablations.md, "v0.12.0.dev6").
FINETUNE = (Phase("qat", 0.2, lr=0.2, latents="ste", hold_filled=0.97),)
# Where rate control in the loop lands the latents over the budget (λ restarted too low for a narrow network:
# --complexity low on kodim13 at 1.2 bpp, 5 % over; pruned until the stream fit, 27.4 dB fitted gave 20.5 coded), the
# overshooting images go on fitting at full size for a tenth of the iterations, λ steered to the same target at that
# short fit's gain, from the full-size phase's floor (ablations.md, "v0.12.0.dev6"); since dev8 also those whose
# latents end over their share of the budget (ratecontrol.REFIT_OVER_TARGET).
REFIT = Phase("rate refit", 0.1, cosine=(0.5, 1.0), lambda_floor=_LAMBDA_FLOOR)


# Gain 4 measured +0.6 dB at 1.2 bpp and +0.1 at 0.3 on kodim05/kodim19 (ablations.md, "v0.10 — training"), and
# +1.4 dB at 0.15 bpp on kodim14 with the synthesis (20.21 against 18.83): the default since v0.11.
LATENT_GAIN = 4.0
# SOAP measured +0.2 dB at 0.3 bpp and +0.4 at 1.2 on kodim05/kodim19 with v0.9's coder, but with format 4's ARM and
# synthesis it broke one encode's quantization (kodim19 at 0.15 bpp: fitted 22.65 dB, coded 15.72 dB at 0.061 bpp;
# ablations.md): Adam stays the default, SOAP a preset's option until that is understood.
OPTIMIZER = "adam"


def _preset(iters: int, **changes) -> Preset:
    return Preset(iters, fit=V09_FIT, finetune=FINETUNE, refit=REFIT, latent_gain=LATENT_GAIN, optimizer=OPTIMIZER,
                  **changes)


EFFORTS: dict[int, Preset] = {
    1: _preset(600),
    2: _preset(1000),
    3: _preset(2000),
    4: _preset(5000),
    5: _preset(10000),
}
# On the CPU: a 768x512 photo at 0.3 bpp on two cores in about three minutes (the speed issue's target), at v0.11's
# default PSNR or better: 186 s / 32.44 dB (kodim03) and 180 s / 21.89 dB (kodim13) at effort 2, where effort 3 takes
# 374-383 s for +1.1 / +0.4 dB (benchmarks/results/ttq-cpu-full-v0.12, 0.12.0.dev1, load 2 from nothing else).
# The rate-distortion presets (benchmarks/rd.py) fit 2,000 iterations (effort 3), as the field's comparisons do.
DEFAULT_EFFORT = 2
GPU_EFFORT = 4  # on a GPU
DEMO_EFFORT = 2  # `ddcodec demo`: 1000 iterations, about half a minute for its 256x256 photo on one core
