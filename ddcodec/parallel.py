"""Encoding several images at once on one machine: `jobs` worker processes with `threads` torch threads each.

On a CPU, small tensors leave cores idle between kernels, so images in parallel processes with one or two threads
each finish a batch sooner than one process using every core. Workers get the image file's bytes and return the
EncodeResult; the caller writes each file as soon as its image is done. The worker function is shared with the Ray
backend (distributed.py).
"""

from __future__ import annotations

import os
import sys
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ddcodec.encoder.workers import worker_pool
from ddcodec.errors import InputError, OutputExistsError


def encode_task(named: list[tuple[str, bytes]], options: dict[str, Any]) -> list[Any]:
    """In a worker: encode the images (name, file bytes) together; per image its EncodeResult or an error line (for
    what the command line reports with exit code 2: ddcodec's errors, OS errors)."""
    from ddcodec.encoder.encode import encode_many
    from ddcodec.errors import DdcodecError, naming

    try:
        return list(encode_many([data for _, data in named], **options))
    except (DdcodecError, OSError) as exc:
        if len(named) == 1:
            return [naming(named[0][0], exc)]
        return [item for pair in named for item in encode_task([pair], options)]  # find which image failed


def read_image_bytes(path: Path) -> bytes:
    """The file's bytes (standard input's for `-`), or an InputError naming it."""
    from ddcodec.io.outputs import STDIO
    from ddcodec.format.reader import read_stream

    try:
        return read_stream(sys.stdin.buffer) if str(path) == STDIO else path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read image {str(path)!r}: {exc.strerror or exc}") from None


def write_output(out: Path, data: bytes, overwrite: bool) -> None:
    """A finished file: to standard output for `-`, else written atomically (images.atomic_write)."""
    from ddcodec.io.images import write_bytes
    from ddcodec.io.outputs import STDIO

    if str(out) == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        write_bytes(out, data, overwrite)


def exists(out: Path) -> bool:
    """Whether the output file `out` exists (standard output never does)."""
    from ddcodec.io.outputs import STDIO

    return str(out) != STDIO and out.exists()


@dataclass(frozen=True)
class Decoded:
    """A file's bytes to write, as finish takes them (an EncodeResult has .data too)."""

    data: bytes


def finish(out: Path, result: Any, overwrite: bool, skip_existing: bool = False, keep_going: bool = False
           ) -> tuple[Path, Any] | None:
    """One image's result (an EncodeResult, or encode_task's error line) written to `out`: (out, result); None when,
    with `skip_existing`, the output appeared meanwhile (another command wrote it). Its error, or the output's, is
    raised as an InputError, or with `keep_going` returned in place of the result, for the caller to report while the
    other files go on."""
    try:
        if isinstance(result, str):
            raise InputError(result)
        write_output(out, result.data, overwrite)
    except InputError as exc:
        if skip_existing and isinstance(exc, OutputExistsError):
            return None
        if not keep_going:
            raise
        return out, exc
    return out, result


def encode_in_processes(
    sources: Sequence[str | os.PathLike], outputs: Sequence[str | os.PathLike], *, jobs: int,
    threads: int | None = None, overwrite: bool = True, skip_existing: bool = False, keep_going: bool = False,
    **options: Any,
) -> Iterator[tuple[Path, Any]]:
    """Encode sources[i] into outputs[i] in `jobs` processes of `threads` torch threads (default: the cores shared
    out); yields (output, EncodeResult) as each file is written (`-`: standard output; without `overwrite`, never
    over a file, even one made meanwhile). With `skip_existing`, an output that exists when its image's turn comes,
    or appears while it is encoded, is left alone (finish); with `keep_going`, an image's error is yielded as
    (output, InputError) and the others go on. The options are ddcodec.encode's. On an error that stops it or an
    interrupt the workers are stopped at once."""
    pairs = iter([(Path(s), Path(o)) for s, o in zip(sources, outputs)])
    with worker_pool(jobs, threads) as pool:
        pending: deque[tuple[Future, Path]] = deque()
        while True:
            for src, out in pairs:  # at most 2 images per worker read ahead
                if skip_existing and exists(out):
                    continue
                try:
                    data = read_image_bytes(src)
                except InputError as exc:
                    yield finish(out, str(exc), overwrite, skip_existing, keep_going)  # raised unless keep_going
                    continue
                pending.append((pool.submit(encode_task, [(str(src), data)], options), out))
                if len(pending) >= 2 * jobs:
                    break
            if not pending:
                return
            wait([task for task, _ in pending], return_when=FIRST_COMPLETED)
            task, out = next(item for item in pending if item[0].done())
            pending.remove((task, out))
            (result,) = task.result()
            done = finish(out, result, overwrite, skip_existing, keep_going)
            if done:
                yield done
