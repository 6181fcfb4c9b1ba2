"""Probe of the coded profile's plan on full-size photographs: one encode with the plan changed (full-size latent
grids, the network's share of the budget, or a decoder-complexity preset's widths by scale), to compare with the
default's point of the same image and rate in benchmarks/results/full and benchmarks/results/kodak.

    python -m benchmarks.latent_layout --image PATH --bpp 0.3 [--full-size-grids 1] [--weight-share 0.15]
        [--widths-by-scale 0:8,1:12,2:16,3:24] [--max-width 36] [--latent-margin 1.0] [--calibrate-every 20]
        [--iters 2000] [--tile-side 512] [--lambda 1e-4] [--label NAME]

Why: v0.11 spends 35 % of the budget on a wide network and none on a full-size latent grid; the field spends its bits
on latents at every scale with a small network fixed by decoder complexity (issue 32). Appends one JSON line per
encode (bpp, PSNR, plan, widths, multiply-adds per pixel with the ARM's, seconds, load) to
benchmarks/results/latent-layout.jsonl. `--tile-side` codes the image in tiles of at most that side (each planned
as the plan says for its own size and budget), to tell a tile's plan from the seams in what tiling costs.
`--lambda` fits at that fixed rate weight instead of steering λ to the budget (the network still sized for `--bpp`).
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
from benchmarks.rd import tile_side
from ddcodec.decoders import npdecode
from ddcodec.encoder import ratecontrol
from ddcodec.metrics import psnr

OUT = Path(__file__).resolve().parent / "results" / "latent-layout.jsonl"


def scale_table(text: str) -> dict[int, int]:
    """'0:8,1:12' -> {0: 8, 1: 12}."""
    return {int(k): int(v) for k, v in (item.split(":") for item in text.split(","))}


def main(argv: list[str] | None = None) -> int:
    """Encode the image at the rate with the plan changed, on one thread, and append the record."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.latent_layout", description=__doc__.split("\n")[0])
    p.add_argument("--image", type=Path, required=True)
    p.add_argument("--bpp", type=float, default=1.2)
    p.add_argument("--full-size-grids", type=int, default=1)
    p.add_argument("--weight-share", type=float, default=ratecontrol.CODED.weight_share)
    p.add_argument("--widths-by-scale", type=scale_table, default=None)
    p.add_argument("--max-width", type=int, default=ratecontrol.CODED.max_width)
    p.add_argument("--latent-margin", type=float, default=ratecontrol.CODED.latent_margin)
    p.add_argument("--calibrate-every", type=int, default=ratecontrol.CODED.calibrate_every)
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--tile-side", type=int, default=None)
    p.add_argument("--lambda", dest="lmbda", type=float, default=None)
    p.add_argument("--label", default="")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    by_scale = {**ratecontrol.CODED.latents_by_scale, 0: args.full_size_grids}
    ratecontrol.CODED = dataclasses.replace(ratecontrol.CODED, latents_by_scale=by_scale,
                                            weight_share=args.weight_share, widths_by_scale=args.widths_by_scale,
                                            max_width=args.max_width,
                                            latent_margin=args.latent_margin, calibrate_every=args.calibrate_every)
    image = np.asarray(Image.open(args.image).convert("RGB"))
    with tile_side(args.tile_side):
        result = ddcodec.encode(image, bpp=args.bpp, iters=args.iters, lmbda=args.lmbda)
    arch = result.arch
    record = {"image": args.image.stem, "target_bpp": args.bpp, "label": args.label,
              "full_size_grids": args.full_size_grids, "weight_share": args.weight_share,
              "widths_by_scale": args.widths_by_scale, "max_width": args.max_width, "lambda": args.lmbda,
              "tile_side": args.tile_side,
              "latent_margin": args.latent_margin, "calibrate_every": args.calibrate_every, "ddcodec": ddcodec.__version__, "iters": args.iters,
              "bpp": result.bpp, "psnr": psnr(image, npdecode.decode_array(result.data)),
              "latents": list(arch.latents), "widths": list(arch.widths), "n_params": arch.n_params,
              "macs_per_pixel": arch.macs_per_pixel(), "arm_macs_per_pixel": arch.arm_macs_per_pixel(),
              "encode_s": result.seconds,
              "threads": 1, "load_at_end": os.getloadavg()[0]}
    append_record(args.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
