"""Finished tiles kept in a folder, so that a long encode of a tiled photo resumes where it stopped.

Each finished batch of tiles (one tile on a CPU) is one JSON file, written atomically and named by a fingerprint of
all that its fit depends on: ddcodec's version, the tiles' pixels and the fit's settings (plan, schedule, learning
rate, seed, coder, device type, PSNR target, λ). A rerun of the same encode finds the tiles already done; any other
change makes a new fingerprint, so its tiles are fitted anew. A file that does not read back as a valid record
(damaged, foreign, cut short) is ignored and its tiles refitted: nothing in the folder is trusted beyond what parsing
a .ddc checks.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ddcodec.errors import DdcodecError, InputError
from ddcodec.encoder.result import EncodeResult
from ddcodec.io.images import write_bytes
from ddcodec.version import __version__


class TileStore:
    """The finished tiles of encodes, in `folder` (made on the first put)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"cannot keep tiles in {str(self.folder)!r}: it is a file, not a folder")

    @staticmethod
    def fingerprint(pixels: Sequence[np.ndarray], settings: Any) -> str:
        """The name of a batch of tiles' record: SHA-256 of ddcodec's version, repr(settings) and the pixels."""
        digest = hashlib.sha256(f"{__version__}\n{settings!r}".encode())
        for a in pixels:
            digest.update(repr((a.shape, a.dtype.str)).encode())
            digest.update(np.ascontiguousarray(a).tobytes())
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str, n: int) -> list[EncodeResult] | None:
        """The `n` results kept under `key`, or None (none kept, or a record that does not read back)."""
        try:
            records = json.loads(self._path(key).read_text())
            results = [EncodeResult.from_record(r) for r in records]
        except (OSError, ValueError, TypeError, KeyError, DdcodecError):
            return None
        return results if len(results) == n else None

    def put(self, key: str, results: Sequence[EncodeResult]) -> None:
        """Keep a batch's results under `key` (an InputError if the folder cannot be written)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot keep tiles in {str(self.folder)!r}: {exc.strerror or exc}") from None
        write_bytes(self._path(key), json.dumps([r.record() for r in results]).encode(), overwrite=True)
