"""Ablations of the coded profile's synthesis (issue 22): learned upsampling, refinement layers and their side.

    python -m benchmarks.synthesis [--images NAME ...] [--rates BPP ...] [--configs NAME ...] [--iters N]
    python -m benchmarks.synthesis --decode [--repeats N]

Encodes each image of benchmarks/images/cpu named (default kodim05, kodim19) at each rate with each configuration
(ddcodec.encoder.ratecontrol's UPSAMPLING_TAPS, REFINE_LAYERS, REFINE_KERNEL set for the run), one thread, and records bpp,
PSNR, multiply-adds per pixel, encode seconds and NumPy decode milliseconds (best of 3) in
benchmarks/results/synthesis-ablation.json (one entry per configuration, image and rate; entries already there are
kept, so an interrupted run resumes). Prints a markdown table of the means per configuration and rate.

`--decode` times the NumPy decoder instead, on made-up files (benchmarks.decode_speed.random_stream: a decoder's work
depends only on the shapes) of the architectures the planner picks at 256x256 and 768x512, 0.3 and 1.2 bpp, with
and without the default synthesis: wall milliseconds (all threads) and CPU milliseconds with one worker thread,
the best of --repeats, alternating the two within each repeat.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ddcodec
from ddcodec.decoders import npdecode
from ddcodec.encoder import ratecontrol
from ddcodec.metrics import psnr
from ddcodec.training.presets import DEFAULT_EFFORT, EFFORTS

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "synthesis-ablation.json"
CONFIGS = {  # name: (upsampling taps, refinement layers, refinement side)
    "v0.9 (bilinear, no refinement)": (0, 0, 3),
    "learned upsampling 4 taps": (4, 0, 3),
    "learned upsampling 2 taps": (2, 0, 3),
    "refinement 1 x 3x3": (0, 1, 3),
    "refinement 2 x 3x3": (0, 2, 3),
    "refinement 1 x 5x5": (0, 1, 5),
    "learned upsampling 4 taps + refinement 1 x 3x3": (4, 1, 3),
}


def decode_ms(data: bytes, repeats: int = 3) -> float:
    """Best NumPy decode time of a stream in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        npdecode.decode_array(data)
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def run(config: str, image: np.ndarray, rate: float, iters: int) -> dict:
    """One encode with the configuration's synthesis, and what it measured."""
    taps, layers, kernel = CONFIGS[config]
    ratecontrol.CODED = dataclasses.replace(ratecontrol.CODED, upsampling_taps=taps, refine_layers=layers,
                                            refine_kernel=kernel)
    result = ddcodec.encode(image, bpp=rate, iters=iters)
    decoded = npdecode.decode_array(result.data)
    return {"bpp": result.bpp, "psnr": psnr(image, decoded), "psnr_float": result.psnr_float,
            "macs_per_pixel": result.arch.macs_per_pixel(), "widths": list(result.arch.widths),
            "synthesis_params": result.arch.n_synthesis_params, "params": result.n_params,
            "encode_s": result.seconds, "decode_ms": decode_ms(result.data)}


def decode_times(repeats: int) -> str:
    """Markdown rows: NumPy decode time of planned architectures with and without the synthesis."""
    from .decode_speed import random_stream

    rows = ["| size | bpp | synthesis | MAC/px | wall ms (best) | CPU ms, one thread (best) |", "|---|---:|---|---:|---:|---:|"]
    for height, width in ((256, 256), (512, 768)):
        for rate in (0.3, 1.2):
            arch = ratecontrol.plan(height, width, 3, bpp=rate, coded_input=True).arch
            archs = {"none": dataclasses.replace(arch, taps=0, refine=0), "default": arch}
            streams = {name: random_stream(a) for name, a in archs.items()}
            wall = {name: [] for name in archs}
            cpu = {name: [] for name in archs}
            for _ in range(repeats):
                for name, data in streams.items():
                    start = time.perf_counter()
                    npdecode.decode_array(data)
                    wall[name].append(time.perf_counter() - start)
                    threads, npdecode.MAX_THREADS = npdecode.MAX_THREADS, 1
                    start = time.process_time()
                    npdecode.decode_array(data)
                    cpu[name].append(time.process_time() - start)
                    npdecode.MAX_THREADS = threads
            for name, a in archs.items():
                rows.append(f"| {width}x{height} | {rate} | {name} | {a.macs_per_pixel():.0f} | "
                            f"{1000 * min(wall[name]):.0f} | {1000 * min(cpu[name]):.0f} |")
    return "\n".join(rows)


def table(results: dict) -> str:
    """Markdown rows: per configuration and rate, the mean bpp, PSNR, multiply-adds and decode time over images."""
    rows = ["| configuration | target bpp | bpp | PSNR (dB) | MAC/px | encode s | decode ms | images |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    keys = sorted({(k.split("|")[0], float(k.split("|")[2])) for k in results},
                  key=lambda cr: (list(CONFIGS).index(cr[0]) if cr[0] in CONFIGS else 99, cr[1]))
    for config, rate in keys:
        entries = [v for k, v in results.items() if k.split("|")[0] == config and float(k.split("|")[2]) == rate]
        mean = {f: float(np.mean([e[f] for e in entries])) for f in ("bpp", "psnr", "macs_per_pixel", "encode_s",
                                                                     "decode_ms")}
        rows.append(f"| {config} | {rate} | {mean['bpp']:.3f} | {mean['psnr']:.2f} | {mean['macs_per_pixel']:.0f} | "
                    f"{mean['encode_s']:.0f} | {mean['decode_ms']:.1f} | {len(entries)} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", nargs="+", default=["kodim05", "kodim19"])
    parser.add_argument("--rates", nargs="+", type=float, default=[0.3, 1.2])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--iters", type=int, default=EFFORTS[DEFAULT_EFFORT].iters)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--decode", action="store_true", help="time the NumPy decoder instead")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if args.decode:
        print(decode_times(args.repeats))
        return
    torch.set_num_threads(1)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for config in args.configs:
        for name in args.images:
            image = np.asarray(Image.open(HERE / "images" / "cpu" / f"{name}.png").convert("RGB"))
            for rate in args.rates:
                key = f"{config}|{name}|{rate}|{args.iters}"
                if key not in results:
                    results[key] = run(config, image, rate, args.iters)
                    args.out.write_text(json.dumps(results, indent=1) + "\n")
                    print(key, results[key], flush=True)
    print(table({k: v for k, v in results.items() if int(k.split("|")[3]) == args.iters}))


if __name__ == "__main__":
    main()
