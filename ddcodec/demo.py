"""`ddcodec demo`: encode a bundled photo, decode it, code it with every classical codec at the same file size, and
write the files, a table and a side-by-side picture.

The photo is the 256x256 center crop of Kodak's kodim01 (a brick facade, door and window): of the six crops of the
`cpu` benchmark, the one whose gap to JPEG and JPEG 2000 at 0.3 and 0.6 bpp ranks in the middle, so neither a
best case nor a worst case. The rate, 0.4 bpp, is the geometric middle of the benchmark's rates (0.15-1.2 bpp). Both
were fixed before the demo was measured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ddcodec import classical
from ddcodec.decoders.decode import decode_array
from ddcodec.encoder.encode import EncodeResult, encode
from ddcodec.io.images import save_image, to_pil, write_bytes
from ddcodec.metrics import psnr
from ddcodec.training.presets import DEFAULT_EFFORT, DEMO_EFFORT, EFFORTS
from ddcodec.sidebyside import side_by_side

DEMO_BPP = 0.4
SAMPLE = "data/kodim01-256.png"
SAMPLE_NAME = "256x256 center crop of Kodak kodim01"


@dataclass(frozen=True)
class Panel:
    """One image of the demo: which codec, its file's size and PSNR (None for the original), its pixels and file;
    `fits` is False for a codec whose smallest file is larger than ddcodec's (that file is shown)."""

    codec: str
    label: str
    n_bytes: int | None
    psnr: float | None
    pixels: np.ndarray
    file: str
    fits: bool = True

    def caption(self) -> tuple[str, str, np.ndarray]:
        """(title, detail, pixels) for the side-by-side picture."""
        if self.psnr is None:
            return self.label, f"{self.file}, lossless", self.pixels
        larger = "" if self.fits else " (its smallest)"
        return self.label, f"{self.n_bytes:,} bytes{larger}, {self.psnr:.2f} dB", self.pixels


def _packaged(name: str) -> np.ndarray:
    with resources.files("ddcodec").joinpath(name).open("rb") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def sample_image() -> np.ndarray:
    """The 128x128 crop of Kodak's kodim23 shipped in the package (uint8 RGB), for quick examples."""
    return _packaged("data/sample.png")


def demo_photo() -> np.ndarray:
    """The demo's photo shipped in the package: uint8 RGB (256, 256, 3)."""
    return _packaged(SAMPLE)


def encode_sample(pixels: np.ndarray, iters: int | None, device: str) -> EncodeResult:
    """The demo's one call of the encoder, at DEMO_BPP and effort DEMO_EFFORT (`iters` overrides its iterations)."""
    return encode(pixels, bpp=DEMO_BPP, effort=DEMO_EFFORT, iters=iters, device=device, progress=True)


def classical_panels(pixels: np.ndarray, n_bytes: int, out_dir: Path) -> list[Panel]:
    """Every installed classical codec's best file of at most n_bytes (or, where it cannot make one that small, its
    smallest file, marked), written into out_dir."""
    panels = []
    for name in classical.available():
        codec = classical.CODECS[name]
        found = classical.at_most(name, pixels, n_bytes)
        data = found[1] if found else classical.encode(name, pixels, codec.grid[0])
        file = f"{name}{codec.suffix}"
        write_bytes(out_dir / file, data)
        decoded = classical.decode(data)
        panels.append(Panel(name, codec.label, len(data), psnr(pixels, decoded), decoded, file, found is not None))
    return panels


def verdict(ours: Panel, others: list[Panel]) -> str:
    """One sentence: which codecs ddcodec beats and which it loses to, by PSNR at (at most) the same size."""
    fitting = [p for p in others if p.fits]
    behind = [f"{p.label} ({ours.psnr - p.psnr:+.2f} dB)" for p in fitting if p.psnr > ours.psnr]
    ahead = [f"{p.label} ({ours.psnr - p.psnr:+.2f} dB)" for p in fitting if p.psnr <= ours.psnr]
    return (f"ddcodec loses to {', '.join(behind) or 'none'}; it beats {', '.join(ahead) or 'none'} "
            f"(PSNR, files no larger than ddcodec's).")


def run_demo(out_dir: Path, iters: int | None, device: str, echo: Callable[[str], None]) -> list[Panel]:
    """Encode, decode and compare; writes sample.png, sample.ddc, decoded.png, one file per classical codec and
    comparison.png (original, ddcodec and each classical codec side by side) into out_dir. Returns the panels of
    the picture, in order."""
    pixels = demo_photo()
    out_dir.mkdir(parents=True, exist_ok=True)
    h, w = pixels.shape[:2]
    iters = iters or EFFORTS[DEMO_EFFORT].iters
    default = EFFORTS[DEFAULT_EFFORT].iters
    fewer = f" (the encoder's default is {default}: slower, better)" if iters < default else ""
    echo(f"sample: {SAMPLE_NAME}, coded at {DEMO_BPP} bpp with {iters} iterations{fewer}")
    result = encode_sample(pixels, iters, device)
    t0 = time.perf_counter()
    decoded = decode_array(result.data)
    dec_s = time.perf_counter() - t0
    save_image(to_pil(pixels), out_dir / "sample.png")
    result.save(out_dir / "sample.ddc")
    save_image(to_pil(decoded), out_dir / "decoded.png")
    ours = Panel("ddcodec", "ddcodec", result.n_bytes, psnr(pixels, decoded), decoded, "sample.ddc")
    others = classical_panels(pixels, result.n_bytes, out_dir)
    echo(f"ddcodec: {result.n_params} weights, {result.iters} iterations on {result.device}, encode "
         f"{result.seconds:.1f} s, decode {dec_s * 1000:.0f} ms")
    echo(f"{'codec':<12} {'bytes':>6} {'bpp':>6} {'PSNR':>7}  vs ddcodec")
    for p in [ours, *others]:
        delta = "" if p is ours else f"{p.psnr - ours.psnr:+.2f} dB" if p.fits else "its smallest file is larger"
        echo(f"{p.label:<12} {p.n_bytes:6d} {8 * p.n_bytes / (h * w):6.3f} {p.psnr:7.2f}  {delta}")
    echo(verdict(ours, others))
    panels = [Panel("original", "original", None, None, pixels, "sample.png"), ours, *others]
    save_image(side_by_side([p.caption() for p in panels], columns=4), out_dir / "comparison.png")
    echo(f"files written to {out_dir}/: sample.png, sample.ddc, decoded.png, "
         f"{', '.join(p.file for p in others)} and comparison.png (all side by side)")
    return panels
