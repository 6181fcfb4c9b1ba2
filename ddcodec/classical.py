"""The classical codecs ddcodec is compared with, each at one fixed Pillow setting, and a search for a file size.

Settings (the strongest of each that Pillow offers for RGB PSNR at these sizes, measured in issue 23):
- `jpeg`: Pillow's default JPEG (4:2:0 chroma, standard tables), the anchor most papers call "JPEG".
- `jpeg-444`: JPEG with full-resolution chroma and optimized Huffman tables.
- `webp`: lossy WebP at method 6 (the slowest, best search).
- `jpeg2000`: OpenJPEG, irreversible 9/7 wavelet with the colour transform, one quality layer at a compression ratio.
- `avif`: libavif (AV1) at 4:4:4 and speed 6 (Pillow's default speed; speed 4 took 8x longer on a 768x512 image).
- `jxl`: JPEG XL (libjxl through pillow-jxl-plugin, an optional install) at effort 7, libjxl's default.

Every encoder runs on one thread, so that benchmark times compare. The knob of each codec is ordered from the smallest
file to the largest, so that `at_most` can bisect it for the best file that fits a byte budget.
"""

from __future__ import annotations

import importlib
import io
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image


def _j2k_levels(height: int, width: int) -> int:
    """Resolution levels OpenJPEG accepts: 2^(levels-1) may not exceed the short side (6 is its default)."""
    return min(6, int(math.log2(min(height, width))) + 1)


@dataclass(frozen=True)
class Classical:
    """One codec at one fixed setting: its label, file suffix, knob name and the knob's values from the smallest
    file to the largest, Pillow save() options for a knob value and an image's height and width, and the plugin
    module that registers the format with Pillow, where one is needed."""

    label: str
    suffix: str
    knob: str
    grid: tuple[float, ...]
    options: Callable[[float, int, int], dict]
    plugin: str | None = None

    def available(self) -> bool:
        """Whether Pillow can write this format here: its plugin, if any, imports (and so registers itself)."""
        if self.plugin is None:
            return True
        try:
            importlib.import_module(self.plugin)
        except ImportError:
            return False
        return True


_QUALITY = tuple(range(1, 101))
_J2K_RATIOS = tuple(round(400 * 0.01 ** (i / 255), 3) for i in range(256))  # compression ratio 400 down to 4
CODECS: dict[str, Classical] = {
    "jpeg": Classical("JPEG 4:2:0", ".jpg", "quality", tuple(range(1, 96)),
                      lambda q, h, w: dict(format="JPEG", quality=int(q), subsampling="4:2:0")),
    "jpeg-444": Classical("JPEG 4:4:4", ".jpg", "quality", tuple(range(1, 96)),
                          lambda q, h, w: dict(format="JPEG", quality=int(q), subsampling="4:4:4", optimize=True)),
    "webp": Classical("WebP", ".webp", "quality", _QUALITY,
                      lambda q, h, w: dict(format="WEBP", quality=int(q), method=6)),
    "jpeg2000": Classical("JPEG 2000", ".jp2", "compression ratio", _J2K_RATIOS,
                          lambda r, h, w: dict(format="JPEG2000", irreversible=True, mct=1, quality_mode="rates",
                                               quality_layers=[r], num_resolutions=_j2k_levels(h, w))),
    "avif": Classical("AVIF 4:4:4", ".avif", "quality", _QUALITY,
                      lambda q, h, w: dict(format="AVIF", quality=int(q), speed=6, subsampling="4:4:4",
                                           max_threads=1)),
    "jxl": Classical("JPEG XL", ".jxl", "quality", _QUALITY,
                     lambda q, h, w: dict(format="JXL", quality=int(q), effort=7, num_threads=1), "pillow_jxl"),
}


def available() -> list[str]:
    """The names of the codecs this installation can run (JPEG XL needs pillow-jxl-plugin)."""
    return [name for name, codec in CODECS.items() if codec.available()]


def encode(name: str, pixels: np.ndarray, setting: float) -> bytes:
    """The file of a uint8 RGB image (H, W, 3) coded by codec `name` at one knob value; ImportError where the
    codec's plugin is not installed."""
    if CODECS[name].plugin:
        importlib.import_module(CODECS[name].plugin)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, **CODECS[name].options(setting, *pixels.shape[:2]))
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    """The uint8 RGB pixels (H, W, 3) of a classical file."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def at_most(name: str, pixels: np.ndarray, n_bytes: int) -> tuple[float, bytes] | None:
    """The largest file of codec `name` no bigger than n_bytes, with its knob value, found by bisecting the knob
    (file size taken as growing along the grid); None where even the smallest file is bigger."""
    grid = CODECS[name].grid
    lo, hi, best = 0, len(grid) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        data = encode(name, pixels, grid[mid])
        if len(data) <= n_bytes:
            best, lo = (grid[mid], data), mid + 1
        else:
            hi = mid - 1
    return best


def plugin_version(name: str) -> str | None:
    """The installed version of the codec's plugin distribution (pillow_jxl -> pillow-jxl-plugin), None without."""
    from importlib import metadata

    plugin = CODECS[name].plugin
    if plugin is None:
        return None
    try:
        return metadata.version(metadata.packages_distributions()[plugin][0])
    except (KeyError, metadata.PackageNotFoundError):
        return None
