"""Decode time of a 768x512 file: the NumPy decoder with torch blocked (the decode-only install) against the torch one.

`python -m benchmarks.npdecode [--repeats N]` writes benchmarks/results/npdecode-cpu.json. Each decoder runs in its
own child process, the two alternating per width (32, 64, 128), so that both see the same load. The files are made
up (weights drawn like an initialization, then quantized): the decoder's work depends only on the shapes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ddcodec.architecture import Architecture
from ddcodec.bitstream import Header, pack
from ddcodec.entropy import encode_ints

OUT = Path(__file__).parent / "results" / "npdecode-cpu.json"
WIDTHS = (32, 64, 128)

CHILD = """
import sys, time, json
if sys.argv[1] == "numpy":
    sys.modules["torch"] = None  # as installed without torch
from benchmarks.npdecode import random_stream
from ddcodec.architecture import Architecture
from ddcodec.decoder import decode_array
data = random_stream(Architecture(512, 768, 3, (int(sys.argv[2]),) * 7))
decode_array(data, backend=sys.argv[1])  # warm-up
times = []
for _ in range(int(sys.argv[3])):
    t0 = time.perf_counter()
    decode_array(data, backend=sys.argv[1])
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def random_stream(arch: Architecture, seed: int = 0, coder: int = 0) -> bytes:
    """A valid .ddc with weights drawn like an initialization (convolutions +-1/sqrt(fan_in), BatchNorm scales
    1 +- 0.1, shifts +-0.1), quantized with steps of about 1/64 of each tensor's range."""
    rng = np.random.default_rng(seed)
    ints, codes = [], []
    for t, shape in enumerate(arch.tensor_shapes()):
        bound = 1 / math.sqrt(shape[1]) if len(shape) == 2 else 0.1
        code = round(4 * math.log2(bound / 64))
        w = rng.uniform(-bound, bound, shape) + (1 if t % 3 == 1 and len(shape) == 1 else 0)
        ints.append(np.round(w / 2 ** (code / 4)).astype(np.int64))
        codes.append(code)
    return pack(Header(arch, seed, coder, tuple(codes)), encode_ints(ints, coder))


def time_decoder(decoder: str, k: int, repeats: int) -> list[float]:
    """Seconds per decode of one 768x512 file of width k, in a fresh process."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", CHILD, decoder, str(k), str(repeats)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = []
    for k in WIDTHS:
        for decoder in ("numpy", "torch"):
            times = time_decoder(decoder, k, args.repeats)
            rows.append({"size": "768x512", "k": k, "decoder": decoder, "median_s": float(np.median(times)),
                         "min_s": min(times), "times_s": times})
            print(f"768x512 k={k:3d} {decoder:5s}: median {np.median(times) * 1000:4.0f} ms, "
                  f"best {min(times) * 1000:4.0f} ms")
    load = os.getloadavg()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.machine())
    machine = {"cpu": cpu, "cpus": os.cpu_count(), "numpy": np.__version__,
               "load_average_1_5_15_min_at_end": [round(v, 2) for v in load], "date": time.strftime("%Y-%m-%d %H:%M")}
    OUT.write_text(json.dumps({"machine": machine, "repeats": args.repeats, "rows": rows}, indent=1) + "\n")
    print(f"written {OUT}")


if __name__ == "__main__":
    main()
