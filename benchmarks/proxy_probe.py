"""Why a latent quantization proxy wins or loses: per fit phase, the PSNR the proxy trains for against the PSNR of the
same network with its latents hard-rounded, and where the latents sit relative to the integers.

    python -m benchmarks.proxy_probe --image benchmarks/images/cpu/kodim19.png --rate 0.3 \
        --levers gain=4 gain=16,latents=noisy-softround,noise=kumaraswamy,noise_param=2:1,temperature=0.3:0.1

Levers are benchmarks.ttq's. For each lever the image is encoded once; after every phase of the fit (fit.fit
returns) the probe records: PSNR under the phase's proxy at its end (noise drawn once, seed 0), PSNR with the latents
rounded, the mean |y − round(y)| of the latents (0: on the integers, 0.25: spread evenly), the share of latents
within 0.1 of an integer, and the mean |round(y)|. Writes a markdown table (--out).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

import ddcodec
import ddcodec.encoder.encode
import ddcodec.training.fit as fitting
from benchmarks.ttq import encode_options, parse_lever
from ddcodec.metrics import psnr
from ddcodec.training.quantizer import quantize_latents


def _db(mse: float) -> float:
    return 10 * math.log10(1 / max(mse, 1e-12))


def probe(image: np.ndarray, rate: float, lever: str) -> tuple[list[dict], float]:
    """Rows of per-phase statistics for one encode, and the coded file's PSNR."""
    rows: list[dict] = []
    original = fitting.fit

    def recording_fit(arch, target, z, weights, phase, iters, lr, **kw):
        best, mse = original(arch, target, z, weights, phase, iters, lr, **kw)
        grids = sorted(arch.grid_indices)
        if grids and phase.name != "warm-up":
            with torch.no_grad():
                ws = list(best)
                shown = quantize_latents([best[t] for t in grids], fitting.proxy_at(phase, 1.0),
                                         [torch.Generator().manual_seed(0) for _ in range(target.shape[0])])
                for t, g in zip(grids, shown):
                    ws[t] = g
                steps = kw.get("steps")
                if steps is not None:
                    ws = [w if t in grids else q for t, (w, q) in enumerate(zip(ws, fitting.ste_quantize(ws, steps)))]
                proxy_mse = float(fitting.per_image_mse(arch, ws, z, target, phase.coarse)[0])
                values = torch.cat([best[t].flatten() for t in grids])
                dist = (values - torch.round(values)).abs()
            rows.append({"phase": phase.name, "iters": iters, "proxy dB": _db(proxy_mse), "rounded dB": _db(mse[0]),
                         "mean |y - round y|": float(dist.mean()), "within 0.1": float((dist < 0.1).float().mean()),
                         "mean |round y|": float(torch.round(values).abs().mean())})
        return best, mse

    fitting.fit = recording_fit
    ddcodec.encoder.encode.fit = recording_fit
    try:
        changes = parse_lever(lever)
        torch.set_num_threads(changes.pop("threads", torch.get_num_threads()))
        result = ddcodec.encode(image, bpp=rate, device="cpu", **encode_options(changes))
    finally:
        fitting.fit = original
        ddcodec.encoder.encode.fit = original
    return rows, psnr(image, ddcodec.decode(result.data, output="numpy"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", type=Path, required=True)
    p.add_argument("--rate", type=float, default=0.3)
    p.add_argument("--levers", nargs="+", required=True)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    image = np.asarray(ddcodec.io.images.to_array(args.image))
    lines = [f"# Latent proxy probe: {args.image.name} at {args.rate:g} bpp, ddcodec {ddcodec.__version__}", ""]
    for lever in args.levers:
        rows, final = probe(image, args.rate, lever)
        lines += [f"## {lever} (coded file: {final:.2f} dB)", "",
                  "| phase | iterations | proxy dB | rounded dB | mean abs(y − round y) | within 0.1 | mean abs(round y) |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['phase']} | {r['iters']} | {r['proxy dB']:.2f} | {r['rounded dB']:.2f} | "
                  f"{r['mean |y - round y|']:.3f} | {r['within 0.1']:.2f} | {r['mean |round y|']:.2f} |" for r in rows]
        lines.append("")
        print("\n".join(lines), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
