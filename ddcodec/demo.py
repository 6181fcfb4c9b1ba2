"""`ddcodec demo`: encode the bundled sample, decode it, and compare with Pillow's JPEG at the same size."""

from __future__ import annotations

import io
import time
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from .decoder import decode_array
from .encoder import encode
from .images import save_image, to_pil, write_bytes
from .metrics import psnr

DEMO_BPP = 1.0


def sample_image() -> np.ndarray:
    """The 128x128 crop of Kodak's kodim23 shipped in the package."""
    with resources.files("ddcodec").joinpath("data/sample.png").open("rb") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def jpeg_at_most(pixels: np.ndarray, n_bytes: int) -> tuple[bytes, np.ndarray] | None:
    """Pillow JPEG (4:2:0) at the highest quality whose file is no larger than n_bytes, with its decoded pixels."""
    best = None
    for q in range(1, 96):
        buf = io.BytesIO()
        to_pil(pixels).save(buf, format="JPEG", quality=q, subsampling="4:2:0")
        if buf.tell() > n_bytes:
            break
        best = buf.getvalue()
    return None if best is None else (best, np.asarray(Image.open(io.BytesIO(best)).convert("RGB")))


def run_demo(out_dir: Path, iters: int | None, device: str, echo) -> None:
    """Encode, decode and compare; write sample.png, sample.ddc, decoded.png and jpeg.jpg into out_dir."""
    pixels = sample_image()
    out_dir.mkdir(parents=True, exist_ok=True)
    result = encode(pixels, bpp=DEMO_BPP, iters=iters, device=device, progress=True)
    t0 = time.perf_counter()
    decoded = decode_array(result.data)
    dec_s = time.perf_counter() - t0
    h, w = pixels.shape[:2]
    save_image(to_pil(pixels), out_dir / "sample.png")
    result.save(out_dir / "sample.ddc")
    save_image(to_pil(decoded), out_dir / "decoded.png")
    echo(f"sample: {w}x{h} crop of Kodak kodim23; {result.n_params} weights, {result.iters} iterations "
         f"on {result.device}")
    echo(f"ddcodec   {result.n_bytes:6d} bytes  {result.bpp:.3f} bpp  PSNR {psnr(decoded, pixels):.2f} dB  "
         f"encode {result.seconds:.1f} s  decode {dec_s * 1000:.0f} ms")
    jpeg = jpeg_at_most(pixels, result.n_bytes)
    if jpeg is None:
        echo("jpeg      cannot produce a file this small")
    else:
        data, jpeg_pixels = jpeg
        write_bytes(out_dir / "jpeg.jpg", data)
        bpp = 8 * len(data) / (h * w)
        echo(f"jpeg      {len(data):6d} bytes  {bpp:.3f} bpp  PSNR {psnr(jpeg_pixels, pixels):.2f} dB")
    echo(f"files written to {out_dir}/ (sample.png, sample.ddc, decoded.png, jpeg.jpg)")
