"""Pillow plugin: `Image.open("x.ddc")` decodes and `image.save("x.ddc", bpp=0.3)` encodes.

`import ddcodec` registers it; `register_pillow()` does so explicitly (as pillow-heif's opener does). Opening needs
no torch (it decodes with NumPy); saving runs the encoder, so it does. A damaged file raises Pillow's
usual errors: `UnidentifiedImageError` from `Image.open` when the header or CRC is wrong (for a format version it
cannot read, after a warning that says so), `OSError` from `load`.

Saving takes `ddcodec.encode`'s options (`bpp`, `ratio`, `psnr`, `iters`, ...) and Pillow's usual ones: `quality` is
Pillow's 0–100 scale, mapped to ddcodec's presets 1–5 as ⌈quality / 20⌉ (0 → 1; JPEG's default 75 → 4, 0.6 bpp);
Pillow's other usual options (PILLOW_OPTIONS: `optimize`, `progressive`, `dpi`, `exif`, `icc_profile`, ...) are
ignored, as Pillow's own plugins ignore options they have no use for; any other name is a TypeError (a misspelt
ddcodec option must not pass unnoticed).
"""

from __future__ import annotations

import math
from typing import IO, Any

from PIL import Image, ImageFile

FORMAT = "DDC"
EXTENSION = ".ddc"
MIME = "image/x-ddc"
_MAGIC = b"\x89DDC"  # bitstream.MAGIC, repeated so that registering imports nothing but Pillow


def _accept(prefix: bytes) -> bool | str:
    """Whether the file is a .ddc; for one of a format version this decoder cannot read, the reason, which Pillow
    gives as a warning before its UnidentifiedImageError (as its own plugins do for a format they recognize but
    cannot read, such as WebP without libwebp)."""
    if prefix[:4] != _MAGIC:
        return False
    from ddcodec.format.container import TILED_VERSION, VERSIONS

    if len(prefix) > 4 and prefix[4] not in (*VERSIONS, TILED_VERSION):
        return (f"a .ddc file of format version {prefix[4]}, which this ddcodec cannot read (it reads versions "
                f"{min(VERSIONS)} to {TILED_VERSION}): a newer ddcodec may")
    return True


class DdcImageFile(ImageFile.ImageFile):
    """A .ddc file as Pillow sees it: the header read (and the whole file checked) on open, decoded on load."""

    format = FORMAT
    format_description = "ddcodec Deep Decoder image"

    def _open(self) -> None:
        from ddcodec.errors import BitstreamError
        from ddcodec.format.reader import read_header

        try:
            header = read_header(self.fp)  # a tiled file's (version 5) has the image's size, not an arch
        except BitstreamError as exc:
            raise SyntaxError(f"damaged .ddc file: {exc}") from None
        size = header if header.version == 5 else header.arch
        self._mode = "RGB" if size.channels == 3 else "L"
        self._size = (size.width, size.height)
        self.tile = [ImageFile._Tile(FORMAT, (0, 0, size.width, size.height), 0, None)]


class _DdcDecoder(ImageFile.PyDecoder):
    """Decodes the whole file in one call (NumPy, on the CPU) and hands Pillow the raw pixels."""

    _pulls_fd = True

    def decode(self, buffer: bytes | Image.SupportsArrayInterface) -> tuple[int, int]:
        from ddcodec.decoders.decode import decode_array
        from ddcodec.errors import DdcodecError
        from ddcodec.format.reader import read_stream

        assert self.fd is not None
        try:
            pixels = decode_array(read_stream(self.fd))
        except DdcodecError as exc:
            raise OSError(f"broken .ddc data: {exc}") from None
        self.set_as_raw(pixels.tobytes())
        return -1, 0


ENCODE_OPTIONS = ("bpp", "ratio", "psnr", "input", "complexity", "iters", "lr", "seed", "tries", "coder", "device",
                  "progress")
PILLOW_OPTIONS = frozenset({  # options of Pillow's common writers (JPEG, PNG, WebP, AVIF, TIFF, GIF)
    "quality", "optimize", "progressive", "progression", "subsampling", "qtables", "dpi", "exif", "icc_profile",
    "xmp", "comment", "compress_level", "compression", "method", "lossless", "exact", "speed", "bits", "transparency",
    "pnginfo", "dictionary", "keep_rgb", "save_all", "append_images", "duration", "loop", "disposal", "format",
})


def encode_options(info: dict[str, Any]) -> dict[str, Any]:
    """ddcodec.encode's options from the keyword arguments given to `Image.save`: Pillow's quality (0..100) mapped to
    a preset (module docstring), ddcodec's own passed on, Pillow's other usual ones left out; TypeError for others."""
    unknown = sorted(set(info) - set(ENCODE_OPTIONS) - PILLOW_OPTIONS)
    if unknown:
        raise TypeError(f"unknown .ddc save option(s) {', '.join(unknown)} (ddcodec takes {', '.join(ENCODE_OPTIONS)}"
                        " and Pillow's quality)")
    options = {k: v for k, v in info.items() if k in ENCODE_OPTIONS}
    if info.get("quality") is not None:
        options["quality"] = min(max(math.ceil(float(info["quality"]) / 20), 1), 5)
    return options


def _save(image: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """Encode with the keyword arguments given to `Image.save` (encode_options)."""
    from ddcodec.encoder.encode import encode

    fp.write(encode(image, **encode_options(image.encoderinfo)).data)


def register_pillow() -> None:
    """Register the .ddc format with Pillow: open, save, the `.ddc` extension and the `image/x-ddc` MIME type."""
    Image.register_open(FORMAT, DdcImageFile, _accept)
    Image.register_decoder(FORMAT, _DdcDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)
