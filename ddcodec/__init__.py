"""ddcodec: an image codec whose compressed file is a Deep Decoder's weights.

Names are imported on first use (module __getattr__), so that `import ddcodec` and the command line start fast and
decoding works without torch; importing the package registers the Pillow plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ddcodec.errors import BitstreamError, DdcodecError, DecodeBudgetError, InputError
from ddcodec.pillow import register_pillow
from ddcodec.version import __version__

_LAZY = {
    "encode": "encoder.encode", "encode_many": "encoder.encode", "EncodeResult": "encoder.result",
    "decode": "decoders.decode", "read_header": "format.reader", "Header": "format.container",
    "Limits": "format.limits",
}
__all__ = ["encode", "encode_many", "decode", "read_header", "restore", "register_pillow", "EncodeResult", "Header",
           "Limits", "BitstreamError", "DdcodecError",
           "DecodeBudgetError", "InputError"]

if TYPE_CHECKING:
    from ddcodec.format.container import Header
    from ddcodec.decoders.decode import decode
    from ddcodec.encoder.encode import EncodeResult, encode, encode_many
    from ddcodec.format.limits import Limits
    from ddcodec.format.reader import read_header


def __getattr__(name: str) -> Any:
    if name == "restore":  # the restoration tasks' module (ddcodec.restore.denoise, ...)
        return importlib.import_module(".restore", __name__)
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


register_pillow()
