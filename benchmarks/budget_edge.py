"""Hostile files at the edge of the default decode budget: what a small file declaring a 768x512 image gets.

`python -m benchmarks.budget_edge [--out F.json]` builds, for each kind of crafted file that asks for more work or
memory than its size suggests, the largest one whose cost (limits.decode_cost, from the header and the payload's
descriptors) is within the default limits for its declared image (limits.default_limits), and the next one above
them; decodes each in a fresh interpreter (`import ddcodec` first, then `ddcodec.decode`); and prints its bytes, its
estimate, what the decode took (CPU seconds, every thread) and the growth of the process's maximum resident set over
its baseline after the import. The target (issue 30): within 1 s and 200 MB for a declared image of at most
768x512, and the file above the edge refused before the work. tests/test_bounded.py refuses the files above the edge.

The kinds: `zstd`, a network as wide as the budget allows whose weights are zstd-compressed zeros (the earlier
audit's file: 5.5 s and +1,003 MB at the absolute limits of v0.12.0.dev0); `seeded`, a wide seeded input; `arm`, the
largest ARM over as many latent grids as the budget allows, every value far from its prediction; `rows`, context-coded
grids of one-value rows (16384x24 pixels).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks.arm_cost import LARGEST
from ddcodec.errors import DecodeBudgetError
from ddcodec.format import armint
from ddcodec.format.architecture import Architecture, layers_for
from ddcodec.format.container import Header, pack, parse
from ddcodec.format.entropy import CONSTANT, CONTEXT, RANGE, ZSTD, encode_ints
from ddcodec.format.limits import Limits, check_budget, decode_cost
from ddcodec.format.payload import encode_payload, read_tensors

HEIGHT, WIDTH = 768, 512
ROOT = Path(__file__).resolve().parent.parent
MEASURE = """
import resource, sys, time
import ddcodec
data = open(sys.argv[1], 'rb').read()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.process_time()
try:
    ddcodec.decode(data, output='numpy')
    outcome = 'decoded'
except ddcodec.DecodeBudgetError:
    outcome = 'refused'
print(outcome, time.process_time() - start, 1024 * (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base))
"""


def zstd_file(k: int) -> bytes:
    """A 768x512 seed network of width k, every weight 0, zstd-coded."""
    arch = Architecture(HEIGHT, WIDTH, 3, (k,) * (layers_for(HEIGHT, WIDTH) + 1))
    ints = [np.zeros(s, np.int64) for s in arch.tensor_shapes()]
    return pack(Header(arch, 0, ZSTD, (0,) * len(ints)), encode_ints(ints, ZSTD))


def seeded_file(k: int) -> bytes:
    """A 768x512 gray network of one layer on a seeded input k channels wide, every weight the constant 1."""
    arch = Architecture(HEIGHT, WIDTH, 1, (k, 1))
    n = len(arch.tensor_shapes())
    return pack(Header(arch, 0, RANGE, (0,) * n), bytes([CONSTANT, 2]) * n)


def arm_file(grids: int) -> bytes:
    """A 768x512 gray network whose `grids` latent grids (384x256, Laplace values of spread 300: every value through
    the MLP, wide residuals) are coded by the largest ARM (weights within +-1/2)."""
    rng = np.random.default_rng(0)
    arch = Architecture(HEIGHT, WIDTH, 1, (1, 1, 1), (grids, 0), arm=LARGEST)
    shapes = arch.tensor_shapes()
    ints = [np.zeros(s, np.int64) for s in shapes]
    for t in arch.arm_indices:
        ints[t] = np.round(rng.uniform(-0.5, 0.5, shapes[t]) * 256).astype(np.int64)
    for t in arch.grid_indices:
        ints[t] = np.clip(np.round(rng.laplace(0, 300.0, shapes[t])), -armint.MAX_LATENT, armint.MAX_LATENT)
    header = Header(arch, 0, 0, tuple(-32 if t in arch.arm_indices else 0 for t in range(len(shapes))))
    return pack(header, encode_payload(header, ints))


def rows_file(grids: int) -> bytes:
    """A 16384x24 gray network (393,216 pixels, as 768x512) with `grids` context-coded latent grids of 16384 rows,
    every value the constant 0 (each row still costs its prediction and bookkeeping)."""
    arch = Architecture(16384, 24, 1, (1, 1), (grids,))
    n = len(arch.tensor_shapes())
    grid = bytes([CONTEXT, 16, 0, 0, 0]) + bytes([CONSTANT, 0]) * 7
    return pack(Header(arch, 0, RANGE, (0,) * n), bytes([CONSTANT, 0]) * (n - grids) + grid * grids)


KINDS: dict[str, Callable[[int], bytes]] = {"zstd": zstd_file, "seeded": seeded_file, "arm": arm_file,
                                            "rows": rows_file}


def within(data: bytes, limits: Limits | None = None) -> bool:
    """Whether the file's decode cost, from its header and its payload's descriptors, is within `limits` (None: the
    default limits for its declared image), as the reader checks it before the work."""
    try:
        header, payload = parse(data, limits)
        check_budget(header.arch, limits, read_tensors(header, payload)[0].facts)
        return True
    except DecodeBudgetError:
        return False


def edge(kind: str) -> tuple[int, bytes, bytes]:
    """The largest parameter of a kind whose file is within the default limits, that file, and the next one's."""
    make = KINDS[kind]
    low, high = 1, 2
    while within(make(high)):
        low, high = high, 2 * high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if within(make(middle)) else (low, middle)
    return low, make(low), make(high)


def measure(data: bytes, path: Path) -> dict:
    """The outcome, CPU seconds and max-RSS growth over the import of the file's decode in a fresh interpreter."""
    path.write_bytes(data)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, check=True,
                         env=env).stdout.split()
    return {"outcome": out[0], "cpu_s": round(float(out[1]), 3), "rss_mb": round(int(out[2]) / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--kinds", nargs="*", default=list(KINDS))
    args = parser.parse_args()
    rows, load = [], os.getloadavg()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "budget_edge.ddc"
    for kind in args.kinds:
        parameter, inside, above = edge(kind)
        for name, data in (("edge", inside), ("above", above)):
            header, payload = parse(data, budget=False)
            cost = decode_cost(header.arch, read_tensors(header, payload)[0].facts)
            row = {"kind": kind, "file": name, "parameter": parameter + (name == "above"), "bytes": len(data),
                   "estimate_mb": round(cost.memory / 1e6, 1), "estimate_macs": f"{cost.macs:.3g}",
                   **measure(data, tmp)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    tmp.unlink(missing_ok=True)
    if args.out:
        args.out.write_text(json.dumps({"load_before": load, "load_after": os.getloadavg(), "rows": rows}, indent=1)
                            + "\n")


if __name__ == "__main__":
    main()
