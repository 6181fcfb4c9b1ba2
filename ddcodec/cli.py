"""The `ddcodec` command: encode, decode, info, demo, restore. Errors print one line and exit with code 2."""

from __future__ import annotations

import functools
import json
import sys
import time
import warnings
from pathlib import Path

import click

from .bitstream import parse
from .decoder import decode, read_stream
from .encoder import DEFAULT_ITERS, DEFAULT_LR, DEFAULT_TRIES, encode_many
from .entropy import CODERS
from .errors import DdcodecError
from .images import check_output, image_format, save_image

EXIT_ERROR = 2


def _one_line_errors(command):
    """Report ddcodec's errors and OS errors as 'error: ...' on stderr with exit code 2, warnings as one line."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.showwarning = lambda message, *_: click.echo(f"warning: {message}", err=True)
            warnings.simplefilter("always", UserWarning)
            try:
                return command(*args, **kwargs)
            except DdcodecError as exc:
                click.echo(f"error: {exc}", err=True)
            except OSError as exc:
                click.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
            sys.exit(EXIT_ERROR)

    return wrapper


@click.group()
@click.version_option(package_name="ddcodec")
def main() -> None:
    """ddcodec: image compression by fitting a Deep Decoder; the file is the network's weights."""


@main.command("encode")
@click.argument("paths", nargs=-1, required=True, metavar="SRC... DST")
@click.option("--bpp", type=float, help="Largest size in bits per pixel (header included).")
@click.option("--ratio", type=float, help="Compression factor 3·H·W / number of coded weights.")
@click.option("--quality", type=int, help="Preset 1..5 = at most 0.15, 0.25, 0.4, 0.6, 1.0 bpp; the default is 3.")
@click.option("--iters", type=int, default=DEFAULT_ITERS, show_default=True, help="Fitting iterations.")
@click.option("--lr", type=float, default=DEFAULT_LR, show_default=True, help="Adam learning rate.")
@click.option("--seed", type=int, default=0, show_default=True, help="First seed of the network input and init.")
@click.option("--tries", type=int, default=DEFAULT_TRIES, show_default=True,
              help="Seeds tried in the warm-up (seed, seed+1, ...); the best is kept.")
@click.option("--coder", type=click.Choice(sorted(CODERS)), default="range", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch", type=int, help="Images of one size fitted together (default 16 on CUDA, 1 on CPU).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_one_line_errors
def encode_cmd(paths, bpp, ratio, quality, iters, lr, seed, tries, coder, device, batch, quiet) -> None:
    """Compress image SRC into the .ddc file DST, or several images into the folder DST (as NAME.ddc)."""
    if len(paths) < 2:
        raise DdcodecError("give an input image and an output: ddcodec encode SRC... DST")
    *sources, dst = paths
    if len(sources) > 1 or Path(dst).is_dir():
        if not Path(dst).is_dir():
            raise DdcodecError(f"with several inputs, {dst!r} must be an existing folder")
        outputs = [Path(dst) / f"{Path(src).stem}.ddc" for src in sources]
    else:
        outputs = [Path(dst)]
    for out in outputs:
        check_output(out)
    results = encode_many(sources, bpp=bpp, ratio=ratio, quality=quality, iters=iters, lr=lr, seed=seed,
                          tries=tries, coder=coder, device=device, batch=batch, progress=not quiet)
    for out, r in zip(outputs, results):
        r.save(out)
        click.echo(f"{out}: {r.n_bytes} bytes, {r.bpp:.4f} bpp, PSNR {r.psnr:.2f} dB (unquantized "
                   f"{r.psnr_float:.2f}), {r.n_params} weights, {r.seconds:.1f} s on {r.device}")


@main.command("decode")
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@_one_line_errors
def decode_cmd(src, dst, device) -> None:
    """Decode the .ddc file SRC into image DST (format from its extension: png, ppm, bmp, ...)."""
    image_format(check_output(dst))
    save_image(decode(src, device), dst)
    click.echo(f"{dst}: decoded")


@main.command("info")
@click.argument("src", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the fields as JSON.")
@_one_line_errors
def info_cmd(src, as_json) -> None:
    """Show the header of the .ddc file SRC."""
    data = read_stream(src)
    header, payload = parse(data)
    a = header.arch
    fields = {
        "file": str(src), "bytes": len(data), "bpp": 8 * len(data) / (a.height * a.width),
        "height": a.height, "width": a.width, "channels": a.channels, "layers": a.layers,
        "widths": list(a.widths), "input_size": list(a.input_size), "parameters": a.n_params,
        "seed": header.seed, "coder": {v: k for k, v in CODERS.items()}[header.coder],
        "step_codes": list(header.step_codes), "payload_bytes": len(payload),
    }
    if as_json:
        click.echo(json.dumps(fields))
    else:
        for k, v in fields.items():
            click.echo(f"{k:>14}: {v:.4f}" if isinstance(v, float) else f"{k:>14}: {v}")


@main.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="ddcodec-demo", show_default=True)
@click.option("--iters", type=int, default=DEFAULT_ITERS, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@_one_line_errors
def demo_cmd(out_dir, iters, device) -> None:
    """Encode and decode a bundled sample image; compare with Pillow JPEG at the same size."""
    from .demo import run_demo

    run_demo(Path(out_dir), iters, device, click.echo)


def _restore_output(dst, overwrite: bool) -> None:
    """Check DST before the fit starts: a writable image path, not an existing file unless --overwrite."""
    image_format(check_output(dst))
    if Path(dst).exists() and not overwrite:
        raise DdcodecError(f"{dst!r} exists; add --overwrite (-y) to replace it")


def _restore_options(command):
    """Options shared by the restore commands."""
    options = [
        click.option("--prior", type=click.Choice(["dip", "dd"]), default="dip", show_default=True,
                     help="Deep Image Prior skip network or Deep Decoder."),
        click.option("--preset", type=click.Choice(["cpu", "full"]), default="cpu", show_default=True,
                     help="Network size: 'full' is the papers' setting (DIP: 128 channels; slow on a CPU)."),
        click.option("--iters", type=int, help="Fitting iterations (default: the task's)."),
        click.option("--lr", type=float, help="Adam learning rate (default 0.01)."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--overwrite", "-y", is_flag=True, help="Replace DST if it exists."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _restore_run(function, dst, overwrite, quiet, **options) -> None:
    _restore_output(dst, overwrite)
    options["progress"] = not quiet
    start = time.perf_counter()
    save_image(function(**options), dst)
    click.echo(f"{dst}: restored in {time.perf_counter() - start:.1f} s")


@main.group("restore")
def restore_group() -> None:
    """Restore an image with an untrained network as the prior (no training data)."""


@restore_group.command("denoise")
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--sigma", type=float, help="Noise std on the 0-255 scale (default: estimated from the image).")
@_restore_options
@_one_line_errors
def denoise_cmd(src, dst, overwrite, quiet, **options) -> None:
    """Remove Gaussian-like noise from SRC; write DST."""
    from . import restore

    _restore_run(restore.denoise, dst, overwrite, quiet, image=src, **options)


@restore_group.command("inpaint")
@click.argument("paths", nargs=-1, required=True, metavar="SRC [MASK] DST")
@click.option("--missing-fraction", type=float, help="Drop this share of pixels at random instead of a MASK.")
@_restore_options
@_one_line_errors
def inpaint_cmd(paths, missing_fraction, overwrite, quiet, **options) -> None:
    """Fill the pixels of SRC that MASK marks black (white = known); write DST."""
    from . import restore

    if len(paths) != (2 if missing_fraction is not None else 3):
        raise DdcodecError("give SRC MASK DST, or SRC DST with --missing-fraction")
    _restore_run(restore.inpaint, paths[-1], overwrite, quiet, image=paths[0],
                 mask=paths[1] if len(paths) == 3 else None, missing_fraction=missing_fraction, **options)


@restore_group.command("superres")
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--scale", type=int, default=4, show_default=True, help="Upscaling factor (2..8).")
@_restore_options
@_one_line_errors
def superres_cmd(src, dst, overwrite, quiet, **options) -> None:
    """Upscale SRC by --scale; write DST."""
    from . import restore

    _restore_run(restore.superres, dst, overwrite, quiet, image=src, **options)
