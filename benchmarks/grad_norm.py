"""The fit's gradient norms: does Cool-chic 5's gradient-norm clip (0.1) ever bind in ddcodec's fit?

    python -m benchmarks.grad_norm --image PATH [--bpp 0.3] [--iters 300] [--crop 256]

Encodes the image (or its centre crop of `--crop` pixels a side) on one thread with the effort-3 schedule over
`--iters` iterations, and records the L2 norm of all the trained tensors' gradients at every optimizer step of every
phase, each network's own (the warm-up fits its candidates as one batch). Appends the quantiles, the maximum and how
many steps a clip at 0.1 and 0.05 would have scaled to benchmarks/results/grad-norms.jsonl.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ddcodec
from benchmarks.points import append_record
from ddcodec.training import optimizers
from ddcodec.training.presets import EFFORTS

OUT = Path(__file__).resolve().parent / "results" / "grad-norms.jsonl"


def recorded_norms() -> list[float]:
    """Patch the fit's optimizer so that each step first appends each network's gradient L2 norm to the list."""
    norms: list[float] = []
    step = optimizers.FitOptimizer.step

    def spied(self: optimizers.FitOptimizer) -> None:
        grads = [p.grad for p in self.adam.params if p.grad is not None]
        norms.extend(sum(g.double().pow(2).flatten(1).sum(1) for g in grads).sqrt().tolist())
        step(self)

    optimizers.FitOptimizer.step = spied
    return norms


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.grad_norm", description=__doc__.split("\n")[0])
    p.add_argument("--image", type=Path, required=True)
    p.add_argument("--bpp", type=float, default=0.3)
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--crop", type=int, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    image = np.asarray(Image.open(args.image).convert("RGB"))
    if args.crop:
        top, left = (image.shape[0] - args.crop) // 2, (image.shape[1] - args.crop) // 2
        image = image[top : top + args.crop, left : left + args.crop]
    norms = recorded_norms()
    ddcodec.encode(image, bpp=args.bpp, preset=EFFORTS[3].with_iters(args.iters))
    n = np.array(norms)
    record = {"image": args.image.stem, "size": list(image.shape[:2]), "bpp": args.bpp, "iters": args.iters,
              "steps": len(n), "quantiles": {q: float(np.quantile(n, q)) for q in (0.05, 0.5, 0.95)},
              "max": float(n.max()), "over_0.1": int((n > 0.1).sum()), "over_0.05": int((n > 0.05).sum()),
              "ddcodec": ddcodec.__version__, "load_1min": os.getloadavg()[0]}
    append_record(OUT, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
