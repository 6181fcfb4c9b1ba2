"""What an encode costs, stage by stage: a model of its CPU seconds from the network's work (the decoder's measure of
it, format/limits.py), the latent grids' size and the schedule (training/presets.py).

Progress reports (training/progress.py) weigh each stage's iterations, and the steps after the fit, by this model:
a warm-up iteration (8 candidates at a quarter of the size), one at half size (the synthesis a quarter, but the
rate term on the full-size grids) and the steps after the fit (the coder's streams, the ARM's last fit) differ
several-fold. The ETA then scales the model by the seconds measured so far, so that only its proportions need to
be right on another machine, under another load.
"""

from __future__ import annotations

from dataclasses import dataclass

from ddcodec.format.architecture import Architecture
from ddcodec.format.limits import synthesis_cost
from ddcodec.training.presets import Phase, Preset

ROUNDED_PROXIES = ("hard", "ste")  # latents shown rounded: the ARM's rate term makes one pass (encoder.arm.arm_bits)


@dataclass(frozen=True)
class CostModel:
    """CPU seconds on one thread. An iteration: `iteration` + per network, per unit of the synthesis' work (forward
    and backward) at the phase's scale, `synthesis` (`warm_up` in the warm-up's batch of candidates) + per latent
    value the rate term: `arm_pass` for each of the ARM's two passes (noisy and rounded latents, the ARM trained),
    `rounded_pass` for its one pass where the latents are shown rounded (fine-tuning, the ARM held), `linear` for
    the linear context model's. Between the fit and fine-tuning: `sensitivity` per unit of synthesis work for each
    forward pass that measures the weights' sensitivities, and `quantization` per latent value (the ARM's step
    search, the pruning and the μ search: streams coded); after fine-tuning, `finish` per latent value (the final
    streams, the decodes that measure them).
    `source`: where the constants were measured."""

    iteration: float
    synthesis: float
    warm_up: float
    arm_pass: float
    rounded_pass: float
    linear: float
    sensitivity: float
    quantization: float
    finish: float
    source: str


REFERENCE = CostModel(
    iteration=5.35e-4, synthesis=4.43e-11, warm_up=1.65e-10, arm_pass=2.32e-7, rounded_pass=3.33e-7, linear=1.68e-7,
    sensitivity=2.87e-11, quantization=7.39e-6, finish=1.70e-6,
    source="benchmarks/results/stages-cpu.json: one-thread encodes of the v0.12 default plan at 60 iterations "
           "(768x512 kodim03 at 0.3 bpp; 256x256 kodim23 at 0.3 and 0.6 bpp), commit 3f103ff, CPU seconds on the "
           "project's 2-core AMD EPYC under load 6-8; fitted by `python -m benchmarks.stages --model-from`",
)


def stage_costs(arch: Architecture, preset: Preset, n: int, model: CostModel = REFERENCE) -> dict[str, float]:
    """Seconds per iteration of each stage of a batch of n images, by the name its progress reports use: the
    warm-up (its rounds' mean number of candidates, at its scale) and each phase of the fit, the refit and
    fine-tuning."""
    w, work = preset.warmup, synthesis_cost(arch).work
    networks = n * sum(w.survivors) / len(w.survivors) if preset.warmup_iters() else n
    costs = {"warm-up": model.iteration + networks * model.warm_up * work / 4 ** min(w.coarse, arch.layers - 1)}
    for phase in (*preset.fit, *preset.finetune, *([preset.refit] if preset.refit else [])):
        costs[phase.name] = model.iteration + n * (model.synthesis * work / 4**phase.coarse
                                                   + _rate(arch, phase, model))
    return costs


def _rate(arch: Architecture, phase: Phase, model: CostModel) -> float:
    """Seconds of one network's rate term in an iteration of `phase`: none without latent grids; with the ARM, one
    pass where the proxy shows the latents rounded (encoder.arm.arm_bits), else two."""
    if not arch.grid_indices:
        return 0.0
    if arch.arm is None:
        return model.linear * arch.n_latents
    return (model.rounded_pass if phase.latents in ROUNDED_PROXIES else 2 * model.arm_pass) * arch.n_latents


def quantization_cost(arch: Architecture, n: int, model: CostModel = REFERENCE) -> float:
    """Seconds between the fit and fine-tuning for n images: the sensitivities (a forward pass for the weights as
    they are, and four for each tensor measured) and the streams of the step and μ searches."""
    measured = len(arch.tensor_shapes()) - len(arch.grid_indices) - len(arch.arm_indices)
    return n * ((1 + 4 * measured) * model.sensitivity * synthesis_cost(arch).work
                + model.quantization * arch.n_latents)


def finishing_cost(arch: Architecture, n: int, model: CostModel = REFERENCE) -> float:
    """Seconds after fine-tuning for n images: the final streams."""
    return n * model.finish * arch.n_latents


def encode_cost(arch: Architecture, preset: Preset, n: int, model: CostModel = REFERENCE) -> float:
    """Seconds of a whole batch of n images on the reference machine: every stage's iterations and the steps after
    the fit."""
    costs = stage_costs(arch, preset, n, model)
    rounds = len(preset.warmup.survivors) if preset.warmup_iters() else 0
    fitting = sum(costs[p.name] * preset.phase_iters(p) for p in (*preset.fit, *preset.finetune)
                  if p.coarse < arch.layers)  # (the encoder skips phases coarser than the network allows)
    return (costs["warm-up"] * preset.warmup_iters() * rounds + fitting + quantization_cost(arch, n, model)
            + finishing_cost(arch, n, model))
