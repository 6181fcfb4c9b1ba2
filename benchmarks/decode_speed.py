"""Decode time on the CPU: the NumPy decoder against the torch one, both profiles, 256x256 and 768x512.

`python -m benchmarks.decode_speed [--repeats N] [--levers]` prints a table and writes
benchmarks/results/decode-cpu.json. The files are made up (weights drawn like an initialization, then quantized):
a decoder's work depends only on the shapes, which are those the encoder plans (ratecontrol.plan) at 0.3 and
1.2 bpp for each profile. Both decoders alternate within each repeat, so that they see the same load; each row
keeps every time, the best and the median, the process's CPU seconds per decode (all threads), which a busy
machine inflates less than the wall clock, the multiply-adds per pixel (convolutions, synthesis and ARM) and the
decode limits' work per pixel (format.limits.decode_cost, which also counts activations and the ARM's other
steps). `--levers` also times the NumPy decoder with one setting changed at a time (block size, one thread, BLAS
left to its own threads) on the 768x512 files; `--latents` adds the 768x512
coded files without the ARM and with a full-size latent grid; `--complexity` adds the 768x512 coded files of the
other decoder-complexity presets (plans.COMPLEXITY_WIDTHS) where their plan differs from the default's;
`--numpy-only` skips torch; `--out` names the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ddcodec.decoders import npdecode
from ddcodec.decoders import torchdecode
from ddcodec.format.architecture import Architecture
from ddcodec.format.container import Header, pack
from ddcodec.errors import DecodeBudgetError
from ddcodec.format.limits import check_budget, decode_cost
from ddcodec.format.payload import encode_payload
from ddcodec.encoder.plans import COMPLEXITY_WIDTHS, DEFAULT_COMPLEXITY
from ddcodec.encoder.ratecontrol import plan

OUT = Path(__file__).parent / "results" / "decode-cpu.json"  # --out to write elsewhere
SIZES = ((256, 256), (512, 768))  # (height, width)
RATES = (0.3, 1.2)  # bpp: the widths the encoder picks there
DECODERS: dict[str, Callable[[bytes], np.ndarray]] = {"numpy": npdecode.decode_array, "torch": torchdecode.decode_array}
LEVERS = {  # name: npdecode attributes changed for that run
    "block 2048": {"BLOCK": 2048},
    "block 32768": {"BLOCK": 32768},
    "one thread": {"MAX_THREADS": 1},
    "BLAS threads not held to 1": {"threadpool_limits": lambda *a: contextlib.nullcontext()},
}


def random_stream(arch: Architecture, seed: int = 0, coder: int = 0, latent_spread: float | None = None) -> bytes:
    """A valid .ddc with weights drawn like an initialization (convolutions +-1/sqrt(fan_in), BatchNorm scales
    1 +- 0.1, shifts +-0.1), quantized with steps of about 1/64 of each tensor's range (the ARM's: 2^-8, within
    +-1/2); latent grids may use the context model or the ARM, as the encoder's do. With `latent_spread`, the grids
    are integers (step 1) rounded from a Laplace of that scale, as a fit leaves them (mostly zeros) instead of
    values of the grid's range."""
    rng = np.random.default_rng(seed)
    ints, codes = [], []
    arm = set(arch.arm_indices)
    for t, shape in enumerate(arch.tensor_shapes()):
        if latent_spread is not None and t in arch.grid_indices:
            ints.append(np.round(rng.laplace(0, latent_spread, shape)).astype(np.int64))
            codes.append(0)
            continue
        bound = 0.5 if t in arm else 1 / math.sqrt(shape[1]) if len(shape) == 2 else 0.1
        code = -32 if t in arm else round(4 * math.log2(bound / 64))
        w = rng.uniform(-bound, bound, shape) + (1 if t % 3 == 1 and len(shape) == 1 and t not in arm else 0)
        ints.append(np.round(w / 2 ** (code / 4)).astype(np.int64))
        codes.append(code)
    header = Header(arch, seed, coder, tuple(codes))
    return pack(header, encode_payload(header, ints))


def timings(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """Wall and CPU seconds of each run, alternating within each repeat after one warm-up call each."""
    for run in runs.values():
        run()
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {name: {"min_s": min(wall[name]), "median_s": float(np.median(wall[name])), "times_s": wall[name],
                   "cpu_min_s": min(cpu[name]), "cpu_median_s": float(np.median(cpu[name]))} for name in runs}


def cases(latent_variants: bool = False, complexities: bool = False) -> list[tuple[str, Architecture]]:
    """(label, architecture) for each size, profile and rate; with `latent_variants`, the coded profile at
    768x512 also without the ARM (the linear context model of format 3) and with a full-size latent grid; with
    `complexities`, the coded profile at 768x512 also under each other decoder-complexity preset that changes it.
    Plans beyond the default decode limits are left out: the encoder refuses to write them (768x512 seed at 1.2 bpp)."""
    out = []
    for h, w in SIZES:
        for profile in ("seed", "coded"):
            for bpp in RATES:
                arch = plan(h, w, 3, bpp=bpp, coded_input=profile == "coded").arch
                out.append((f"{w}x{h} {profile} {bpp} bpp k={arch.widths[1]}", arch))
                if latent_variants and profile == "coded" and h == 512:
                    out.append((out[-1][0] + " linear", replace(arch, arm=None)))
                    out.append((out[-2][0] + " +full", replace(arch, latents=arch.latents[:-1] + (1,))))
                if complexities and profile == "coded" and h == 512:
                    out += [(f"{w}x{h} coded {bpp} bpp k={other.widths[1]} {name}", other)
                            for name in COMPLEXITY_WIDTHS if name != DEFAULT_COMPLEXITY
                            for other in [plan(h, w, 3, bpp=bpp, coded_input=True, complexity=name).arch]
                            if other != arch]
    return [(label, arch) for label, arch in out if decodable(arch)]


def decodable(arch: Architecture) -> bool:
    """Whether a file of this architecture is within the default decode limits."""
    try:
        check_budget(arch)
    except DecodeBudgetError:
        return False
    return True


@contextlib.contextmanager
def changed(settings: dict):
    """npdecode with these attributes changed, restored afterwards."""
    saved = {name: getattr(npdecode, name) for name in settings}
    for name, value in settings.items():
        setattr(npdecode, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(npdecode, name, value)


def lever_rows(data: bytes, repeats: int) -> dict[str, dict]:
    """The NumPy decoder as it is and with each lever changed, alternating."""
    def run(settings: dict) -> Callable[[], None]:
        def go() -> None:
            with changed(settings):
                npdecode.decode_array(data)
        return go

    return timings({"as is": run({}), **{name: run(s) for name, s in LEVERS.items()}}, repeats)


def machine() -> dict:
    """CPU, versions and the load average (1, 5, 15 min) now."""
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.machine())
    return {"cpu": cpu, "cpus": os.cpu_count(), "numpy": np.__version__, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "load_average": [round(v, 2) for v in os.getloadavg()],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--levers", action="store_true", help="also time the NumPy decoder's settings")
    parser.add_argument("--latents", action="store_true",
                        help="also time 768x512 coded files without the ARM and with a full-size latent grid")
    parser.add_argument("--complexity", action="store_true",
                        help="also time the 768x512 coded files of the other decoder-complexity presets")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--numpy-only", action="store_true", help="time the NumPy decoder only")
    args = parser.parse_args()
    start = machine()
    rows, levers = [], []
    print(f"{'file':34s} {'decoder':7s} {'best ms':>8s} {'median ms':>10s} {'CPU ms (best)':>14s}")
    decoders = {"numpy": DECODERS["numpy"]} if args.numpy_only else DECODERS
    for label, arch in cases(args.latents, args.complexity):
        data = random_stream(arch)
        result = timings({name: (lambda f=f: f(data)) for name, f in decoders.items()}, args.repeats)
        for name, r in result.items():
            rows.append({"file": label, "widths": arch.widths, "latents": arch.latents, "arm": str(arch.arm),
                         "macs_per_pixel": round(arch.macs_per_pixel() + arch.arm_macs_per_pixel()),
                         "work_per_pixel": round(decode_cost(arch).macs / (arch.height * arch.width)),
                         "decoder": name, **r})
            print(f"{label:34s} {name:7s} {r['min_s'] * 1e3:8.0f} {r['median_s'] * 1e3:10.0f} "
                  f"{r['cpu_min_s'] * 1e3:14.0f}", flush=True)
        if args.levers and arch.height == 512:
            for name, r in lever_rows(data, args.repeats).items():
                levers.append({"file": label, "setting": name, **r})
                print(f"{'':34s} numpy {name}: best {r['min_s'] * 1e3:.0f} ms, median {r['median_s'] * 1e3:.0f} ms",
                      flush=True)
    result = {"machine_at_start": start, "machine_at_end": machine(), "repeats": args.repeats, "rows": rows}
    args.out.write_text(json.dumps({**result, "levers": levers} if levers else result, indent=1) + "\n")
    print(f"load average at start {start['load_average']}, at end {result['machine_at_end']['load_average']}; "
          f"written {args.out}")


if __name__ == "__main__":
    main()
