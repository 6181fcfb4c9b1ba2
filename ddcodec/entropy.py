"""Lossless coding of the quantized weight tensors: range coding (default) or zstd (docs/FORMAT.md, "Payload").

Range coding (constriction) uses one model per tensor, whichever codes that tensor smallest once the model's own
bytes are counted: a constant, a two-sided geometric (discrete Laplace) around a centre, or a categorical histogram.
Every model is built from integers only, so encoder and decoder derive bit-identical probability tables.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import constriction
import numpy as np
import zstandard

from .errors import BitstreamError
from .options import CODERS

RANGE, ZSTD = CODERS["range"], CODERS["zstd"]

CONSTANT, GEOMETRIC, CATEGORICAL = 0, 1, 2
MAX_SUPPORT = 1 << 16  # widest symbol range one tensor may use


def table_budget(sizes: Sequence[int]) -> int:
    """Most probability-table entries a payload of tensors of these sizes may declare in all: a table far longer than
    its tensor only costs the decoder time and memory, so the coder never writes one and the decoder refuses it."""
    return MAX_SUPPORT + 4 * sum(sizes)
_RATIO_ONE = 1 << 16  # the geometric ratio r is stored as round(r * 2^16)
ZSTD_PIECE = 256  # compressed bytes fed to zstd at a time (at most a few MB of output each)


# ---- varints ------------------------------------------------------------------------------------------------------

def _put_varint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _zigzag(n: int) -> int:
    return 2 * n if n >= 0 else -2 * n - 1


class _Reader:
    """Bounds-checked reading of a byte string; any overrun is a BitstreamError."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise BitstreamError("payload ends inside a tensor model")
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self) -> int:
        n = 0
        for shift in range(0, 64, 7):
            b = self.byte()
            n |= (b & 0x7F) << shift
            if b < 0x80:
                return n
        raise BitstreamError("payload holds an overlong varint")

    def signed(self) -> int:
        z = self.varint()
        return z >> 1 if z % 2 == 0 else -(z >> 1) - 1


# ---- models -------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=64)  # tables of at most 2^16 float64: the cache never holds more than 32 MB
def _geometric_weights(ratio: int, n: int) -> np.ndarray:
    """Integer weights w_j (j = 0..n-1) with w_0 = 2^32 and w_{j+1} = max(1, floor(w_j · ratio / 2^16))."""
    w = np.empty(n, dtype=np.float64)
    cur = 1 << 32
    for j in range(n):
        w[j] = cur
        cur = max(1, (cur * ratio) >> 16)
    return w


def _geometric_table(lo: int, hi: int, ratio: int) -> np.ndarray:
    """Unnormalized probabilities of offsets -lo..hi from the centre."""
    w = _geometric_weights(ratio, max(lo, hi) + 1)
    return np.concatenate([w[lo:0:-1], w[: hi + 1]])


def _choose_model(q: np.ndarray) -> tuple[bytes, np.ndarray | None, int, float]:
    """(descriptor bytes, probability table or None, symbol offset, estimated bits) of the cheapest model for q."""
    lo_v, hi_v = int(q.min()), int(q.max())
    if lo_v == hi_v:
        desc = bytearray([CONSTANT])
        _put_varint(desc, _zigzag(lo_v))
        return bytes(desc), None, lo_v, 8.0 * len(desc)
    if hi_v - lo_v + 1 > MAX_SUPPORT:
        raise ValueError(f"quantized weights span {hi_v - lo_v + 1} values, more than {MAX_SUPPORT}")
    counts = np.bincount(q - lo_v)
    nz = counts[counts > 0]
    cat_bits = -float(np.sum(nz * np.log2(nz / q.size)))
    cat = bytearray([CATEGORICAL])
    _put_varint(cat, _zigzag(lo_v))
    _put_varint(cat, len(counts))
    for c in counts:
        _put_varint(cat, int(c))
    best = (bytes(cat), counts.astype(np.float64), lo_v, cat_bits + 8 * len(cat))

    centre = int(np.median(q))
    lo, hi = centre - lo_v, hi_v - centre
    m = float(np.mean(np.abs(q - centre)))  # the two-sided geometric's maximum-likelihood ratio for this mean
    ratio = int(min(max(round((np.sqrt(1 + m * m) - 1) / m * _RATIO_ONE), 1), _RATIO_ONE - 1)) if m > 0 else 1
    table = _geometric_table(lo, hi, ratio)
    bits = -float(np.sum(counts[counts > 0] * np.log2(table[counts > 0] / table.sum())))
    geo = bytearray([GEOMETRIC])
    for v in (_zigzag(centre), lo, hi):
        _put_varint(geo, v)
    geo += ratio.to_bytes(2, "little")
    if bits + 8 * len(geo) < best[3]:
        best = (bytes(geo), table, lo_v, bits + 8 * len(geo))
    return best


def _read_model(r: _Reader, n: int, budget: int) -> tuple[np.ndarray | None, int]:
    """Parse one tensor's model descriptor: (probability table or None for a constant, symbol offset); a table
    longer than MAX_SUPPORT or than what is left of the payload's table budget is refused before it is built."""
    kind = r.byte()
    if kind == CONSTANT:
        return None, r.signed()
    if kind == GEOMETRIC:
        centre, lo, hi = r.signed(), r.varint(), r.varint()
        ratio = r.byte() | (r.byte() << 8)
        if lo + hi + 1 > min(MAX_SUPPORT, budget) or ratio == 0:
            raise BitstreamError("geometric tensor model out of range")
        return _geometric_table(lo, hi, ratio), centre - lo
    if kind == CATEGORICAL:
        lo, size = r.signed(), r.varint()
        if not 2 <= size <= min(MAX_SUPPORT, budget):
            raise BitstreamError(f"categorical tensor model with {size} symbols")
        counts = np.array([r.varint() for _ in range(size)], dtype=np.float64)
        if counts.sum() != n:
            raise BitstreamError("categorical tensor model counts do not match the tensor size")
        return counts, lo
    raise BitstreamError(f"unknown tensor model kind {kind}")


# ---- coders -------------------------------------------------------------------------------------------------------

def encode_ints(tensors: Sequence[np.ndarray], coder: int) -> bytes:
    """Payload bytes for the integer tensors (any shape, coded flat in order) with the given coder id."""
    flat = [np.asarray(t, dtype=np.int64).ravel() for t in tensors]
    if coder == ZSTD:
        return _zstd_encode(flat)
    models = [_choose_model(q) for q in flat]
    if sum(len(m[1]) for m in models if m[1] is not None) > table_budget([q.size for q in flat]):
        raise ValueError("the tensors' value ranges need longer probability tables than a payload may declare")
    enc = constriction.stream.queue.RangeEncoder()
    for q, (_, table, offset, _) in zip(flat, models):
        if table is not None:
            enc.encode((q - offset).astype(np.int32), _categorical(table))
    return b"".join(m[0] for m in models) + enc.get_compressed().astype("<u4").tobytes()


def decode_ints(payload: bytes, sizes: Sequence[int], coder: int) -> list[np.ndarray]:
    """Flat int64 tensors of the given sizes from a payload; damage, declared tables longer than table_budget, and
    coded data that does not end exactly where the symbols do raise BitstreamError."""
    if coder == ZSTD:
        return _zstd_decode(payload, sizes)
    if coder != RANGE:
        raise BitstreamError(f"unknown coder id {coder}")
    r = _Reader(payload)
    models, budget = [], table_budget(sizes)
    for n in sizes:
        models.append(_read_model(r, n, budget))
        budget -= 0 if models[-1][0] is None else len(models[-1][0])
    words = payload[r.pos :]
    if len(words) % 4:
        raise BitstreamError("range-coded data is not a whole number of 32-bit words")
    data = np.frombuffer(words, dtype="<u4").astype(np.uint32)
    dec = constriction.stream.queue.RangeDecoder(data)
    coded = [(n, table, offset) for n, (table, offset) in zip(sizes, models)]
    try:
        symbols = [None if t is None else dec.decode(_categorical(t), n) for n, t, _ in coded]
    except Exception as exc:  # constriction reports corrupt data with its own exception types
        raise BitstreamError(f"range-coded data is corrupt ({exc})") from None
    enc = constriction.stream.queue.RangeEncoder()  # the words must be exactly those of these symbols: no junk
    for s, (_, t, _) in zip(symbols, coded):  # after them, none cut off (which would decode to other values)
        if s is not None:
            enc.encode(s, _categorical(t))
    if not np.array_equal(enc.get_compressed(), data):
        raise BitstreamError("range-coded data does not end where its symbols do (extra or missing words)")
    return [np.full(n, o, dtype=np.int64) if s is None else s.astype(np.int64) + o
            for s, (n, _, o) in zip(symbols, coded)]


def _categorical(table: np.ndarray) -> constriction.stream.model.Categorical:
    """The coder's model for a table of unnormalized probabilities (normalized by constriction, deterministically)."""
    return constriction.stream.model.Categorical(table, perfect=False)


def _zstd_encode(flat: list[np.ndarray]) -> bytes:
    values = np.concatenate(flat) if flat else np.zeros(0, np.int64)
    peak = int(np.abs(values).max(initial=0))
    width = 1 if peak < 2**7 else 2 if peak < 2**15 else 4
    packed = values.astype(f"<i{width}").tobytes()
    return bytes([width]) + zstandard.ZstdCompressor(level=19).compress(packed)


def _zstd_decode(payload: bytes, sizes: Sequence[int]) -> list[np.ndarray]:
    """The integers of a zstd payload: one frame that ends exactly at the payload's end and holds exactly the bytes
    the tensors need. Input is fed in small pieces, so a crafted frame cannot expand beyond that by much."""
    if not payload or payload[0] not in (1, 2, 4):
        raise BitstreamError("zstd payload has no valid integer width")
    width, expected = payload[0], payload[0] * sum(sizes)
    dobj = zstandard.ZstdDecompressor().decompressobj()
    parts, produced, pos = [], 0, 1
    try:
        while pos < len(payload) and produced <= expected and not dobj.eof:
            part = dobj.decompress(payload[pos : pos + ZSTD_PIECE])
            pos += ZSTD_PIECE
            parts.append(part)
            produced += len(part)
    except zstandard.ZstdError as exc:
        raise BitstreamError(f"zstd data is corrupt ({exc})") from None
    if produced != expected or not dobj.eof or dobj.unused_data or pos < len(payload):
        raise BitstreamError(f"zstd data is not one frame of the {expected} bytes expected, ending with the payload")
    values = np.frombuffer(b"".join(parts), dtype=f"<i{width}").astype(np.int64)
    return np.split(values, np.cumsum(sizes)[:-1])
