"""What an encode gives back: the compressed file and what it cost (EncodeResult), and its form as a JSON record for
the tiles an interrupted encode keeps (tilestore.py)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any

from ddcodec.format.architecture import Architecture
from ddcodec.format.container import parse
from ddcodec.io.images import write_bytes


@dataclass
class EncodeResult:
    """A compressed image and what it cost."""

    data: bytes
    arch: Architecture
    psnr: float  # of the decoded file, on the encoder's device
    psnr_float: float  # of the unquantized network
    iters: int
    seconds: float  # wall time; images fitted in one batch share it equally
    device: str
    tiles: tuple[EncodeResult, ...] = ()  # a tiled file's (format version 5) tiles, each a version-4 file; `arch`
    #                                       is then the first tile's
    refitted: bool = False  # rate control refitted the latents, which overshot the byte budget (presets.REFIT)
    latents_pruned: int = 0  # latents rate control zeroed so that the stream fits (ratecontrol.prune_to_fit)

    @property
    def n_bytes(self) -> int:
        return len(self.data)

    @property
    def pixels(self) -> int:
        """The image's pixels (a tiled file's tiles' together)."""
        return sum(t.pixels for t in self.tiles) if self.tiles else self.arch.height * self.arch.width

    @property
    def bpp(self) -> float:
        return 8 * len(self.data) / self.pixels

    @property
    def n_params(self) -> int:
        return sum(t.n_params for t in self.tiles) if self.tiles else self.arch.n_params

    def save(self, path: str | os.PathLike, overwrite: bool = True) -> None:
        """Write the .ddc file atomically (without `overwrite`, never over a file, even one made meanwhile)."""
        write_bytes(path, self.data, overwrite)

    def record(self) -> dict[str, Any]:
        """The result as JSON-ready data (an untiled file's; from_record reads it back)."""
        return {"data": base64.b64encode(self.data).decode("ascii"), "psnr": self.psnr,
                "psnr_float": self.psnr_float, "iters": self.iters, "seconds": self.seconds, "device": self.device,
                "refitted": self.refitted, "latents_pruned": self.latents_pruned}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EncodeResult:
        """A result from record()'s data (a record written before 0.12.0.dev7, without rate control's fields: none
        refitted or pruned); the file is parsed and checked as any .ddc (BitstreamError if damaged; a
        KeyError, TypeError or ValueError for a record that is not one)."""
        data = base64.b64decode(record["data"], validate=True)
        return cls(data, parse(data)[0].arch, float(record["psnr"]), float(record["psnr_float"]),
                   int(record["iters"]), float(record["seconds"]), str(record["device"]),
                   refitted=bool(record.get("refitted", False)), latents_pruned=int(record.get("latents_pruned", 0)))
