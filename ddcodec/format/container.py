"""The .ddc container: header fields, payload and CRC-32, packed and parsed as docs/FORMAT.md specifies.

The parser reads fixed-width little-endian fields only (no pickle, torch.load, np.load or eval), checks every field
against its cap before anything is allocated, and raises BitstreamError naming what is wrong.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ddcodec.format.architecture import MAX_LAYERS, MAX_REFINE, MAX_REFINE_KERNEL, MAX_TAPS, MAX_WIDTH, Architecture, ArmShape
from ddcodec.errors import BitstreamError
from ddcodec.format.limits import Limits, check_budget
from ddcodec.format.options import CODERS

MAGIC = b"\x89DDC"
VERSION = 4  # written (4 adds the synthesis fields and the ARM); versions 1 (no latent counts), 2 and 3
# (linear context model of grids in the payload) are read
VERSIONS = (1, 2, 3, 4)
TILED_VERSION = 5  # the newest version: a tiled file, whose tiles are version-4 files (ddcodec.format.tiles)
BILINEAR = 0  # upsampling mode: x2 bilinear, half-pixel centres (align_corners=False)

MAX_SIDE = 16384
MAX_LATENTS = 16  # latent grids per layer
MAX_ARM_NEIGHBOURS = 24  # armint.NEIGHBOURS
MAX_ARM_DEPTH = 3  # hidden layers of the ARM
MAX_ARM_WIDTH = 32  # armint.MAX_WIDTH

_FIXED = struct.Struct("<4sBHHBB")  # magic, version, height, width, channels, layers
_TAIL = struct.Struct("<BBQ")  # upsampling mode, coder, seed
_SYNTHESIS = struct.Struct("<BBB")  # version 4: upsampling taps, refinement layers, refinement kernel side


@dataclass(frozen=True)
class Header:
    """Everything the decoder needs besides the payload."""

    arch: Architecture
    seed: int
    coder: int
    step_codes: tuple[int, ...]
    version: int = VERSION  # the format version it was read from (pack writes VERSION)

    def __post_init__(self) -> None:
        if len(self.step_codes) != len(self.arch.tensor_shapes()):
            raise ValueError("one step code per weight tensor is required")


def step_from_code(code: int) -> float:
    """The quantization step that a header's step code stands for: 2^(code/4)."""
    return 2.0 ** (code / 4)


def header_size(layers: int, n_tensors: int | None = None, version: int = VERSION, arm: ArmShape | None = None
                ) -> int:
    """Bytes before the payload for a network of `layers` hidden layers, `n_tensors` coded tensors (3·layers + 1
    for the seed-only profile) and an ARM of this shape (version 4); the CRC adds 4 after the payload."""
    n_tensors = 3 * layers + 1 if n_tensors is None else n_tensors
    latent_counts = layers if version >= 2 else 0
    extension = _SYNTHESIS.size if version >= 4 else 0
    return (_FIXED.size + 2 * (layers + 1) + latent_counts + _TAIL.size + extension + _arm_size(arm, version)
            + n_tensors + 4)


def check_synthesis(taps: int, refine: int, refine_kernel: int) -> None:
    """A version 4 header's synthesis fields, or a BitstreamError naming the first one out of range."""
    if taps == 1 or taps > MAX_TAPS:
        raise BitstreamError(f"upsampling taps {taps} (0, or 2 .. {MAX_TAPS} allowed)")
    if refine > MAX_REFINE:
        raise BitstreamError(f"{refine} refinement layers (0 .. {MAX_REFINE} allowed)")
    if refine_kernel not in range(1, MAX_REFINE_KERNEL + 1, 2):
        raise BitstreamError(f"refinement kernel side {refine_kernel} (odd, 1 .. {MAX_REFINE_KERNEL} allowed)")


def _arm_size(arm: ArmShape | None, version: int) -> int:
    """Bytes of the ARM's part of the version-4 header extension (docs/FORMAT.md, "ARM (version 4)")."""
    return 0 if version < 4 else 1 if arm is None else 3 + len(arm.hidden)


def _pack_arm(arm: ArmShape | None) -> bytes:
    if arm is None:
        return bytes([0])
    return bytes([arm.neighbours, int(arm.coarser), len(arm.hidden), *arm.hidden])


def _parse_arm(data: bytes, pos: int) -> tuple[ArmShape | None, int]:
    """The ARM's part of the version-4 header extension at `pos`, validated; and the position after it."""
    if pos + 1 > len(data):
        raise BitstreamError("file too short for its ARM fields")
    neighbours = data[pos]
    if neighbours == 0:
        return None, pos + 1
    if pos + 3 > len(data) or pos + 3 + data[pos + 2] > len(data):
        raise BitstreamError("file too short for its ARM fields")
    coarser, depth = data[pos + 1], data[pos + 2]
    hidden = tuple(data[pos + 3 : pos + 3 + depth])
    if neighbours > MAX_ARM_NEIGHBOURS or coarser > 1 or depth > MAX_ARM_DEPTH or not all(
            1 <= w <= MAX_ARM_WIDTH for w in hidden):
        raise BitstreamError(f"ARM with {neighbours} neighbours, coarser feature {coarser} and hidden widths "
                             f"{list(hidden)}: outside 1..{MAX_ARM_NEIGHBOURS}, 0..1, {MAX_ARM_DEPTH} layers of "
                             f"1..{MAX_ARM_WIDTH}")
    return ArmShape(neighbours, bool(coarser), hidden), pos + 3 + depth


def pack(header: Header, payload: bytes) -> bytes:
    """The complete .ddc file (version 4) for a header and an entropy-coded payload."""
    a = header.arch
    out = bytearray(_FIXED.pack(MAGIC, VERSION, a.height, a.width, a.channels, a.layers))
    out += struct.pack(f"<{a.layers + 1}H", *a.widths)
    out += bytes(a.latents or (0,) * a.layers)
    out += _TAIL.pack(BILINEAR, header.coder, header.seed)
    out += _SYNTHESIS.pack(a.taps, a.refine, a.refine_kernel)
    out += _pack_arm(a.arm)
    out += struct.pack(f"<{len(header.step_codes)}b", *header.step_codes)
    out += struct.pack("<I", len(payload)) + payload
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


def parse(data: bytes, limits: Limits | None = None, budget: bool = True) -> tuple[Header, bytes]:
    """Header and payload of a .ddc file (version 1 to 4), after validating every field, the decode's cost against
    `limits` from the header alone (ddcodec.format.limits; budget=False skips it, for reading a header only) and the CRC-32;
    the payload's cost is checked once its descriptors are parsed (reader.read_plan)."""
    if len(data) < _FIXED.size:
        raise BitstreamError(f"file is {len(data)} bytes, too short for a .ddc header")
    magic, version, height, width, channels, layers = _FIXED.unpack_from(data)
    if magic != MAGIC:
        raise BitstreamError("not a .ddc file (bad magic bytes)")
    if version == TILED_VERSION:
        raise BitstreamError("a tiled file (version 5) where one network's file (versions 1 to 4) was expected")
    if version not in VERSIONS:
        raise BitstreamError(f"unsupported format version {version} (this decoder reads versions 1 to "
                             f"{TILED_VERSION})")
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise BitstreamError(f"image size {width}x{height} outside 1..{MAX_SIDE}")
    if channels not in (1, 3):
        raise BitstreamError(f"{channels} image channels (1 or 3 allowed)")
    if not 1 <= layers <= MAX_LAYERS:
        raise BitstreamError(f"{layers} layers (1..{MAX_LAYERS} allowed)")
    if len(data) < header_size(layers, version=version) + 4:
        raise BitstreamError(f"file is {len(data)} bytes, too short for its header")
    pos = _FIXED.size
    widths = struct.unpack_from(f"<{layers + 1}H", data, pos)
    pos += 2 * (layers + 1)
    if not all(1 <= w <= MAX_WIDTH for w in widths):
        raise BitstreamError(f"layer widths {list(widths)} outside 1..{MAX_WIDTH}")
    latents: tuple[int, ...] = ()
    if version >= 2:
        latents = tuple(data[pos : pos + layers])
        pos += layers
        if max(latents) > MAX_LATENTS:
            raise BitstreamError(f"latent grids per layer {list(latents)} outside 0..{MAX_LATENTS}")
        latents = latents if any(latents) else ()
    mode, coder, seed = _TAIL.unpack_from(data, pos)
    pos += _TAIL.size
    if mode != BILINEAR:
        raise BitstreamError(f"unknown upsampling mode {mode}")
    if coder not in CODERS.values():
        raise BitstreamError(f"unknown coder id {coder}")
    synthesis, arm = (0, 0, 3), None
    if version >= 4:
        synthesis = _SYNTHESIS.unpack_from(data, pos)
        pos += _SYNTHESIS.size
        check_synthesis(*synthesis)
        arm, pos = _parse_arm(data, pos)
        if arm is not None and not latents:
            raise BitstreamError("an ARM in a file without latent grids")
    arch = Architecture(height, width, channels, tuple(widths), latents, *synthesis, arm=arm)
    if budget:
        check_budget(arch, limits)
    n_tensors = len(arch.tensor_shapes())
    if len(data) < header_size(layers, n_tensors, version, arm) + 4:
        raise BitstreamError(f"file is {len(data)} bytes, too short for its header")
    codes = struct.unpack_from(f"<{n_tensors}b", data, pos)
    pos += n_tensors
    (length,) = struct.unpack_from("<I", data, pos)
    pos += 4
    if length != len(data) - pos - 4:
        raise BitstreamError(f"payload length {length} does not match the file ({len(data) - pos - 4} bytes left)")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if crc != zlib.crc32(data[:-4]):
        raise BitstreamError("CRC-32 mismatch: the file is damaged")
    return Header(arch, seed, coder, tuple(codes), version), bytes(data[pos : pos + length])
