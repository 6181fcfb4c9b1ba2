"""Shared fixtures: 64x64 crops of Kodak images and one small encoded stream."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ddcodec

DATA = Path(__file__).parent / "data"
CROPS = ["kodim23", "kodim05", "kodim19"]


def crop(name: str) -> np.ndarray:
    return np.asarray(Image.open(DATA / f"{name}_64.png").convert("RGB"))


@pytest.fixture(scope="session")
def parrot() -> np.ndarray:
    return crop("kodim23")


@pytest.fixture(scope="session")
def encoded(parrot) -> ddcodec.EncodeResult:
    """One 64x64 crop at 2 bpp with a short fit: the stream most tests take apart."""
    return ddcodec.encode(parrot, bpp=2.0, iters=200, seed=7)
