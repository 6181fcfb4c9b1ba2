"""Colour as a colour-managed viewer shows it (issue 31, item 4): an image with an embedded ICC profile is coded in
sRGB (ddcodec.io.images._in_srgb), said once; an sRGB image is left alone and not warned about; a profile that
cannot be used is ignored, and said. The profiles are built in memory (tests/icc.py)."""

import io
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageCms

import ddcodec
from ddcodec.cli import main
from ddcodec.io.images import to_array

from . import icc

SRGB = ImageCms.createProfile("sRGB")


def tagged(image: Image.Image, profile: bytes | None, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **({"icc_profile": profile} if profile else {}), **options)
    return out.getvalue()


def read(source) -> tuple[np.ndarray, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arr = to_array(source)
    return arr, [str(w.message) for w in caught]


def photo(mode: str = "RGB") -> Image.Image:
    """A small image of varied colours, its first pixel the issue's green (60, 160, 60)."""
    rng = np.random.default_rng(31)
    arr = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    arr[0, 0] = (60, 160, 60)
    return Image.fromarray(arr).convert(mode)


def in_srgb(image: Image.Image, profile: bytes, intent=ImageCms.Intent.PERCEPTUAL) -> np.ndarray:
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    return np.asarray(ImageCms.profileToProfile(image, source, SRGB, renderingIntent=intent, outputMode="RGB"))


def test_an_adobe_rgb_image_is_read_in_srgb_and_said_once():
    adobe = icc.adobe_rgb()
    arr, said = read(tagged(photo(), adobe))
    assert np.array_equal(arr, in_srgb(photo(), adobe))
    assert tuple(arr[0, 0]) == (0, 161, 47)  # what a colour-managed viewer shows, as the issue measured
    assert len(said) == 1 and said[0].count("sRGB") == 1 and "Adobe RGB (1998)" in said[0]
    # the docstring's reason for the intent: a matrix/TRC profile has no perceptual tables, both intents agree
    assert np.array_equal(arr, in_srgb(photo(), adobe, ImageCms.Intent.RELATIVE_COLORIMETRIC))


def test_an_srgb_image_is_untouched_and_not_warned_about():
    srgb = ImageCms.ImageCmsProfile(SRGB).tobytes()
    for mode in ("RGB", "P", "L"):  # L: Pillow's convert("L") keeps the RGB image's profile
        image = photo(mode)
        arr, said = read(tagged(image, srgb))
        untagged, as_usual = read(tagged(image, None))
        assert np.array_equal(arr, untagged) and said == as_usual  # P: "mode P converted to RGB" only


def test_orientation_alpha_and_profile_are_one_warning_and_the_pixels_are_converted_then_turned():
    adobe = icc.adobe_rgb()
    image = photo("RGBA")
    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90° clockwise to view
    arr, said = read(tagged(image, adobe, exif=exif.tobytes()))
    assert np.array_equal(arr, np.rot90(in_srgb(image.convert("RGB"), adobe), -1))
    assert len(said) == 1 and all(word in said[0] for word in ("orientation 6", "alpha", "Adobe RGB", "sRGB"))


def test_a_gray_profile_is_converted_to_srgb_gray_and_stays_one_channel():
    profile = icc.gray(1.8)  # brighter mid-tones in sRGB than as they are
    image = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16))
    arr, said = read(tagged(image, profile))
    rgb = in_srgb(image, profile).astype(int)
    assert arr.shape == (16, 16, 1) and np.ptp(rgb, axis=2).max() <= 1
    assert np.array_equal(arr[:, :, 0], np.round(rgb.mean(axis=2)))
    assert (arr[:, :, 0].astype(int) - np.asarray(image)).max() > 10
    assert len(said) == 1 and "Gray Gamma 1.8" in said[0] and "sRGB" in said[0]


@pytest.mark.parametrize("profile, reason", [(b"not an ICC profile" * 20, "cannot read it"),
                                             (icc.adobe_rgb(), "a RGB profile on a mode L image"),
                                             (icc.gray(1.8), "a GRAY profile on a mode RGB image")])
def test_a_profile_that_cannot_be_used_leaves_the_pixels_and_is_said_to_be_ignored(profile, reason):
    image = photo("L" if "mode L" in reason else "RGB")
    arr, said = read(tagged(image, profile))
    assert np.array_equal(arr, read(tagged(image, None))[0])
    assert len(said) == 1 and "ICC colour profile ignored" in said[0] and reason in said[0]


def test_the_encoder_codes_the_converted_colours_and_the_cli_says_so_once(tmp_path):
    adobe = icc.adobe_rgb()
    src = tmp_path / "adobe.png"
    src.write_bytes(tagged(Image.new("RGB", (16, 16), (60, 160, 60)), adobe))
    with pytest.warns(UserWarning, match="sRGB"):
        result = ddcodec.encode(str(src), iters=300, tries=1, ratio=1)
    decoded = np.asarray(ddcodec.decode(result.data), dtype=float).mean(axis=(0, 1))
    assert np.abs(decoded - (0, 161, 47)).max() <= 15  # the green a viewer showed, not the (60, 160, 60) stored
    out = CliRunner().invoke(main, ["encode", str(src), str(tmp_path / "a.ddc"), "--iters", "2", "--tries", "1",
                                    "--ratio", "1", "--quiet"])
    assert out.exit_code == 0, out.output
    warned = [line for line in out.output.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "converted from its ICC profile" in warned[0]
