"""Small ICC profiles built in memory for the colour tests (no file shipped, nothing read from outside the tests).

`adobe_rgb()` is a version 2 matrix/TRC display profile with the published colorants of Adobe RGB (1998) (as in
Adobe's AdobeRGB1998.icc: the primaries adapted to the D50 connection space, a pure gamma of 563/256 = 2.19921875);
`gray(gamma)` is a gray TRC profile such as Photoshop's "Gray Gamma 2.2". The layout follows ICC.1:2001-04 (header,
tag table, tags aligned to 4 bytes)."""

from __future__ import annotations

import struct

D50 = (0.9642, 1.0, 0.8249)
ADOBE_RGB_COLORANTS = ((0.6097559, 0.3111145, 0.0194702),  # rXYZ
                       (0.2052401, 0.6256866, 0.0608902),  # gXYZ
                       (0.1492240, 0.0632172, 0.7445984))  # bXYZ
ADOBE_RGB_GAMMA = 563 / 256


def _xyz(xyz) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(struct.pack(">i", round(v * 65536)) for v in xyz)


def _curve(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + bytes(4 + 4 + 2 + 1 + 67)


def _text(text: str) -> bytes:
    return b"text" + bytes(4) + text.encode("ascii") + b"\0"


def profile(space: bytes, tags: dict[bytes, bytes]) -> bytes:
    """An ICC version 2.1 display profile of colour space `space` (b"RGB ", b"GRAY") with these tags."""
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags.items():
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + bytes(4) + struct.pack(">I", 0x02100000) + b"mntr" + space + b"XYZ "
              + bytes(12) + b"acsp" + bytes(4 + 4 + 4 + 4 + 8 + 4) + _xyz(D50)[8:] + bytes(4 + 16 + 28))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def adobe_rgb() -> bytes:
    """An Adobe RGB (1998) profile (the colorants and gamma of Adobe's)."""
    curve = _curve(ADOBE_RGB_GAMMA)
    r, g, b = ADOBE_RGB_COLORANTS
    return profile(b"RGB ", {b"desc": _desc("Adobe RGB (1998) test profile"), b"cprt": _text("No copyright"),
                             b"wtpt": _xyz(D50), b"rXYZ": _xyz(r), b"gXYZ": _xyz(g), b"bXYZ": _xyz(b),
                             b"rTRC": curve, b"gTRC": curve, b"bTRC": curve})


def gray(gamma: float = 2.2) -> bytes:
    """A gray profile of a pure gamma (Photoshop's "Gray Gamma 2.2" for 2.2)."""
    return profile(b"GRAY", {b"desc": _desc(f"Gray Gamma {gamma} test profile"), b"cprt": _text("No copyright"),
                             b"wtpt": _xyz(D50), b"kTRC": _curve(gamma)})
