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


def read_arm_parts(header: Header, payload: bytes) -> tuple[Payload, memoryview]:
    """A payload with an ARM split into its two parts: the tensors' part with its descriptors parsed (every tensor
    but the latent grids, nothing decoded yet: its `facts` are its cost, limits.PayloadFacts) and the ARM stream
    (a view of the payload, not a copy).
    A part that does not fit the payload, or descriptors that break docs/FORMAT.md's rules, raise BitstreamError."""
    if len(payload) < _LENGTH.size or _LENGTH.unpack_from(payload)[0] > len(payload) - _LENGTH.size:
        raise BitstreamError("payload too short for the length of its tensors' part")
    split = _LENGTH.size + _LENGTH.unpack_from(payload)[0]
    shapes = header.arch.tensor_shapes()
    sizes = [math.prod(s) for t, s in enumerate(shapes) if t not in header.arch.grid_indices]
    tensors = read_payload(payload[_LENGTH.size : split], sizes, header.coder, header.version)
    tensors.facts = dataclasses.replace(tensors.facts, payload_bytes=len(payload))  # the ARM stream is in the file too
    return tensors, memoryview(payload)[split:]


def decode_arm_payload(header: Header, tensors: Payload, stream: bytes | memoryview) -> list[np.ndarray]:
    """The integer tensors (stream order, shaped) of a payload with an ARM, from its parts (read_arm_parts): the
    tensors' part decoded, then the grids from the ARM stream with the ARM's decoded tensors; damage raises
    BitstreamError."""
    from ddcodec.format import armint

    arch = header.arch
    shapes = arch.tensor_shapes()
    out: list[np.ndarray | None] = [None] * len(shapes)
    others = [t for t in range(len(shapes)) if t not in arch.grid_indices]
    for t, q in zip(others, tensors.decode()):
        out[t] = q.reshape(shapes[t])
    fixed = armint.fixed_point([out[t] for t in arch.arm_indices], [header.step_codes[t] for t in arch.arm_indices])
    for t, q in zip(sorted(arch.grid_indices), armint.decode_grids(stream, arch.grid_shapes(), fixed, arch.arm)):
        out[t] = q
    return out
