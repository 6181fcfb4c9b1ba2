"""Range coding against zstd on the same quantized weights: which payload coder should be the default.

    python -m benchmarks.coders [--images benchmarks/images/cpu] [--bpp 0.5] [--iters 300]

Encodes each image once (range coder), takes the integers back out of the file and codes them again with every
coder, so both see exactly the same weights. Writes benchmarks/results/coders.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

import ddcodec
from ddcodec.format.container import parse
from ddcodec.format.entropy import CODERS, decode_ints, encode_ints

HERE = Path(__file__).resolve().parent


def payload_sizes(data: bytes) -> dict[str, int]:
    """Payload bytes of one .ddc's integers under each coder."""
    header, payload = parse(data)
    sizes = [int(np.prod(s)) for s in header.arch.tensor_shapes()]
    ints = decode_ints(payload, sizes, header.coder)
    return {name: len(encode_ints(ints, coder)) for name, coder in CODERS.items()}


def main(argv: list[str] | None = None) -> None:
    """Measure every image and write the table."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.coders", description=__doc__.split("\n")[0])
    p.add_argument("--images", type=Path, default=HERE / "images" / "cpu")
    p.add_argument("--bpp", type=float, default=0.5)
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--out", type=Path, default=HERE / "results" / "coders.json")
    args = p.parse_args(argv)
    rows = []
    for path in sorted(args.images.glob("*.png")):
        result = ddcodec.encode(np.asarray(Image.open(path).convert("RGB")), bpp=args.bpp, iters=args.iters)
        rows.append({"image": path.stem, "params": result.n_params, **payload_sizes(result.data)})
        print(f"{path.stem:10s} {result.n_params:6d} weights  range {rows[-1]['range']:6d} B  zstd {rows[-1]['zstd']:6d} B")
    total = {c: sum(r[c] for r in rows) for c in CODERS}
    print(f"{'total':10s} {'':13s} range {total['range']:6d} B  zstd {total['zstd']:6d} B  "
          f"(zstd {100 * (total['zstd'] / total['range'] - 1):+.1f} %)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"bpp_target": args.bpp, "iters": args.iters, "rows": rows, "total": total}, indent=1))


if __name__ == "__main__":
    main()
