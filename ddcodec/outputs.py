"""Where a command's outputs go, checked before any work: no output overwrites a file unless asked, none is an input,
none is named twice, and every one can be written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .errors import InputError

IMAGE_SUFFIXES = {".png", ".ppm", ".pgm", ".pnm", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".webp", ".gif"}


def expand_inputs(sources: Sequence[str | os.PathLike], suffixes: set[str]) -> list[Path]:
    """The input files: each argument, or a folder's files with one of `suffixes` (sorted by name)."""
    out: list[Path] = []
    for src in map(Path, sources):
        if src.is_dir():
            found = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise InputError(f"folder {str(src)!r} holds no {'/'.join(sorted(suffixes))} files")
            out += found
        else:
            out.append(src)
    return out


def plan_outputs(
    sources: Sequence[str | os.PathLike], dst: str | os.PathLike, suffix: str, input_suffixes: set[str],
    overwrite: bool = False, skip_existing: bool = False,
) -> list[tuple[Path, Path]]:
    """(input, output) pairs for `SRC... DST`: one input and a file DST, or any inputs (files or folders) and an
    existing folder DST, each written as DST/STEM+suffix. Outputs that exist are refused (or, with
    `skip_existing`, left out; with `overwrite`, replaced)."""
    dst = Path(dst)
    inputs = expand_inputs(sources, input_suffixes)
    several = len(sources) > 1 or any(Path(s).is_dir() for s in sources)
    if several or dst.is_dir():
        if not dst.is_dir():
            raise InputError(f"with several inputs or a folder, the last argument {str(dst)!r} must be an existing "
                             "folder")
        pairs = [(src, dst / f"{src.stem}{suffix}") for src in inputs]
    else:
        pairs = [(inputs[0], dst)]
    seen: dict[Path, Path] = {}
    for src, out in pairs:
        key = out.resolve()
        if key in seen:
            raise InputError(f"{str(seen[key])!r} and {str(src)!r} would both be written to {str(out)!r}")
        seen[key] = src
    sources_resolved = {src.resolve() for src in inputs}
    kept = []
    for src, out in pairs:
        if out.resolve() in sources_resolved:
            raise InputError(f"output {str(out)!r} is also an input")
        if out.exists() and not overwrite:
            if skip_existing:
                continue
            raise InputError(f"output {str(out)!r} exists (use --overwrite to replace it)")
        check_writable(out)
        kept.append((src, out))
    return kept


def check_writable(path: str | os.PathLike) -> Path:
    """The output path, after checking that a file can be created there (before any long work starts)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"output {str(path)!r} is a directory")
    if not path.parent.is_dir():
        raise InputError(f"output folder {str(path.parent)!r} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(f"output folder {str(path.parent)!r} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"output {str(path)!r} is not writable")
    return path
