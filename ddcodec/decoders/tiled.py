"""Tiled files (format version 5) for both decoders: the whole file checked (its tiles' headers and the decode's
cost, format.reader.read_tiled), then decoded one tile at a time into the output, so that a decode holds one tile's
activations besides the image."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ddcodec.format.limits import Limits
from ddcodec.format.reader import read_tiled


def decode_tiled(data: bytes, limits: Limits | None, decode_one: Callable[[bytes, Limits | None], np.ndarray]
                 ) -> np.ndarray:
    """The uint8 image (H, W, C) of a tiled stream, each tile decoded by decode_one (a decoder's decode_array of a
    version-4 stream, which holds the tile to `limits` as a file of its own too)."""
    tiled, _ = read_tiled(data, limits)
    out = np.empty((tiled.height, tiled.width, tiled.channels), np.uint8)
    for t in tiled.tiles:
        out[t.top : t.top + t.height, t.left : t.left + t.width] = decode_one(t.data, limits)
    return out
