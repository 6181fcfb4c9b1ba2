"""Reading images into uint8 arrays as viewers show them, and writing files atomically (a temporary file, then a\nhard link or a rename)."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import BinaryIO, Callable, Union

import numpy as np
from PIL import Image, ImageOps

from ddcodec.errors import InputError, OutputExistsError
from ddcodec.io.outputs import check_writable

MAX_SIDE = 16384
ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, bytes, BinaryIO]

_ORIENTATION = 0x0112  # the EXIF tag
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}  # Pillow's modes for 16-bit samples (I: 16-bit PNG, TIFF)
_ALPHA = {"LA", "La", "PA", "RGBA", "RGBa"}
_GRAY = {"1", "L", "LA", "La"}  # modes Pillow converts to "L"
_USABLE = {"RGB": {"RGB", "RGBA", "RGBa", "P", "PA"}, "L": _GRAY, "CMYK": {"CMYK"}}  # by an ICC profile's mode


def to_array(source: ImageLike) -> np.ndarray:
    """uint8 array (H, W, C) with C = 1 for grayscale and 3 otherwise, from a path, an image file's bytes, a binary
    file object, a PIL image or a uint8 array.

    As a viewer shows it: EXIF orientation applied (an invalid one ignored); an embedded ICC profile's colours
    converted to sRGB (_in_srgb); 16-bit samples (modes I;16 and I) divided by 257; float samples (mode F) in 0..1
    times 255, other floats taken as levels 0..255 and clipped; other modes converted to 8-bit gray or RGB. One
    warning names what changed or was dropped (orientation, a colour conversion or an ICC profile ignored, alpha,
    tRNS transparency, frames after the first, clipped values). InputError for what is not an image."""
    if isinstance(source, np.ndarray):
        return _check_array(source)
    if isinstance(source, Image.Image):
        img, name = source, "image"
    elif isinstance(source, (bytes, bytearray, memoryview)):
        img, name = _open(io.BytesIO(bytes(source)), f"the {len(source)} bytes given"), "image"
    elif isinstance(source, (str, os.PathLike)):
        img, name = _open(source, repr(os.fspath(source))), os.fspath(source)
    elif hasattr(source, "read"):
        img, name = _open(source, "the file object given"), "image"
    else:
        raise InputError(f"cannot encode a {type(source).__name__}: give a path, an image file's bytes, a PIL image or "
                         "a uint8 array")
    if img.width > MAX_SIDE or img.height > MAX_SIDE:
        raise InputError(f"image is {img.width}x{img.height}, larger than {MAX_SIDE} pixels on a side")
    notes = _dropped(img)
    icc = img.info.get("icc_profile")
    img = _oriented(img, notes)
    if icc:
        img = _in_srgb(img, icc, notes)
    arr = _eight_bits(img, notes)
    if notes:
        warnings.warn(f"{name}: " + "; ".join(notes), stacklevel=2)
    return _check_array(arr)


def _dropped(img: Image.Image) -> list[str]:
    """What coding the image's pixels leaves out: frames after the first, transparency."""
    notes = []
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        notes.append(f"only the first of its {frames} frames coded")
    if img.mode in _ALPHA:
        notes.append("alpha dropped")
    elif "transparency" in img.info:
        notes.append("transparency (tRNS) dropped")
    return notes


def _oriented(img: Image.Image, notes: list[str]) -> Image.Image:
    """The image as its EXIF orientation says to display it."""
    orientation = img.getexif().get(_ORIENTATION, 1)
    if orientation in (1, None) or not isinstance(orientation, int):
        return img
    if not 2 <= orientation <= 8:  # EXIF defines 1 to 8; viewers show others as they are
        notes.append(f"EXIF orientation {orientation} ignored (invalid: 1 to 8 are defined)")
        return img
    notes.append(f"EXIF orientation {orientation} applied")
    return ImageOps.exif_transpose(img)


def _eight_bits(img: Image.Image, notes: list[str]) -> np.ndarray:
    """8-bit gray (H, W) or RGB (H, W, 3) samples of the image, scaled by its sample type's range."""
    if img.mode in ("L", "RGB"):
        return np.asarray(img)
    if img.mode in _SIXTEEN_BIT:
        arr = np.asarray(img).astype(np.float64)
        notes.append(f"mode {img.mode} converted to 8-bit grayscale (16-bit samples divided by 257)")
        if img.mode == "I" and (arr.min(initial=0) < 0 or arr.max(initial=0) > 65535):
            notes.append("values outside 0..65535 clipped")
        return np.round(arr.clip(0, 65535) / 257).astype(np.uint8)
    if img.mode == "F":
        arr = np.nan_to_num(np.asarray(img).astype(np.float64))
        if arr.min(initial=0) >= 0 and arr.max(initial=0) <= 1:
            notes.append("mode F converted to 8-bit grayscale (samples in 0..1 times 255)")
            return np.round(arr * 255).astype(np.uint8)
        notes.append("mode F converted to 8-bit grayscale (samples outside 0..1 taken as levels 0..255"
                     + (", clipped)" if arr.min(initial=0) < 0 or arr.max(initial=0) > 255 else ")"))
        return np.round(arr.clip(0, 255)).astype(np.uint8)
    return np.asarray(_converted(img, "L" if img.mode in _GRAY else "RGB", notes))


def _converted(img: Image.Image, mode: str, notes: list[str]) -> Image.Image:
    """The image in mode "L" or "RGB" (Pillow's conversion), the change of mode noted unless it only drops alpha
    (noted already)."""
    if img.mode == mode:
        return img
    if img.mode not in _ALPHA:
        notes.append(f"mode {img.mode} converted to {'8-bit grayscale' if mode == 'L' else 'RGB'}")
    return img.convert(mode)


def _in_srgb(img: Image.Image, icc: bytes, notes: list[str]) -> Image.Image:
    """The image's colours converted from its ICC profile to sRGB (8-bit "RGB", or "L" for a gray profile), as a
    colour-managed viewer shows them; the image itself when the profile is sRGB's (any sRGB profile: the conversion
    moves no probe colour by more than one level) or cannot be used (then said in `notes`).

    Perceptual intent (ImageCms.profileToProfile's default): for the matrix/TRC profiles that cameras, phones and
    editors embed (Adobe RGB, Display P3, ProPhoto RGB) it is the same as relative colorimetric (such profiles have
    no perceptual tables: the white maps to sRGB's white, colours outside sRGB are clipped; tests/test_colour.py),
    and for a profile with perceptual tables (a printer's CMYK profile) it is the rendering its maker built for
    showing images, compressing a gamut wider than sRGB's instead of clipping it.

    A gray profile (Photoshop's "Gray Gamma 2.2", "Dot Gain 20%") is converted too, to sRGB's gray (sRGB's tone
    curve on the neutral axis), and stays one channel: its tone curve is not sRGB's, and a viewer shows it converted.
    A CMYK image with a CMYK profile becomes RGB through the profile rather than Pillow's naive formula. A profile
    that Pillow cannot read or use, or of a colour space other than the image's (or than RGB, gray and CMYK), leaves
    the pixels as they are (taken as sRGB), and is said to be ignored."""
    try:
        from PIL import ImageCms
    except ImportError:  # a Pillow built without LittleCMS
        notes.append("its ICC colour profile ignored (this Pillow has no ImageCms; pixels taken as sRGB)")
        return img
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip()
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        notes.append("its ICC colour profile ignored (Pillow cannot read it; pixels taken as sRGB)")
        return img
    mode = {"RGB": "RGB", "GRAY": "L", "CMYK": "CMYK"}.get(space)
    if mode is None:
        notes.append(f"its ICC colour profile ignored (a {space or 'unknown'} profile; pixels taken as sRGB)")
        return img
    try:
        transform = ImageCms.buildTransform(profile, _srgb(), mode, "RGB", ImageCms.Intent.PERCEPTUAL)
        if mode != "CMYK" and _is_identity(transform, mode):
            return img  # sRGB's profile (on any image: Pillow's convert("L") keeps the RGB image's), or sRGB's gray
        if mode == "L" and img.mode in _SIXTEEN_BIT | {"F"}:
            img = Image.fromarray(_eight_bits(img, notes))
        if img.mode not in _USABLE[mode]:
            notes.append(f"its ICC colour profile ignored (a {space} profile on a mode {img.mode} image; pixels "
                         "taken as sRGB)")
            return img
        img = img if mode == "CMYK" else _converted(img, mode, notes)
        rgb = ImageCms.applyTransform(img, transform)
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        notes.append(f"its ICC colour profile ignored (Pillow cannot convert with it: {str(exc)[:100]}; pixels "
                     "taken as sRGB)")
        return img
    name = " ".join(ImageCms.getProfileDescription(profile).split())[:60] or "unnamed"
    notes.append(f"colours converted from its ICC profile ({name}) to sRGB")
    if mode == "L":  # sRGB's gray: neutral, up to rounding
        arr = np.asarray(rgb).astype(np.int16)
        if (arr.max(axis=2) - arr.min(axis=2)).max(initial=0) <= 1:
            return Image.fromarray(np.round(arr.mean(axis=2)).astype(np.uint8))
    return rgb


_SRGB = []  # sRGB's profile, made once


def _srgb():
    from PIL import ImageCms

    if not _SRGB:
        _SRGB.append(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")))
    return _SRGB[0]


def _is_identity(transform, mode: str) -> bool:
    """Whether `transform` (to sRGB) moves none of a grid of colours (every gray level, for "L") by more than one
    level: the profile is sRGB's."""
    from PIL import ImageCms

    levels = np.arange(256, dtype=np.uint8) if mode == "L" else np.linspace(0, 255, 16).round().astype(np.uint8)
    if mode == "L":
        probe, expected = levels[None, :], np.repeat(levels[None, :, None], 3, axis=2)
    else:
        probe = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(16, 256, 3)
        expected = probe
    out = np.asarray(ImageCms.applyTransform(Image.fromarray(probe), transform)).astype(np.int16)
    return bool(np.abs(out - expected).max() <= 1)


def _open(source, label: str) -> Image.Image:
    """Image.open(source).load(), Pillow's failures turned into an InputError naming `label` (never the data)."""
    try:
        img = Image.open(source)
        img.load()
        return img
    except Image.DecompressionBombError:
        raise InputError(f"image {label} is too large") from None
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's reason, such as a text chunk too large to unpack
        reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).split("\n")[0][:200]
                  or type(exc).__name__)
        if isinstance(exc, Image.UnidentifiedImageError):
            reason = "not an image Pillow can read"
        raise InputError(f"cannot read image {label}: {reason}") from None


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


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], overwrite: bool = True) -> None:
    """Call write(tmp) on a temporary file beside `path`, then move it to `path`: no partial file survives (the
    command line turns SIGTERM into an exit, so this cleans up then too).

    Without `overwrite`, a file at `path` is never replaced, even one created while `write` ran: the temporary file
    is hard-linked to `path`, which fails if it exists (OutputExistsError). With it, the file is renamed over `path`,
    keeping the mode of the file it replaces (a new file gets the umask's usual mode)."""
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ddcodec-", suffix=".tmp")  # short: any legal name fits
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, _mode_of(path) if overwrite else 0o666 & ~_umask())
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(Path(tmp), path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _mode_of(path: Path) -> int:
    """The permission bits of the file at `path`, or the umask's usual mode for a new file."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _link_new(tmp: Path, path: Path) -> None:
    """Give the finished file `tmp` the name `path`, which must not exist at this moment (OutputExistsError)."""
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: an exclusive create, then the bytes
            with open(path, "xb") as out, open(tmp, "rb") as src:
                shutil.copyfileobj(src, out)
    except FileExistsError:
        raise OutputExistsError(f"output {str(path)!r} exists (it appeared while this command ran; use --overwrite "
                                "to replace it)") from None


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> None:
    """Atomically write `data` to `path` (replacing a file there only with `overwrite`: see atomic_write)."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data), overwrite)


def image_format(path: str | os.PathLike) -> str:
    """Pillow's format name for an output path's extension (png, ppm, bmp, ...), or an InputError."""
    ext = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE or fmt == "DDC":  # DDC: the plugin would encode, not write pixels
        raise InputError(f"cannot write images with extension {ext!r} (use .png, .ppm, .bmp, ...)")
    return fmt


def save_image(img: Image.Image, path: str | os.PathLike, overwrite: bool = True) -> None:
    """Atomically save an image, in the format its extension names (see atomic_write for `overwrite`)."""
    fmt = image_format(path)
    atomic_write(path, lambda tmp: img.save(tmp, format=fmt), overwrite)


PNG_COMPRESS_LEVEL = 3  # zlib's level for the PNGs decode writes: 4x faster than Pillow's 6 (0.04 s against 0.15 s
#                        for 768x512, a third of the command's time), 12 % larger (benchmarks/results/ablations.md)


def image_bytes(img: Image.Image, fmt: str) -> bytes:
    """The image as a file of Pillow's format `fmt` (png, ...), in memory (for standard output); a PNG is
    compressed at PNG_COMPRESS_LEVEL."""
    out = io.BytesIO()
    img.save(out, format=fmt, **({"compress_level": PNG_COMPRESS_LEVEL} if fmt == "PNG" else {}))
    return out.getvalue()
