"""Tiled files (format version 5) for both decoders: the whole file checked (its tiles' headers and the decode's
cost, format.reader.read_tiled), then decoded one tile at a time into the output, so that a decode holds one tile's
activations besides the image.

Reading the next tile (the ARM's C decoder releases the GIL) while rendering this one was measured and dropped: a
12-megapixel decode on two cores went from 4.9 to 3.9 s but its peak from 292 to 320 MB, over the 300 MB target,
because the entropy decoder's working memory then coincides with the synthesis' peak (ablations.md, "tiles read
ahead").
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ddcodec.format.container import Header
from ddcodec.format.limits import Limits
from ddcodec.format.reader import read_tiled, read_weights

Render = Callable[[Header, list[np.ndarray]], np.ndarray]  # a tile's header and weights -> its uint8 (h, w, C)


def decode_tiled(data: bytes, limits: Limits | None, render: Render) -> np.ndarray:
    """The uint8 image (H, W, C) of a tiled stream: each tile read by format.reader.read_weights (which holds the
    tile to `limits` as a file of its own too), then its pixels made by `render` (a decoder's forward pass). Raises
    BitstreamError or DecodeBudgetError for a damaged file or one over `limits`."""
    tiled, _ = read_tiled(data, limits)
    out = np.empty((tiled.height, tiled.width, tiled.channels), np.uint8)
    for t in tiled.tiles:
        out[t.top : t.top + t.height, t.left : t.left + t.width] = render(*read_weights(t.data, limits))
    return out
