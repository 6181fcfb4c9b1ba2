"""The `ddcodec` command: encode, decode, info, demo. Errors print one line and exit with code 2."""

from __future__ import annotations

import functools
import json
import sys
import warnings
from pathlib import Path

import click

from . import __version__
from .errors import DdcodecError
from .options import CODERS, DEFAULT_ITERS, DEFAULT_LR, DEFAULT_TRIES

# The commands import the rest of ddcodec when they run, so that --help, --version and info start fast and decode
# works without torch.

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
@click.version_option(__version__, prog_name="ddcodec")  # no package metadata scan: starts fast
def main() -> None:
    """ddcodec: image compression by fitting a Deep Decoder; the file is the network's weights."""


@main.command("encode")
@click.argument("paths", nargs=-1, required=True, metavar="SRC... DST")
@click.option("--bpp", type=float, help="Largest size in bits per pixel (header included).")
@click.option("--ratio", type=float, help="Compression factor 3·H·W / number of coded weights.")
@click.option("--quality", type=int, help="Preset 1..5 = at most 0.15, 0.25, 0.4, 0.6, 1.0 bpp; the default is 3.")
@click.option("--psnr", "min_psnr", type=float, help="Smallest file found whose decoded PSNR reaches this (dB).")
@click.option("--input", "input_", type=click.Choice(["seed", "coded"]), default="seed", show_default=True,
              help="Network input: from the seed (the paper's Deep Decoder) or latent grids coded in the file too.")
@click.option("--iters", type=int, default=DEFAULT_ITERS, show_default=True, help="Fitting iterations.")
@click.option("--lr", type=float, default=DEFAULT_LR, show_default=True, help="Adam learning rate.")
@click.option("--seed", type=int, default=0, show_default=True, help="First seed of the network input and init.")
@click.option("--tries", type=int, default=DEFAULT_TRIES, show_default=True,
              help="Seeds tried in the warm-up (seed, seed+1, ...); the best is kept.")
@click.option("--coder", type=click.Choice(sorted(CODERS)), default="range", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch", type=int, help="Images of one size fitted together (default 16 on CUDA, 1 on CPU).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
              help="Spread the images over a Ray cluster (local, or ADDRESS: auto, ray://head:10001, ...).")
@_one_line_errors
def encode_cmd(paths, bpp, ratio, quality, min_psnr, input_, iters, lr, seed, tries, coder, device, batch, quiet,
               ray_address) -> None:
    """Compress image SRC into the .ddc file DST, or several images into the folder DST (as NAME.ddc)."""
    from .images import check_output

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
    options = dict(bpp=bpp, ratio=ratio, quality=quality, psnr=min_psnr, input=input_, iters=iters, lr=lr, seed=seed,
                   tries=tries, coder=coder, device=device, batch=batch)
    if ray_address is not None:
        from .distributed import encode_on_ray

        done = encode_on_ray(sources, outputs, address=ray_address or None, **options)  # writes each file
    else:
        try:
            from .encoder import encode_many
        except ImportError as exc:
            raise DdcodecError(f"encoding needs torch ({exc}): pip install 'ddcodec[encode]'") from None
        done = zip(outputs, encode_many(sources, **options, progress=not quiet))
    for out, r in done:
        if ray_address is None:
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
    from .decoder import decode
    from .images import check_output, image_format, save_image

    image_format(check_output(dst))
    save_image(decode(src, device), dst)
    click.echo(f"{dst}: decoded")


@main.command("info")
@click.argument("src", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the fields as JSON.")
@_one_line_errors
def info_cmd(src, as_json) -> None:
    """Show the header of the .ddc file SRC."""
    from .bitstream import parse
    from .reader import read_stream

    data = read_stream(src)
    header, payload = parse(data)
    a = header.arch
    fields = {
        "file": str(src), "bytes": len(data), "bpp": 8 * len(data) / (a.height * a.width),
        "height": a.height, "width": a.width, "channels": a.channels, "layers": a.layers,
        "widths": list(a.widths), "input_size": list(a.input_size), "parameters": a.n_params,
        "input": "coded" if a.coded_input else "seed", "latents": list(a.latents), "latent_values": a.n_latents,
        "macs_per_pixel": round(a.macs_per_pixel()),
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
