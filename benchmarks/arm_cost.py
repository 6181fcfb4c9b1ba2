"""The ARM decoder's cost per latent value on this CPU: the calibration of limits.ARM_VALUE_WORK, ARM_MAC_WORK and
ARM_OUTPUT_WORK.

`python -m benchmarks.arm_cost [--repeats N]` decodes crafted ARM files (one latent grid, every value predicted by
the MLP: no all-zero context) from the smallest ARM to the largest the format allows, with narrow and wide residuals,
and prints, per ARM, the CPU time of the payload's decode (reader.read_ints: the tensors' part and the ARM stream;
the best of N, one thread) against the cost model's estimate of its entropy and ARM stages, in ns per latent value:
the ratio should stay within 1.5x on an idle machine (CPU time rises with the load, so this is a program, not a
test). tests/test_arm.py holds the decode's peak memory to the estimate.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ddcodec.format import armint
from ddcodec.format.architecture import Architecture, ArmShape
from ddcodec.format.container import Header, pack, parse
from ddcodec.format.limits import SMALL_OBJECTS, arm_cost, entropy_cost
from ddcodec.format.payload import encode_payload, read_tensors
from ddcodec.format.reader import read_ints

MACS_PER_SECOND = 15e9  # the cost model's unit: a multiply-add of the synthesis on one core (limits.py)
SMALLEST, DEFAULT, LARGEST = ArmShape(1, False, ()), ArmShape(), ArmShape(24, True, (32, 32, 32))


def arm_file(shape: ArmShape, side: int, spread: float, seed: int = 0) -> bytes:
    """A .ddc whose one latent grid (side x side, Laplace values of this spread) is coded by an ARM of this shape
    (weights within +-1/2 at step 2^-8); the network's weights are constants."""
    rng = np.random.default_rng(seed)
    arch = Architecture(side, side, 1, (1, 1), (1,), arm=shape)
    shapes = arch.tensor_shapes()
    ints = [np.zeros(s, np.int64) for s in shapes]
    arm = arch.arm_indices
    for t in arm:
        ints[t] = np.round(rng.uniform(-0.5, 0.5, shapes[t]) * 256).astype(np.int64)
    for t in arch.grid_indices:
        ints[t] = np.clip(np.round(rng.laplace(0, spread, shapes[t])), -armint.MAX_LATENT, armint.MAX_LATENT)
    header = Header(arch, 0, 0, tuple(-32 if t in arm else 0 for t in range(len(shapes))))
    return pack(header, encode_payload(header, [q.astype(np.int64) for q in ints]))


def estimate(data: bytes) -> tuple[float, int]:
    """Seconds (at MACS_PER_SECOND) and peak bytes the cost model gives the entropy and ARM stages of an ARM file
    (limits.decode_cost's small objects included)."""
    header, payload = parse(data)
    facts = read_tensors(header, payload)[0].facts
    entropy, arm = entropy_cost(header.arch, facts), arm_cost(header.arch, facts)
    return (entropy.work + arm.work) / MACS_PER_SECOND, max(entropy.peak, entropy.left + arm.peak) + SMALL_OBJECTS


def measured(data: bytes, repeats: int = 3) -> float:
    """The best CPU seconds of the file's integer decode (reader.read_ints) over `repeats` runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        read_ints(data)
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'ARM':58} {'spread':>6} {'values':>8} {'ns/value':>9} {'estimate':>9} {'ratio':>6}")
    for shape, side in ((SMALLEST, 1500), (DEFAULT, 1000), (ArmShape(24, True, (32,)), 700), (LARGEST, 400)):
        for spread in (3.0, 300.0):
            data = arm_file(shape, side, spread)
            t, e = measured(data, args.repeats), estimate(data)[0]
            n = side * side
            print(f"{str(shape):58} {spread:6g} {n:8d} {1e9 * t / n:9.1f} {1e9 * e / n:9.1f} {t / e:6.2f}")


if __name__ == "__main__":
    main()
