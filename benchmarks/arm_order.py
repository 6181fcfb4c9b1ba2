"""Decode order for the ARM at 768x512: the compiled raster loop (armint.py) against a lower bound of a NumPy
wavefront (all values of an anti-diagonal at once: x + 3y constant, so that every neighbour up to (-1, +2) is on an
earlier diagonal).

    python -m benchmarks.arm_order [--repeats N]

The wavefront bound runs only the ARM's integer MLP on each diagonal's gathered neighbours, in NumPy int64, without
the entropy decoding or the table look-ups a real decoder would add; the raster row is armint.decode_grids in full.
Prints the times (best of N, wall and process CPU) and the load average.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ddcodec.format import armint
from ddcodec.format.architecture import ArmShape
from ddcodec.encoder.ratecontrol import plan

SLOPE = 3  # diagonal index x + SLOPE·y


def wavefront_mlp(grids: list[np.ndarray], fixed: armint.Arm, shape: ArmShape) -> int:
    """The MLP over every value, one NumPy pass per anti-diagonal of each grid; the number of diagonals."""
    offsets = armint.NEIGHBOURS[: shape.neighbours]
    count = 0
    for g in grids:
        h, w = g.shape
        p = np.zeros((h + armint.PAD, w + 2 * armint.PAD), np.int64)
        ys, xs = np.mgrid[0:h, 0:w]
        diag = (xs + SLOPE * ys).ravel()
        order = np.argsort(diag, kind="stable")
        bounds = np.searchsorted(diag[order], np.arange(diag.max() + 2))
        for d in range(diag.max() + 1):
            idx = order[bounds[d] : bounds[d + 1]]
            y, x = ys.ravel()[idx] + armint.PAD, xs.ravel()[idx] + armint.PAD
            a = np.stack([p[y + dy, x + dx] for dy, dx in offsets] + [np.zeros_like(y)], 1) << 16
            for j, (wt, b) in enumerate(zip(*fixed)):
                a = (a @ wt.T + b) >> 16
                if j < len(fixed[0]) - 1:
                    np.clip(a, 0, armint.MAX_ACTIVATION, out=a)
            p[y, x] = g.ravel()[idx]
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    shape = ArmShape()
    arch = plan(512, 768, 3, bpp=1.2, coded_input=True).arch
    rng = np.random.default_rng(0)
    grids = [np.clip(np.round(rng.laplace(0, 0.7, s)), -9, 9).astype(np.int64) for s in arch.grid_shapes()]
    ints = [np.round(rng.uniform(-0.3, 0.3, s) * 256).astype(np.int64)
            for o, i in shape.layer_shapes() for s in ((o, i), (o,))]
    fixed = armint.fixed_point(ints, [-32] * len(ints))
    data = armint.encode_grids(grids, fixed, shape)
    runs = {"raster, compiled (armint)": lambda: armint.decode_grids(data, arch.grid_shapes(), fixed, shape),
            "wavefront, NumPy MLP only (lower bound)": lambda: wavefront_mlp(grids, fixed, shape)}
    for name, run in runs.items():
        run()
        wall, cpu = zip(*(_timed(run) for _ in range(args.repeats)))
        print(f"{name:42s} best {min(wall) * 1e3:7.1f} ms, CPU {min(cpu) * 1e3:7.1f} ms "
              f"({sum(g.size for g in grids)} values)")
    print(f"diagonals: {sum(w + SLOPE * (h - 1) for h, w in arch.grid_shapes())}"
          f"; load average {os.getloadavg()}")


def _timed(run) -> tuple[float, float]:
    """Wall and process CPU seconds of one run (the CPU time is less inflated by other jobs on the machine)."""
    start, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - start, time.process_time() - cpu


if __name__ == "__main__":
    main()
