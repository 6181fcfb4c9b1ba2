"""Offline: the bits of fixed integer latents under the linear context model (version 3) and under ARMs of several
shapes, each ARM fitted to those latents alone, then quantized and coded as the encoder does (its weights included).

    python -m benchmarks.arm_offline FILE.ddc ... [--iters N] [--out benchmarks/results/arm/offline.json]

The files are version-3 files (their latents were trained for the linear context model, so the ARM's numbers are a
floor). Prints a table and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ddcodec.format import armint
from ddcodec.training.adam import Adam
from ddcodec.component.arm import init_arm
from ddcodec.encoder.arm import arm_bits, quantize_arm
from ddcodec.format.architecture import ArmShape
from ddcodec.format.entropy import RANGE, encode_ints
from ddcodec.format.reader import read_ints

SHAPES = {
    "12 + coarser, 8-8 (default)": ArmShape(12, True, (8, 8)),
    "6 + coarser, 8-8": ArmShape(6, True, (8, 8)),
    "24 + coarser, 8-8": ArmShape(24, True, (8, 8)),
    "12, no coarser, 8-8": ArmShape(12, False, (8, 8)),
    "12 + coarser, 4-4": ArmShape(12, True, (4, 4)),
    "12 + coarser, 16-16": ArmShape(12, True, (16, 16)),
    "12 + coarser, 8": ArmShape(12, True, (8,)),
    "12 + coarser, 12-12": ArmShape(12, True, (12, 12)),
}


def fit_arm(shape: ArmShape, grids: list[np.ndarray], iters: int, lr: float = 1e-2) -> list[np.ndarray]:
    """ARM tensors fitted by Adam (cosine learning rate) to the bits of fixed integer grids."""
    params = [t[None].clone().requires_grad_() for t in init_arm(shape, torch.Generator().manual_seed(0))]
    values = [torch.from_numpy(g).float()[None] for g in grids]
    opt = Adam(params, lr)
    for it in range(iters):
        opt.lr = lr * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * it / iters)))
        bits, _ = arm_bits(shape, values, values, params)
        opt.zero_grad()
        bits.sum().backward()
        opt.step()
    return [p.detach()[0].numpy() for p in params]


def measure(path: Path, iters: int) -> dict:
    header, ints = read_ints(path.read_bytes())
    grids = [ints[t] for t in sorted(header.arch.grid_indices)]
    linear = 8 * len(encode_ints(grids, RANGE, range(len(grids))))
    row = {"file": path.name, "bytes": len(path.read_bytes()), "latents": int(sum(g.size for g in grids)),
           "max_abs_latent": int(max(np.abs(g).max() for g in grids)), "linear_bits": linear, "arm": {}}
    for name, shape in SHAPES.items():
        start = time.perf_counter()
        floats = fit_arm(shape, grids, iters)
        q, codes, total = quantize_arm(shape, floats, grids)
        stream = armint.stream_bits(grids, armint.fixed_point(q, codes), shape)
        row["arm"][name] = {"bits": total, "stream_bits": stream, "weight_bits": total - stream,
                            "vs_linear": total / linear - 1, "seconds": time.perf_counter() - start}
        print(f"{path.name:28s} {name:30s} linear {linear:7d}  ARM {total:7d} ({total / linear - 1:+.1%}; "
              f"weights {total - stream} bits)", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--iters", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "arm" / "offline.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [measure(p, args.iters) for p in args.files]
    args.out.write_text(json.dumps({"iters": args.iters, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
