import json

import pytest
from click.testing import CliRunner
from PIL import Image

from ddcodec.cli import main

from .conftest import DATA

SRC = str(DATA / "kodim23_64.png")


@pytest.fixture(scope="module")
def ddc(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "p.ddc"
    result = CliRunner().invoke(main, ["encode", SRC, str(out), "--bpp", "1.5", "--iters", "30", "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result):
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output


def test_encode_prints_size_bpp_psnr_and_time(ddc):
    size = ddc.stat().st_size
    assert size <= 1.5 * 64 * 64 / 8
    out = run("encode", SRC, ddc.with_name("again.ddc"), "--ratio", "20", "--iters", "5", "--quiet").output
    assert "bytes" in out and "bpp" in out and "PSNR" in out and " s on cpu" in out


def test_decode_then_info(ddc, tmp_path):
    for ext in ("png", "ppm", "bmp"):
        assert run("decode", ddc, tmp_path / f"d.{ext}").exit_code == 0
        assert Image.open(tmp_path / f"d.{ext}").size == (64, 64)
    info = json.loads(run("info", ddc, "--json").output)
    assert info["bytes"] == ddc.stat().st_size and info["width"] == 64 and info["coder"] == "range"
    assert info["parameters"] > 0 and info["bpp"] == pytest.approx(8 * info["bytes"] / 64**2)
    assert "widths" in run("info", ddc).output
    assert info["version"] == 4 and "upsampling_taps" in info and "refinement" in info


def test_info_reads_every_file_the_decoder_reads():
    """Every file in tests/data (the golden files of each version, ARM files included, the images and the bombs):
    info shows the fields of what the decoder decodes, and gives one error line for what it refuses (issue 30)."""
    from ddcodec.decoders.decode import decode_array
    from ddcodec.errors import DdcodecError
    from ddcodec.format.reader import read_header

    decoded = []
    for path in sorted(p for p in DATA.rglob("*") if p.is_file()):
        try:
            pixels = decode_array(path.read_bytes())
        except DdcodecError:
            assert_one_line_error(run("info", path))
            continue
        result = run("info", path, "--json")
        assert result.exit_code == 0, (path, result.output)
        info = json.loads(result.output)
        header = read_header(path)
        assert (info["height"], info["width"], info["channels"]) == pixels.shape
        if info["version"] == 5:  # a tiled file: its tiles' count, and the first tile's fields
            info, header = info["first_tile"] | {k: info[k] for k in ("tiles", "decode_work")}, header.tiles[0]
            assert info["tiles"] == len(read_header(path).tiles)
        assert info["step_codes"] == list(header.step_codes) and (info["arm"] is None) == (header.arch.arm is None)
        decoded.append(info)
    assert {i["version"] for i in decoded} == {1, 2, 3, 4} and any(i["arm"] for i in decoded)
    assert any("tiles" in i for i in decoded)
    assert all(i["decode_work"] > 0 for i in decoded)


def test_info_takes_a_folder_s_ddc_files_and_goes_on_past_a_bad_one(tmp_path):
    import shutil

    for path in DATA.glob("v*.ddc"):
        shutil.copy(path, tmp_path)
    result = run("info", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(line)["file"] for line in result.output.splitlines()) == sorted(
        str(tmp_path / p.name) for p in DATA.glob("v*.ddc"))
    (tmp_path / "bad.ddc").write_bytes(b"\x89DDC")
    result = run("info", tmp_path, "--json")
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1 + len(list(DATA.glob("v*.ddc")))
    assert f"error: {tmp_path / 'bad.ddc'}: " in result.output
    assert_one_line_error(run("info", tmp_path / "bad.ddc"))
    assert_one_line_error(run("info", DATA.parent.parent / "docs"))  # a folder without .ddc files


def test_json_reports_an_exact_image_s_psnr_as_null(tmp_path, monkeypatch):
    import ddcodec.encoder.encode

    monkeypatch.setattr(ddcodec.encoder.encode, "psnr", lambda a, b: float("inf"))  # as for a flat image coded exactly
    result = run("encode", SRC, tmp_path / "exact.ddc", "--iters", "5", "--tries", "1", "--json", "--quiet")
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert "Infinity" not in line and json.loads(line)["psnr"] is None


def test_damaged_files_give_one_line_and_no_output(ddc, tmp_path):
    data = ddc.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    for name, content in [("trunc.ddc", data[:-7]), ("flip.ddc", bytes(flipped)), ("empty.ddc", b"")]:
        (tmp_path / name).write_bytes(content)
        result = run("decode", tmp_path / name, tmp_path / "out.png")
        assert_one_line_error(result)
        assert_one_line_error(run("info", tmp_path / name))
    assert not (tmp_path / "out.png").exists()
    assert {p.name for p in tmp_path.iterdir()} == {"trunc.ddc", "flip.ddc", "empty.ddc"}


@pytest.mark.parametrize("content", [b"", b"not an image at all", None])
def test_bad_images_give_one_line_and_no_output(tmp_path, content):
    src = tmp_path / "in.png"
    if content is not None:
        src.write_bytes(content)
    result = run("encode", src, tmp_path / "out.ddc", "--iters", "5")
    assert_one_line_error(result)
    assert not (tmp_path / "out.ddc").exists()


def test_bad_options_give_one_line(tmp_path):
    assert_one_line_error(run("encode", SRC, tmp_path / "o.ddc", "--bpp", "0.001", "--iters", "5"))
    assert_one_line_error(run("encode", SRC, tmp_path / "missing" / "o.ddc", "--iters", "5"))
    assert_one_line_error(run("decode", tmp_path / "nothing.ddc", tmp_path / "o.png"))
    assert_one_line_error(run("encode", SRC, tmp_path / "o.ddc", "--lambda", "1e-3", "--input", "seed"))
    assert not list(tmp_path.iterdir())


def test_encode_at_a_lambda(tmp_path):
    result = run("encode", SRC, tmp_path / "l.ddc", "--lambda", "0.01", "--iters", "5", "--tries", "1", "--quiet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "l.ddc").stat().st_size > 0


def test_an_image_above_the_decode_limits_is_refused_with_a_size_that_fits(tmp_path, monkeypatch):
    """Issue 31: the refusal says what decoding the file would need, the limit, and a size to resize to, which
    encodes (a low memory limit stands in for the default's 1 GiB, which refuses 12-megapixel photos)."""
    monkeypatch.setattr("ddcodec.format.limits.MAX_MEMORY", 4_220_000)
    result = run("encode", SRC, tmp_path / "big.ddc", "--bpp", "4", "--iters", "2", "--tries", "1", "--quiet")
    assert_one_line_error(result)
    message = result.output
    assert "64x64" in message and "MB of memory (the limit is 4.2 MB)" in message and "MAX_MEMORY" not in message
    width, height = map(int, message.split("resize it to ")[1].split(" ")[0].split("x"))
    assert 32 <= width == height < 64 and not (tmp_path / "big.ddc").exists()
    Image.open(SRC).resize((width, height)).save(tmp_path / "small.png")
    result = run("encode", tmp_path / "small.png", tmp_path / "small.ddc", "--bpp", "4", "--iters", "2", "--tries",
                 "1", "--quiet")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("limit, option, value", [("MAX_MEMORY", "--max-memory", "64M"),
                                                  ("MAX_PIXELS", "--max-pixels", "1e4"),
                                                  ("MAX_MACS", "--max-macs", "1e9")])
def test_decode_refusal_names_the_option_that_raises_the_limit(ddc, tmp_path, monkeypatch, limit, option, value):
    monkeypatch.setattr(f"ddcodec.format.limits.{limit}", 100)
    result = run("decode", ddc, tmp_path / "out.png")
    assert_one_line_error(result)
    assert f"`ddcodec decode {option}`" in result.output and not (tmp_path / "out.png").exists()
    assert run("decode", ddc, tmp_path / "out.png", option, value).exit_code == 0
    assert Image.open(tmp_path / "out.png").size == (64, 64)
    assert run("decode", ddc, tmp_path / "o.png", option, "lots").exit_code == 2  # click's usage error


def test_effort_picks_the_schedule_and_iters_overrides_it(tmp_path):
    out = run("encode", SRC, tmp_path / "e.ddc", "--effort", "1", "--iters", "12", "--json", "--quiet").output
    assert json.loads(out)["iters"] == 12
    assert_one_line_error(run("encode", SRC, tmp_path / "f.ddc", "--effort", "9"))
    assert not (tmp_path / "f.ddc").exists()


def test_decode_to_unknown_extension_fails_before_decoding(ddc, tmp_path):
    assert_one_line_error(run("decode", ddc, tmp_path / "out.xyz"))
    assert not (tmp_path / "out.xyz").exists()


def test_demo_writes_its_files(tmp_path):
    result = run("demo", "--out", tmp_path, "--iters", "20")
    assert result.exit_code == 0, result.output
    assert "ddcodec" in result.output and "JPEG 2000" in result.output and "PSNR" in result.output
    assert (tmp_path / "sample.ddc").exists() and (tmp_path / "comparison.png").exists()


def test_encode_several_inputs_into_a_folder(tmp_path):
    second = tmp_path / "second.png"
    Image.open(SRC).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second)
    result = run("encode", SRC, second, tmp_path, "--bpp", "2", "--iters", "10", "--batch", "2", "--quiet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "kodim23_64.ddc").exists() and (tmp_path / "second.ddc").exists()
    assert_one_line_error(run("encode", SRC, second, tmp_path / "nofolder", "--iters", "5"))
