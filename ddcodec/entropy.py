"""Lossless coding of the quantized weight tensors: range coding (default) or zstd (docs/FORMAT.md, "Payload").

Range coding (constriction) uses one model per tensor, whichever codes that tensor smallest once the model's own
bytes are counted: a constant, a two-sided geometric (discrete Laplace) around a centre, a categorical histogram,
or, for grids (2-D tensors), the context model of context.py: a residual from the rows above under one of several
constant or geometric models. Every model is built from integers only, so encoder and decoder derive bit-identical
probability tables.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Collection, Sequence

import constriction
import numpy as np
import zstandard

from . import context
from .errors import BitstreamError
from .options import CODERS

RANGE, ZSTD = CODERS["range"], CODERS["zstd"]

CONSTANT, GEOMETRIC, CATEGORICAL, CONTEXT = 0, 1, 2, 3
MAX_SUPPORT = 1 << 16  # widest symbol range one tensor may use
MIN_CONTEXT_SIDE = 4  # a context model is tried only on grids at least this large both ways
Shape = int | tuple[int, ...]  # a tensor's size, or its shape where a context model may need its rows
Model = tuple[bytes, np.ndarray | None, int, float]  # descriptor, table (None: constant), symbol offset, bits


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


def _varints(values: np.ndarray) -> bytes:
    """_put_varint of each value (non-negative integers) in order, vectorized: a categorical table can hold
    thousands of counts, and the encoder's rate search writes its descriptor dozens of times."""
    v = values.astype(np.uint64).ravel()
    shifts = np.arange(10, dtype=np.uint64) * np.uint64(7)  # a uint64 needs at most 10 groups of 7 bits
    groups = (v[:, None] >> shifts) & np.uint64(0x7F)
    more = (v[:, None] >> (shifts + np.uint64(7))) > 0
    used = np.concatenate([np.ones((len(v), 1), bool), more[:, :-1]], 1)
    return (groups | (more.astype(np.uint64) << np.uint64(7)))[used].astype(np.uint8).tobytes()


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


def _choose_model(q: np.ndarray, categorical: bool = True) -> Model:
    """(descriptor bytes, probability table or None, symbol offset, estimated bits) of the cheapest model for q
    (flat); without `categorical`, only a constant or a geometric (their size does not depend on q's length)."""
    if q.size == 0:
        return bytes([CONSTANT, 0]), None, 0, 16.0
    lo_v, hi_v = int(q.min()), int(q.max())
    if lo_v == hi_v:
        desc = bytearray([CONSTANT])
        _put_varint(desc, _zigzag(lo_v))
        return bytes(desc), None, lo_v, 8.0 * len(desc)
    if hi_v - lo_v + 1 > MAX_SUPPORT:
        raise ValueError(f"quantized weights span {hi_v - lo_v + 1} values, more than {MAX_SUPPORT}")
    counts = np.bincount(q - lo_v)
    nz = counts[counts > 0]
    best: Model = (b"", None, 0, np.inf)
    if categorical:
        cat_bits = -float(np.sum(nz * np.log2(nz / q.size)))
        cat = bytearray([CATEGORICAL])
        _put_varint(cat, _zigzag(lo_v))
        _put_varint(cat, len(counts))
        cat += _varints(counts)
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


def _context_model(q: np.ndarray) -> tuple[bytes, list[tuple[np.ndarray, Model]], float]:
    """For a grid q (h, w): the context model's descriptor, its (row residuals, bucket model) groups in coding
    order, and its estimated bits."""
    coefs = context.fit_coefs(q)
    pred, bucket = context.predict(*context.padded(q), 0, q.shape[0], coefs)
    resid = q - pred
    models = [_choose_model(resid[bucket == k], categorical=False) for k in range(context.BUCKETS)]
    desc = bytes([CONTEXT]) + coefs.astype(np.int8).tobytes() + b"".join(m[0] for m in models)
    groups = [(resid[y][bucket[y] == k], models[k]) for y in range(q.shape[0]) for k in range(context.BUCKETS)]
    bits = 8 * (1 + context.TAPS) + sum(m[3] for m in models)
    return desc, [(r, m) for r, m in groups if r.size and m[1] is not None], bits


def _tensor_groups(q: np.ndarray, grid: bool) -> tuple[bytes, list[tuple[np.ndarray, Model]]]:
    """A tensor's cheapest descriptor and its (symbols, model) groups in coding order: one flat group, or, for a
    grid, the context model's row and bucket groups where that codes smaller."""
    if grid and q.ndim == 2 and min(q.shape) >= MIN_CONTEXT_SIDE:
        return _grid_groups(q.tobytes(), q.shape)
    return _flat_groups(q, _choose_model(q.ravel()))


def _flat_groups(q: np.ndarray, flat: Model) -> tuple[bytes, list[tuple[np.ndarray, Model]]]:
    """A flat model's descriptor and its one group of symbols (none for a constant)."""
    return flat[0], [(q.ravel(), flat)] if flat[1] is not None else []


@lru_cache(maxsize=64)  # a grid's integers do not change while rate control searches the weights' steps
def _grid_groups(data: bytes, shape: tuple[int, int]) -> tuple[bytes, list[tuple[np.ndarray, Model]]]:
    """_tensor_groups of the grid whose int64 values are `data`: the context model where it codes smaller."""
    q = np.frombuffer(data, np.int64).reshape(shape)
    flat = _choose_model(q.ravel())
    desc, groups, bits = _context_model(q)
    return (desc, groups) if bits < flat[3] else _flat_groups(q, flat)


def _read_model(r: _Reader, n: int, budget: int, kinds: tuple[int, ...] = (CONSTANT, GEOMETRIC, CATEGORICAL)
                ) -> tuple[np.ndarray | None, int]:
    """Parse one flat model descriptor of a kind in `kinds`: (probability table or None for a constant, symbol
    offset); a table longer than MAX_SUPPORT or than what is left of the payload's table budget is refused before
    it is built."""
    kind = r.byte()
    if kind not in kinds:
        raise BitstreamError(f"tensor model kind {kind} not allowed here")
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


def _read_tensor_model(r: _Reader, shape: Shape, budget: int) -> tuple[np.ndarray | None, int, list | None]:
    """One tensor's descriptor: a flat model (table, offset, None) or a context model (None, 0, [coefs, bucket
    models]), the latter only for a grid (a 2-D shape)."""
    if r.pos < len(r.data) and r.data[r.pos] == CONTEXT:
        r.byte()
        if not (isinstance(shape, tuple) and len(shape) == 2):
            raise BitstreamError("context model on a tensor that is not a grid")
        coefs = np.array([int.from_bytes([r.byte()], "little", signed=True) for _ in range(context.TAPS)], np.int64)
        buckets = []
        for _ in range(context.BUCKETS):
            buckets.append(_read_model(r, 0, budget, (CONSTANT, GEOMETRIC)))
            budget -= 0 if buckets[-1][0] is None else len(buckets[-1][0])
        return None, 0, [coefs, buckets]
    n = math.prod(shape) if isinstance(shape, tuple) else shape
    return (*_read_model(r, n, budget), None)


# ---- coders -------------------------------------------------------------------------------------------------------

def encode_ints(tensors: Sequence[np.ndarray], coder: int, grids: Collection[int] = ()) -> bytes:
    """Payload bytes for the integer tensors (coded in order) with the given coder id; the tensors whose indices
    are in `grids` (2-D latent grids) may get the context model."""
    arrays = [np.asarray(t, dtype=np.int64) for t in tensors]
    if coder == ZSTD:
        return _zstd_encode([a.ravel() for a in arrays])
    coded = [_tensor_groups(a, t in grids) for t, a in enumerate(arrays)]
    tables = sum(len(m[1]) for _, groups in coded for m in {id(m): m for _, m in groups}.values())
    if tables > table_budget([a.size for a in arrays]):
        raise ValueError("the tensors' value ranges need longer probability tables than a payload may declare")
    enc = constriction.stream.queue.RangeEncoder()
    cache: dict[int, constriction.stream.model.Categorical] = {}
    for _, groups in coded:
        for symbols, (_, table, offset, _) in groups:
            model = cache.setdefault(id(table), _categorical(table))
            enc.encode((symbols - offset).astype(np.int32), model)
    return b"".join(desc for desc, _ in coded) + enc.get_compressed().astype("<u4").tobytes()


def decode_ints(payload: bytes, shapes: Sequence[Shape], coder: int) -> list[np.ndarray]:
    """Flat int64 tensors of the given sizes (for latent grids, their shapes: they may use the context model) from a
    payload; damage, declared tables longer than table_budget, and coded data that does not end exactly where the
    symbols do raise BitstreamError."""
    sizes = [math.prod(s) if isinstance(s, tuple) else s for s in shapes]
    if coder == ZSTD:
        return _zstd_decode(payload, sizes)
    if coder != RANGE:
        raise BitstreamError(f"unknown coder id {coder}")
    r = _Reader(payload)
    models, budget = [], table_budget(sizes)
    for shape in shapes:
        models.append(_read_tensor_model(r, shape, budget))
        tables = [models[-1][0]] if models[-1][2] is None else [t for t, _ in models[-1][2][1]]
        budget -= sum(len(t) for t in tables if t is not None)
    words = payload[r.pos :]
    if len(words) % 4:
        raise BitstreamError("range-coded data is not a whole number of 32-bit words")
    data = np.frombuffer(words, dtype="<u4").astype(np.uint32)
    dec = constriction.stream.queue.RangeDecoder(data)
    groups: list[tuple[np.ndarray, constriction.stream.model.Categorical]] = []  # in coding order, for the check
    try:
        out = [_decode_tensor(dec, shape, n, model, groups) for shape, n, model in zip(shapes, sizes, models)]
    except BitstreamError:
        raise
    except Exception as exc:  # constriction reports corrupt data with its own exception types
        raise BitstreamError(f"range-coded data is corrupt ({exc})") from None
    enc = constriction.stream.queue.RangeEncoder()  # the words must be exactly those of these symbols: no junk
    for symbols, model in groups:  # after them, none cut off (which would decode to other values)
        enc.encode(symbols, model)
    if not np.array_equal(enc.get_compressed(), data):
        raise BitstreamError("range-coded data does not end where its symbols do (extra or missing words)")
    return out


def _decode_tensor(dec, shape: Shape, n: int, model, groups: list) -> np.ndarray:
    """One tensor's integers (flat), appending each decoded (symbols, coder model) group to `groups`."""
    table, offset, ctx = model
    if ctx is None:
        if table is None:
            return np.full(n, offset, dtype=np.int64)
        cat = _categorical(table)
        groups.append((dec.decode(cat, n), cat))
        return groups[-1][0].astype(np.int64) + offset
    coefs, buckets = ctx
    cats = [None if t is None else _categorical(t) for t, _ in buckets]
    offsets = np.array([o for _, o in buckets], np.int64)
    h, w = shape
    q, mags = context.padded(np.zeros(shape, np.int64))
    for y in range(h):
        pred, bucket = context.predict(q, mags, y, y + 1, coefs)
        pred, bucket = pred[0], bucket[0]
        order = np.argsort(bucket, kind="stable")  # the row's values grouped by bucket, left to right in each
        counts = np.bincount(bucket, minlength=context.BUCKETS)
        values = np.repeat(offsets, counts)
        start = 0
        for k in np.flatnonzero(counts):
            if cats[k] is not None:
                groups.append((dec.decode(cats[k], int(counts[k])), cats[k]))
                values[start : start + counts[k]] += groups[-1][0]
            start += counts[k]
        row = q[y + 2, 1:-1]
        row[order] = pred[order] + values
        np.abs(row, out=mags[y + 2, 1:-1])
        if mags[y + 2].max() > context.MAX_VALUE:
            raise BitstreamError("a context-coded grid grows beyond the values a grid may hold")
    return q[2:, 1:-1].ravel()


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
