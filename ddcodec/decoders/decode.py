"""Decoding: a .ddc (bytes, path or file object) to a PIL image or a NumPy array, with torch or with NumPy alone.

On the CPU the NumPy decoder is the default: it measured faster than torch's (benchmarks/decode_speed.py). Torch
decodes on a GPU, or when asked; it is imported only then, so that decoding starts fast and needs no torch.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import numpy as np
from PIL import Image

from ddcodec.errors import DecodeBudgetError, InputError
from ddcodec.format.limits import Limits
from ddcodec.io.images import to_pil
from ddcodec.format.reader import Source, read_stream

BACKENDS = ("auto", "torch", "numpy")
OUTPUTS = ("pil", "numpy")


def torch_available() -> bool:
    """Whether torch can be imported (without importing it)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def decode_array(data: bytes, device: str = "cpu", backend: str = "auto", limits: Limits | None = None
                 ) -> np.ndarray:
    """The decoded image of a .ddc stream as a uint8 array (H, W, C).

    `backend` "auto" uses NumPy on the CPU and torch on another device. `limits` caps the decode's
    cost (ddcodec.format.limits; a file above them raises DecodeBudgetError before anything is allocated). Running out of
    memory anyway (a machine with less than the limits allow) is a DecodeBudgetError too, never a crash.
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown decoder backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if backend == "torch" or (backend == "auto" and str(device) != "cpu" and torch_available()):
        _check_device(device)
        from ddcodec.decoders.torchdecode import decode_array as torch_decode

        return _backstop(lambda: torch_decode(data, device, limits))
    if str(device) != "cpu":
        raise InputError(f"the NumPy decoder runs on the CPU only, not on {device!r}")
    from ddcodec.decoders.npdecode import decode_array as numpy_decode

    return _backstop(lambda: numpy_decode(data, limits))


def _check_device(device: str) -> None:
    """An InputError when torch cannot use `device` (CUDA asked of a torch without it, or without a GPU)."""
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} is not available (this torch has no CUDA or sees no GPU)")


def _backstop(run):
    """run(), with an allocation failure turned into the package's own error."""
    try:
        return run()
    except MemoryError:
        raise DecodeBudgetError("out of memory while decoding: this machine has less free memory than the decode "
                                "needs (ddcodec.format.limits.decode_cost estimates it)") from None
    except RuntimeError as exc:  # torch reports failed allocations as RuntimeError
        if "memory" not in str(exc).lower() and "alloc" not in str(exc).lower():
            raise
        raise DecodeBudgetError(f"out of memory while decoding ({str(exc).splitlines()[0]})") from None


def decode(
    source: Source,
    device: str = "cpu",
    *,
    backend: Literal["auto", "torch", "numpy"] = "auto",
    output: Literal["pil", "numpy"] = "pil",
    limits: Limits | None = None,
) -> Image.Image | np.ndarray:
    """Decode a .ddc (bytes, path or binary file object) to a PIL image ('L' or 'RGB') or, with output="numpy",
    a uint8 array (H, W, C). `backend`: "torch", "numpy" or "auto" (NumPy on the CPU, torch on a GPU); `limits`:
    see decode_array."""
    if output not in OUTPUTS:
        raise InputError(f"unknown output {output!r} (choose from {', '.join(OUTPUTS)})")
    pixels = decode_array(read_stream(source), device, backend, limits)
    return to_pil(pixels) if output == "pil" else pixels
