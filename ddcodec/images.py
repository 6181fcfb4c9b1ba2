"""Reading images into uint8 arrays and writing files atomically (temporary file, then rename)."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Union

import numpy as np
from PIL import Image

from .errors import InputError
from .outputs import check_writable

MAX_SIDE = 16384
ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]

_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def to_array(source: ImageLike) -> np.ndarray:
    """uint8 array (H, W, C) with C = 1 for grayscale and 3 otherwise; other modes are converted with a warning."""
    if isinstance(source, np.ndarray):
        return _check_array(source)
    img = _open(source) if not isinstance(source, Image.Image) else source
    if img.width > MAX_SIDE or img.height > MAX_SIDE:
        raise InputError(f"image is {img.width}x{img.height}, larger than {MAX_SIDE} pixels on a side")
    if img.mode in ("L", "RGB"):
        return _check_array(np.asarray(img))
    dropped = " (alpha dropped)" if "A" in img.mode else ""
    if img.mode in _GRAY_MODES:
        arr = np.asarray(img)
        if arr.dtype == np.uint16 or img.mode.startswith("I"):
            peak = 65535 if arr.max(initial=0) > 255 else 255
            arr = np.round(arr.astype(np.float64) * (255 / peak)).clip(0, 255).astype(np.uint8)
        else:
            arr = np.asarray(img.convert("L"))
        warnings.warn(f"image mode {img.mode} converted to 8-bit grayscale{dropped}", stacklevel=2)
        return _check_array(arr)
    warnings.warn(f"image mode {img.mode} converted to RGB{dropped}", stacklevel=2)
    return _check_array(np.asarray(img.convert("RGB")))


def _open(path: str | os.PathLike) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
        return img
    except Image.DecompressionBombError:
        raise InputError(f"{path}: image is too large") from None
    except (OSError, ValueError, SyntaxError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise InputError(f"cannot read image {os.fspath(path)!r}: {reason}") from None


def _check_array(arr: np.ndarray) -> np.ndarray:
    if arr.dtype != np.uint8:
        raise InputError(f"image array must be uint8, not {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise InputError(f"image array must be (H, W), (H, W, 1) or (H, W, 3), not {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError("image is empty")
    if max(arr.shape[:2]) > MAX_SIDE:
        raise InputError(f"image is {arr.shape[1]}x{arr.shape[0]}, larger than {MAX_SIDE} pixels on a side")
    return np.ascontiguousarray(arr)


def to_pil(arr: np.ndarray) -> Image.Image:
    """PIL image ('L' or 'RGB') of a uint8 (H, W, C) array."""
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on a temporary file beside `path`, then rename it over `path`: no partial file survives (the
    command line turns SIGTERM into an exit, so this cleans up then too). The file gets the umask's usual mode."""
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically write `data` to `path`."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def image_format(path: str | os.PathLike) -> str:
    """Pillow's format name for an output path's extension (png, ppm, bmp, ...), or an InputError."""
    ext = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE or fmt == "DDC":  # DDC: the plugin would encode, not write pixels
        raise InputError(f"cannot write images with extension {ext!r} (use .png, .ppm, .bmp, ...)")
    return fmt


def save_image(img: Image.Image, path: str | os.PathLike) -> None:
    """Atomically save an image, in the format its extension names."""
    fmt = image_format(path)
    atomic_write(path, lambda tmp: img.save(tmp, format=fmt))
