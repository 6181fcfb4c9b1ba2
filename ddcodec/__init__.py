"""ddcodec: an image codec whose compressed file is a Deep Decoder's weights."""

from .decoder import decode
from .encoder import EncodeResult, encode, encode_many
from .errors import BitstreamError, DdcodecError, InputError
from . import restore

__all__ = [
    "encode", "encode_many", "decode", "restore", "EncodeResult", "BitstreamError", "DdcodecError", "InputError",
]
__version__ = "0.5.0"
