"""The gap between the ARM's rate estimate and what the coder spends, on a real fit's final latents.

    python -m benchmarks.arm_gap [IMAGE] [--bpp 0.3] [--iters 200] [--out benchmarks/results]

Encodes IMAGE (default: kodim03 768x512 of the full preset) with the default plan on one thread, keeps the final
weights the encoder hands to its last ARM step search (encoder.arm.arm_step_codes, after fine-tuning), and measures
on those integer latents: the rate term's estimate (μ continuous), the estimate with μ and b as the coder's tables
hold them (μ floored, or rounded, to a quarter) and the coder's bits with the ARM as fitted (quantize_arm: the grids
and the ARM's own tensors). Appends a record (with the commit and the load) to arm-gap.jsonl. Records made before
the ARM's last fit was dropped also hold, under "refit", the coder's bits after N iterations of it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ddcodec
from ddcodec.component.arm import FLOOR_BIAS, forward
from ddcodec.encoder import arm as enc_arm
from ddcodec.encoder import encode as enc
from ddcodec.format import armint

HERE = Path(__file__).parent


def fitted_weights(image: np.ndarray, bpp: float, iters: int) -> tuple:
    """The architecture and the final weights (B = 1) of an encode, as its last ARM step search sees them."""
    saved = {}
    original = enc.arm_step_codes

    def grab(arch, weights, *args, **kwargs):
        saved["arch"], saved["weights"] = arch, [w.clone() for w in weights]
        return original(arch, weights, *args, **kwargs)

    enc.arm_step_codes = grab
    try:
        ddcodec.encode(image, bpp=bpp, iters=iters)
    finally:
        enc.arm_step_codes = original
    return saved["arch"], saved["weights"]


def estimates(arch, weights) -> dict[str, int]:
    """The estimate's bits of the rounded grids: continuous μ, and μ floored or rounded to 1/FRAC from the ARM's
    output (log2 b on the coder's quarter octaves in both)."""
    rounded = enc_arm.round_latents(arch, weights)
    grids = [rounded[t] for t in sorted(arch.grid_indices)]
    arm = [rounded[t] for t in arch.arm_indices]
    values = torch.cat([g.flatten(1) for g in grids], 1)
    mean, log2_scale = forward(arch.arm, arm, grids)
    output = mean + FLOOR_BIAS
    levels = torch.round(log2_scale * armint.LEVELS_PER_OCTAVE) / armint.LEVELS_PER_OCTAVE
    bits = {"continuous": enc_arm.discrete_laplace_bits(values, mean, log2_scale)}
    for name, op in (("floored", torch.floor), ("rounded", torch.round)):
        bits[f"mu {name}"] = enc_arm.discrete_laplace_bits(values, op(output * armint.FRAC) / armint.FRAC, levels)
    return {k: round(float(v.sum())) for k, v in bits.items()}


def coded(arch, weights) -> int:
    """The coder's bits of the grids and the ARM, its steps searched as the encoder does."""
    rounded = enc_arm.round_latents(arch, weights)
    return enc_arm.quantize_arm(arch.arm, [rounded[t][0].numpy() for t in arch.arm_indices],
                                [rounded[t][0].numpy().astype(np.int64) for t in sorted(arch.grid_indices)])[2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", nargs="?", type=Path, default=HERE / "images/full/kodim03.png")
    p.add_argument("--bpp", type=float, default=0.3)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args()
    torch.set_num_threads(1)
    image = np.asarray(Image.open(args.image).convert("RGB"))
    load = os.getloadavg()[0]
    arch, weights = fitted_weights(image, args.bpp, args.iters)
    record = {"image": args.image.stem, "size": list(image.shape[:2]), "bpp": args.bpp, "iters": args.iters,
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                       cwd=HERE).stdout.strip(),
              "version": ddcodec.__version__, "load": [load],
              "values": sum(weights[t].numel() for t in arch.grid_indices),
              "estimate": estimates(arch, weights), "coded as fitted": coded(arch, weights)}
    record["load"].append(os.getloadavg()[0])
    print(json.dumps(record, indent=1))
    with open(args.out / "arm-gap.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
