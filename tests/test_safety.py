"""Hostile files and careless commands (issue 9): decode budgets, strict payload parsing, no data loss, one-line
errors. Each test here failed on v0.5."""

import io
import itertools
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ddcodec
from ddcodec import BitstreamError, DdcodecError, DecodeBudgetError
from ddcodec.format.architecture import Architecture
from ddcodec.format.container import Header, pack, parse
from ddcodec.decoders.decode import decode_array
from ddcodec.format.entropy import CATEGORICAL, GEOMETRIC, RANGE, ZSTD
from ddcodec.format.payload import encode_payload
from ddcodec.io.images import write_bytes
from ddcodec.format.limits import Limits, decode_cost

from .conftest import DATA

BOMBS = DATA / "bombs"


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_bomb_files_are_refused_from_the_header(tmp_path):
    for path in sorted(BOMBS.glob("*.ddc")):
        with pytest.raises(BitstreamError):
            decode_array(path.read_bytes())


def test_a_huge_network_is_a_budget_error_and_a_trusted_caller_may_raise_the_limit():
    arch = Architecture(4096, 4096, 1, (8,) * 9)
    data = pack(Header(arch, 0, RANGE, (0,) * len(arch.tensor_shapes())), b"")
    with pytest.raises(DecodeBudgetError, match="MAX_MEMORY|MAX_PIXELS"):
        ddcodec.decode(data)
    cost = decode_cost(arch)
    with pytest.raises(BitstreamError):  # past the budget it is the (empty) payload that fails, not the limit
        ddcodec.decode(data, limits=Limits(pixels=cost.pixels, memory=cost.memory, macs=cost.macs))


def test_the_encoder_refuses_what_the_decoder_would():
    with pytest.raises(ddcodec.InputError, match="decode limits"):
        ddcodec.encode(np.zeros((10000, 9000), np.uint8), iters=1)


SIDES = (1, 4, 16, 45, 128, 362, 512, 768, 900, 1024)  # the scan behind limits.MEMORY_PER_PIXEL, in part


@pytest.mark.parametrize("height", SIDES)
def test_every_plan_of_the_coded_profile_is_within_the_default_limits(height):
    """The default limits grow with the declared image (issue 30), and still admit every file the coded profile
    plans, at any --bpp up to 8 and any size up to a tile, in colour or gray."""
    from ddcodec.encoder.ratecontrol import plan
    from ddcodec.format.limits import check_budget

    for width, channels, bpp in itertools.product(SIDES, (1, 3), (0.05, 0.3, 0.8, 2, 8)):
        try:
            p = plan(height, width, channels, bpp=bpp, coded_input=True)
        except ddcodec.InputError:  # too small a budget for any network
            continue
        check_budget(p.arch)


def test_a_photo_at_8_bpp_in_tiles_is_within_the_default_limits():
    from ddcodec.encoder.ratecontrol import plan
    from ddcodec.format import tiles
    from ddcodec.format.limits import check_tiled_budget

    regions = tiles.tile_regions(3024, 4032, tiles.TILE_SIDE, tiles.TILE_SIDE)
    check_tiled_budget([(plan(h, w, 3, bpp=8, coded_input=True).arch, None) for _, _, h, w in regions], 3024, 4032, 3)


def test_declared_tables_longer_than_the_tensors_are_refused():
    arch = Architecture(8, 8, 3, (2, 2, 2, 2))
    sizes = [int(np.prod(s)) for s in arch.tensor_shapes()]
    descriptor = bytes([GEOMETRIC, 0, 0xFF, 0xFF, 0x03, 0x00, 0x80]) + bytes([CATEGORICAL, 0, 0x80, 0x80, 0x04])
    body = b"".join([descriptor] * len(sizes))
    data = pack(Header(arch, 0, RANGE, (0,) * len(sizes)), body)
    with pytest.raises(BitstreamError, match="model"):
        decode_array(data)


@pytest.mark.parametrize("coder", [RANGE, ZSTD])
def test_coded_data_must_end_exactly_where_its_symbols_do(encoded, coder):
    header, _ = parse(encoded.data)
    rng = np.random.default_rng(0)
    ints = [rng.integers(-20, 20, s) for s in header.arch.tensor_shapes()]
    payload = encode_payload(Header(header.arch, header.seed, coder, header.step_codes), ints)
    good = pack(Header(header.arch, header.seed, coder, header.step_codes), payload)
    decode_array(good)
    for bad in (payload + b"\0" * 8, payload[:-4], payload + b"x"):
        with pytest.raises(BitstreamError):
            decode_array(pack(Header(header.arch, header.seed, coder, header.step_codes), bad))


def test_reading_stops_at_the_largest_legal_stream():
    class Endless(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            b[:] = bytes(len(b))
            return len(b)

    with pytest.raises(BitstreamError, match="larger than any"):
        ddcodec.decode(io.BufferedReader(Endless()))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_streams_with_a_valid_crc_raise_only_ddcodec_errors(encoded, edits):
    body = bytearray(encoded.data[:-4])
    for pos, value in edits:
        body[pos % len(body)] = value
    try:
        decode_array(with_crc(bytes(body)))
    except DdcodecError:
        pass


def test_atomic_writes_clean_up_on_exit_and_follow_the_umask(tmp_path):
    def dies(tmp):
        tmp.write_bytes(b"half")
        raise SystemExit(143)  # what SIGTERM becomes in the command line

    from ddcodec.io.images import atomic_write

    with pytest.raises(SystemExit):
        atomic_write(tmp_path / "x.ddc", dies)
    assert list(tmp_path.iterdir()) == []
    old = os.umask(0o022)
    try:
        write_bytes(tmp_path / "y.ddc", b"data")
    finally:
        os.umask(old)
    assert (tmp_path / "y.ddc").stat().st_mode & 0o777 == 0o644


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "ddcodec.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})


@pytest.fixture
def two_images(tmp_path):
    from PIL import Image

    image = Image.open(DATA / "kodim23_64.png").convert("RGB").crop((0, 0, 24, 24))
    for name in ("a.png", "b.png"):
        image.save(tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("args, message", [
    (("a.png", "b.png"), "exists"),                     # v0.5 overwrote b.png with .ddc bytes
    (("a.png", "a.png"), "also an input"),              # and destroyed the source
    (("a.png", "sub/a.png", "out"), "both be written"),  # same stem, one folder
    (("a.png", "x.ddc", "--bpp", "inf"), "bpp must"),
    (("a.png", "x.ddc", "--lr", "nan"), "lr must"),
    (("a.png", "x.ddc", "--lr", "-1"), "lr must"),
    (("a.png", "x.ddc", "--batch", "-1"), "batch must"),
    (("a.png", "b.png", "nofolder.ddc"), "must be an existing folder"),
])
def test_careless_encode_commands_are_one_line_errors_and_touch_nothing(two_images, args, message):
    (two_images / "sub").mkdir()
    (two_images / "out").mkdir()
    (two_images / "sub" / "a.png").write_bytes((two_images / "a.png").read_bytes())
    before = {p: p.read_bytes() for p in two_images.rglob("*") if p.is_file()}
    result = run_cli("encode", *args, "--iters", "2", "--tries", "1", "--quiet", cwd=two_images)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in two_images.rglob("*") if p.is_file()} == before


def test_info_on_a_device_is_bounded(tmp_path):
    result = run_cli("info", "/dev/zero", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("error:")


def test_an_unexpected_failure_is_one_line_and_exit_1(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ddcodec import cli

    monkeypatch.setattr("ddcodec.format.limits.decode_cost", lambda *args: 1 / 0)
    (tmp_path / "x.ddc").write_bytes(Path(DATA / "v1_kodim19_48x40.ddc").read_bytes())
    result = CliRunner().invoke(cli.main, ["info", str(tmp_path / "x.ddc")])
    assert result.exit_code == 1 and "unexpected ZeroDivisionError" in result.output and "Traceback" not in result.output
