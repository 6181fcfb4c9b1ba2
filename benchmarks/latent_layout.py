"""Probe of the coded profile's latent layout at high rates: one encode with a given number of full-size latent grids
(ddcodec.encoder.plans.CodedPlan.latents_by_scale[0], 0 in the default), to compare with the default's point of the same image
and rate in benchmarks/results/kodak.

    python -m benchmarks.latent_layout --image PATH --bpp 1.2 [--full-size-grids 1] [--iters 2000]

Why: on 768x512 photographs the width stops at MAX_CODED_WIDTH (the decoder's multiply-add cap) from 0.6 bpp, so a
1.2 bpp budget has nothing to grow but finer quantization, and files end under budget (benchmarks/results/kodak).
Appends one JSON line per encode (bpp, PSNR, layout, widths, seconds) to benchmarks/results/latent-layout.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ddcodec
from ddcodec.decoders import npdecode
from ddcodec.encoder import ratecontrol
from ddcodec.metrics import psnr

OUT = Path(__file__).resolve().parent / "results" / "latent-layout.jsonl"


def main(argv: list[str] | None = None) -> int:
    """Encode the image at the rate with the layout changed, on one thread, and append the record."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.latent_layout", description=__doc__.split("\n")[0])
    p.add_argument("--image", type=Path, required=True)
    p.add_argument("--bpp", type=float, default=1.2)
    p.add_argument("--full-size-grids", type=int, default=1)
    p.add_argument("--iters", type=int, default=2000)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    by_scale = {**ratecontrol.CODED.latents_by_scale, 0: args.full_size_grids}
    ratecontrol.CODED = dataclasses.replace(ratecontrol.CODED, latents_by_scale=by_scale)
    image = np.asarray(Image.open(args.image).convert("RGB"))
    result = ddcodec.encode(image, bpp=args.bpp, iters=args.iters)
    record = {"image": args.image.stem, "target_bpp": args.bpp, "full_size_grids": args.full_size_grids,
              "ddcodec": ddcodec.__version__, "iters": args.iters, "bpp": result.bpp,
              "psnr": psnr(image, npdecode.decode_array(result.data)), "latents": list(result.arch.latents),
              "widths": list(result.arch.widths), "macs_per_pixel": result.arch.macs_per_pixel(),
              "encode_s": result.seconds, "threads": 1}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
