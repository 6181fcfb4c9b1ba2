"""The `ddcodec` command: encode, decode, info, demo, restore. Errors print one line and exit with code 2."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import shutil
import signal
import sys
import time
import warnings
from pathlib import Path

import click

from ddcodec import __version__
from ddcodec.errors import BitstreamError, DdcodecError
from ddcodec.format.options import CODERS, DEFAULT_INPUT, DEFAULT_LR, INPUTS
from ddcodec.encoder.plans import COMPLEXITY_WIDTHS, DEFAULT_COMPLEXITY
from ddcodec.training.presets import DEFAULT_EFFORT, DEMO_EFFORT, EFFORTS, GPU_EFFORT

# The commands import the rest of ddcodec when they run, so that --help, --version and info start fast and decode
# works without torch.

EXIT_ERROR = 2  # the user's input or options cannot be used
EXIT_BUG = 1  # anything else: a bug or an unexpected failure
DDC_SUFFIXES = {".ddc"}


def _one_line_errors(command):
    """Report ddcodec's errors and OS errors as 'error: ...' on stderr with exit code 2, warnings as one line, and
    any other exception as one line with exit code 1 (the traceback with --debug). SIGTERM exits like Ctrl-C, so
    temporary files are removed."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.showwarning = lambda message, *_: click.echo(f"warning: {message}", err=True)
            warnings.simplefilter("always", UserWarning)
            try:
                return command(*args, **kwargs)
            except (DdcodecError, OSError) as exc:
                _error_line(exc)
            except KeyboardInterrupt:
                click.echo("error: interrupted", err=True)
                sys.exit(130)
            except Exception as exc:  # the last resort: never a traceback unless asked for
                if click.get_current_context().find_root().params.get("debug"):
                    raise
                first = str(exc).splitlines()[0] if str(exc) else ""
                click.echo(f"error: unexpected {type(exc).__name__}: {first} (rerun with --debug for details)",
                           err=True)
                sys.exit(EXIT_BUG)
            sys.exit(EXIT_ERROR)

    return wrapper


def _error_line(exc: DdcodecError | OSError) -> None:
    """ddcodec's error or an OS error as one 'error: ...' line on stderr."""
    if isinstance(exc, DdcodecError):
        click.echo(f"error: {exc}", err=True)
    else:
        click.echo(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)


@click.group()
@click.version_option(__version__, prog_name="ddcodec")  # no package metadata scan: starts fast
@click.option("--debug", is_flag=True, help="Show the traceback of unexpected errors.")
def main(debug: bool) -> None:
    """ddcodec: image compression by fitting a Deep Decoder; the file is the network's weights."""


def _source(path: Path):
    """An input path, or for `-` the bytes of standard input (at most MAX_STREAM_BYTES)."""
    from ddcodec.io.outputs import STDIO
    from ddcodec.format.reader import read_stream

    return read_stream(sys.stdin.buffer) if str(path) == STDIO else path


def _report(out: Path, result, as_json: bool) -> None:
    """One line (or one JSON object) about a file just written (on stderr when the file went to stdout)."""
    from ddcodec.io.outputs import STDIO

    to_stderr = str(out) == STDIO
    if as_json:  # an image coded exactly has an infinite PSNR, which JSON cannot write: null
        def finite(x: float) -> float | None:
            return x if math.isfinite(x) else None

        click.echo(json.dumps({"file": str(out), "bytes": result.n_bytes, "bpp": result.bpp,
                               "psnr": finite(result.psnr), "psnr_unquantized": finite(result.psnr_float),
                               "weights": result.n_params, "iters": result.iters, "seconds": result.seconds,
                               "device": result.device}, allow_nan=False),
                   err=to_stderr)
    else:
        click.echo(f"{out}: {result.n_bytes} bytes, {result.bpp:.4f} bpp, PSNR {result.psnr:.2f} dB (unquantized "
                   f"{result.psnr_float:.2f}), {result.n_params} weights, {result.seconds:.1f} s on {result.device}",
                   err=to_stderr)


overwrite_option = click.option("--overwrite", "-y", is_flag=True, help="Replace outputs that exist.")
skip_option = click.option("--skip-existing", is_flag=True, help="Leave outputs that exist alone (resume a batch).")


@main.command("encode")
@click.argument("paths", nargs=-1, required=True, metavar="SRC... DST")
@click.option("--bpp", type=float, help="Largest size in bits per pixel (header included).")
@click.option("--ratio", type=float, help="Compression factor 3·H·W / number of coded weights.")
@click.option("--quality", type=int, help="Preset 1..5 = at most 0.15, 0.25, 0.4, 0.6, 1.0 bpp; the default is 3.")
@click.option("--psnr", "min_psnr", type=float, help="Smallest file found whose decoded PSNR reaches this (dB).")
@click.option("--lambda", "lmbda", type=float,
              help="Rate weight λ of the coded profile's loss, MSE + λ·bpp (MSE of RGB in 0..1): λ alone sets the "
                   "file's size, as for the field's fixed-λ curves (about 1e-4 to 1e-2); the network is sized as for "
                   "--bpp/--ratio/--quality, which are then no cap.")
@click.option("--input", "input_", type=click.Choice(INPUTS), default=DEFAULT_INPUT, show_default=True,
              help="Network input: latent grids coded in the file too, or only the seed (the paper's Deep Decoder).")
@click.option("--complexity", type=click.Choice(list(COMPLEXITY_WIDTHS)),
              help="The coded profile's decoder cost: low, medium or high = about 600, 1,300 or 2,500 multiply-adds "
                   f"per pixel at most (default {DEFAULT_COMPLEXITY}, the one benchmarked; low decodes fastest).")
@click.option("--effort", type=int,
              help=f"Encoder effort {min(EFFORTS)}..{max(EFFORTS)}: "
                   + ", ".join(f"{e} = {p.iters} iterations" for e, p in EFFORTS.items())
                   + f" (default {DEFAULT_EFFORT} on the CPU, {GPU_EFFORT} on a GPU).")
@click.option("--iters", type=int, help="Fitting iterations (overrides the effort's).")
@click.option("--lr", type=float, default=DEFAULT_LR, show_default=True, help="Adam learning rate.")
@click.option("--seed", type=int, default=0, show_default=True, help="First seed of the network input and init.")
@click.option("--tries", type=int,
              help="Seeds tried in the warm-up (seed, seed+1, ...; default: the effort's); the best is kept.")
@click.option("--coder", type=click.Choice(sorted(CODERS)), default="range", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--batch", type=int, help="Images of one size fitted together (default 16 on CUDA, 1 on CPU).")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Images encoded at once, each in its own process, or with one input its tiles (a photo larger "
                   "than a tile): faster on a CPU with several cores.")
@click.option("--threads", type=int, help="torch CPU threads (per job; default: the cores shared out among jobs).")
@click.option("--resume", is_flag=True,
              help="Keep each finished tile in DST.tiles/, so that the same command run again after an interruption "
                   "fits only the tiles not done; the folder is removed once every file is written.")
@overwrite_option
@skip_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file written, on stdout.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
              help="Spread the images (with one input, its tiles) over a Ray cluster (local, or ADDRESS: auto, "
                   "ray://head:10001, ...).")
@_one_line_errors
def encode_cmd(paths, bpp, ratio, quality, min_psnr, lmbda, input_, complexity, effort, iters, lr, seed, tries, coder,
               device, batch, jobs, threads, resume, overwrite, skip_existing, as_json, quiet, ray_address) -> None:
    """Compress image SRC into the .ddc file DST, or several images (files or folders) into the folder DST (as
    NAME.ddc); each file is written as soon as it is done."""
    from ddcodec.io.outputs import STDIO, image_suffixes, plan_outputs

    if len(paths) < 2:
        raise DdcodecError("give an input image and an output: ddcodec encode SRC... DST")
    *sources, dst = paths
    if jobs < 1 or (threads is not None and threads < 1):
        raise DdcodecError("--jobs and --threads must be at least 1")
    if ray_address is not None and (jobs > 1 or threads):
        raise DdcodecError("--ray spreads the images itself: leave out --jobs and --threads")
    pairs = plan_outputs(sources, dst, ".ddc", image_suffixes(), overwrite, skip_existing)
    spread_tiles = len(pairs) == 1 and (jobs > 1 or ray_address is not None)
    if resume and (dst == STDIO or (ray_address is not None and not spread_tiles)):
        raise DdcodecError("--resume keeps tiles next to the output on this machine: give an output path (not -), "
                           "and one input with --ray")
    tiles_kept = Path(f"{dst.rstrip('/')}.tiles") if resume else None
    options = dict(bpp=bpp, ratio=ratio, quality=quality, psnr=min_psnr, lmbda=lmbda, input=input_,
                   complexity=complexity, effort=effort,
                   iters=iters, lr=lr, seed=seed, tries=tries, coder=coder, device=device, batch=batch)
    options |= {"resume": tiles_kept} if resume else {}
    inputs, outputs = [s for s, _ in pairs], [o for _, o in pairs]

    def report(out, result):
        _report(out, result, as_json)

    if ray_address is not None and not spread_tiles:
        from ddcodec.distributed import encode_on_ray

        _report_all(encode_on_ray(inputs, outputs, address=ray_address or None, overwrite=overwrite,
                                  skip_existing=skip_existing, keep_going=True, **options), report)
        return
    try:
        import torch

        from ddcodec.encoder.encode import check_options
    except ImportError as exc:
        raise DdcodecError(f"encoding needs torch ({exc}): pip install 'ddcodec[encode]'") from None
    per_call, _ = check_options(**{k: v for k, v in options.items() if k != "resume"},
                                **({"jobs": jobs, "threads": threads} if spread_tiles else {}))  # before any read
    if ray_address is not None:
        from ddcodec.distributed import tiles_on_ray

        options["runner"] = tiles_on_ray(ray_address or None)
    with _kept_until_done(tiles_kept):
        if jobs > 1 and not spread_tiles:
            from ddcodec.parallel import encode_in_processes

            _report_all(encode_in_processes(inputs, outputs, jobs=jobs, threads=threads, overwrite=overwrite,
                                            skip_existing=skip_existing, keep_going=True, **options), report)
        else:
            if threads and not spread_tiles:
                torch.set_num_threads(threads)
            here = {**options, "progress": not quiet} | ({"jobs": jobs, "threads": threads} if spread_tiles else {})
            _report_all(_encode_here(pairs, per_call, overwrite, skip_existing, here), report)


@contextlib.contextmanager
def _kept_until_done(tiles: Path | None):
    """The finished tiles' folder (--resume): removed when the block ends with every file written (_report_all
    exits otherwise), kept, and said so, on an interrupt."""
    try:
        yield
    except KeyboardInterrupt:
        if tiles is not None and tiles.is_dir():
            click.echo(f"the finished tiles are kept in {tiles}: the same command resumes from them", err=True)
        raise
    if tiles is not None:
        shutil.rmtree(tiles, ignore_errors=True)


def _encode_here(pairs, per_call: int, overwrite: bool, skip_existing: bool, options: dict):
    """Encode in this process, `per_call` images read at a time; yields (output, EncodeResult or InputError) as each
    file is written (parallel.finish: an output that appeared meanwhile is skipped with `skip_existing`)."""
    from ddcodec.parallel import encode_task, exists, finish

    for k in range(0, len(pairs), per_call):
        chunk = [(s, o) for s, o in pairs[k : k + per_call] if not (skip_existing and exists(o))]
        if not chunk:
            continue
        for (_, out), r in zip(chunk, encode_task([(str(s), _source(s)) for s, _ in chunk], options)):
            done = finish(out, r, overwrite, skip_existing, keep_going=True)
            if done:
                yield done


def _report_all(results, report) -> None:
    """report(file, result) for each (file, result) as it comes, and each file's error (a DdcodecError in place of
    its result) as one 'error:' line while the others go on; exit code 2 at the end if any file failed."""
    failed = 0
    for out, r in results:
        if isinstance(r, DdcodecError):
            _error_line(r)
            failed += 1
        else:
            report(out, r)
    if failed:
        sys.exit(EXIT_ERROR)


class _Amount(click.ParamType):
    """A positive number such as 2e9, or with a binary suffix K, M, G or T (4G = 4 GiB; for --max-memory)."""

    name = "N"
    _SUFFIXES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

    def convert(self, value, param, ctx):
        text = str(value).strip().upper().removesuffix("IB").removesuffix("B")
        scale = self._SUFFIXES.get(text[-1:], 1)
        try:
            amount = float(text[:-1] if scale > 1 else text) * scale
        except ValueError:
            amount = math.nan
        if not (math.isfinite(amount) and amount >= 1):
            self.fail(f"{value!r} is not a positive number (such as 2e9, or 4G)", param, ctx)
        return amount


@main.command("decode")
@click.argument("paths", nargs=-1, required=True, metavar="SRC... DST")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--format", "fmt", default="png", show_default=True, help="Image type written into a DST folder.")
@click.option("--max-memory", type=_Amount(), metavar="BYTES",
              help="Raise the decode's limit on peak memory for a trusted file (4G = 4 GiB, 6e9, ...).")
@click.option("--max-pixels", type=_Amount(), metavar="N", help="Raise the decode's limit on pixels.")
@click.option("--max-macs", type=_Amount(), metavar="N",
              help="Raise the decode's limit on work, in multiply-adds (3e10 is about 2 s on one core).")
@overwrite_option
@skip_option
@_one_line_errors
def decode_cmd(paths, device, fmt, max_memory, max_pixels, max_macs, overwrite, skip_existing) -> None:
    """Decode the .ddc file SRC into image DST (format from its extension: png, ppm, bmp, ...), or several .ddc
    files (files or folders) into the folder DST (as NAME.png, or the --format given). A file that would cost more
    to decode than the limits allow is refused; raise them with --max-memory, --max-pixels, --max-macs for a
    trusted file."""
    from ddcodec.decoders import decode as decoder
    from ddcodec.errors import naming
    from ddcodec.format.limits import Limits
    from ddcodec.io.images import image_bytes, image_format
    from ddcodec.io.outputs import STDIO, plan_outputs
    from ddcodec.parallel import Decoded, exists, finish

    if len(paths) < 2:
        raise DdcodecError("give a .ddc file and an output: ddcodec decode SRC... DST")
    *sources, dst = paths
    suffix = f".{fmt.lstrip('.')}"
    jobs = plan_outputs(sources, dst, suffix, DDC_SUFFIXES, overwrite, skip_existing)
    formats = [image_format(f"{STDIO}{suffix}" if str(out) == STDIO else out) for _, out in jobs]
    limits = Limits(pixels=max_pixels and int(max_pixels), memory=max_memory and int(max_memory), macs=max_macs)

    def decoded():  # (output, the image file written, or the error of a file that cannot be decoded)
        for (src, out), image_type in zip(jobs, formats):
            if skip_existing and exists(out):  # written meanwhile by another command
                continue
            try:
                image = Decoded(image_bytes(decoder.decode(_source(src), device, limits=limits), image_type))
            except BitstreamError as exc:
                image = naming(str(src), exc)
            done = finish(out, image, overwrite, skip_existing, keep_going=True)
            if done:
                yield done

    _report_all(decoded(), lambda out, _: click.echo(f"{out}: decoded", err=str(out) == STDIO))


@main.command("info")
@click.argument("paths", nargs=-1, required=True, metavar="SRC...")
@click.option("--json", "as_json", is_flag=True, help="Print the fields as JSON (one object per line and file).")
@_one_line_errors
def info_cmd(paths, as_json) -> None:
    """Show the header of each .ddc file SRC (files, or folders of .ddc files), without decoding it."""
    from ddcodec.errors import naming
    from ddcodec.io.outputs import expand_inputs

    def fields():  # (file, its fields, or the error of a file that cannot be read)
        for src in expand_inputs(paths, DDC_SUFFIXES):
            try:
                yield src, _info_fields(src)
            except DdcodecError as exc:
                yield src, type(exc)(naming(str(src), exc))

    def show(_, info: dict) -> None:
        if as_json:
            click.echo(json.dumps(info))
        else:
            for k, v in info.items():
                click.echo(f"{k:>14}: {v:.4f}" if isinstance(v, float) else f"{k:>14}: {v}")

    _report_all(fields(), show)


def _info_fields(src: Path) -> dict:
    """A .ddc file's header fields, sizes and decode cost, from its header and payload descriptors (the whole file
    checked, nothing decoded, the decode limits not applied); for a tiled file, the tiles' count and size, their
    parameters and decode cost in all (limits.tiled_cost), and the first tile's fields under "first_tile"."""
    from ddcodec.format.container import parse
    from ddcodec.format.limits import tiled_cost
    from ddcodec.format.reader import read_stream, read_tiled
    from ddcodec.format.tiles import is_tiled, tile_header

    data = read_stream(_source(src))
    if not is_tiled(data):
        fields, cost = _network_fields(*parse(data, budget=False))
        return {"file": str(src), "bytes": len(data), "bpp": 8 * len(data) / (fields["height"] * fields["width"]),
                **fields, "decode_memory_bytes": cost.memory, "decode_work": cost.macs}
    tiled, _ = read_tiled(data, budget=False)
    tiles = [_network_fields(*tile_header(t, tiled.channels)) for t in tiled.tiles]
    cost = tiled_cost([c for _, c in tiles], tiled.height * tiled.width * tiled.channels)
    return {
        "file": str(src), "bytes": len(data), "bpp": 8 * len(data) / (tiled.height * tiled.width),
        "height": tiled.height, "width": tiled.width, "channels": tiled.channels, "version": data[4],
        "tiles": len(tiles), "tile_size": [tiled.tile_width, tiled.tile_height],
        "parameters": sum(f["parameters"] for f, _ in tiles), "decode_memory_bytes": cost.memory,
        "decode_work": cost.macs, "first_tile": tiles[0][0],
    }


def _network_fields(header, payload: bytes) -> tuple[dict, object]:
    """One network's fields (a version 1 to 4 file's, or a tile's) and its decode cost (limits.decode_cost)."""
    from ddcodec.format.limits import decode_cost
    from ddcodec.format.payload import read_tensors

    a = header.arch
    tensors, arm_stream = read_tensors(header, payload)
    cost = decode_cost(a, tensors.facts)
    arm = None if a.arm is None else {"neighbours": a.arm.neighbours, "coarser": a.arm.coarser,
                                      "hidden": list(a.arm.hidden), "parameters": a.arm.n_params,
                                      "stream_bytes": len(arm_stream)}
    return {
        "height": a.height, "width": a.width, "channels": a.channels, "layers": a.layers,
        "widths": list(a.widths), "input_size": list(a.input_size), "parameters": a.n_params,
        "input": "coded" if a.coded_input else "seed", "latents": list(a.latents), "latent_values": a.n_latents,
        "version": header.version, "upsampling_taps": a.taps, "refinement": [a.refine_kernel] * a.refine,
        "arm": arm, "macs_per_pixel": round(a.macs_per_pixel()),
        "seed": header.seed, "coder": {v: k for k, v in CODERS.items()}[header.coder],
        "step_codes": list(header.step_codes), "payload_bytes": len(payload),
    }, cost


@main.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="ddcodec-demo", show_default=True)
@click.option("--iters", type=int,
              help=f"Fitting iterations (default: effort {DEMO_EFFORT}'s, {EFFORTS[DEMO_EFFORT].iters}).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@_one_line_errors
def demo_cmd(out_dir, iters, device) -> None:
    """Encode a bundled photo at 0.4 bpp, code it with every classical codec at the same size, and write the files
    and a side-by-side picture (comparison.png)."""
    from ddcodec.demo import run_demo

    run_demo(Path(out_dir), iters, device, click.echo)


def _restore_output(src, dst, overwrite: bool, mask=None) -> Path:
    """Check DST before the fit starts (the same rules as encode's outputs, the mask an input too); a folder DST
    gets SRC's name as .png."""
    from ddcodec.io.images import image_format
    from ddcodec.io.outputs import STDIO, image_suffixes, plan_outputs

    ((_, out),) = plan_outputs([src], dst, ".png", image_suffixes(), overwrite, also_inputs=[mask] if mask else [])
    image_format("-.png" if str(out) == STDIO else out)
    return out


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
        overwrite_option,
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _restore_run(function, dst, overwrite, quiet, **options) -> None:
    """Check the output, restore, write the image atomically and say how long it took."""
    from ddcodec.io.images import image_bytes, image_format
    from ddcodec.io.outputs import STDIO
    from ddcodec.parallel import write_output

    dst = _restore_output(options["image"], dst, overwrite, options.get("mask"))
    options["progress"] = not quiet
    options["image"] = _source(options["image"])
    if options.get("mask") is not None:
        options["mask"] = _source(options["mask"])
    start = time.perf_counter()
    restored = function(**options)
    write_output(dst, image_bytes(restored, image_format("-.png" if str(dst) == STDIO else dst)), overwrite)
    click.echo(f"{dst}: restored in {time.perf_counter() - start:.1f} s", err=str(dst) == STDIO)


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
    from ddcodec import restore

    _restore_run(restore.denoise, dst, overwrite, quiet, image=src, **options)


@restore_group.command("inpaint")
@click.argument("paths", nargs=-1, required=True, metavar="SRC [MASK] DST")
@click.option("--missing-fraction", type=float, help="Drop this share of pixels at random instead of a MASK.")
@_restore_options
@_one_line_errors
def inpaint_cmd(paths, missing_fraction, overwrite, quiet, **options) -> None:
    """Fill the pixels of SRC that MASK marks black (white = known); write DST."""
    from ddcodec import restore

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
    from ddcodec import restore

    _restore_run(restore.superres, dst, overwrite, quiet, image=src, **options)


if __name__ == "__main__":
    main()
