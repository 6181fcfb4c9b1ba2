"""Reading a .ddc without torch: its bytes (from bytes, a path or a binary file object), its header, its weights.

Both decoders (torchdecode.py, npdecode.py) start from `read_weights`, so they differ only in the forward pass.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from .bitstream import Header, parse, step_from_code
from .errors import BitstreamError
from .limits import Limits
from .payload import decode_payload

MAX_STREAM_BYTES = 1 << 28  # no legal .ddc within the default decode limits is larger; more is not read

Source = Union[bytes, bytearray, memoryview, str, os.PathLike, BinaryIO]


def read_stream(source: Source) -> bytes:
    """The bytes of a .ddc given as bytes, a path or a binary file object (read from its current position), reading
    at most MAX_STREAM_BYTES + 1 bytes so that a device or a pipe cannot exhaust memory."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        data = source.read(MAX_STREAM_BYTES + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise BitstreamError("the file object must be opened in binary mode ('rb')")
    else:
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_STREAM_BYTES + 1)
        except OSError as exc:
            raise BitstreamError(f"cannot read {os.fspath(source)!r}: {exc.strerror or exc}") from None
    if len(data) > MAX_STREAM_BYTES:
        raise BitstreamError(f"more than {MAX_STREAM_BYTES} bytes: larger than any .ddc this decoder accepts")
    return bytes(data)


def read_header(source: Source) -> Header:
    """The header of a .ddc (image size, network widths, seed, coder, step codes), after checking the whole file
    (not its decode cost: see ddcodec.limits.decode_cost)."""
    return parse(read_stream(source), budget=False)[0]


def read_ints(data: bytes, limits: Limits | None = None) -> tuple[Header, list[np.ndarray]]:
    """The header and the integer tensors (stream order, shaped) of a .ddc stream, before their steps are applied,
    after checking the decode's cost against `limits` (ddcodec.limits)."""
    header, payload = parse(data, limits)
    return header, decode_payload(header, payload)


def read_weights(data: bytes, limits: Limits | None = None) -> tuple[Header, list[np.ndarray]]:
    """The header and the float32 weight tensors (stream order, shaped) of a .ddc stream, after checking the decode's
    cost against `limits` (ddcodec.limits)."""
    header, ints = read_ints(data, limits)
    return header, [q.astype(np.float32) * np.float32(step_from_code(c)) for q, c in zip(ints, header.step_codes)]
