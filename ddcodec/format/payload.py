"""The payload of a .ddc: the integer tensors, coded as docs/FORMAT.md specifies ("Payload", "ARM (version 4)").

Without an ARM the payload is entropy.py's: every tensor in stream order. With one, it has two parts: a u32 length
and entropy.py's coding of every tensor but the latent grids (the ARM's own tensors included), then the ARM stream
of the grids (armint.py and its compiled loops, _armint.c), which the ARM's decoded tensors predict; armint is imported
only for files with an ARM.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from typing import Sequence

import numpy as np

from ddcodec.format.container import Header
from ddcodec.format.entropy import Payload, encode_ints, read_payload
from ddcodec.errors import BitstreamError

_LENGTH = struct.Struct("<I")


def encode_payload(header: Header, ints: Sequence[np.ndarray]) -> bytes:
    """The payload of the integer tensors (stream order) under this header. With an ARM, the grids' stream is
    decoded once more and a mismatch raises ValueError (the encoder never writes a file that does not round-trip),
    as do grid values beyond armint.MAX_LATENT."""
    arch = header.arch
    grids = arch.grid_indices
    if arch.arm is None:
        return encode_ints(ints, header.coder, grids)
    from ddcodec.format import armint

    order = sorted(grids)
    rest = encode_ints([q for t, q in enumerate(ints) if t not in grids], header.coder)
    fixed = armint.fixed_point([ints[t] for t in arch.arm_indices], [header.step_codes[t] for t in arch.arm_indices])
    stream = armint.encode_grids([ints[t] for t in order], fixed, arch.arm)
    decoded = armint.decode_grids(stream, arch.grid_shapes(), fixed, arch.arm)
    if not all(np.array_equal(d, np.reshape(ints[t], d.shape)) for d, t in zip(decoded, order)):
        raise ValueError("the ARM stream does not decode to the latents it codes")
    return _LENGTH.pack(len(rest)) + rest + stream


def read_tensors(header: Header, payload: bytes) -> tuple[Payload, bytes | memoryview]:
    """The payload's entropy-coded part with its descriptors parsed, nothing decoded (its cost in `.facts`), and the
    ARM stream of the latent grids: without an ARM, every tensor (grids by their shapes, for the context model) and
    no ARM stream; with one, every tensor but the grids, and the stream after them (a view of the payload, which
    the facts count whole: it is held while the stream decodes). Damage raises BitstreamError."""
    arch = header.arch
    shapes = arch.tensor_shapes()
    grids = arch.grid_indices
    if arch.arm is None:
        sizes = [tuple(s) if t in grids else math.prod(s) for t, s in enumerate(shapes)]  # grids: rows for context
        return read_payload(payload, sizes, header.coder, header.version), b""
    if len(payload) < _LENGTH.size or _LENGTH.unpack_from(payload)[0] > len(payload) - _LENGTH.size:
        raise BitstreamError("payload too short for the length of its tensors' part")
    split = _LENGTH.size + _LENGTH.unpack_from(payload)[0]
    sizes = [math.prod(s) for t, s in enumerate(shapes) if t not in grids]
    tensors = read_payload(payload[_LENGTH.size : split], sizes, header.coder, header.version)
    tensors.facts = dataclasses.replace(tensors.facts, payload_bytes=len(payload))
    return tensors, memoryview(payload)[split:]


def decode_tensors(header: Header, tensors: Payload, stream: bytes | memoryview) -> list[np.ndarray]:
    """The integer tensors (stream order, shaped) of a payload from its parts (read_tensors): the entropy-coded
    part decoded, then, with an ARM, the grids from the ARM stream with the ARM's decoded tensors; damage raises
    BitstreamError."""
    arch = header.arch
    shapes = arch.tensor_shapes()
    if arch.arm is None:
        return [q.reshape(s) for q, s in zip(tensors.decode(), shapes)]
    from ddcodec.format import armint

    out: list[np.ndarray | None] = [None] * len(shapes)
    grids, arm = arch.grid_indices, arch.arm_indices  # (properties: computed once here, not per tensor)
    others = [t for t in range(len(shapes)) if t not in grids]
    for t, q in zip(others, tensors.decode()):
        out[t] = q.reshape(shapes[t])
    fixed = armint.fixed_point([out[t] for t in arm], [header.step_codes[t] for t in arm])
    for t, q in zip(sorted(grids), armint.decode_grids(stream, arch.grid_shapes(), fixed, arch.arm)):
        out[t] = q
    return out
