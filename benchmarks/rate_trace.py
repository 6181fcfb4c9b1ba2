"""Where an encode's bytes went: λ at each phase's start, and what the weights had left when they were quantized.

    python -m benchmarks.rate_trace --image PATH --bpp 0.6 [--iters 2000] [--lambda-start 0.6:2e-3,1.2:1e-4]
        [--full-size-floor 1.0] [--lambda-per-mse 0.6|none] [--complexity low|medium|high] [--steering linear|log]
        [--latent-gain 4] [--threads 1]

Encodes (on `--threads` torch threads) and records λ as each phase of the fit starts and when rate control stops
steering it, the size of the stream at the coarsest weight steps against the byte budget (what the latents left the
weights), whether the latents were refitted (`refit`: its iterations and λ as it began; presets.REFIT) and then
pruned to fit (`coarsest_stream_bytes_to_prune`, `latents_pruned`), and the file's PSNR against the fit's own
(latents rounded, weights in float): a file far under its fit lost it in the weights' quantization. `--lambda-start`
replaces the plan's `lambda_start_by_bpp`, `--full-size-floor` the full-size phase's λ floor (a share of λ's start
at the lowest rates, never above this fit's start: ratecontrol.RateTerm.enter), `--lambda-per-mse` the plan's κ of
λ's restart at full size for a high budget (none: restarted at the target's start; RateTerm.restart; since
0.12.0.dev4 λ restarts at the half-size phase's start too, `restarts` lists each restart's MSE and λ).
`lambda_trace` follows λ's steering ([step, λ, the latents' coded bits / their target] every TRACE_EVERY steps);
`--steering log` steps λ by the log of that ratio instead of the ratio - 1 (ratecontrol.steering_error);
`bits_over_target_at_fit_end` is that ratio by the coder as the fit ends (a refit follows where it exceeds
ratecontrol.REFIT_OVER_TARGET × the latents' share over their target: RateTerm.share_spent), and
`latents_at_fit_end` the rounded grids' non-zero count and largest magnitude. `--latent-gain` replaces the preset's
latent gain (presets.LATENT_GAIN). Appends one JSON line to benchmarks/results/rate-trace.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ddcodec
from benchmarks.points import append_record
from ddcodec.decoders import npdecode
from ddcodec.encoder import encode as encoder
from ddcodec.encoder import ratecontrol
from ddcodec.encoder.plans import COMPLEXITY_WIDTHS, DEFAULT_COMPLEXITY
from ddcodec.metrics import psnr
from ddcodec.training.presets import EFFORTS

OUT = Path(__file__).resolve().parent / "results" / "rate-trace.jsonl"
TRACE_EVERY = 50  # `lambda_trace`: [step, λ, coded bits / target] every so many steps of λ's steering


def rate_table(text: str) -> dict[float, float]:
    """'0.6:2e-3,1.2:1e-4' -> {0.6: 0.002, 1.2: 0.0001}."""
    return {float(k): float(v) for k, v in (item.split(":") for item in text.split(","))}


def traced(record: dict) -> None:
    """Patch rate control and the latents' pruning so that what they did lands in `record`."""
    enter, restart, fix, prune = (ratecontrol.RateTerm.enter, ratecontrol.RateTerm.restart, ratecontrol.RateTerm.fix,
                                  encoder.prune_to_fit)
    over, hasten, steer = encoder.overshoot, ratecontrol.RateTerm.hasten, ratecontrol.RateTerm.steer
    share_spent = ratecontrol.RateTerm.share_spent

    def entered(self: ratecontrol.RateTerm, floor: float | None) -> None:
        record.setdefault("lambda_at_phase_start", []).append(float(self.lam.max()))
        enter(self, floor)

    def restarted(self: ratecontrol.RateTerm, mse: torch.Tensor) -> None:
        restart(self, mse)
        record["mse_at_full_size"], record["lambda_restarted"] = float(mse.max()), float(self.lam.max())
        record.setdefault("restarts", []).append([float(mse.max()), float(self.lam.max())])

    def fixed(self: ratecontrol.RateTerm) -> None:
        record["lambda_at_fit_end"] = float(self.lam.max())
        fix(self)

    def pruned(grids, ws, stream_for, budget) -> None:
        kept = [w.clone() for w in ws]
        record["coarsest_stream_bytes_to_prune"] = len(stream_for(ratecontrol.COARSEST_MU))
        prune(grids, ws, stream_for, budget)
        record["latents_pruned"] = sum(int((a != b).sum()) for a, b in zip(kept, ws))

    def overshot(grids, stream_for, budget) -> int:
        excess = over(grids, stream_for, budget)
        record["coarsest_stream_bytes"], record["budget_bytes"] = excess + (budget or 0), budget
        return excess

    def hastened(self: ratecontrol.RateTerm, iters: int) -> None:
        record["refit"] = {"iters": iters, "lambda": float(self.lam.max())}
        hasten(self, iters)

    def ended(self: ratecontrol.RateTerm, grids: list[torch.Tensor], arm: list[torch.Tensor]) -> torch.Tensor | None:
        spent = share_spent(self, grids, arm)
        if spent is not None:
            record["bits_over_target_at_fit_end"] = round(float(spent.max()) / self.margin, 4)
            rounded = [torch.round(g) for g in grids]
            record["latents_at_fit_end"] = [[int((r != 0).sum()), int(r.abs().max())] for r in rounded]
        return spent

    def steered(self: ratecontrol.RateTerm, grids, bits: torch.Tensor, arm) -> None:
        if self.target_bits is not None and self._steps % TRACE_EVERY == 0:
            ratio = float((bits * self.calibration / self.target_bits).max())
            record.setdefault("lambda_trace", []).append([self._steps, float(self.lam.max()), round(ratio, 3)])
        steer(self, grids, bits, arm)

    ratecontrol.RateTerm.enter, ratecontrol.RateTerm.restart = entered, restarted
    ratecontrol.RateTerm.fix, ratecontrol.RateTerm.hasten = fixed, hastened
    ratecontrol.RateTerm.steer, ratecontrol.RateTerm.share_spent = steered, ended
    encoder.prune_to_fit, encoder.overshoot = pruned, overshot


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.rate_trace", description=__doc__.split("\n")[0])
    p.add_argument("--image", type=Path, required=True)
    p.add_argument("--bpp", type=float, required=True)
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--lambda-start", type=rate_table, default=None)
    p.add_argument("--full-size-floor", type=float, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--complexity", choices=sorted(COMPLEXITY_WIDTHS), default=DEFAULT_COMPLEXITY,
                   help=f"the decoder-complexity preset (default {DEFAULT_COMPLEXITY})")
    p.add_argument("--lambda-per-mse", default=None, metavar="KAPPA|none")
    p.add_argument("--steering", choices=("linear", "log"), default="linear",
                   help="λ's step from the bits' ratio r to their target: r - 1 (the encoder's) or log r, within ±1")
    p.add_argument("--latent-gain", type=float, default=None,
                   help="the latents' learning rate as a multiple of the weights' (default the preset's)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.steering == "log":
        ratecontrol.steering_error = lambda ratio: torch.log(ratio.clamp_min(1e-6)).clamp(-1, 1)
    if args.lambda_start:
        ratecontrol.CODED = dataclasses.replace(ratecontrol.CODED, lambda_start_by_bpp=args.lambda_start)
    if args.lambda_per_mse is not None:
        kappa = None if args.lambda_per_mse == "none" else float(args.lambda_per_mse)
        ratecontrol.CODED = dataclasses.replace(ratecontrol.CODED, lambda_per_mse=kappa)
    preset = EFFORTS[3].with_iters(args.iters)
    if args.full_size_floor is not None:
        preset = dataclasses.replace(preset, fit=tuple(
            dataclasses.replace(ph, lambda_floor=args.full_size_floor) if ph.lambda_floor else ph for ph in preset.fit))
    if args.latent_gain is not None:
        preset = dataclasses.replace(preset, latent_gain=args.latent_gain)
    record = {"image": args.image.stem, "target_bpp": args.bpp, "iters": args.iters,
              "restart_half_size": any(ph.lambda_restart for ph in preset.fit if ph.coarse),
              "full_size_floor": args.full_size_floor, "complexity": args.complexity, "steering": args.steering,
              "latent_gain": preset.latent_gain,
              "lambda_per_mse": ratecontrol.CODED.lambda_per_mse, "settled_band": ratecontrol.SETTLED_BAND,
              "lambda_start_by_bpp": {str(k): v for k, v in ratecontrol.CODED.lambda_start_by_bpp.items()}}
    traced(record)
    image = np.asarray(Image.open(args.image).convert("RGB"))
    result = ddcodec.encode(image, bpp=args.bpp, preset=preset, complexity=args.complexity)
    record |= {"bpp": result.bpp, "psnr": psnr(image, npdecode.decode_array(result.data)),
               "psnr_fit": result.psnr_float, "ddcodec": ddcodec.__version__, "threads": args.threads,
               "load_1min": os.getloadavg()[0]}
    append_record(OUT, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
