"""ddcodec: an image codec whose compressed file is a Deep Decoder's weights.

Names are imported on first use (module __getattr__), so that `import ddcodec` and the command line start fast and
decoding works without torch; importing the package registers the Pillow plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import BitstreamError, DdcodecError, DecodeBudgetError, InputError
from .pillow import register_pillow

__version__ = "0.11.0"

_LAZY = {
    "encode": "encoder", "encode_many": "encoder", "EncodeResult": "encoder",
    "decode": "decoder", "read_header": "reader", "Header": "bitstream", "Limits": "limits",
}
__all__ = ["encode", "encode_many", "decode", "read_header", "restore", "register_pillow", "EncodeResult", "Header",
           "Limits", "BitstreamError", "DdcodecError",
           "DecodeBudgetError", "InputError"]

if TYPE_CHECKING:
    from .bitstream import Header
    from .decoder import decode
    from .encoder import EncodeResult, encode, encode_many
    from .limits import Limits
    from .reader import read_header


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
