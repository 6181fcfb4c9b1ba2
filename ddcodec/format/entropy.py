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
from typing import Callable, Collection, Sequence

import constriction
import numpy as np
import zstandard

from ddcodec.format import context
from ddcodec.errors import BitstreamError
from ddcodec.format.limits import PayloadFacts
from ddcodec.format.options import CODERS

RANGE, ZSTD = CODERS["range"], CODERS["zstd"]
Categorical = constriction.stream.model.Categorical

CONSTANT, GEOMETRIC, CATEGORICAL, CONTEXT = 0, 1, 2, 3
MAX_SUPPORT = 1 << 16  # widest symbol range one tensor may use
CONTEXT_SINCE = 3  # the format version that added the context model (kind 3); later versions keep it
VALUE_CAP = 1 << 62  # a flat model's values lie within ±2^62, so that every sum the decoder forms fits an int64
RESIDUAL_CAP = 1 << 31  # a context bucket's residuals lie within ±2^31 (grid values are capped at 2^24)
COUNT_BYTES = 5  # a categorical count is a varint of at most 5 bytes (35 bits: counts cannot exceed a tensor's size)
MIN_CONTEXT_SIDE = 4  # a context model is tried only on grids at least this large both ways
Shape = int | tuple[int, ...]  # a tensor's size, or its shape where a context model may need its rows
Model = tuple[bytes, np.ndarray | None, int, float]  # descriptor, table (None: constant), symbol offset, bits


def table_budget(sizes: Sequence[int]) -> int:
    """Most probability-table entries a payload of tensors of these sizes may declare in all: a table far longer than
    its tensor only costs the decoder time and memory, so the coder never writes one and the decoder refuses it."""
    return MAX_SUPPORT + 4 * sum(sizes)
_RATIO_ONE = 1 << 16  # the geometric ratio r is stored as round(r * 2^16)


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

    def counts(self, count: int) -> np.ndarray:
        """`count` varints of at most COUNT_BYTES bytes each (a categorical table's counts), read in one
        vectorized pass, as float64 (exact: they are below 2^35)."""
        chunk = np.frombuffer(self.data, np.uint8, min(len(self.data) - self.pos, COUNT_BYTES * count), self.pos)
        ends = np.flatnonzero(chunk < 0x80)[:count]
        if len(ends) < count:
            raise BitstreamError("payload ends inside a tensor model")
        lengths = np.diff(ends, prepend=-1)
        if lengths.max() > COUNT_BYTES:
            raise BitstreamError(f"a categorical count longer than {COUNT_BYTES} bytes")
        used = chunk[: ends[-1] + 1]
        place = np.arange(len(used)) - np.repeat(ends - lengths + 1, lengths)  # each byte's place in its varint
        groups = (used & 0x7F).astype(np.float64) * 2.0 ** (7 * place)
        self.pos += len(used)
        return np.bincount(np.repeat(np.arange(count), lengths), weights=groups, minlength=count)

    def signed(self) -> int:
        z = self.varint()
        return z >> 1 if z % 2 == 0 else -(z >> 1) - 1


# ---- models -------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=64)  # tables of at most 2^16 float64: the cache never holds more than 32 MB
def _geometric_weights(ratio: int, n: int) -> np.ndarray:
    """Integer weights w_j (j = 0..n-1) with w_0 = 2^32 and w_{j+1} = max(1, floor(w_j · ratio / 2^16)), in exact
    integer arithmetic. The recurrence is sequential (each floor depends on the last), so it runs only until the
    weights reach 1, their fixed point (_geometric_steps bounds where), and the rest is filled at once."""
    steps, cur = [], 1 << 32
    for _ in range(n):
        if cur == 1:
            break
        steps.append(cur)
        cur = (cur * ratio) >> 16 or 1
    w = np.ones(n, dtype=np.float64)
    w[: len(steps)] = steps
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


class _Model:
    """A flat model as its descriptor declares it: the first value of its symbols, its table's length (0: a
    constant, no table) and the recurrence steps that table needs; the table and the coder's model are built on
    first use only."""

    def __init__(self, offset: int, size: int = 0, steps: int = 0, table: Callable[[], np.ndarray] | None = None):
        self.offset, self.size, self.steps, self._table = offset, size, steps, table
        self._coder: Categorical | None = None

    def coder(self) -> Categorical:
        if self._coder is None:
            self._coder = _categorical(self._table())
        return self._coder


class _Context:
    """A context model as its descriptor declares it: the predictor's coefficients and the bucket models."""

    def __init__(self, coefs: np.ndarray, buckets: list[_Model]):
        self.coefs, self.buckets = coefs, buckets


def _geometric_steps(ratio: int, n: int) -> int:
    """Steps of the recurrence before the table's weights reach 1 (the rest are 1), at most n: w_j <= 2^32·ρ^j, so
    w_j > 1 needs j < 32·ln 2 / -ln ρ."""
    if ratio >= _RATIO_ONE:
        return n
    return min(n, int(32 * math.log(2) / -math.log(ratio / _RATIO_ONE)) + 2)


def _check_range(first: int, last: int, cap: int) -> None:
    if not -cap <= first <= last <= cap:
        raise BitstreamError(f"tensor model values {first}..{last} outside -2^{cap.bit_length() - 1}.."
                             f"2^{cap.bit_length() - 1}")


def _read_model(r: _Reader, n: int, budget: int, cap: int = VALUE_CAP,
                kinds: tuple[int, ...] = (CONSTANT, GEOMETRIC, CATEGORICAL)) -> _Model:
    """Parse one flat model descriptor of a kind in `kinds`, whose values must lie within ±cap; a table longer than
    MAX_SUPPORT or than what is left of the payload's table budget is refused before anything is built."""
    kind = r.byte()
    if kind not in kinds:
        raise BitstreamError(f"tensor model kind {kind} not allowed here")
    if kind == CONSTANT:
        value = r.signed()
        _check_range(value, value, cap)
        return _Model(value)
    if kind == GEOMETRIC:
        centre, lo, hi = r.signed(), r.varint(), r.varint()
        ratio = r.byte() | (r.byte() << 8)
        if lo + hi + 1 > min(MAX_SUPPORT, budget) or ratio == 0:
            raise BitstreamError("geometric tensor model out of range")
        _check_range(centre - lo, centre + hi, cap)
        steps = _geometric_steps(ratio, max(lo, hi) + 1)
        return _Model(centre - lo, lo + hi + 1, steps, lambda: _geometric_table(lo, hi, ratio))
    lo, size = r.signed(), r.varint()
    if not 2 <= size <= min(MAX_SUPPORT, budget):
        raise BitstreamError(f"categorical tensor model with {size} symbols")
    _check_range(lo, lo + size - 1, cap)
    counts = r.counts(size)
    if counts.sum() != n:
        raise BitstreamError("categorical tensor model counts do not match the tensor size")
    return _Model(lo, size, 0, lambda: counts)


def _read_tensor_model(r: _Reader, shape: Shape, budget: int, context_allowed: bool) -> _Model | _Context:
    """One tensor's descriptor: a flat model, or a context model (a grid's only: a 2-D shape, in a format version
    that has it)."""
    if r.pos < len(r.data) and r.data[r.pos] == CONTEXT:
        r.byte()
        if not context_allowed:
            raise BitstreamError(f"context model in a file of format version < {CONTEXT_SINCE}")
        if not (isinstance(shape, tuple) and len(shape) == 2):
            raise BitstreamError("context model on a tensor that is not a grid")
        coefs = np.frombuffer(bytes(r.byte() for _ in range(context.TAPS)), np.int8).astype(np.int64)
        buckets = []
        for _ in range(context.BUCKETS):
            buckets.append(_read_model(r, 0, budget, RESIDUAL_CAP, (CONSTANT, GEOMETRIC)))
            budget -= buckets[-1].size
        return _Context(coefs, buckets)
    return _read_model(r, math.prod(shape) if isinstance(shape, tuple) else shape, budget)


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
    cache: dict[int, Categorical] = {}
    for _, groups in coded:
        for symbols, (_, table, offset, _) in groups:
            model = cache.setdefault(id(table), _categorical(table))
            enc.encode((symbols - offset).astype(np.int32), model)
    return b"".join(desc for desc, _ in coded) + enc.get_compressed().astype("<u4").tobytes()


class Payload:
    """A payload whose descriptors are parsed, nothing decoded yet: `facts` says what decoding it will cost
    (limits.PayloadFacts), so that the cost is checked before the work; decode() does the work."""

    def __init__(self, payload: bytes, shapes: Sequence[Shape], coder: int, version: int | None = None):
        self.shapes = list(shapes)
        self.sizes = [math.prod(s) if isinstance(s, tuple) else s for s in self.shapes]
        self.coder, self.payload = coder, payload
        if coder == ZSTD:
            if not payload or payload[0] not in (1, 2, 4):
                raise BitstreamError("zstd payload has no valid integer width")
            self.facts = PayloadFacts(zstd_width=payload[0], payload_bytes=len(payload))
            return
        if coder != RANGE:
            raise BitstreamError(f"unknown coder id {coder}")
        r = _Reader(payload)
        self.models: list[_Model | _Context] = []
        budget, allowed = table_budget(self.sizes), version is None or version >= CONTEXT_SINCE
        for shape in self.shapes:
            self.models.append(_read_tensor_model(r, shape, budget, allowed))
            budget -= sum(m.size for m in _flat_models(self.models[-1]))
        self.words = payload[r.pos :]
        if len(self.words) % 4:
            raise BitstreamError("range-coded data is not a whole number of 32-bit words")
        self.facts = _range_facts(self.shapes, self.sizes, self.models, len(payload))

    def decode(self) -> list[np.ndarray]:
        """Flat int64 tensors; damage and coded data that does not end exactly where the symbols do raise
        BitstreamError."""
        if self.coder == ZSTD:
            return _zstd_decode(self.payload, self.sizes)
        out, groups, data = self.decode_symbols()
        if not np.array_equal(encode_groups(groups), data):  # exactly the words of these symbols: none cut off
            raise BitstreamError("range-coded data does not end where its symbols do (extra or missing words)")
        return out

    def decode_symbols(self) -> tuple[list[np.ndarray], list[tuple[np.ndarray, Categorical]], np.ndarray]:
        """A range-coded payload's tensors, its (symbols, coder model) groups in coding order and its words, before
        the check that the words end where the symbols do."""
        data = np.frombuffer(self.words, dtype="<u4").astype(np.uint32)
        dec = constriction.stream.queue.RangeDecoder(data)
        groups: list[tuple[np.ndarray, Categorical]] = []
        try:
            out = [_decode_tensor(dec, s, n, m, groups) for s, n, m in zip(self.shapes, self.sizes, self.models)]
        except BitstreamError:
            raise
        except Exception as exc:  # constriction reports corrupt data with its own exception types
            raise BitstreamError(f"range-coded data is corrupt ({exc})") from None
        return out, groups, data


def encode_groups(groups: Sequence[tuple[np.ndarray, Categorical]]) -> np.ndarray:
    """The range coder's words for (symbols, coder model) groups in order."""
    enc = constriction.stream.queue.RangeEncoder()
    for symbols, model in groups:
        enc.encode(symbols, model)
    return enc.get_compressed()


def _flat_models(model: _Model | _Context) -> list[_Model]:
    return model.buckets if isinstance(model, _Context) else [model]


def _range_facts(shapes: list[Shape], sizes: list[int], models: list[_Model | _Context], n_bytes: int
                 ) -> PayloadFacts:
    """What decoding these models costs at most (limits.PayloadFacts): every declared table counts, built or not."""
    symbols = calls = rows = widest = 0
    for shape, n, model in zip(shapes, sizes, models):
        coded = [m for m in _flat_models(model) if m.size]
        if isinstance(model, _Context):
            h, w = shape
            rows += h
            calls += h * min(len(coded), w)
            widest = max(widest, (h + 2) * (w + 2))
        else:
            calls += len(coded)
        symbols += n if coded else 0
    flat = [m for model in models for m in _flat_models(model)]
    return PayloadFacts(symbols=symbols, table_entries=sum(m.size for m in flat),
                        table_steps=sum(m.steps for m in flat), rows=rows, calls=calls, widest_grid=widest,
                        payload_bytes=n_bytes)


def read_payload(payload: bytes, shapes: Sequence[Shape], coder: int, version: int | None = None) -> Payload:
    """The payload's descriptors parsed (tensor sizes, or for latent grids their shapes: they may use the context
    model, if the file's format `version` has it; None: the newest); tables declared longer than table_budget raise
    BitstreamError."""
    return Payload(payload, shapes, coder, version)


def decode_ints(payload: bytes, shapes: Sequence[Shape], coder: int, version: int | None = None) -> list[np.ndarray]:
    """Flat int64 tensors of the given sizes (for latent grids, their shapes) from a payload, without a cost check
    (the reader checks it between read_payload and decode)."""
    return read_payload(payload, shapes, coder, version).decode()


def _decode_tensor(dec, shape: Shape, n: int, model: _Model | _Context, groups: list) -> np.ndarray:
    """One tensor's integers (flat), appending each decoded (symbols, coder model) group to `groups`."""
    if isinstance(model, _Model):
        if not model.size:
            return np.full(n, model.offset, dtype=np.int64)
        groups.append((dec.decode(model.coder(), n), model.coder()))
        return groups[-1][0].astype(np.int64) + model.offset
    offsets = np.array([m.offset for m in model.buckets], np.int64)
    h, w = shape
    q, mags = context.padded(np.zeros(shape, np.int64))
    for y in range(h):
        pred, bucket = context.predict(q, mags, y, y + 1, model.coefs)
        pred, bucket = pred[0], bucket[0]
        order = np.argsort(bucket, kind="stable")  # the row's values grouped by bucket, left to right in each
        counts = np.bincount(bucket, minlength=context.BUCKETS)
        values = np.repeat(offsets, counts)
        start = 0
        for k in np.flatnonzero(counts):
            if model.buckets[k].size:  # its table is built here, on the bucket's first use
                coder = model.buckets[k].coder()
                groups.append((dec.decode(coder, int(counts[k])), coder))
                values[start : start + counts[k]] += groups[-1][0]
            start += counts[k]
        row = q[y + 2, 1:-1]
        row[order] = pred[order] + values
        np.abs(row, out=mags[y + 2, 1:-1])
        if mags[y + 2].max() > context.MAX_VALUE:
            raise BitstreamError("a context-coded grid grows beyond the values a grid may hold")
    return q[2:, 1:-1].ravel()


def _categorical(table: np.ndarray) -> Categorical:
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
    the tensors need, decompressed in one call into a buffer of that size (a frame that declares another size, or
    that would produce more, is refused before or while it is decompressed, never beyond the buffer)."""
    width, expected = payload[0], payload[0] * sum(sizes)
    frame = memoryview(payload)[1:]
    try:
        declared = zstandard.get_frame_parameters(frame).content_size
        if declared not in (expected, zstandard.CONTENTSIZE_UNKNOWN):
            raise BitstreamError(f"zstd frame declares {declared} bytes, not the {expected} expected")
        data = zstandard.ZstdDecompressor().decompress(frame, max_output_size=expected, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise BitstreamError(f"zstd data is not one frame of the {expected} bytes expected, ending with the payload "
                             f"({exc})") from None
    if len(data) != expected:
        raise BitstreamError(f"zstd data is not one frame of the {expected} bytes expected, ending with the payload")
    values = np.frombuffer(data, dtype=f"<i{width}").astype(np.int64)
    del data
    return np.split(values, np.cumsum(sizes)[:-1])
