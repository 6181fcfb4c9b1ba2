"""Decode time of the NumPy decoder (torch blocked) on 768x512 files with random weights, widths 32, 64 and 128.

`python -m benchmarks.npdecode [--repeats N]` writes benchmarks/results/npdecode-cpu.json. The files are made up
(weights drawn like an initialization, then quantized), which costs the decoder exactly what a fitted file costs.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("torch", None)  # type: ignore[arg-type]  # measure the decode-only install: no torch

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from ddcodec.architecture import Architecture  # noqa: E402
from ddcodec.bitstream import Header, pack  # noqa: E402
from ddcodec.entropy import encode_ints  # noqa: E402
from ddcodec.npdecode import decode_array  # noqa: E402

OUT = Path(__file__).parent / "results" / "npdecode-cpu.json"


def random_stream(arch: Architecture, seed: int = 0, coder: int = 0) -> bytes:
    """A valid .ddc with weights drawn like an initialization (convolutions +-1/sqrt(fan_in), shifts +-0.1),
    quantized with steps of about 1/64 of each tensor's range."""
    rng = np.random.default_rng(seed)
    ints, codes = [], []
    for shape in arch.tensor_shapes():
        bound = 1 / math.sqrt(shape[1]) if len(shape) == 2 else 0.1
        code = round(4 * math.log2(bound / 64))
        w = rng.uniform(-bound, bound, shape)
        if len(shape) == 1 and len(ints) % 3 == 1:  # BatchNorm scale: around 1
            w += 1
        ints.append(np.round(w / 2 ** (code / 4)).astype(np.int64))
        codes.append(code)
    return pack(Header(arch, seed, coder, tuple(codes)), encode_ints(ints, coder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = []
    for k in (32, 64, 128):
        data = random_stream(Architecture(512, 768, 3, (k,) * 7))
        decode_array(data)  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            decode_array(data)
            times.append(time.perf_counter() - t0)
        rows.append({"size": "768x512", "k": k, "bytes": len(data), "median_s": float(np.median(times)),
                     "min_s": min(times)})
        print(f"768x512 k={k:3d}: median {np.median(times) * 1000:.0f} ms, best {min(times) * 1000:.0f} ms")
    machine = {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "numpy": np.__version__, "torch": "blocked"}
    OUT.write_text(json.dumps({"machine": machine, "repeats": args.repeats, "rows": rows}, indent=1) + "\n")
    print(f"written {OUT}")


if __name__ == "__main__":
    main()
