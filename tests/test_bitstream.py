import random
import struct
import time
import zlib

import pytest

from ddcodec import BitstreamError
from ddcodec.format.container import Header, header_size, pack, parse
from ddcodec.decoders.decode import decode_array
from ddcodec.format.architecture import Architecture


def test_every_header_field_round_trips():
    arch = Architecture(1234, 77, 1, (9, 8, 7, 6))
    header = Header(arch, seed=2**64 - 5, coder=1, step_codes=tuple(range(-5, 5)))
    data = pack(header, b"payload")
    assert len(data) == header_size(3) + len(b"payload") + 4
    assert parse(data) == (header, b"payload")


def test_every_truncation_is_a_bitstream_error(encoded):
    data = encoded.data
    for n in range(len(data)):
        with pytest.raises(BitstreamError):
            decode_array(data[:n])


def test_random_byte_flips_are_bitstream_errors_and_quick(encoded):
    data, rng = encoded.data, random.Random(0)
    for _ in range(1000):
        damaged = bytearray(data)
        damaged[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        t0 = time.perf_counter()
        with pytest.raises(BitstreamError):
            decode_array(bytes(damaged))
        assert time.perf_counter() - t0 < 0.5


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_payload_garbage_under_a_valid_crc_is_a_bitstream_error(encoded):
    """A crafted file passes the CRC; the payload parser must still refuse it, never crash."""
    data, rng = encoded.data, random.Random(1)
    start = header_size(encoded.arch.layers, len(encoded.arch.tensor_shapes()))
    for _ in range(100):
        body = bytearray(data[:-4])
        for _ in range(rng.randrange(1, 4)):
            body[rng.randrange(start, len(body))] = rng.randrange(256)
        try:
            decode_array(_with_crc(bytes(body)))
        except BitstreamError:
            pass


@pytest.mark.parametrize("side", [65535, 16385])
def test_huge_image_is_refused_before_allocation(side, encoded):
    # u16 fields cannot even say 10^6; the largest sizes they can say are refused by the cap, CRC or not.
    body = bytearray(encoded.data[:-4])
    struct.pack_into("<HH", body, 5, side, side)
    with pytest.raises(BitstreamError, match="outside 1..16384"):
        parse(_with_crc(bytes(body)))


@pytest.mark.parametrize(
    "offset, value, message",
    [(0, b"PNG\x00", "magic"), (4, b"\x09", "version"), (9, b"\x02", "channels"), (10, b"\x00", "layers")],
)
def test_bad_fields_say_what_is_wrong(encoded, offset, value, message):
    body = bytearray(encoded.data[:-4])
    body[offset : offset + len(value)] = value
    with pytest.raises(BitstreamError, match=message):
        parse(_with_crc(bytes(body)))
