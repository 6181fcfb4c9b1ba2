"""Where an encode's time goes (issue 29, item 1): a real default coded encode, profiled by stage.

`ddcodec.encode(image, bpp, iters=N)` on the default plan, with timers put around the library's call sites by
monkeypatching (the library itself carries no instrumentation). Each timer records its exclusive time (its own,
less that of the timers it encloses) in CPU seconds of the process (time.process_time: on a busy machine a niced
encode's wall time measures the other processes more than this one; on one thread, CPU seconds are what the wall
time would be on an idle core; on two, both threads' seconds, spinning included), under the stage it ran in: a
phase of fitting (warm-up, fit at half size, fit, qat: per iteration) or a step after the fit (totals). Per
iteration, the stages are:

  forward       the synthesis (component.model.render_batch)
  distortion    the MSE against the target (fit.per_image_mse less its forward)
  latent proxy  the latents' quantization proxy and the weights' straight-through quantization
  rate          the estimate of the latents' bits: the ARM's (encoder.arm.arm_bits: its network, Laplace
                bits) or, where the plan has no ARM, the linear context model's (encoder.rate.context_bits)
  steering      λ's step towards the bit target (RateTerm.steer, less the calibration)
  calibration   the real coder's bits of the rounded grids (every calibrate_every iterations)
  backward      autograd (torch.Tensor.backward)
  optimizer     Adam's step, zero_grad and learning-rate setting
  loop          the rest of fit()'s own time

After the fit: sensitivities, the ARM's step search (arm_step_codes), pruning and the μ search (each a stream coded
by the C coder), the final stream, and the decodes that measure PSNR (records made before the ARM's last fit was
dropped also time it, as "ARM refit").

    python -m benchmarks.stages [--iters 60] [--threads 1 2] [--sizes 256 768] [--bpp 0.3] [--out benchmarks/results]
    python -m benchmarks.stages --model-from benchmarks/results/stages-cpu.json

The second fits the progress ETA's cost model (ddcodec/encoder/cost.py: its REFERENCE constants) to the one-thread
records and checks the ETA it gives at the default effort against the measured stages (eta_check).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import platform
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

import ddcodec
from ddcodec.encoder import arm as enc_arm
from ddcodec.encoder import encode as enc
from ddcodec.encoder import ratecontrol
from ddcodec.training import fit as fitmod
from ddcodec.training import optimizers, warmup
from ddcodec.encoder import cost
from ddcodec.encoder.cost import CostModel
from ddcodec.format.architecture import Architecture
from ddcodec.training.presets import DEFAULT_EFFORT, EFFORTS

HERE = Path(__file__).parent
IMAGES = {256: HERE / "images" / "cpu" / "kodim23.png", 768: HERE / "images" / "full" / "kodim03.png"}
BPP = 0.3
MIN_LEFT = 5.0  # s: eta_check's points with less left are not judged

ZERO = CostModel(*[0.0] * 9, "")
ITERATION_FIELDS = ("iteration", "synthesis", "warm_up", "arm_pass", "rounded_pass", "linear")
ITERATIONS = replace(ZERO, iteration=1.0, source="v0.12's ETA: every iteration alike, nothing after the fit")
PER_ITERATION = ("forward", "distortion", "latent proxy", "rate", "steering", "calibration", "backward", "optimizer",
                 "loop")
AFTER_FIT = ("sensitivities", "ARM step search", "pruning", "mu search", "final stream", "PSNR decodes", "other")


class Timers:
    """Exclusive CPU seconds per (stage, label), with a stack of open regions; a stage is the innermost region opened
    as one (a phase of fitting, or a step after the fit)."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self.iters: dict[str, int] = defaultdict(int)
        self.stack: list[list] = []  # [label, stage, start, children's seconds]

    @contextmanager
    def region(self, label: str, stage: str | None = None) -> Iterator[None]:
        outer = self.stack[-1][1] if self.stack else "other"
        self.stack.append([label, stage or outer, time.process_time(), 0.0])
        try:
            yield
        finally:
            label, stage, start, children = self.stack.pop()
            elapsed = time.process_time() - start
            self.seconds[(stage, label)] += elapsed - children
            self.calls[(stage, label)] += 1
            if self.stack:
                self.stack[-1][3] += elapsed

    def wrap(self, owner, name: str, label: str, stage: str | None = None) -> Callable[[], None]:
        """Replace owner.name by a timed call of it; returns the undo."""
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            with self.region(label, stage):
                return original(*args, **kwargs)

        setattr(owner, name, timed)
        return lambda: setattr(owner, name, original)


def instrument(timers: Timers) -> list[Callable[[], None]]:
    """Timers around the encode's call sites; the undos."""
    undo = []

    def timed_fit(original):
        @functools.wraps(original)
        def run(arch, target, z, weights, phase, iters, *args, **kwargs):
            timers.iters[phase.name] += iters
            with timers.region("loop", phase.name):
                return original(arch, target, z, weights, phase, iters, *args, **kwargs)
        return run

    for owner in (warmup, enc):
        original = owner.fit
        owner.fit = timed_fit(original)
        undo.append(lambda owner=owner, original=original: setattr(owner, "fit", original))
    w = timers.wrap
    undo += [
        w(fitmod, "render_batch", "forward"),
        w(fitmod, "per_image_mse", "distortion"),
        w(fitmod, "quantize_latents", "latent proxy"),
        w(fitmod, "ste_quantize", "latent proxy"),
        w(ratecontrol, "arm_bits", "rate"),
        w(ratecontrol, "arm_coded_bits", "calibration"),
        w(ratecontrol, "context_bits", "rate"),
        w(ratecontrol, "coded_grid_bits", "calibration"),
        w(ratecontrol.RateTerm, "steer", "steering"),
        w(torch.Tensor, "backward", "backward"),
        w(optimizers.FitOptimizer, "step", "optimizer"),
        w(optimizers.FitOptimizer, "zero_grad", "optimizer"),
        w(optimizers.FitOptimizer, "set_lr", "optimizer"),
        w(enc, "sensitivities", "sensitivities", "sensitivities"),
        w(enc, "arm_step_codes", "ARM step search", "ARM step search"),
        w(enc, "prune_to_fit", "pruning", "pruning"),
        w(enc, "search_mu", "mu search", "mu search"),
        w(enc, "final_stream", "final stream", "final stream"),
        w(enc, "decode_array", "PSNR decodes", "PSNR decodes"),
        w(enc_arm, "forward", "rate: ARM network"),
        w(enc_arm, "discrete_laplace_bits", "rate: Laplace bits"),
    ]
    return undo


def profile(image: np.ndarray, iters: int, threads: int, bpp: float = BPP) -> dict:
    """One encode of `image` at `bpp` with `iters` iterations on `threads` torch threads, profiled by stage."""
    torch.set_num_threads(threads)
    timers = Timers()
    undo = instrument(timers)
    load = os.getloadavg()[0]
    try:
        with timers.region("encode", "other"):
            start, cpu = time.perf_counter(), time.process_time()
            result = ddcodec.encode(image, bpp=bpp, iters=iters)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        for u in reversed(undo):
            u()
    return summarize(timers, result, wall, cpu, bpp, iters, threads, load, os.getloadavg()[0],
                     EFFORTS[DEFAULT_EFFORT].warmup.candidates)


def summarize(timers: Timers, result, wall: float, cpu: float, bpp: float, iters: int, threads: int,
              load_start: float, load_end: float, candidates: int) -> dict:
    """The record of one profiled encode: per phase, seconds per iteration by stage and shares; after the fit,
    totals by step."""
    phases = {}
    for name, n in timers.iters.items():
        stages = {label: s for (stage, label), s in timers.seconds.items() if stage == name}
        rate_parts = {k: stages.pop(k) for k in list(stages) if k.startswith("rate: ")}
        stages["rate"] = stages.get("rate", 0.0) + sum(rate_parts.values())
        total = sum(stages.values())
        phases[name] = {
            "iterations": n,
            "seconds": total,
            "seconds_per_iteration": total / max(n, 1),
            "per_iteration": {k: stages.get(k, 0.0) / max(n, 1) for k in PER_ITERATION},
            "share": {k: stages.get(k, 0.0) / total for k in PER_ITERATION if total},
            "rate_detail_per_iteration": {k: v / max(n, 1) for k, v in rate_parts.items()},
            "calibrations": timers.calls.get((name, "calibration"), 0),
        }
    after = defaultdict(float)
    for (stage, _), s in timers.seconds.items():
        if stage not in timers.iters:
            after[stage if stage in AFTER_FIT else "other"] += s
    arch = ratecontrol.plan(result.arch.height, result.arch.width, 3, bpp=bpp, coded_input=True).arch
    return {
        "size": f"{arch.width}x{arch.height}", "target_bpp": bpp, "bpp": result.bpp,
        "sha256": hashlib.sha256(result.data).hexdigest(), "psnr": result.psnr, "iters": iters,
        "threads": threads, "load_start": load_start, "load_end": load_end, "wall_seconds": wall, "cpu_seconds": cpu,
        "widths": list(arch.widths), "latents": list(arch.latents), "arm": arch.arm is not None,
        "arm_in_file": result.arch.arm is not None, "warmup_candidates": candidates,
        "phases": phases, "after_fit_seconds": {k: after.get(k, 0.0) for k in AFTER_FIT},
    }


def record_arch(r: dict) -> Architecture:
    """The planned architecture of a record's encode."""
    w, h = map(int, r["size"].split("x"))
    return ratecontrol.plan(h, w, 3, bpp=r["target_bpp"], coded_input=True).arch


def fit_model(records: list[dict], source: str) -> CostModel:
    """cost.CostModel's constants from one-thread records (one planned with an ARM, one without, at least): the
    iteration's by least squares on every phase's seconds per iteration, relative to each (a 256x256 iteration is
    20x shorter than a 768x512 one), the steps after the fit as the median of their seconds per unit over the
    records that have them."""
    rows = []
    for r in records:
        arch, preset = record_arch(r), EFFORTS[DEFAULT_EFFORT].with_iters(r["iters"])
        for name, p in r["phases"].items():
            row = [cost.stage_costs(arch, preset, 1, replace(ZERO, **{k: 1.0}))[name] for k in ITERATION_FIELDS]
            rows.append(np.array(row) / p["seconds_per_iteration"])  # relative: each row's seconds scaled to 1
    solution, *_ = np.linalg.lstsq(np.array(rows), np.ones(len(rows)), rcond=None)

    def per_unit(field: str, steps: tuple[str, ...]) -> float:
        values = []
        for r in records:
            arch = record_arch(r)
            unit = _after_fit_unit(arch, field)
            if unit:
                values.append(sum(r["after_fit_seconds"][k] for k in steps) / unit)
        return float(np.median(values)) if values else 0.0

    return CostModel(
        **{k: float(v) for k, v in zip(ITERATION_FIELDS, solution)},
        sensitivity=per_unit("sensitivity", ("sensitivities",)),
        quantization=per_unit("quantization", ("ARM step search", "pruning", "mu search")),
        finish=per_unit("finish", ("final stream", "PSNR decodes", "other")),
        source=source)


def _after_fit_unit(arch: Architecture, field: str) -> float:
    """What one unit of `field`'s constant multiplies in arch's steps after the fit (0: it has none of them)."""
    one = replace(ZERO, **{field: 1.0})
    return cost.quantization_cost(arch, 1, one) + cost.finishing_cost(arch, 1, one)


def eta_check(r: dict, model: CostModel) -> dict:
    """How far the progress ETA at the default effort would be from the truth, from a record's measured seconds:
    the encode's timeline rebuilt at the default iterations (each phase at its measured seconds per iteration, the
    steps after the fit as measured), the ETA the cost model's work gives (elapsed / work done · work left) after
    each stage's first iteration and at each stage's end, against the seconds really left (where MIN_LEFT or more
    are: the bar shows whole seconds). Returns the worst ratio
    either way and the predicted and measured seconds in all."""
    arch, preset = record_arch(r), EFFORTS[DEFAULT_EFFORT]
    costs = cost.stage_costs(arch, preset, 1, model)
    after = r["after_fit_seconds"]
    steps = [("warm-up", preset.warmup_iters(), None)]  # (stage, iterations, seconds of a step without any)
    steps += [(p.name, preset.phase_iters(p), None) for p in preset.fit]
    steps.append(("quantization", 0, sum(after[k] for k in ("sensitivities", "ARM step search", "pruning",
                                                            "mu search"))))
    steps += [(p.name, preset.phase_iters(p), None) for p in preset.finetune]
    steps.append(("finishing", 0, sum(after[k] for k in ("final stream", "PSNR decodes", "other"))))
    timeline = []  # (seconds, work) at each check point
    t = w = 0.0
    for name, iters, seconds in steps:
        if seconds is None:
            per = r["phases"][name]["seconds_per_iteration"]
            t, w = t + per, w + costs[name]
            timeline.append((t, w))
            t, w = t + per * (iters - 1), w + costs[name] * (iters - 1)
        else:
            work = (cost.quantization_cost if name == "quantization" else cost.finishing_cost)(arch, 1, model)
            t, w = t + seconds, w + work
        timeline.append((t, w))
    total_t, total_w = t, cost.encode_cost(arch, preset, 1, model)
    ratios = [(t / w * (total_w - w)) / (total_t - t) for t, w in timeline[:-1] if total_t - t >= MIN_LEFT]
    worst = max(max(ratios), 1 / min(ratios)) if min(ratios) > 0 else math.inf
    return {"worst_ratio": worst, "ratios": ratios, "seconds": total_t,
            "model_seconds": total_w}


def load(size: int) -> np.ndarray:
    return np.asarray(Image.open(IMAGES[size]).convert("RGB"))


def markdown(records: list[dict]) -> str:
    """The tables of the .md: per record, seconds per iteration and shares by stage of each phase, and the totals
    after the fit."""
    lines = []
    for r in records:
        lines += [f"### {r['size']} at {r['target_bpp']} bpp, {r['threads']} thread(s), {r['iters']} iterations: "
                  f"{r['cpu_seconds']:.1f} CPU s, {r['wall_seconds']:.1f} s wall, {r['bpp']:.3f} bpp, "
                  f"{r['psnr']:.2f} dB (load {r['load_start']:.2f} -> {r['load_end']:.2f})",
                  "", f"planned: widths {r['widths']}, latent grids {r['latents']}, ARM {'yes' if r['arm'] else 'no'} "
                  f"({'in' if r['arm_in_file'] else 'not in'} the file); the warm-up's iterations fit "
                  f"{r['warmup_candidates']} candidates at once", "",
                  "| phase | iters | CPU s/iter | " + " | ".join(PER_ITERATION) + " |",
                  "|---|---:|---:|" + "---:|" * len(PER_ITERATION)]
        for name, p in r["phases"].items():
            cells = [f"{1e3 * p['per_iteration'][k]:.1f} ms ({100 * p['share'].get(k, 0):.0f} %)"
                     for k in PER_ITERATION]
            lines.append(f"| {name} | {p['iterations']} | {p['seconds_per_iteration']:.3f} | " + " | ".join(cells)
                         + " |")
        fit = r["phases"].get("fit")
        if fit:
            detail = ", ".join(f"{k[6:]} {1e3 * v:.1f} ms" for k, v in fit["rate_detail_per_iteration"].items())
            lines += ["", f"rate term in the full-size fit, per iteration: {detail}; {fit['calibrations']} "
                          "calibrations"]
        lines += ["", "after the fit (CPU s): " + ", ".join(f"{k} {v:.2f}" for k, v in r["after_fit_seconds"].items()),
                  ""]
    return "\n".join(lines)


def eta_table(records: list[dict], model: CostModel) -> str:
    """The .md's check of the progress ETA (eta_check) at the default effort, per one-thread record."""
    lines = ["| image | seconds at the default effort (measured stages) | the model's | ETA / truth after the first "
             "iteration | worst ETA ratio |", "|---|---:|---:|---:|---:|"]
    for r in records:
        if r["threads"] == 1:
            c = eta_check(r, model)
            lines.append(f"| {r['size']} at {r['target_bpp']} bpp | {c['seconds']:.0f} | {c['model_seconds']:.0f} | "
                         f"{c['ratios'][0]:.2f} | {c['worst_ratio']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=60)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 768], choices=sorted(IMAGES))
    p.add_argument("--bpp", type=float, default=BPP)
    p.add_argument("--out", type=Path, help="folder for stages-cpu.json and .md (default: print only)")
    p.add_argument("--model-from", type=Path, metavar="JSON",
                   help="print cost.CostModel's constants fitted to this stages-cpu.json's one-thread records, and "
                        "the ETA check with them and with cost.REFERENCE; no encode")
    args = p.parse_args()
    if args.model_from:
        records = json.loads(args.model_from.read_text())["records"]
        model = fit_model([r for r in records if r["threads"] == 1], f"fitted to {args.model_from}")
        print(model, "", "fitted:", eta_table(records, model), "", "cost.REFERENCE:",
              eta_table(records, cost.REFERENCE),
              "", "every iteration alike, nothing after the fit (v0.12's ETA):", eta_table(records, ITERATIONS),
              sep="\n")
        return
    records = []
    for size in args.sizes:
        for threads in args.threads:
            records.append(profile(load(size), args.iters, threads, args.bpp))
            print(markdown(records[-1:]), flush=True)
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "stages-cpu.json").write_text(json.dumps({"machine": machine, "records": records}, indent=1))
        (args.out / "stages-cpu.md").write_text(f"# Encode time by stage\n\n{machine}\n\n" + markdown(records))


if __name__ == "__main__":
    main()
