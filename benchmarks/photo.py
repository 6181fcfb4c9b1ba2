"""A phone photo through the command line: a 4032x3024 image encoded with `ddcodec encode` and decoded with the NumPy
decoder, each in a fresh process (wall and CPU time, peak resident memory: the encode's also with its worker
processes, sampled), with its bpp and PSNR, and Pillow's JPEG 2000 and WebP at the same size for reference (issue 31).

`python -m benchmarks.photo --iters N [--effort 1] [--jobs 2] [--image kodim03.png] [--size 4032x3024] [--file F.ddc |
--made-up] [--out results.json]` makes the photo from a Kodak image (`--image`, default the committed
benchmarks/images/full/kodim03.png; a full-size one from `.kodak/`, the repository's ignored copy, works too):
upscaled 2x with Lanczos, then mirrored (symmetric padding) out to `--size`, so that it has a photo's size and
some of its texture without an external file. It is encoded at `--effort` with `--iters` iterations (a small count
measures the decode side: its time and memory follow the coded profile, not the fit, while the bpp and PSNR of a
short fit mean little; the encode's fixed work, such as the weights' sensitivities and the step searches, remains), or
`--file` is decoded instead (an encode of this photo made before), or with `--made-up` a file of the tiles the
encoder would write at the default quality with made-up weights (benchmarks.decode_speed.random_stream: the
decode's work and memory depend on the tiles' architectures and, through the ARM's coder and the file's bytes, on
how many latents are nonzero: `--latent-spread`, by default as many as a real fit leaves; its PSNR means nothing). The decode is
`ddcodec.decode(data, backend="numpy", output="numpy")` alone in a fresh interpreter; "baseline" is the same
interpreter with ddcodec imported and the file read, so that the decode's own memory is the difference. The JSON
records the machine, its load (`uptime`) before and after, and the commit measured.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.decode_speed import random_stream
from benchmarks.decode_start import ROOT, cpu_name, run, uptime
from ddcodec.encoder.encode import _tile_bpp
from ddcodec.encoder.ratecontrol import plan
from ddcodec.format import tiles
from ddcodec.metrics import psnr

HERE = Path(__file__).resolve().parent
IMAGE = HERE / "images" / "full" / "kodim03.png"
OUT = HERE / "results" / "photo-cpu.json"

PEAK = """
for line in open('/proc/self/status'):
    if line.startswith('VmHWM:'):
        print('VmHWM', int(line.split()[1]))
"""  # the process's own peak resident memory (a child's ru_maxrss can be its parent's, from before the exec)
TREE_PEAK = """
import os, threading, time
tree_peak = [0]
def _rss(pid):
    try:
        for line in open(f'/proc/{pid}/status'):
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
def _children(pid):
    kids = []
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            kids += [int(k) for k in open(f'/proc/{pid}/task/{tid}/children').read().split()]
        except OSError:
            pass
    return kids + [g for k in kids for g in _children(k)] if kids else []
def _sample():
    while True:
        pid = os.getpid()
        tree_peak[0] = max(tree_peak[0], _rss(pid) + sum(_rss(k) for k in _children(pid)))
        time.sleep(0.5)
threading.Thread(target=_sample, daemon=True).start()
"""  # the peak of the process and its worker processes together, sampled every half second
ENCODE = TREE_PEAK + """
import sys
sys.argv = ['ddcodec', 'encode', SRC, DST, '--effort', EFFORT, '--iters', ITERS, '--jobs', JOBS, '--quiet',
            '--overwrite']
from ddcodec.cli import main
try:
    main()
except SystemExit as exc:
    if exc.code:
        raise
print('tree', tree_peak[0])
""" + PEAK
BASELINE = """
import ddcodec, numpy
data = open(DST, 'rb').read()
""" + PEAK
DECODE = """
import json, time
import numpy as np
import ddcodec
data = open(DST, 'rb').read()
w, c = time.perf_counter(), time.process_time()
pixels = ddcodec.decode(data, backend='numpy', output='numpy')
print(json.dumps([time.perf_counter() - w, time.process_time() - c]))
np.save(OUT, pixels)
""" + PEAK


def photo(image: Path, height: int, width: int) -> np.ndarray:
    """The benchmark's photo (H, W, 3) uint8: `image` upscaled 2x (Lanczos), mirrored out to height x width."""
    small = Image.open(image).convert("RGB")
    big = np.asarray(small.resize((2 * small.width, 2 * small.height), Image.LANCZOS))
    big = big[:height, :width]
    return np.pad(big, ((0, height - big.shape[0]), (0, width - big.shape[1]), (0, 0)), mode="symmetric")


# A fit's latents are mostly zero: 11 % of kodim03's were nonzero at 0.3 bpp (arm-gap.jsonl), as many as integers
# rounded from a Laplace of scale 0.23 (P(|x| > 1/2) = exp(-0.5 / 0.23)).
LATENT_SPREAD = 0.23


def made_up(height: int, width: int, latent_spread: float | None) -> bytes:
    """A tiled file of a height x width RGB image with the tiles and architectures the encoder plans at the default
    quality, each tile's weights made up (random_stream; its latents rounded from a Laplace of `latent_spread`, or
    with None drawn over the grids' range)."""
    rate = _tile_bpp((height, width, 3), None, None, None)
    regions = tiles.tile_regions(height, width, *tiles.tile_grid(height, width))
    files = [random_stream(plan(h, w, 3, bpp=rate, coded_input=True).arch, seed=k, latent_spread=latent_spread)
             for k, (_, _, h, w) in enumerate(regions)]
    return tiles.pack_tiled(height, width, 3, *tiles.tile_grid(height, width), files)


def pillow_at(pixels: np.ndarray, n_bytes: int) -> dict[str, dict]:
    """Pillow's JPEG 2000 (its rate set to the size) and WebP (the highest quality within the size, by bisection) of
    `pixels`: bpp, PSNR and the last encode's and the decode's seconds each."""
    image, n_pixels = Image.fromarray(pixels), pixels.shape[0] * pixels.shape[1]

    def save(fmt: str, **kwargs) -> tuple[bytes, float]:
        buf, start = io.BytesIO(), time.perf_counter()
        image.save(buf, fmt, **kwargs)
        return buf.getvalue(), time.perf_counter() - start

    rate = {"quality_mode": "rates", "quality_layers": [24 * n_pixels / (8 * n_bytes)]}
    coded = {"JPEG 2000": (*save("JPEG2000", **rate), rate)}
    low, high = 0, 100  # WebP: the highest quality whose file fits (quality 0 if none does)
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if len(save("WEBP", quality=mid)[0]) <= n_bytes else (low, mid - 1)
    coded["WebP"] = (*save("WEBP", quality=low), {"quality": low})
    rows = {}
    for name, (data, encode_s, options) in coded.items():
        start = time.perf_counter()
        back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        rows[name] = {"bpp": round(8 * len(data) / n_pixels, 4), "psnr": round(psnr(back, pixels), 2),
                      "encode_s": round(encode_s, 2), "decode_s": round(time.perf_counter() - start, 2),
                      "options": options}
    return rows


def measured(wall: float, cpu: float, stdout: str) -> dict[str, float]:
    """A fresh process's wall and CPU seconds and its peak resident memory (the VmHWM line PEAK printed last)."""
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "peak_mb": round(int(stdout.split()[-1]) / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, required=True, help="encode iterations (a few: the decode side only)")
    parser.add_argument("--effort", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="the encode's worker processes (ddcodec encode --jobs)")
    parser.add_argument("--image", type=Path, default=IMAGE)
    parser.add_argument("--size", default="4032x3024", help="WIDTHxHEIGHT")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--file", type=Path, help="decode this encode of the photo instead of encoding it")
    source.add_argument("--made-up", action="store_true", help="decode a made-up file of the photo's tiles")
    parser.add_argument("--latent-spread", type=float, default=LATENT_SPREAD,
                        help="a made-up file's latents: the Laplace scale they are rounded from (0: over the grids' "
                             "range, as before this option)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose ddcodec runs the encode and decode")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    load_before = uptime()
    pixels = photo(args.image, height, width)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst, out = Path(tmp) / "photo.png", Path(tmp) / "photo.ddc", Path(tmp) / "decoded.npy"
        fill = {"SRC": repr(str(src)), "DST": repr(str(dst)), "OUT": repr(str(out)), "EFFORT": repr(str(args.effort)),
                "ITERS": repr(str(args.iters)), "JOBS": repr(str(args.jobs))}

        def code(template: str) -> str:
            for key, value in fill.items():
                template = template.replace(key, value)
            return template

        if args.file or args.made_up:
            dst.write_bytes(args.file.read_bytes() if args.file else made_up(height, width, args.latent_spread or None))
        else:
            Image.fromarray(pixels).save(src)
            wall, cpu, _, stdout = run(code(ENCODE), args.root)
            tree_kb = int(next(line for line in stdout.splitlines() if line.startswith("tree")).split()[1])
            rows["cli encode"] = measured(wall, cpu, stdout) | {"jobs": args.jobs,
                                                                 "peak_mb_with_workers": round(tree_kb / 1024, 1)}
        wall, cpu, _, stdout = run(code(BASELINE), args.root)
        rows["baseline"] = measured(wall, cpu, stdout)
        wall, cpu, _, stdout = run(code(DECODE), args.root)
        rows["numpy decode"] = measured(wall, cpu, stdout) | dict(zip(
            ("decode_wall_s", "decode_cpu_s"), (round(t, 2) for t in json.loads(stdout.splitlines()[0]))))
        n_bytes = dst.stat().st_size
        rows["numpy decode"] |= {"bpp": round(8 * n_bytes / (height * width), 4),
                                 "psnr": round(psnr(np.load(out), pixels), 2)}
    if not args.made_up:  # (a made-up file's size means nothing)
        rows |= pillow_at(pixels, n_bytes)
    result = {"image": f"{args.image.name} upscaled 2x and mirrored to {width}x{height}", "effort": args.effort,
              "iters": None if args.file or args.made_up else args.iters,
              "file": str(args.file) if args.file else "made up" if args.made_up else "encoded",
              "latent_spread": args.latent_spread if args.made_up else None,
              "root": str(args.root), "rows": rows, "cpu": cpu_name(), "load_before": load_before,
              "load_after": uptime()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
