"""Where a command's outputs go, checked before any work: no output overwrites a file unless asked, none is an input,
none is named twice, every one can be written and its name fits the file system. `-` stands for standard input (as
the one input) or standard output (as the one output)."""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from ddcodec.errors import InputError

STDIO = "-"  # standard input as a source, standard output as the output


@lru_cache(maxsize=1)
def image_suffixes() -> frozenset[str]:
    """Every file extension Pillow opens (its plugins loaded), .ddc aside."""
    from PIL import Image

    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN and fmt != "DDC")


def expand_inputs(sources: Sequence[str | os.PathLike], suffixes: Sequence[str] | frozenset[str]) -> list[Path]:
    """The input files: each argument, or a folder's files with one of `suffixes` (sorted by name; the other files
    are named in a warning)."""
    out: list[Path] = []
    for src in map(Path, sources):
        if str(src) != STDIO and src.is_dir():
            files = sorted(p for p in src.iterdir() if p.is_file())
            found = [p for p in files if p.suffix.lower() in suffixes]
            if not found:
                raise InputError(f"folder {str(src)!r} holds no file of a type this command reads")
            skipped = [p.name for p in files if p.suffix.lower() not in suffixes]
            if skipped:
                warnings.warn(f"{len(skipped)} file(s) of {str(src)!r} skipped, not of a type this command reads: "
                              f"{', '.join(skipped[:5])}{', ...' if len(skipped) > 5 else ''}", stacklevel=2)
            out += found
        else:
            out.append(src)
    return out


def _real(path: Path) -> str:
    """The path with links followed as far as they go (a link loop is left as it is, not an error)."""
    return os.path.realpath(path)


def plan_outputs(
    sources: Sequence[str | os.PathLike], dst: str | os.PathLike, suffix: str, input_suffixes: Sequence[str] |
    frozenset[str], overwrite: bool = False, skip_existing: bool = False, also_inputs: Sequence[str] = (),
) -> list[tuple[Path, Path]]:
    """(input, output) pairs for `SRC... DST`: one input and a file DST, or any inputs (files or folders) and an
    existing folder DST, each written as DST/STEM+suffix; `-` as the one input or the one output. Outputs that exist
    are refused (or, with `skip_existing`, left out; with `overwrite`, replaced); `also_inputs` (a mask) are
    protected like the inputs."""
    if sum(str(s) == STDIO for s in [*sources, *also_inputs]) > 1:
        raise InputError("standard input ('-') can be read only once")
    dst = Path(dst)
    inputs = expand_inputs(sources, input_suffixes)
    several = len(sources) > 1 or any(str(s) != STDIO and Path(s).is_dir() for s in sources)
    if str(dst) == STDIO:
        if several:
            raise InputError("standard output ('-') takes one output: give one input")
        return [(inputs[0], dst)]
    if several or dst.is_dir():
        if not dst.is_dir():
            raise InputError(f"with several inputs or a folder, the last argument {str(dst)!r} must be an existing "
                             "folder")
        if any(str(src) == STDIO for src in inputs):
            raise InputError("standard input ('-') has no name: give its output's file name")
        pairs = [(src, dst / f"{src.stem}{suffix}") for src in inputs]
    else:
        pairs = [(inputs[0], dst)]
    seen: dict[str, Path] = {}
    for src, out in pairs:
        key = _real(out)
        if key in seen:
            raise InputError(f"{str(seen[key])!r} and {str(src)!r} would both be written to {str(out)!r}")
        seen[key] = src
    protected = {_real(Path(p)) for p in [*inputs, *also_inputs] if str(p) != STDIO}
    kept = []
    for src, out in pairs:
        if _real(out) in protected:
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
    longest = _name_max(path.parent)
    if len(os.fsencode(path.name)) > longest:
        raise InputError(f"output name {path.name[:40]!r}... is {len(os.fsencode(path.name))} bytes, longer than the "
                         f"{longest} this file system allows")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"output {str(path)!r} is not writable")
    return path


def _name_max(folder: Path) -> int:
    """The longest file name (bytes) the folder's file system takes."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255
