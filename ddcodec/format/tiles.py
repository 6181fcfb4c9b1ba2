"""Tiled files (format version 5, docs/FORMAT.md "Tiles (version 5)"): an image larger than one tile is coded as
independent tiles, each a complete version-4 file of its region, behind a header with the image size, the tile size
and a tile index (each tile's byte length), so that a decoder can check the whole file's cost from the tiles'
headers, then decode one tile at a time into the output.

The parser reads fixed-width little-endian fields only, checks the header and the index (count, lengths, CRC-32)
before it slices anything, and raises BitstreamError naming what is wrong.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ddcodec.errors import BitstreamError
from ddcodec.format.container import MAGIC, MAX_SIDE, TILED_VERSION, Header, parse

# The largest tile side the encoder uses (tile_grid): not measured yet. 1024 keeps every Kodak image (768x512) and
# anything up to a megapixel one tile, coded exactly as before tiling (a version-4 file), and bounds a decode's
# memory by one 1024x1024 network's activations (about 0.43 GB for the default coded profile) plus the output.
TILE_SIDE = 1024
MIN_TILE_SIDE = 16  # the format's smallest tile side: bounds the tile count (and the index) of any file

_HEAD = struct.Struct("<4sBHHBHHI")  # magic, version, height, width, channels, tile height, tile width, tile count
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Tile:
    """One tile: its region of the image (top, left, height, width) and its bytes, a complete version-4 file."""

    top: int
    left: int
    height: int
    width: int
    data: bytes


@dataclass(frozen=True)
class TiledFile:
    """A version-5 file's header and its tiles in raster order (rows of tiles from the top, each from the left)."""

    height: int
    width: int
    channels: int
    tile_height: int
    tile_width: int
    tiles: tuple[Tile, ...]


def is_tiled(data: bytes) -> bool:
    """Whether a stream claims to be a tiled file (version 5); parse_tiled checks the rest."""
    return len(data) > 4 and data[:4] == MAGIC and data[4] == TILED_VERSION


def tile_regions(height: int, width: int, tile_height: int, tile_width: int) -> list[tuple[int, int, int, int]]:
    """(top, left, height, width) of each tile of a height x width image, in raster order; the last row and column
    of tiles are cut to the image."""
    return [(y, x, min(tile_height, height - y), min(tile_width, width - x))
            for y in range(0, height, tile_height) for x in range(0, width, tile_width)]


def tile_side(length: int, most: int) -> int:
    """The tile side along an axis of `length` pixels: that of the fewest tiles of at most `most` pixels,
    n = ceil(length / most), with balanced sizes, ceil(length / n), so that no edge tile is thin: every tile but the
    last has this side and the last is at most n - 1 pixels shorter (1080 -> 540 + 540, 1920 -> 960 + 960,
    2050 -> 684 + 684 + 682); at least MIN_TILE_SIDE, which an axis of one tile may be shorter than."""
    n = -(-length // most)
    return max(-(-length // n), MIN_TILE_SIDE)


def tile_grid(height: int, width: int) -> tuple[int, int]:
    """The tile (height, width) the encoder writes for a height x width image: tile_side of each axis at TILE_SIDE
    (a version-5 header's uniform grid with its last row and column cut describes these balanced tiles)."""
    return tile_side(height, TILE_SIDE), tile_side(width, TILE_SIDE)


def overhead(n_tiles: int) -> int:
    """Bytes of a tiled file besides its tiles: the header, the index and its CRC-32."""
    return _HEAD.size + _LENGTH.size * n_tiles + 4


def pack_tiled(height: int, width: int, channels: int, tile_height: int, tile_width: int, tiles: list[bytes]
               ) -> bytes:
    """The version-5 file of these tiles (version-4 files of the regions of tile_regions, in its order)."""
    if len(tiles) != len(tile_regions(height, width, tile_height, tile_width)) or len(tiles) < 2:
        raise ValueError("one file per tile of the grid, and at least two tiles, are required")
    head = _HEAD.pack(MAGIC, TILED_VERSION, height, width, channels, tile_height, tile_width, len(tiles))
    head += b"".join(_LENGTH.pack(len(t)) for t in tiles)
    return head + _LENGTH.pack(zlib.crc32(head)) + b"".join(tiles)


def parse_tiled(data: bytes) -> TiledFile:
    """A version-5 file's header and tiles, after checking the header's fields, the tile count against the grid,
    the index's CRC-32 and that the tiles' lengths add up to the file; each tile is checked by tile_header."""
    if len(data) < _HEAD.size:
        raise BitstreamError(f"file is {len(data)} bytes, too short for a tiled .ddc header")
    magic, version, height, width, channels, tile_height, tile_width, count = _HEAD.unpack_from(data)
    if magic != MAGIC or version != TILED_VERSION:
        raise BitstreamError("not a tiled .ddc file (version 5)")
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise BitstreamError(f"image size {width}x{height} outside 1..{MAX_SIDE}")
    if channels not in (1, 3):
        raise BitstreamError(f"{channels} image channels (1 or 3 allowed)")
    if not (MIN_TILE_SIDE <= tile_height <= MAX_SIDE and MIN_TILE_SIDE <= tile_width <= MAX_SIDE):
        raise BitstreamError(f"tile size {tile_width}x{tile_height} outside {MIN_TILE_SIDE}..{MAX_SIDE}")
    grid = -(-height // tile_height) * -(-width // tile_width)
    if count != grid or count < 2:
        raise BitstreamError(f"{count} tiles in the index, but a {width}x{height} image in {tile_width}x{tile_height}"
                             f" tiles has {grid} (and a tiled file at least 2)")
    start = overhead(count)
    if len(data) < start:
        raise BitstreamError(f"file is {len(data)} bytes, too short for its tile index of {count} tiles")
    (crc,) = _LENGTH.unpack_from(data, start - 4)
    if crc != zlib.crc32(data[: start - 4]):
        raise BitstreamError("CRC-32 mismatch in the tile index: the file is damaged")
    lengths = struct.unpack_from(f"<{count}I", data, _HEAD.size)
    if sum(lengths) != len(data) - start:
        raise BitstreamError(f"the tile index's lengths add up to {sum(lengths)} bytes, the file has "
                             f"{len(data) - start} after it")
    tiles, pos = [], start
    for (top, left, h, w), n in zip(tile_regions(height, width, tile_height, tile_width), lengths):
        tiles.append(Tile(top, left, h, w, bytes(data[pos : pos + n])))
        pos += n
    return TiledFile(height, width, channels, tile_height, tile_width, tuple(tiles))


def tile_header(tile: Tile, channels: int) -> tuple[Header, bytes]:
    """A tile's header and payload (container.parse, the decode limits not applied), after checking that it is a
    version-4 file of the tile's region and the image's channels."""
    if tile.data[4:5] != bytes([4]):
        raise BitstreamError(f"the tile at ({tile.top}, {tile.left}) is not a version-4 file")
    try:
        header, payload = parse(tile.data, budget=False)
    except BitstreamError as exc:
        raise BitstreamError(f"the tile at ({tile.top}, {tile.left}): {exc}") from None
    a = header.arch
    if (a.height, a.width, a.channels) != (tile.height, tile.width, channels):
        raise BitstreamError(f"the tile at ({tile.top}, {tile.left}) is {a.width}x{a.height} with {a.channels} "
                             f"channels, its region {tile.width}x{tile.height} with {channels}")
    return header, payload
