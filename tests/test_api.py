"""The library's surface: decode from any source into what the caller asks for, the header, encode's options."""

import inspect
import io

import numpy as np
import pytest
from PIL import Image

import ddcodec
from ddcodec import InputError


def test_decode_sources_and_outputs(encoded, tmp_path):
    path = tmp_path / "p.ddc"
    path.write_bytes(encoded.data)
    pixels = ddcodec.decode(path, output="numpy")
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    with open(path, "rb") as f:
        assert np.array_equal(ddcodec.decode(f, output="numpy"), pixels)
    assert np.array_equal(ddcodec.decode(io.BytesIO(encoded.data), output="numpy"), pixels)
    image = ddcodec.decode(encoded.data)
    assert isinstance(image, Image.Image) and np.array_equal(np.asarray(image), pixels)
    assert np.array_equal(ddcodec.decode(str(path), backend="numpy", output="numpy"), pixels)  # auto: NumPy on CPU
    torch_pixels = ddcodec.decode(str(path), backend="torch", output="numpy")
    assert np.abs(torch_pixels.astype(int) - pixels).max() <= 1


def test_decode_rejects_bad_arguments(encoded):
    with pytest.raises(InputError):
        ddcodec.decode(encoded.data, output="tensor")
    with pytest.raises(InputError):
        ddcodec.decode(encoded.data, backend="jax")
    with pytest.raises(InputError):
        ddcodec.decode(encoded.data, "cuda", backend="numpy")
    with pytest.raises(ddcodec.BitstreamError):
        ddcodec.decode(io.StringIO("text"))


def test_read_header(encoded):
    header = ddcodec.read_header(encoded.data)
    assert header.arch == encoded.arch and header.seed >= 7 and header.coder == 0
    assert len(header.step_codes) == len(encoded.arch.tensor_shapes())
    with pytest.raises(ddcodec.BitstreamError):
        ddcodec.read_header(encoded.data[:-1])


def test_encode_lists_its_options():
    params = inspect.signature(ddcodec.encode).parameters
    assert {"bpp", "ratio", "quality", "iters", "lr", "seed", "tries", "coder", "device", "progress"} <= set(params)
    assert all(p.kind is not p.VAR_KEYWORD for p in params.values())
    assert set(params) - {"image"} <= set(inspect.signature(ddcodec.encode_many).parameters)


def test_typed_and_lazy():
    from importlib import resources

    assert resources.files("ddcodec").joinpath("py.typed").is_file()
    assert "decode" in dir(ddcodec) and "encode" in ddcodec.__all__
    with pytest.raises(AttributeError):
        ddcodec.no_such_name
