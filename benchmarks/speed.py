"""Speed of fitting (issue "Fast fitting"): ddcodec's Adam loop against the plain nn.Sequential and the hardware floor.

Per image size × width: seconds per iteration of ddcodec.training.fit.fit (forward + MSE + backward + Adam step; warm-up
excluded, median over repeats of N iterations), the same for benchmarks.reference, the decode time of a real .ddc,
the peak memory of the fitting loop, the per-image time when --batch images are fitted together (encode_many's
batched kernels), and the floor one iteration cannot beat on this machine:

  FLOPs: the 1x1 convolutions' matmuls only. A conv from c_in to c_out channels on P pixels (P at the resolution
    where it runs: before the upsampling that follows it) costs 2·c_in·c_out·P forward; backward ≈ 2× forward
    (grad input + grad weight), so 3× forward in all. Upsampling, ReLU, BatchNorm, sigmoid and Adam are not counted.
  Bytes: each activation at full size (a hidden layer's output after its upsampling, and the output image) is
    written and read once forward, then read once (for the weight gradient) and its gradient written and read once
    backward: 5 passes of 4 bytes per float; plus one read of the target. Weights are negligible and not counted.
    Fusing the upsampling into the next convolution could go below this model.
  floor = max(FLOPs / PEAK_FLOPS, bytes / PEAK_BW), with both peaks measured in the same run: an fp32 sgemm
    (torch.matmul of two square matrices) and a 64M-float y.copy_(x) (read + write), best of several.

TF32 is off for cuDNN as it is for matmul, so both implementations run in full fp32 (as the codec does).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import re
import resource
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ddcodec.decoders.decode import decode_array
from ddcodec.encoder.encode import DEFAULT_LR, encode
from ddcodec.training.fit import fit, pick_device
from ddcodec.component.model import Architecture, init_weights, network_input
from ddcodec.format.architecture import layers_for

from . import reference

LR = DEFAULT_LR
MATCH_TOL = 1e-5


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock timers measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[int], object], device: torch.device, iters: int, repeats: int, warmup: int,
          pick: Callable[[list[float]], float] = statistics.median) -> float:
    """Seconds per iteration of `step(n)` (runs n iterations): `pick` over `repeats` runs, after `warmup` iterations."""
    if warmup:
        step(warmup)
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        step(iters)
        sync(device)
        times.append((time.perf_counter() - t0) / iters)
    return pick(times)


def repeated(fn: Callable[[], object]) -> Callable[[int], None]:
    """A step function for `timed` that calls fn n times."""

    def step(n: int) -> None:
        for _ in range(n):
            fn()

    return step


def probe_peaks(device: torch.device) -> tuple[float, float]:
    """Measured (FLOP/s of a large fp32 sgemm, bytes/s of a 64M-float copy) on `device`."""
    n = 8192 if device.type == "cuda" else 2048
    a, b = torch.rand(n, n, device=device), torch.rand(n, n, device=device)
    flops = 2 * n**3 / timed(repeated(lambda: torch.matmul(a, b)), device, 1, 5, 1, min)
    x = torch.rand(64 * 2**20, device=device)
    y = torch.empty_like(x)
    bw = 2 * 4 * x.numel() / timed(repeated(lambda: y.copy_(x)), device, 1, 5, 1, min)
    return flops, bw


def conv_pixels(arch: Architecture) -> list[int]:
    """Pixels at which each 1x1 conv runs: the input grid times 4^i, up to the full (padded) grid."""
    h0, w0 = arch.input_size
    return [h0 * w0 * 4 ** min(i, arch.layers - 1) for i in range(arch.layers + 1)]


def flops_per_iter(arch: Architecture) -> float:
    """Matmul FLOPs of one fitting iteration: 3 × the forward convs (see the module docstring)."""
    chans = list(arch.widths) + [arch.channels]
    return 3 * sum(2 * c_in * c_out * p for c_in, c_out, p in zip(chans[:-1], chans[1:], conv_pixels(arch)))


def bytes_per_iter(arch: Architecture) -> float:
    """Minimal activation traffic of one fitting iteration in bytes (see the module docstring)."""
    pix = conv_pixels(arch)
    outs = [pix[i + 1] if i < arch.layers - 1 else pix[i] for i in range(arch.layers)] + [pix[-1]]
    floats = sum(c * p for c, p in zip(list(arch.widths[1:]) + [arch.channels], outs))
    return 4 * (5 * floats + arch.channels * arch.height * arch.width)


def problem(arch: Architecture, device: torch.device, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """`batch` smooth random targets, the seeded input and fresh weights, batched as ddcodec.training.fit takes them."""
    gen = torch.Generator().manual_seed(1)
    coarse = torch.rand(batch, arch.channels, 8, 8, generator=gen)
    target = torch.nn.functional.interpolate(coarse, size=(arch.height, arch.width), mode="bilinear")
    weights = [w.to(device).expand(batch, *w.shape).contiguous() for w in init_weights(arch, gen)]
    return target.to(device), network_input(arch, 0, device).expand(batch, -1, -1, -1).contiguous(), weights


def time_ddcodec(arch: Architecture, device: torch.device, iters: int, repeats: int, warmup: int,
                 batch: int = 1) -> float:
    """Seconds per iteration and per image of ddcodec.training.fit.fit itself, the encoder's loop, on `batch` images."""
    target, z, weights = problem(arch, device, batch)
    return timed(lambda n: fit(arch, target, z, weights, n, LR), device, iters, repeats, warmup) / batch


def time_reference(arch: Architecture, device: torch.device, iters: int, repeats: int, warmup: int) -> float:
    """Seconds per iteration of the plain nn.Sequential with torch.optim.Adam."""
    target, z, weights = (t[0] if isinstance(t, torch.Tensor) else [w[0] for w in t] for t in problem(arch, device))
    net = reference.load_weights(reference.build(arch).to(device), weights)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    return timed(repeated(lambda: reference.fit_step(net, opt, arch, z, target)), device, iters, repeats, warmup)


def render_diff(arch: Architecture, device: torch.device) -> float:
    """Max |render - reference| on random weights with non-trivial BatchNorm affine parameters."""
    _, z, weights = problem(arch, device)
    z, weights = z[0], [w[0] for w in weights]
    gen = torch.Generator().manual_seed(2)
    weights = [w + 0.5 * torch.randn(w.shape, generator=gen).to(device) if w.ndim == 1 else w for w in weights]
    return reference.max_render_diff(arch, weights, z)


def time_decode(arch: Architecture, device: torch.device) -> float:
    """Median seconds of 3 decode_array calls (after one) on a real .ddc of this architecture, from ddcodec.encode."""
    yy, xx = np.mgrid[0 : arch.height, 0 : arch.width]
    img = np.stack([xx * 255 // max(arch.width - 1, 1), yy * 255 // max(arch.height - 1, 1), (xx + yy) % 256], -1)
    ratio = 3 * arch.height * arch.width / (arch.n_params + 0.5)
    result = encode(img.astype(np.uint8), ratio=ratio, iters=2, device=str(device), input="seed")
    if result.arch != arch:
        raise RuntimeError(f"encode chose {result.arch}, not {arch}: cannot time this configuration's decode")
    return timed(repeated(lambda: decode_array(result.data, device)), device, 1, 3, 1)


def _status_kib(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS, VmHWM), in KiB."""
    return int(re.search(rf"^{field}:\s+(\d+)", Path("/proc/self/status").read_text(), re.M).group(1))


def _hwm_resettable() -> bool:
    """Whether this Linux process may reset its peak RSS (VmHWM) by writing 5 to /proc/self/clear_refs."""
    return os.access("/proc/self/clear_refs", os.W_OK)


def memory_kind(device: torch.device) -> str:
    """What the memory columns measure on this device."""
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated above the allocation before the run"
    if _hwm_resettable():
        return "peak RSS (VmHWM, reset through /proc/self/clear_refs) above the RSS before the run, after malloc_trim"
    return "growth of the process's max RSS (getrusage ru_maxrss): 0 when under an earlier configuration's peak"


def peak_memory(fn: Callable[[], float], device: torch.device) -> tuple[float, int]:
    """fn's result and the peak memory in bytes that running it added (see memory_kind)."""
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        return fn(), torch.cuda.max_memory_allocated(device) - base
    if _hwm_resettable():
        getattr(ctypes.CDLL(None), "malloc_trim", lambda _: 0)(0)  # return freed heap: the baseline RSS is live memory
        Path("/proc/self/clear_refs").write_text("5")
        base = _status_kib("VmRSS")
        return fn(), 1024 * (_status_kib("VmHWM") - base)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return fn(), 1024 * (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)


def machine(device: torch.device) -> dict:
    """Description of the hardware and software the numbers come from."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    cpu = model.group(1).strip() if model else platform.processor()
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "device": str(device)}
    if device.type == "cuda":
        info.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    return info


COLUMNS = [("size", 9, ""), ("k", 4, ""), ("d", 2, ""), ("params", 7, ""), ("ms/it", 8, ".2f"),
           ("ref ms/it", 9, ".2f"), ("speedup", 7, ".2f"), ("GFLOP", 6, ".2f"), ("MB", 7, ".1f"),
           ("floor ms", 8, ".2f"), ("x floor", 7, ".1f"), ("decode ms", 9, ".1f"), ("mem MB", 7, ".1f"),
           ("ref MB", 7, ".1f"), ("batch", 5, ""), ("ms/it/img", 9, ".2f")]


def table_line(values: list | None = None) -> str:
    """One aligned row of the table; the header without `values`."""
    if values is None:
        return "  ".join(f"{name:>{width}}" for name, width, _ in COLUMNS)
    return "  ".join(f"{v:>{width}{spec}}" for (_, width, spec), v in zip(COLUMNS, values))


def arch_of(w: int, h: int, k: int, layers: str) -> Architecture:
    """The RGB network of equal width k for a w×h image; 'auto' layers as the encoder picks them."""
    d = layers_for(h, w) if layers == "auto" else int(layers)
    return Architecture(h, w, 3, (k,) * (d + 1))


def measure(arch: Architecture, device: torch.device, args: argparse.Namespace, peaks: tuple[float, float]) -> dict:
    """All the numbers of one configuration."""
    loop = (args.iters, args.repeats, args.warmup)
    t, mem = peak_memory(lambda: time_ddcodec(arch, device, *loop), device)
    t_ref, mem_ref = peak_memory(lambda: time_reference(arch, device, *loop), device)
    flops, nbytes = flops_per_iter(arch), bytes_per_iter(arch)
    floor = max(flops / peaks[0], nbytes / peaks[1])
    return {"width": arch.width, "height": arch.height, "k": arch.widths[1], "layers": arch.layers,
            "params": arch.n_params, "s_per_iter": t, "ref_s_per_iter": t_ref, "speedup_vs_ref": t_ref / t,
            "flops_per_iter": flops, "bytes_per_iter": nbytes, "floor_s": floor,
            "floor_bound": "flops" if flops / peaks[0] >= nbytes / peaks[1] else "bytes", "x_floor": t / floor,
            "decode_s": time_decode(arch, device), "peak_mem_bytes": mem, "ref_peak_mem_bytes": mem_ref,
            "batch": args.batch, "batched_s_per_iter_per_image": time_ddcodec(arch, device, *loop, batch=args.batch)}


def row_values(r: dict) -> list:
    """A result row as the table's column values."""
    return [f"{r['width']}x{r['height']}", r["k"], r["layers"], r["params"], 1e3 * r["s_per_iter"],
            1e3 * r["ref_s_per_iter"], r["speedup_vs_ref"], r["flops_per_iter"] / 1e9, r["bytes_per_iter"] / 1e6,
            1e3 * r["floor_s"], r["x_floor"], 1e3 * r["decode_s"], r["peak_mem_bytes"] / 1e6,
            r["ref_peak_mem_bytes"] / 1e6, r["batch"], 1e3 * r["batched_s_per_iter_per_image"]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; --quick narrows it to one small configuration."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="256x256,512x512,768x512", help="WIDTHxHEIGHT, comma-separated")
    ap.add_argument("--widths", default="32,64,128", help="channel counts k, comma-separated")
    ap.add_argument("--layers", default="auto", help="'auto' (architecture.layers_for) or a number")
    ap.add_argument("--iters", type=int, default=10, help="fitting iterations per timed repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3, help="untimed fitting iterations before the repeats")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=4, help="images fitted together for the batched column")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/speed-<device>[-quick].json)")
    ap.add_argument("--quick", action="store_true", help="only 256x256 with k=32, 2 repeats: a sanity check")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.widths, args.repeats = "256x256", "32", 2
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table, write the JSON."""
    args = parse_args(argv)
    try:
        device = pick_device(args.device)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    torch.backends.cudnn.allow_tf32 = False
    sizes = [[int(v) for v in s.lower().split("x")] for s in args.sizes.split(",")]
    archs = [arch_of(w, h, int(k), args.layers) for w, h in sizes for k in args.widths.split(",")]
    info, peaks = machine(device), probe_peaks(device)
    print(", ".join(f"{key}={value}" for key, value in info.items()))
    print(f"probe: sgemm {peaks[0] / 1e9:.1f} GFLOP/s, copy {peaks[1] / 1e9:.1f} GB/s")
    diff = render_diff(archs[0], device)
    verdict = "matches" if diff < MATCH_TOL else f"DOES NOT match (tolerance {MATCH_TOL:g})"
    print(f"render {verdict} reference: max diff {diff:.3g}\nmemory: {memory_kind(device)}\n")
    for timer in (time_ddcodec, time_reference):  # first use loads code and pools: keep them out of row 1's memory
        timer(archs[0], device, 1, 1, 0)
    print(table_line(), flush=True)
    rows = []
    for arch in archs:
        rows.append(measure(arch, device, args, peaks))
        print(table_line(row_values(rows[-1])), flush=True)
    out = Path(args.out or f"benchmarks/results/speed-{device.type}{'-quick' if args.quick else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {"iters": args.iters, "repeats": args.repeats, "warmup": args.warmup, "lr": LR, "cudnn_tf32": False,
                "memory": memory_kind(device)}
    report = {"machine": info, "probe": {"peak_flops": peaks[0], "peak_bytes_per_s": peaks[1]},
              "settings": settings, "render_max_diff": diff, "render_matches": diff < MATCH_TOL, "rows": rows}
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
