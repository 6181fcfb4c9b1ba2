"""In the loop: PSNR and bpp of ddcodec's encodes with the ARM, with and without a full-size latent grid.

    python -m benchmarks.arm_loop IMAGE ... --rates 0.3 1.2 [--variants arm arm+full] [--out FILE.json]

One thread, the default iterations; each encode's file, PSNR, bpp, latent and ARM bits are appended to the JSON
(the run resumes: done rows are kept). The linear context model's rows come from version-3 files written by v0.9.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ddcodec
from ddcodec.encoder import ratecontrol
from ddcodec.format.reader import read_ints

VARIANTS = {  # name: the plan's latents_by_scale for that run
    "arm": dict(ratecontrol.CODED.latents_by_scale),
    "arm+full": {**ratecontrol.CODED.latents_by_scale, 0: 1},
}


def latent_bytes(data: bytes) -> dict:
    """The file's ARM flag and the payload bytes of its parts."""
    header, ints = read_ints(data)
    grids = sorted(header.arch.grid_indices)
    return {"arm": header.arch.arm is not None, "latents": int(sum(ints[t].size for t in grids)),
            "max_abs_latent": int(max(np.abs(ints[t]).max() for t in grids))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.3, 1.2])
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "arm" / "loop.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    for variant in args.variants:
        ratecontrol.CODED = dataclasses.replace(ratecontrol.CODED, latents_by_scale=VARIANTS[variant])
        for path in args.images:
            image = np.asarray(Image.open(path).convert("RGB"))
            for bpp in args.rates:
                if any(r["image"] == path.stem and r["bpp_target"] == bpp and r["variant"] == variant for r in rows):
                    continue
                result = ddcodec.encode(image, bpp=bpp, device="cpu")
                (args.out.parent / f"{variant}-{path.stem}-{bpp}.ddc").write_bytes(result.data)
                rows.append({"image": path.stem, "bpp_target": bpp, "variant": variant, "bpp": result.bpp,
                             "psnr": result.psnr, "seconds": result.seconds, "latents_by_scale": VARIANTS[variant],
                             **latent_bytes(result.data)})
                print(rows[-1], flush=True)
                args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
