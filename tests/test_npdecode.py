"""The NumPy decoder, written from docs/FORMAT.md, against the torch decoder on the same files."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from benchmarks.decode_speed import random_stream
from ddcodec.decoders import npdecode
from ddcodec.decoders import torchdecode
from ddcodec.format.architecture import Architecture, ArmShape
from ddcodec.format.entropy import CODERS

from .conftest import DATA

ARCHS = [
    (Architecture(64, 64, 3, (16, 16, 16, 16, 16)), "range"),
    (Architecture(37, 53, 1, (5, 7, 9, 4)), "zstd"),  # grayscale, sizes that are cropped
    (Architecture(20, 30, 3, (8, 6)), "range"),  # one layer: no upsampling
    (Architecture(96, 128, 3, (32,) * 6), "range"),
    (Architecture(50, 70, 3, (12,) * 5, (2, 1, 0, 1)), "range"),  # coded input: latent grids at three scales
    (Architecture(50, 70, 3, (12,) * 5, (2, 1, 0, 1), arm=ArmShape()), "zstd"),  # the same with the ARM
    (Architecture(90, 100, 3, (6, 8, 12)), "range"),  # last hidden layer wider than its input; 2 blocks, one partial
]


def assert_same_up_to_rounding(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to float rounding: at most one level apart, on at most 0.1 % of the values."""
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and np.mean(diff > 0) <= 0.001


@pytest.mark.parametrize("arch,coder", ARCHS, ids=lambda v: str(v))
def test_both_decoders_agree_on_made_up_files(arch, coder):
    data = random_stream(arch, seed=5, coder=CODERS[coder])
    pixels = npdecode.decode_array(data)
    assert pixels.shape == (arch.height, arch.width, arch.channels) and pixels.std() > 5
    assert_same_up_to_rounding(pixels, torchdecode.decode_array(data))


def test_both_decoders_agree_on_an_encoded_file(encoded):
    assert_same_up_to_rounding(npdecode.decode_array(encoded.data), torchdecode.decode_array(encoded.data))


def test_numpy_decoder_reads_format_version_1():
    v1 = (DATA / "v1_kodim19_48x40.ddc").read_bytes()  # decoded pixels committed beside it
    assert_same_up_to_rounding(npdecode.decode_array(v1), np.asarray(Image.open(DATA / "v1_kodim19_48x40.png")))


@pytest.mark.parametrize("h,w", [(1, 1), (1, 5), (4, 3), (7, 10)])
def test_upsample_is_pytorchs_bilinear(h, w):
    x = np.random.default_rng(h * w).random((h, w), dtype=np.float32)
    ref = F.interpolate(torch.from_numpy(x)[None, None], scale_factor=2, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(npdecode.upsample(x), ref[0, 0].numpy(), rtol=1e-6, atol=1e-7)


def test_decodes_in_several_threads_agree_and_leave_blas_threads_as_found():
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    data = random_stream(Architecture(96, 128, 3, (16,) * 6))
    reference = npdecode.decode_array(data)
    with ThreadPoolExecutor(4) as pool:
        assert all(np.array_equal(p, reference) for p in pool.map(lambda _: npdecode.decode_array(data), range(8)))
    assert blas_threads() == before
