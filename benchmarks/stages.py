"""Where an encode's time goes (issue 29, item 1): a real default coded encode, profiled by stage.

`ddcodec.encode(image, bpp, iters=N)` on the default plan, with timers put around the library's call sites by
monkeypatching (the library itself carries no instrumentation). Each timer records its exclusive time (its own,
less that of the timers it encloses) in CPU seconds of the process (time.process_time: on a busy machine a niced
encode's wall time measures the other processes more than this one; on one thread, CPU seconds are what the wall
time would be on an idle core; on two, both threads' seconds, spinning included), under the stage it ran in: a phase of fitting (warm-up, fit at half size,
fit, qat: per iteration) or a step after the fit (totals). Per iteration, the stages are:

  forward       the synthesis (component.model.render_batch)
  distortion    the MSE against the target (fit.per_image_mse less its forward)
  latent proxy  the latents' quantization proxy and the weights' straight-through quantization
  rate          the estimate of the latents' bits: the ARM's (encoder.arm.arm_bits: its contexts, MLP, Laplace
                bits) or, where the plan has no ARM, the linear context model's (encoder.rate.context_bits)
  steering      λ's step towards the bit target (RateTerm.steer, less the calibration)
  calibration   the real coder's bits of the rounded grids (every calibrate_every iterations)
  backward      autograd (torch.Tensor.backward)
  optimizer     Adam's step, zero_grad and learning-rate setting
  loop          the rest of fit()'s own time

After the fit: sensitivities, the ARM's step search (arm_step_codes), pruning and the μ search (each a stream coded
by the C coder), the ARM's last fit (refit_arm), the final stream, and the decodes that measure PSNR.

    python -m benchmarks.stages [--iters 60] [--threads 1 2] [--sizes 256 768] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import time
from collections import defaultdict
from contextlib import contextmanager
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
from ddcodec.training.presets import DEFAULT_EFFORT, EFFORTS

HERE = Path(__file__).parent
IMAGES = {256: HERE / "images" / "cpu" / "kodim23.png", 768: HERE / "images" / "full" / "kodim03.png"}
BPP = 0.3

PER_ITERATION = ("forward", "distortion", "latent proxy", "rate", "steering", "calibration", "backward", "optimizer",
                 "loop")
AFTER_FIT = ("sensitivities", "ARM step search", "pruning", "mu search", "ARM refit", "final stream", "PSNR decodes",
             "other")


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
        w(enc, "refit_arm", "ARM refit", "ARM refit"),
        w(enc, "final_stream", "final stream", "final stream"),
        w(enc, "decode_array", "PSNR decodes", "PSNR decodes"),
        w(enc_arm, "contexts", "rate: contexts"),
        w(enc_arm, "forward", "rate: ARM MLP"),
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


def summarize(timers: Timers, result, wall: float, cpu: float, bpp: float, iters: int, threads: int, load_start: float, load_end: float,
              candidates: int) -> dict:
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


def load(size: int) -> np.ndarray:
    return np.asarray(Image.open(IMAGES[size]).convert("RGB"))


def markdown(records: list[dict]) -> str:
    """The tables of the .md: per record, seconds per iteration and shares by stage of each phase, and the totals
    after the fit."""
    lines = []
    for r in records:
        lines += [f"### {r['size']} at {r['target_bpp']} bpp, {r['threads']} thread(s), {r['iters']} iterations: {r['cpu_seconds']:.1f} CPU s, "
                  f"{r['wall_seconds']:.1f} s wall, {r['bpp']:.3f} bpp, {r['psnr']:.2f} dB (load {r['load_start']:.2f} -> {r['load_end']:.2f})",
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=60)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 768], choices=sorted(IMAGES))
    p.add_argument("--bpp", type=float, default=BPP)
    p.add_argument("--out", type=Path, help="folder for stages-cpu.json and .md (default: print only)")
    args = p.parse_args()
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
