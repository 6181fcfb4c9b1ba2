"""Tiled files (format version 5, docs/FORMAT.md "Tiles (version 5)"), on tiny tiles: the largest tile side is set to
32 so that a 64x48 crop is four balanced tiles of 32x24 (the golden file, written before tiles were balanced, has two
32x32 and two 32x16)."""

import hashlib
import io
import random
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

import ddcodec
from ddcodec import BitstreamError, DecodeBudgetError, Limits
from ddcodec.decoders import npdecode, torchdecode
from ddcodec.encoder.encode import _tile_bpp
from ddcodec.encoder.ratecontrol import plan
from ddcodec.format import tiles
from ddcodec.format.limits import check_tiled_budget, decode_cost
from ddcodec.format.reader import TiledHeader, read_ints, read_tiled

from .conftest import DATA, crop
from .test_cli import assert_one_line_error, run

GOLDEN = DATA / "v5_kodim23_64x48.ddc"


@pytest.fixture(autouse=True)
def tiny_tiles(monkeypatch):
    monkeypatch.setattr(tiles, "TILE_SIDE", 32)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return crop("kodim23")[:48]


@pytest.fixture(scope="module")
def tiled(image) -> ddcodec.EncodeResult:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tiles, "TILE_SIDE", 32)
        return ddcodec.encode(image, bpp=2.0, iters=20, tries=1)


def test_a_large_image_is_a_tiled_file_within_its_budget(tiled, image):
    data = tiled.data
    assert data[4] == 5 and len(tiled.tiles) == 4 and tiled.n_bytes <= 2.0 * 64 * 48 / 8
    assert tiled.bpp == pytest.approx(8 * len(data) / (64 * 48))
    assert tiled.n_params == sum(t.n_params for t in tiled.tiles)
    header = ddcodec.read_header(data)
    assert isinstance(header, TiledHeader) and (header.height, header.width, header.tile_width) == (48, 64, 32)
    assert [(h.arch.height, h.arch.width) for h in header.tiles] == [(24, 32)] * 4
    pixels = ddcodec.decode(data, output="numpy")
    assert pixels.shape == image.shape
    for t, part in zip(read_tiled(data)[0].tiles, tiled.tiles):  # each tile is its region, decoded alone
        assert np.array_equal(pixels[t.top : t.top + t.height, t.left : t.left + t.width],
                              npdecode.decode_array(part.data))


@pytest.mark.parametrize("length, most, sides", [
    (1080, 1024, [540, 540]), (1920, 1024, [960, 960]), (4032, 1024, [1008] * 4), (6000, 1024, [1000] * 6),
    (1024, 1024, [1024]), (1025, 1024, [513, 512]), (2050, 1024, [684, 684, 682]), (33, 32, [17, 16]),
    (10, 32, [10]),
])
def test_tiles_are_the_fewest_with_balanced_sizes(length, most, sides):
    side = tiles.tile_side(length, most)
    assert [w for _, _, _, w in tiles.tile_regions(1, length, 1, side)] == sides


def test_no_edge_tile_is_thin():
    for most in (32, 1024):
        for length in range(1, 6 * most):
            side = tiles.tile_side(length, most)
            n = -(-length // most)
            widths = [w for _, _, _, w in tiles.tile_regions(1, length, 1, side)]
            assert len(widths) == n and max(widths) <= most and max(widths) - min(widths) <= n - 1
            assert side >= tiles.MIN_TILE_SIDE


def test_an_image_of_one_tile_stays_a_version_4_file(image):
    assert ddcodec.encode(image[:32, :32], bpp=2.0, iters=5, tries=1).data[4] == 4


def test_numpy_and_torch_decoders_agree(tiled):
    a, b = npdecode.decode_array(tiled.data), torchdecode.decode_array(tiled.data)
    diff = np.abs(a.astype(int) - b)
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.001


def test_one_and_two_threads_decode_the_same_pixels(tiled, monkeypatch):
    monkeypatch.setattr(npdecode.os, "cpu_count", lambda: 2)
    two = npdecode.decode_array(tiled.data)
    monkeypatch.setattr(npdecode, "MAX_THREADS", 1)
    assert np.array_equal(npdecode.decode_array(tiled.data), two)


def test_golden_file():
    """A version-5 file (kodim23, 64x48 crop in 32x32 tiles, 2 bpp, 100 iterations, seed 3): its tiles' integers
    hash as written, its pixels are the committed PNG (torch exactly, NumPy within one level)."""
    data = GOLDEN.read_bytes()
    digest = hashlib.sha256()
    for t in read_tiled(data)[0].tiles:
        for q in read_ints(t.data)[1]:
            digest.update(q.astype("<i8").tobytes())
    assert digest.hexdigest() == "a8613e181228067dc92aa682f8e89cf1b3bf94092dceb2e7c5aed862a9ba8029"
    expected = np.asarray(Image.open(DATA / "v5_kodim23_64x48.png"))
    np.testing.assert_array_equal(ddcodec.decode(data, backend="torch", output="numpy"), expected)
    assert np.abs(ddcodec.decode(data, backend="numpy", output="numpy").astype(int) - expected).max() <= 1


def test_every_truncation_is_a_bitstream_error():
    data = GOLDEN.read_bytes()
    for n in range(len(data)):
        with pytest.raises(BitstreamError):
            npdecode.decode_array(data[:n])


def test_random_byte_flips_are_bitstream_errors_and_quick():
    data, rng = GOLDEN.read_bytes(), random.Random(0)
    for _ in range(300):
        damaged = bytearray(data)
        damaged[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        t0 = time.perf_counter()
        with pytest.raises(BitstreamError):
            npdecode.decode_array(bytes(damaged))
        assert time.perf_counter() - t0 < 0.5


def _reindexed(data: bytes, lengths: list[int], head: dict | None = None) -> bytes:
    """The file with its index (and header fields) replaced and the index's CRC recomputed: a crafted file."""
    t = read_tiled(data)[0]
    fields = dict(height=t.height, width=t.width, channels=t.channels, th=t.tile_height, tw=t.tile_width,
                  count=len(lengths)) | (head or {})
    out = struct.pack("<4sBHHBHHI", data[:4], 5, fields["height"], fields["width"], fields["channels"], fields["th"],
                      fields["tw"], fields["count"]) + struct.pack(f"<{len(lengths)}I", *lengths)
    return out + struct.pack("<I", zlib.crc32(out)) + b"".join(x.data for x in t.tiles)


@pytest.mark.parametrize("change, message", [
    (lambda n: ([n[1], n[0], *n[2:]], None), "tile"),  # swapped lengths: tiles cut in the wrong places
    (lambda n: ([n[0] + 1, *n[1:]], None), "add up"),
    (lambda n: (n[:3], None), "tiles in the index"),
    (lambda n: (n, {"th": 8}), "tile size"),
    (lambda n: (n, {"tw": 64, "count": 4}), "tiles in the index"),
    (lambda n: (n, {"channels": 1}), "channels"),
    (lambda n: (n, {"height": 40}), "tile at"),
    (lambda n: (n, {"count": 2**32 - 1}), "tiles in the index"),
])
def test_a_crafted_tile_index_is_a_bitstream_error(change, message):
    data = GOLDEN.read_bytes()
    lengths = [len(t.data) for t in read_tiled(data)[0].tiles]
    assert lengths[0] != lengths[1]
    with pytest.raises(BitstreamError, match=message):
        npdecode.decode_array(_reindexed(data, *change(lengths)))


def test_a_damaged_tile_index_fails_its_crc():
    damaged = bytearray(GOLDEN.read_bytes())
    damaged[20] ^= 1
    with pytest.raises(BitstreamError, match="CRC-32 mismatch in the tile index"):
        ddcodec.decode(bytes(damaged))


def test_the_decode_cost_of_a_tiled_file_is_its_tiles():
    data = GOLDEN.read_bytes()
    _, headers = read_tiled(data)
    costs = [decode_cost(h.arch) for h in headers]
    cost = check_tiled_budget([(h.arch, None) for h in headers], 48, 64, 3)
    assert cost.memory == max(c.memory for c in costs) + 3 * 48 * 64 * 3
    assert cost.macs == sum(c.macs for c in costs) and cost.pixels == sum(c.pixels for c in costs)
    with pytest.raises(DecodeBudgetError, match="MAX_MEMORY"):
        ddcodec.decode(data, limits=Limits(memory=cost.memory - 1))
    with pytest.raises(DecodeBudgetError, match="MAX_MACS"):
        ddcodec.decode(data, limits=Limits(macs=sum(c.macs for c in costs[:3])))


@pytest.mark.parametrize("height, width", [(3024, 4032), (4000, 6000)])
def test_a_phone_photo_in_tiles_is_within_the_default_limits(monkeypatch, height, width):
    """The default coded profile at the default quality, in 1024x1024 tiles (issue 31: refused in one piece)."""
    monkeypatch.setattr(tiles, "TILE_SIDE", 1024)
    rate = _tile_bpp((height, width, 3), None, None, None)
    regions = tiles.tile_regions(height, width, *tiles.tile_grid(height, width))
    plans = [plan(h, w, 3, bpp=rate, coded_input=True) for _, _, h, w in regions]
    assert sum(p.budget for p in plans) + tiles.overhead(len(plans)) <= int(0.4 * height * width / 8)
    cost = check_tiled_budget([(p.arch, None) for p in plans], height, width, 3)
    assert cost.memory < 0.7e9


def test_pillow_opens_a_tiled_file():
    data = GOLDEN.read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "DDC" and im.size == (64, 48) and im.mode == "RGB"
        assert np.array_equal(np.asarray(im), ddcodec.decode(data, output="numpy"))


def test_the_cli_encodes_decodes_and_shows_a_tiled_file(image, tmp_path):
    src, ddc, png = tmp_path / "wide.png", tmp_path / "wide.ddc", tmp_path / "back.png"
    Image.fromarray(image).save(src)
    result = run("encode", src, ddc, "--bpp", "2", "--iters", "10", "--tries", "1", "--quiet")
    assert result.exit_code == 0, result.output
    assert ddc.read_bytes()[4] == 5 and ddc.stat().st_size <= 2 * 64 * 48 / 8
    assert run("decode", ddc, png).exit_code == 0 and Image.open(png).size == (64, 48)
    import json

    info = json.loads(run("info", ddc, "--json").output)
    assert info["version"] == 5 and info["tiles"] == 4 and info["tile_size"] == [32, 24]
    assert info["first_tile"]["version"] == 4 and info["parameters"] > 0
    assert "tiles: 4" in run("info", ddc).output
    damaged = tmp_path / "damaged.ddc"
    damaged.write_bytes(ddc.read_bytes()[:-1])
    assert_one_line_error(run("decode", damaged, tmp_path / "x.png"))
    assert_one_line_error(run("info", damaged))


def test_tiles_fitted_in_two_worker_processes_make_the_file_one_process_makes(image, monkeypatch):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        here = ddcodec.encode(image, bpp=2.0, iters=20, tries=1)
    finally:
        torch.set_num_threads(threads)
    spread = ddcodec.encode(image, bpp=2.0, iters=20, tries=1, jobs=2, threads=1)
    assert spread.data == here.data and len(spread.tiles) == 4


def test_workers_report_their_tiles_on_the_log(image, capsys):
    ddcodec.encode(image, bpp=2.0, iters=10, tries=1, jobs=2, threads=1, progress=True)
    log = capsys.readouterr().err
    assert all(f"image 1/1, tile {k}/4: fit" in log for k in range(1, 5)), log


def test_a_rerun_with_kept_tiles_fits_only_the_missing_ones(image, tmp_path, monkeypatch):
    from ddcodec.encoder import encode as encoder

    first = ddcodec.encode(image, bpp=2.0, iters=10, tries=1, resume=tmp_path)
    records = sorted(tmp_path.glob("*.json"))
    assert len(records) == 4
    records[0].write_text("{not json")  # a record cut short: its tile is fitted again, the others are reused
    fitted = []
    real_fit = encoder._fit
    monkeypatch.setattr(encoder, "_fit", lambda task, progress: fitted.append(task.label) or real_fit(task, progress))
    again = ddcodec.encode(image, bpp=2.0, iters=10, tries=1, resume=tmp_path)
    assert len(fitted) == 1 and again.data == first.data
    fitted.clear()
    ddcodec.encode(image, bpp=2.0, iters=10, tries=1, seed=1, resume=tmp_path)  # another seed: every tile anew
    assert len(fitted) == 4


def test_the_cli_spreads_one_photos_tiles_and_resumes_them(image, tmp_path):
    src, ddc = tmp_path / "wide.png", tmp_path / "wide.ddc"
    Image.fromarray(image).save(src)
    result = run("encode", src, ddc, "--bpp", "2", "--iters", "10", "--tries", "1", "--quiet", "--jobs", "2",
                 "--threads", "1", "--resume")
    assert result.exit_code == 0, result.output
    assert ddc.read_bytes()[4] == 5 and not (tmp_path / "wide.ddc.tiles").exists()
    assert_one_line_error(run("encode", src, "-", "--resume"))


def _die(task, progress):
    import os

    os._exit(1)


def test_a_worker_that_dies_is_an_input_error_not_a_hang():
    from ddcodec.encoder.workers import map_in_processes

    with pytest.raises(ddcodec.InputError, match="fewer jobs"):
        list(map_in_processes(_die, [1, 2], jobs=2, threads=1))
