"""Pillow plugin: `Image.open("x.ddc")` decodes and `image.save("x.ddc", bpp=0.3)` encodes.

`import ddcodec` registers it; `register_pillow()` does so explicitly (as pillow-heif's opener does). Opening needs
no torch (it decodes with NumPy); saving runs the encoder, so it does. A damaged file raises Pillow's
usual errors: `UnidentifiedImageError` from `Image.open` when the header or CRC is wrong, `OSError` from `load`.
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

FORMAT = "DDC"
EXTENSION = ".ddc"
MIME = "image/x-ddc"
_MAGIC = b"\x89DDC"  # bitstream.MAGIC, repeated so that registering imports nothing but Pillow


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == _MAGIC


class DdcImageFile(ImageFile.ImageFile):
    """A .ddc file as Pillow sees it: the header read (and the whole file checked) on open, decoded on load."""

    format = FORMAT
    format_description = "ddcodec Deep Decoder image"

    def _open(self) -> None:
        from .bitstream import parse
        from .errors import BitstreamError
        from .reader import read_stream

        try:
            arch = parse(read_stream(self.fp), budget=False)[0].arch
        except BitstreamError as exc:
            raise SyntaxError(f"damaged .ddc file: {exc}") from None
        self._mode = "RGB" if arch.channels == 3 else "L"
        self._size = (arch.width, arch.height)
        self.tile = [ImageFile._Tile(FORMAT, (0, 0, arch.width, arch.height), 0, None)]


class _DdcDecoder(ImageFile.PyDecoder):
    """Decodes the whole file in one call (NumPy, on the CPU) and hands Pillow the raw pixels."""

    _pulls_fd = True

    def decode(self, buffer: bytes | Image.SupportsArrayInterface) -> tuple[int, int]:
        from .decoder import decode_array
        from .errors import DdcodecError
        from .reader import read_stream

        assert self.fd is not None
        try:
            pixels = decode_array(read_stream(self.fd))
        except DdcodecError as exc:
            raise OSError(f"broken .ddc data: {exc}") from None
        self.set_as_raw(pixels.tobytes())
        return -1, 0


def _save(image: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """Encode with the keyword arguments given to `Image.save` (those of `ddcodec.encode`)."""
    from .encoder import encode

    fp.write(encode(image, **image.encoderinfo).data)


def register_pillow() -> None:
    """Register the .ddc format with Pillow: open, save, the `.ddc` extension and the `image/x-ddc` MIME type."""
    Image.register_open(FORMAT, DdcImageFile, _accept)
    Image.register_decoder(FORMAT, _DdcDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)
