"""Reading a .ddc without torch: its bytes (from bytes, a path or a binary file object), its header, its weights.

Both decoders (torchdecode.py, npdecode.py) start from `read_weights`, so they differ only in the forward pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO, Union

import numpy as np

from ddcodec.format.bounds import check_finite_network
from ddcodec.format.container import Header, parse, step_from_code
from ddcodec.format.entropy import Payload
from ddcodec.errors import BitstreamError
from ddcodec.format.limits import Limits, PayloadFacts, check_budget, check_tiled_budget
from ddcodec.format.payload import decode_tensors, read_tensors
from ddcodec.format.tiles import TiledFile, is_tiled, parse_tiled, tile_header

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


@dataclass(frozen=True)
class TiledHeader:
    """The header of a tiled .ddc (format version 5): the image's size and channels, the tile size, and each tile's
    header (a version-4 file's), in raster order."""

    height: int
    width: int
    channels: int
    tile_height: int
    tile_width: int
    tiles: tuple[Header, ...]
    version: int = 5


def read_header(source: Source) -> Header | TiledHeader:
    """The header of a .ddc (image size, network widths, seed, coder, step codes; for a tiled file, each tile's),
    after checking the whole file (not its decode cost: see ddcodec.format.limits.decode_cost)."""
    data = read_stream(source)
    if is_tiled(data):
        tiled, headers = read_tiled(data, budget=False)
        return TiledHeader(tiled.height, tiled.width, tiled.channels, tiled.tile_height, tiled.tile_width,
                           tuple(headers))
    return parse(data, budget=False)[0]


def read_tiled(data: bytes, limits: Limits | None = None, budget: bool = True) -> tuple[TiledFile, list[Header]]:
    """A tiled .ddc's tiles (tiles.parse_tiled) and their headers, after checking every tile's header and CRC and,
    with `budget`, the whole decode's cost against `limits` (limits.check_tiled_budget): from the tiles' headers,
    then from their payloads' descriptors, before any symbol of any tile is decoded."""
    tiled = parse_tiled(data)
    parsed = [tile_header(t, tiled.channels) for t in tiled.tiles]
    if budget:
        size = (tiled.height, tiled.width, tiled.channels)
        check_tiled_budget([(h.arch, None) for h, _ in parsed], *size, limits)
        check_tiled_budget([(h.arch, read_tensors(h, p)[0].facts) for h, p in parsed], *size, limits)
    return tiled, [h for h, _ in parsed]


@dataclass(frozen=True)
class ParsedFile:
    """A .ddc whose header and payload descriptors are parsed and checked, nothing decoded yet."""

    header: Header
    payload: Payload

    @property
    def facts(self) -> PayloadFacts:
        return self.payload.facts


def read_plan(data: bytes, limits: Limits | None = None) -> ParsedFile:
    """The header and the parsed payload descriptors of a .ddc stream, after checking the decode's cost from the
    header against `limits` (ddcodec.format.limits); the payload's cost is in `.facts` (with an ARM, that of the
    tensors before the ARM stream: payload.read_tensors)."""
    header, payload = parse(data, limits)
    return ParsedFile(header, read_tensors(header, payload)[0])


def read_ints(data: bytes, limits: Limits | None = None) -> tuple[Header, list[np.ndarray]]:
    """The header and the integer tensors (stream order, shaped) of a .ddc stream, before their steps are applied,
    after checking the whole decode's cost against `limits` (ddcodec.format.limits): from the header, then from the
    payload's descriptors (with an ARM, those of the tensors before its stream; the header's cost counts the ARM's
    decode of every latent value, limits.arm_cost), before any symbol is decoded."""
    header, payload = parse(data, limits)
    tensors, stream = read_tensors(header, payload)
    check_budget(header.arch, limits, tensors.facts)
    return header, decode_tensors(header, tensors, stream)


def read_weights(data: bytes, limits: Limits | None = None) -> tuple[Header, list[np.ndarray]]:
    """The header and the float32 weight tensors (stream order, shaped) of a .ddc stream, after checking the decode's
    cost against `limits` (ddcodec.format.limits) and that the weights cannot make the forward pass overflow (bounds.py)."""
    header, ints = read_ints(data, limits)
    weights = [q.astype(np.float32) * np.float32(step_from_code(c)) for q, c in zip(ints, header.step_codes)]
    del ints
    check_finite_network(header.arch, weights)
    return header, weights
