"""The decoder in torch: the same forward pass that the encoder fits (model.render), on the CPU or a GPU."""

from __future__ import annotations

import numpy as np
import torch

from ddcodec.errors import BitstreamError
from ddcodec.component.model import network_input, render
from ddcodec.format.limits import Limits
from ddcodec.decoders.npdecode import NOT_FINITE
from ddcodec.format.container import Header
from ddcodec.format.reader import read_weights
from ddcodec.format.tiles import is_tiled


def decode_array(data: bytes, device: str | torch.device = "cpu", limits: Limits | None = None) -> np.ndarray:
    """The decoded image of a .ddc stream as a uint8 array (H, W, C); a tiled one tile by tile."""
    if is_tiled(data):
        from ddcodec.decoders.tiled import decode_tiled

        return decode_tiled(data, limits, lambda header, weights: _pixels(header, weights, device))
    return _pixels(*read_weights(data, limits), device)


def _pixels(header: Header, weights: list[np.ndarray], device: str | torch.device) -> np.ndarray:
    """The uint8 image (H, W, C) of a stream's header and weights, rendered on `device`."""
    tensors = [torch.from_numpy(w).to(device) for w in weights]
    with torch.no_grad():
        img = render(header.arch, tensors, network_input(header.arch, header.seed, device))
    if not torch.isfinite(img).all():  # as the NumPy decoder: NaN would turn into arbitrary levels
        raise BitstreamError(NOT_FINITE)
    out = torch.round(img * 255).clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
    return out.cpu().numpy()
