"""The Pillow plugin: Image.open decodes .ddc files, Image.save encodes them, damage gives Pillow's usual errors."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import ddcodec
from ddcodec.format.container import header_size


def test_open_and_load_decode(encoded, tmp_path):
    path = tmp_path / "p.ddc"
    path.write_bytes(encoded.data)
    with Image.open(path) as image:
        assert image.format == "DDC" and image.size == (64, 64) and image.mode == "RGB"
        assert np.array_equal(np.asarray(image), ddcodec.decode(encoded.data, output="numpy"))
    assert Image.open(io.BytesIO(encoded.data)).convert("L").size == (64, 64)


def test_extension_mime_and_explicit_registration():
    ddcodec.register_pillow()  # twice is harmless
    assert Image.registered_extensions()[".ddc"] == "DDC"
    assert Image.MIME["DDC"] == "image/x-ddc"


def test_save_encodes_with_the_encoders_options(parrot, tmp_path):
    Image.fromarray(parrot).save(tmp_path / "s.ddc", bpp=2.0, iters=10, tries=1)
    assert (tmp_path / "s.ddc").stat().st_size <= 2.0 * 64 * 64 / 8
    assert Image.open(tmp_path / "s.ddc").size == (64, 64)
    with pytest.raises(TypeError):
        Image.fromarray(parrot).save(io.BytesIO(), format="DDC", colour="blue")


def test_damaged_files_raise_pillows_errors(encoded, tmp_path):
    data = encoded.data
    for content in (data[:-5], data[:20], b"\x89DDC" + bytes(60)):
        with pytest.raises(UnidentifiedImageError):
            Image.open(io.BytesIO(content))
    payload_start = header_size(encoded.arch.layers, len(encoded.arch.tensor_shapes()))
    bad = bytearray(data[:-4])
    bad[payload_start] = 9  # an unknown tensor-model kind, under a valid CRC
    bad += struct.pack("<I", zlib.crc32(bad))
    image = Image.open(io.BytesIO(bytes(bad)))
    with pytest.raises(OSError, match="broken .ddc data"):
        image.load()


def test_a_future_format_version_is_unidentified_with_the_reason_in_a_warning(encoded):
    """Pillow's way for a file a plugin recognizes but cannot read (WebP without libwebp): `_accept` gives the reason,
    Pillow warns it, then raises UnidentifiedImageError (issue 30)."""
    future = bytearray(encoded.data[:-4])
    future[4] = 6
    future += struct.pack("<I", zlib.crc32(future))
    with pytest.warns(UserWarning, match="format version 6.*reads versions 1 to 5"):
        with pytest.raises(UnidentifiedImageError):
            Image.open(io.BytesIO(bytes(future)))
