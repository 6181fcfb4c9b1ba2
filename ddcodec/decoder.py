"""Decoding: parse and verify the header, decode the weights, rebuild the input from the seed, one forward pass."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .bitstream import parse
from .entropy import decode_ints
from .errors import BitstreamError
from .images import to_pil
from .model import network_input, render
from .quant import dequantize


def read_stream(source: bytes | str | os.PathLike) -> bytes:
    """The bytes of a .ddc given as bytes or a path."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise BitstreamError(f"cannot read {os.fspath(source)!r}: {exc.strerror or exc}") from None


def decode_array(data: bytes, device: str | torch.device = "cpu") -> np.ndarray:
    """The decoded image of a .ddc stream as a uint8 array (H, W, C)."""
    header, payload = parse(data)
    arch = header.arch
    ints = decode_ints(payload, [int(np.prod(s)) for s in arch.tensor_shapes()], header.coder)
    shaped = [q.reshape(s) for q, s in zip(ints, arch.tensor_shapes())]
    weights = [w.to(device) for w in dequantize(shaped, header.step_codes)]
    with torch.no_grad():
        img = render(arch, weights, network_input(arch, header.seed, device))
    out = torch.round(img * 255).clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
    return out.cpu().numpy()


def decode(source: bytes | str | os.PathLike, device: str | torch.device = "cpu") -> Image.Image:
    """Decode a .ddc (bytes or path) to a PIL image ('L' or 'RGB')."""
    return to_pil(decode_array(read_stream(source), device))
