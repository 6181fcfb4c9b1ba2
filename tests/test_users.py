"""Photographs as users have them and commands as careless users type them (issue 19): orientation, 16-bit and float
images, every dropped thing said, `-` for standard input and output, every extension Pillow reads, Pillow's save
options; outputs never replaced unless asked at the moment of writing, inputs (masks too) protected, modes kept, name
lengths checked first, OS errors and worker errors one line with exit 2. Each test here failed on v0.9."""

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import ddcodec
from ddcodec import InputError
from ddcodec.io.images import to_array, write_bytes

from .conftest import DATA

FIXTURE = DATA / "v2_kodim05_40x48.ddc"


def png_bytes(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", **options)
    return out.getvalue()


def loaded(data: bytes) -> tuple[np.ndarray, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arr = to_array(Image.open(io.BytesIO(data)))
    return arr, [str(w.message) for w in caught]


def test_exif_orientation_is_applied_and_said():
    image = Image.fromarray(np.arange(6, dtype=np.uint8).reshape(2, 3) * 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = io.BytesIO()
    image.save(out, "PNG", exif=exif)
    arr, said = loaded(out.getvalue())
    assert arr.shape == (3, 2, 1)
    np.testing.assert_array_equal(arr[:, :, 0], np.asarray(image.transpose(Image.Transpose.ROTATE_270)))
    assert len(said) == 1 and "orientation" in said[0]


@pytest.mark.parametrize("values, expected", [([0, 255], [0, 1]), ([0, 256], [0, 1]), ([0, 65535], [0, 255]),
                                               ([32896, 257], [128, 1])])
def test_16_bit_images_keep_their_brightness(values, expected):
    arr, _ = loaded(png_bytes(Image.fromarray(np.array([values], np.uint16))))
    assert arr[:, :, 0].ravel().tolist() == expected


def test_float_images_in_0_to_1_keep_their_brightness_and_other_ranges_are_levels():
    arr = to_array(Image.fromarray(np.array([[0, 0.5, 1]], np.float32)))
    assert arr.ravel().tolist() == [0, 128, 255]
    with pytest.warns(UserWarning, match="clipped"):
        arr = to_array(Image.fromarray(np.array([[-3, 100.4, 300]], np.float32)))
    assert arr.ravel().tolist() == [0, 100, 255]


@pytest.mark.parametrize("mode", ["L", "RGB", "P"])
def test_trns_transparency_is_said(mode):
    image = Image.new(mode, (4, 4))
    transparency = (0, 0, 0) if mode == "RGB" else 0
    _, said = loaded(png_bytes(image, transparency=transparency))
    assert len(said) == 1 and "transparency" in said[0]


def test_extra_frames_and_icc_profiles_and_alpha_are_named_in_one_warning():
    from .icc import adobe_rgb

    icc = adobe_rgb()  # converted to sRGB (an sRGB profile is not said: tests/test_colour.py)
    frames = [Image.new("RGBA", (4, 4), (k * 60, 0, 0, 128)) for k in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:], icc_profile=icc)
    _, said = loaded(out.getvalue())
    assert len(said) == 1
    assert all(word in said[0] for word in ("alpha", "frames", "ICC"))


def test_the_api_refuses_what_it_cannot_take_with_a_short_message():
    for bad in (None, 3, [1, 2], b"\x89PNG\r\n\x1a\n" + bytes(5000)):
        with pytest.raises(InputError) as info:
            ddcodec.encode(bad, iters=1, tries=1)
        assert len(str(info.value)) < 200


def test_the_api_takes_an_image_file_s_bytes():
    data = png_bytes(Image.new("RGB", (8, 8), (200, 10, 10)))
    result = ddcodec.encode(data, iters=2, tries=1, ratio=2)
    assert ddcodec.decode(result.data).size == (8, 8)


def test_pillow_save_takes_pillow_s_usual_options(tmp_path):
    from ddcodec.pillow import encode_options

    assert encode_options({"quality": 90, "optimize": True, "dpi": (72, 72), "iters": 5}) == {"quality": 5, "iters": 5}
    assert encode_options({"quality": 0})["quality"] == 1
    Image.new("RGB", (64, 64)).save(tmp_path / "x.ddc", quality=75, optimize=True, iters=2, tries=1)
    assert Image.open(tmp_path / "x.ddc").size == (64, 64)


def test_folders_take_every_extension_pillow_reads(tmp_path):
    from ddcodec.io.outputs import expand_inputs, image_suffixes

    image = Image.new("RGB", (4, 4))
    for name, fmt in (("a.jfif", "JPEG"), ("b.jpe", "JPEG"), ("c.tga", "TGA"), ("d.pbm", "PPM"), ("e.png", "PNG")):
        image.convert("1" if fmt == "PPM" else "RGB").save(tmp_path / name, fmt)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="notes.txt"):
        found = expand_inputs([tmp_path], image_suffixes())
    assert [p.name for p in found] == ["a.jfif", "b.jpe", "c.tga", "d.pbm", "e.png"]


# ---- outputs ------------------------------------------------------------------------------------------------------

def test_an_output_that_appears_while_writing_is_not_replaced(tmp_path):
    target = tmp_path / "x.ddc"

    def sneaky(tmp: Path) -> None:
        tmp.write_bytes(b"new")
        target.write_bytes(b"someone else's")  # created after the check, before the rename

    from ddcodec.io.images import atomic_write

    with pytest.raises(InputError, match="exists"):
        atomic_write(target, sneaky, overwrite=False)
    assert target.read_bytes() == b"someone else's" and os.listdir(tmp_path) == ["x.ddc"]


@pytest.mark.parametrize("skip", [False, True])
def test_the_decode_command_does_not_replace_an_output_created_while_it_runs(tmp_path, monkeypatch, skip):
    """Refused, or with --skip-existing skipped (another decode of the same files wrote it; issue 30)."""
    from ddcodec import cli
    from ddcodec.decoders import decode as decoder

    out = tmp_path / "out.png"
    real = decoder.decode

    def decode_then_race(*args, **kwargs):
        out.write_bytes(b"precious")
        return real(*args, **kwargs)

    monkeypatch.setattr(decoder, "decode", decode_then_race)
    result = CliRunner().invoke(cli.main, ["decode", str(FIXTURE), str(out)] + ["--skip-existing"] * skip)
    assert result.exit_code == (0 if skip else 2) and out.read_bytes() == b"precious"
    assert ("exists" in result.output) != skip


def run_cli(*args, cwd, stdin: bytes = b""):
    return subprocess.run([sys.executable, "-m", "ddcodec.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          input=stdin, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})


def one_line_error(result) -> bool:
    err = result.stderr.decode().strip().splitlines()
    return result.returncode == 2 and len(err) == 1 and err[0].startswith("error:")


def test_restore_refuses_to_write_over_its_mask(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    Image.new("L", (8, 8), 255).save(tmp_path / "mask.png")
    before = (tmp_path / "mask.png").read_bytes()
    result = run_cli("restore", "inpaint", "photo.png", "mask.png", "mask.png", "-y", cwd=tmp_path)
    assert one_line_error(result) and b"also an input" in result.stderr
    assert (tmp_path / "mask.png").read_bytes() == before


def test_overwrite_keeps_the_file_s_mode(tmp_path):
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    out.chmod(0o600)
    result = run_cli("decode", FIXTURE, out, "--overwrite", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_mode & 0o777 == 0o600 and out.read_bytes()[:4] == b"\x89PNG"


def test_long_output_names_work_and_too_long_ones_fail_before_the_work(tmp_path):
    longest = "x" * 251 + ".png"  # 255 bytes: legal
    result = run_cli("decode", FIXTURE, longest, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    result = run_cli("decode", FIXTURE, "y" * 252 + ".png", cwd=tmp_path)
    assert one_line_error(result) and b"name" in result.stderr


def test_a_symlink_loop_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "a.ddc").symlink_to(tmp_path / "b.ddc")
    (tmp_path / "b.ddc").symlink_to(tmp_path / "a.ddc")
    assert one_line_error(run_cli("decode", "a.ddc", "out.png", cwd=tmp_path))
    (tmp_path / "c.ddc").write_bytes(FIXTURE.read_bytes())
    (tmp_path / "o.png").symlink_to(tmp_path / "p.png")
    (tmp_path / "p.png").symlink_to(tmp_path / "o.png")
    assert one_line_error(run_cli("decode", "c.ddc", "o.png", cwd=tmp_path))


def bomb_png() -> bytes:
    """45 bytes: a PNG header declaring 13,417 x 13,417 pixels (180 M) and nothing else."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 13417, 13417, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


def test_a_bomb_image_is_exit_2_in_worker_processes_too(tmp_path):
    from ddcodec.parallel import encode_task

    (tmp_path / "bomb.png").write_bytes(bomb_png())
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    (tmp_path / "out").mkdir()
    result = encode_task([("bomb.png", bomb_png())], {"iters": 1, "tries": 1})
    assert isinstance(result[0], str) and "bomb.png" in result[0]
    result = run_cli("encode", "bomb.png", "out", "--jobs", "2", "--iters", "2", "--quiet", cwd=tmp_path)
    assert one_line_error(result), result.stderr


def test_decode_on_a_missing_gpu_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert one_line_error(run_cli("decode", FIXTURE, "out.png", "--device", "cuda", cwd=tmp_path))


def test_dash_is_standard_input_and_output_in_every_command(tmp_path):
    data = FIXTURE.read_bytes()
    result = run_cli("decode", "-", "out.png", cwd=tmp_path, stdin=data)
    assert result.returncode == 0, result.stderr
    result = run_cli("decode", FIXTURE, "-", cwd=tmp_path)
    assert result.returncode == 0 and Image.open(io.BytesIO(result.stdout)).size == (40, 48)
    assert not (tmp_path / "-").exists()
    result = run_cli("info", "-", "--json", cwd=tmp_path, stdin=data)
    assert result.returncode == 0 and b'"width": 40' in result.stdout
    png = (tmp_path / "out.png").read_bytes()
    result = run_cli("encode", "-", "-", "--ratio", "2", "--iters", "2", "--tries", "1", "--quiet", cwd=tmp_path,
                     stdin=png)
    assert result.returncode == 0, result.stderr
    assert ddcodec.decode(result.stdout).size == (40, 48) and not (tmp_path / "-").exists()


def test_write_bytes_replaces_only_when_asked(tmp_path):
    write_bytes(tmp_path / "x", b"1")
    write_bytes(tmp_path / "x", b"2")  # the library's default: replace, as open(..., "wb") would
    with pytest.raises(InputError):
        write_bytes(tmp_path / "x", b"3", overwrite=False)
    assert (tmp_path / "x").read_bytes() == b"2"


# ---- users' reports of v0.11 (issue 30) ---------------------------------------------------------------------------

def test_skip_existing_skips_an_output_another_encode_wrote_meanwhile(tmp_path, monkeypatch):
    """Two encodes of one folder with --skip-existing at once: whatever the other one writes first is skipped, both
    when it appears while this one encodes that image and when it exists by the time that image's turn comes."""
    import ddcodec.encoder.encode
    from ddcodec import cli

    for name in "abc":
        Image.new("RGB", (16, 16), (40 * ord(name) % 256, 90, 30)).save(tmp_path / f"{name}.png")
    out = tmp_path / "out"
    out.mkdir()
    real, encoded = ddcodec.encoder.encode.encode_many, []

    def alongside_another(images, **options):  # the other command writes a.ddc while this one encodes a, and b.ddc
        encoded.extend(Path(image).stem for image in images)
        (out / "a.ddc").write_bytes(b"the other's")
        (out / "b.ddc").write_bytes(b"the other's")
        return real(images, **options)

    monkeypatch.setattr(ddcodec.encoder.encode, "encode_many", alongside_another)
    args = ["encode", str(tmp_path / "a.png"), str(tmp_path / "b.png"), str(tmp_path / "c.png"), str(out),
            "--skip-existing", "--iters", "2", "--tries", "1", "--bpp", "8", "--quiet"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    assert encoded == ["a", "c"]  # b was there by its turn
    assert (out / "a.ddc").read_bytes() == b"the other's" and (out / "b.ddc").read_bytes() == b"the other's"
    assert ddcodec.decode(out / "c.ddc").size == (16, 16)
    assert "error" not in result.output


def text_chunk_png() -> bytes:
    """A PNG whose zTXt chunk unpacks to 2 MB, more than Pillow's MAX_TEXT_CHUNK."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * 2_000_000, zip=True)
    return png_bytes(Image.new("RGB", (16, 16)), pnginfo=info)


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_unreadable_image_in_a_folder_is_one_error_line_with_pillow_s_reason_and_the_others_go_on(tmp_path, jobs):
    folder, out = tmp_path / "photos", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    (folder / "a.png").write_bytes(text_chunk_png())
    Image.new("RGB", (16, 16), (10, 20, 30)).save(folder / "b.png")
    with pytest.raises(InputError, match="MAX_TEXT_CHUNK"):
        to_array(folder / "a.png")
    result = run_cli("encode", folder, out, "--iters", "2", "--tries", "1", "--bpp", "8", "--quiet", "--jobs", jobs,
                     cwd=tmp_path)
    err = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2 and len(err) == 1, err
    assert err[0].startswith("error: ") and "a.png" in err[0] and "MAX_TEXT_CHUNK" in err[0]
    assert os.listdir(out) == ["b.ddc"]


@pytest.mark.parametrize("orientation", [0, 9])
def test_an_invalid_exif_orientation_is_not_said_to_be_applied(orientation):
    image = Image.fromarray(np.arange(6, dtype=np.uint8).reshape(2, 3) * 40)
    exif = Image.Exif()
    exif[0x0112] = orientation
    arr, said = loaded(png_bytes(image, exif=exif))
    np.testing.assert_array_equal(arr[:, :, 0], np.asarray(image))
    assert not any("applied" in s for s in said) and all("invalid" in s for s in said)
