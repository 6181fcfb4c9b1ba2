"""Encoding: fit a Deep Decoder to the image, quantize its weights by rate-distortion, entropy-code, pack.

One batch of images of one size reads as its phases (_encode_batch): warm up (warmup.py) -> fit (the preset's fit
phases, presets.py, with the latents' rate term of ratecontrol.py) -> round the latents (refitted first where they
overshoot the budget: the preset's refit phase) -> allocate the weights' quantization steps (nnquant.py, μ searched
by ratecontrol.py) -> fine-tune (the preset's finetune phases) -> code.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ddcodec.format.architecture import Architecture
from ddcodec.encoder.arm import arm_step_codes, round_latents
from ddcodec.encoder.cost import encode_cost, finishing_cost, quantization_cost, stage_costs
from ddcodec.format.container import Header, pack, parse
from ddcodec.decoders.decode import decode_array
from ddcodec.errors import DecodeBudgetError, InputError
from ddcodec.training.fit import fit, per_image_mse, pick_device
from ddcodec.io.images import ImageLike, to_array
from ddcodec.format.limits import check_budget, check_tiled_budget, decode_cost, default_limits
from ddcodec.format import tiles as tiling
from ddcodec.metrics import psnr
from ddcodec.format.payload import encode_payload
from ddcodec.format.options import CODERS, DEFAULT_INPUT, DEFAULT_LR, INPUTS
from ddcodec.training.presets import DEFAULT_EFFORT, EFFORTS, GPU_EFFORT, Preset, WarmUp
from ddcodec.training.progress import Progress
from ddcodec.encoder.result import EncodeResult
from ddcodec.encoder.tilestore import TileStore
from ddcodec.encoder.workers import Runner, map_in_processes
from ddcodec.encoder.nnquant import allocate_steps, quantize, sensitivities, step_tensors
from ddcodec.encoder.plans import DEFAULT_COMPLEXITY
from ddcodec.encoder.ratecontrol import (DEFAULT_QUALITY, PSNR_RETRIES, QUALITY_BPP, Plan, RateTerm, bpp_for_psnr,
                                         complexity_width, final_stream, lambda_mu, latent_rate_term, overshoot, plan,
                                         prune_to_fit, psnr_plan, search_mu, unbudgeted_mu)
from ddcodec.training.warmup import warm_up

MAX_ITERS = 10**7


def encode(
    image: ImageLike,
    *,
    bpp: float | None = None,
    ratio: float | None = None,
    quality: int | None = None,
    psnr: float | None = None,
    lmbda: float | None = None,
    input: str = DEFAULT_INPUT,
    complexity: str | None = None,
    effort: int | None = None,
    iters: int | None = None,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    tries: int | None = None,
    coder: str = "range",
    device: str = "auto",
    progress: bool = False,
    preset: Preset | None = None,
    jobs: int = 1,
    threads: int | None = None,
    resume: str | os.PathLike | None = None,
) -> EncodeResult:
    """Compress one image (path, PIL image or uint8 array) to .ddc bytes; the options are those of encode_many.

    Give at most one of `bpp` (a hard cap on bits per pixel), `ratio` (3·H·W / weights), `quality` (1..5; the
    default is 3) or `psnr` (dB: the smallest file found that reaches it); or `lmbda`, the rate weight λ (see
    encode_many). `input` "coded" (latent grids coded in
    the file too; the default) or "seed" (the paper's Deep Decoder: weights and a seed); `complexity` the coded
    profile's decoder cost, "low", "medium" (the default) or "high" (see encode_many). `effort` 1..5 picks the
    schedule (presets.EFFORTS; default 2 on the CPU, 4 on a GPU); `iters` overrides its iterations, `tries` its
    warm-up candidates (seeds from `seed`), `preset` replaces it; `lr` is the peak learning rate; `coder` "range"
    or "zstd"; `device` "auto", "cpu" or "cuda"; `progress` shows a progress bar; `jobs`, `threads` and `resume`
    spread an image's tiles over processes and keep them (see encode_many). Raises InputError for options or images
    it cannot take.
    """
    return encode_many([image], bpp=bpp, ratio=ratio, quality=quality, psnr=psnr, lmbda=lmbda, input=input,
                       complexity=complexity, effort=effort, iters=iters, lr=lr, seed=seed, tries=tries, coder=coder,
                       device=device, progress=progress, preset=preset, jobs=jobs, threads=threads, resume=resume)[0]


def encode_many(
    images: Sequence[ImageLike],
    *,
    bpp: float | None = None,
    ratio: float | None = None,
    quality: int | None = None,
    psnr: float | None = None,
    lmbda: float | None = None,
    effort: int | None = None,
    iters: int | None = None,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    tries: int | None = None,
    coder: str = "range",
    device: str = "auto",
    batch: int | None = None,
    progress: bool = False,
    input: str = DEFAULT_INPUT,
    complexity: str | None = None,
    preset: Preset | None = None,
    jobs: int = 1,
    threads: int | None = None,
    resume: str | os.PathLike | None = None,
    runner: Runner | None = None,
) -> list[EncodeResult]:
    """Compress several images; those of one size are fitted together, `batch` at a time, in batched kernels.

    Choose the size with one of `bpp` (a hard cap on bits per pixel, header included), `ratio` (3·H·W / parameters)
    or `quality` (presets of bpp, 1..5), or ask for `psnr` (dB: the smallest file found whose decoded PSNR reaches
    it; the network is sized from a guess of the rate, doubled up to three times if the fit falls short); the
    default is quality 3. With `lmbda`, the rate weight λ, the coded profile fits one loss, MSE (RGB in 0..1) + λ ·
    bits per pixel, for every tensor the file holds (the latents' bits by their coder's estimate; the weights'
    quantization steps at the same slope), and λ alone sets the file's size, as the field draws its curves: the
    network is sized as for `bpp`, `ratio` or `quality`, none of which is then a cap. `effort`, `iters`, `tries` and
    `preset` choose the schedule (see encode). `batch` defaults
    to 16 on CUDA and 1 on the CPU, where batching saves little. Each result is the same as encoding its image
    alone, up to float rounding. `input` "coded" (the default) also fits latent grids with a rate term and codes
    them in the file; "seed" codes only the weights and the seed. `complexity` caps the coded profile's network by
    the decoder's multiply-adds per pixel (plans.COMPLEXITY_WIDTHS: "low" about 600, "medium" about 1,300, the default,
    "high" about 2,500); the seed profile is sized by the budget alone.

    An image larger than a tile (format/tiles.py) is fitted as independent tiles. `jobs` > 1 fits the tiles (and
    images) in that many worker processes of `threads` torch threads each (default: the cores shared out; CPU only,
    and a script that calls it needs the `if __name__ == "__main__":` guard of spawned processes), which on a CPU
    finishes a photo sooner than one process on every core. `resume`, a folder, keeps each finished tile there, so
    that the same call run again after an interruption refits only the tiles that were not done (any other image,
    option or ddcodec version refits them all); the folder is left for the caller to remove. `runner` runs the tiles
    elsewhere instead (workers.Runner; ddcodec.distributed.tiles_on_ray: on a Ray cluster).
    """
    batch, schedule = check_options(bpp=bpp, ratio=ratio, quality=quality, psnr=psnr, lmbda=lmbda, input=input,
                                    complexity=complexity, effort=effort, iters=iters, lr=lr, seed=seed, tries=tries,
                                    coder=coder, device=device, batch=batch, preset=preset, jobs=jobs, threads=threads)
    dev = pick_device(device)
    images = [to_array(image) for image in images]
    arrays, owners = [], []  # the images to fit: each image, or each tile of an image larger than a tile
    for i, a in enumerate(images):
        regions = tiling.tile_regions(*a.shape[:2], *tiling.tile_grid(*a.shape[:2]))
        arrays += [a[y : y + h, x : x + w] for y, x, h, w in regions] if len(regions) > 1 else [a]
        owners += [i] * len(regions)
    coded = input == "coded"
    complexity = complexity or DEFAULT_COMPLEXITY
    if psnr is None:
        def size(shape: tuple[int, ...], tile_bpp: float | None = None) -> Plan:
            if tile_bpp is not None:
                return plan(*shape, bpp=tile_bpp, coded_input=coded, complexity=complexity)
            return plan(*shape, bpp=bpp, ratio=ratio, quality=quality, coded_input=coded, complexity=complexity)

        plans = [size(a.shape, _tile_bpp(images[i].shape, bpp, ratio, quality) if owners.count(i) > 1 else None)
                 for a, i in zip(arrays, owners)]
    else:
        def size(shape: tuple[int, ...]) -> Plan:
            return psnr_plan(shape, bpp_for_psnr(psnr), coded, complexity)[0]

        sized = [psnr_plan(a.shape, bpp_for_psnr(psnr), coded, complexity) for a in arrays]
        plans = [p for p, _ in sized]
    for a, p in zip(arrays, plans):  # the encoder refuses what the decoder would refuse, before any work
        check_decodable(a.shape, p, size)
    for i, a in enumerate(images):
        if owners.count(i) > 1:
            try:
                check_tiled_budget([(p.arch, None) for p, o in zip(plans, owners) if o == i], *a.shape)
            except DecodeBudgetError as exc:
                th, tw = tiling.tile_grid(*a.shape[:2])
                raise InputError(f"a {a.shape[1]}x{a.shape[0]} image is too large for ddcodec at these settings, in "
                                 f"{tw}x{th} tiles, and ddcodec writes only files within the default "
                                 f"decode limits: {exc}") from None
    groups: dict[tuple[tuple[int, ...], Plan], list[int]] = {}
    for i, a in enumerate(arrays):  # (one image's tiles of one size have one plan; another image's may differ)
        groups.setdefault((a.shape, plans[i]), []).append(i)
    chunks = [m[k : k + batch] for m in groups.values() for k in range(0, len(m), batch)]
    tasks = [_Task(tuple(arrays[i] for i in c), plans[c[0]], schedule, lr, seed, CODERS[coder], dev, psnr,
                   _label(c, owners, len(images)), lmbda) for c in chunks]
    store = TileStore(resume) if resume is not None else None
    kept = {k: r for k, t in enumerate(tasks) if store and (r := store.get(t.key(), len(t.pixels)))}
    cost = sum(encode_cost(t.plan.arch, schedule, len(t.pixels)) for k, t in enumerate(tasks) if k not in kept)
    reporter = Progress(cost, batches=[len(c) for c in chunks],
                        unit="tiles" if len(arrays) > len(images) else "images") if progress else None
    results: list[EncodeResult | None] = [None] * len(arrays)
    spans: list[tuple[float, float]] = [(0.0, 0.0)] * len(arrays)  # each fit's (start, end) on this clock
    if runner is None and jobs > 1:
        runner = partial(map_in_processes, jobs=jobs, threads=threads)
    for k, fitted in _fit_all(tasks, kept, runner, reporter, store):
        end = time.perf_counter()
        start = end if k in kept else end - sum(r.seconds for r in fitted)
        for i, r in zip(chunks[k], fitted):
            results[i], spans[i] = r, (start, end)
        if reporter:
            reporter.batch_done()
    if reporter:
        reporter.close()
    if psnr is not None:  # a fit that fell short of the target is redone, alone, with a network twice the size
        for i, a in enumerate(arrays):
            guess = sized[i][1]
            for _ in range(PSNR_RETRIES):
                if results[i].psnr >= psnr:
                    break
                p, guess = psnr_plan(a.shape, 2 * guess, coded, complexity)
                results[i] = _encode_batch([a], p, schedule, lr, seed, CODERS[coder], dev, reporter, psnr,
                                           f"{_label([i], owners, len(images))}, retry")[0]
                spans[i] = (spans[i][0], time.perf_counter())
            if results[i].psnr < psnr:
                raise InputError(f"a PSNR of {psnr} dB was not reached (best {results[i].psnr:.2f} dB); try a higher "
                                 "effort or more iterations")
    return [_join_tiles(a, [r for r, o in zip(results, owners) if o == i], [t for t, o in zip(spans, owners) if o == i],
                        dev) for i, a in enumerate(images)]


@dataclass(frozen=True)
class _Task:
    """One batch of images (or tiles) of one size and plan to fit, with all that its fit depends on (picklable, for
    a worker process)."""

    pixels: tuple[np.ndarray, ...]
    plan: Plan
    schedule: Preset
    lr: float
    seed: int
    coder: int
    device: torch.device
    psnr: float | None
    label: str
    lmbda: float | None

    def key(self) -> str:
        """Its name in a TileStore: the pixels and every setting but the label."""
        settings = (self.plan, self.schedule, self.lr, self.seed, self.coder, self.device.type, self.psnr, self.lmbda)
        return TileStore.fingerprint(self.pixels, settings)


def _fit(task: _Task, progress: Progress | None) -> list[EncodeResult]:
    """The task's results (in this process or a worker)."""
    return _encode_batch(list(task.pixels), task.plan, task.schedule, task.lr, task.seed, task.coder, task.device,
                         progress, task.psnr, task.label, task.lmbda)


def _fit_all(tasks: Sequence[_Task], kept: dict[int, list[EncodeResult]], runner: Runner | None,
             progress: Progress | None, store: TileStore | None) -> Iterator[tuple[int, list[EncodeResult]]]:
    """(index, results) of each task as it is done: first those `kept` from an earlier run, then the others fitted
    here or by `runner`, each put in `store` when done."""
    yield from kept.items()
    todo = [k for k in range(len(tasks)) if k not in kept]
    if runner is None or len(todo) < 2:  # (one task runs here, on all of this process's threads)
        runs: Iterator[tuple[int, list[EncodeResult]]] = ((j, _fit(tasks[k], progress)) for j, k in enumerate(todo))
    else:
        runs = runner(_fit, [tasks[k] for k in todo], progress)
    for j, fitted in runs:
        if store:
            store.put(tasks[todo[j]].key(), fitted)
        yield todo[j], fitted


def _label(chunk: list[int], owners: list[int], n_images: int) -> str:
    """A batch's name on the progress bar and log, from the indices of its images or tiles (`owners`: the image each
    index belongs to): 'image 1+2/5', or a tile's 'image 1/1, tile 3/12' (several joined by '; ')."""
    if all(owners.count(owners[i]) == 1 for i in chunk):
        return f"image {'+'.join(str(owners[i] + 1) for i in chunk)}/{n_images}"

    def name(i: int) -> str:
        mine = [k for k, o in enumerate(owners) if o == owners[i]]
        tile = f", tile {mine.index(i) + 1}/{len(mine)}" if len(mine) > 1 else ""
        return f"image {owners[i] + 1}/{n_images}{tile}"

    return "; ".join(map(name, chunk))


def _tile_bpp(shape: tuple[int, ...], bpp: float | None, ratio: float | None, quality: int | None) -> float | None:
    """The bits per pixel each tile of an image of this shape gets from a budget (`bpp`, or `quality`'s): the
    image's byte budget less the tiled file's header and index, shared in proportion to the tiles' pixels, so that
    the file as a whole stays within it; None for a `ratio` (no budget: each tile gets the ratio)."""
    if ratio is not None:
        return None
    rate = bpp if bpp is not None else QUALITY_BPP.get(DEFAULT_QUALITY if quality is None else quality)
    if rate is None:
        return None  # plan names the bad quality
    h, w = shape[:2]
    n = len(tiling.tile_regions(h, w, *tiling.tile_grid(h, w)))
    return max(8 * (int(rate * h * w / 8) - tiling.overhead(n)) / (h * w), 1e-9)


def _join_tiles(image: np.ndarray, parts: list[EncodeResult], spans: list[tuple[float, float]], dev: torch.device
                ) -> EncodeResult:
    """An image's result: its one file's, or the tiled file (format version 5) of its tiles' files, whose `seconds`
    is the wall time from its first tile's start to its last one's end (`spans`: each tile's)."""
    if len(parts) == 1:
        return parts[0]
    h, w = image.shape[:2]
    data = tiling.pack_tiled(h, w, image.shape[2], *tiling.tile_grid(h, w), [r.data for r in parts])
    mse = sum(10 ** (-r.psnr_float / 10) * r.arch.height * r.arch.width for r in parts) / (h * w)
    return EncodeResult(data=data, arch=parts[0].arch, psnr=psnr(decode_array(data, dev), image),
                        psnr_float=10 * math.log10(1 / max(mse, 1e-12)), iters=parts[0].iters,
                        seconds=max(e for _, e in spans) - min(b for b, _ in spans), device=parts[0].device,
                        tiles=tuple(parts), refitted=any(r.refitted for r in parts),
                        latents_pruned=sum(r.latents_pruned for r in parts))


def check_decodable(shape: tuple[int, ...], p: Plan, size: Callable[[tuple[int, ...]], Plan]) -> None:
    """An InputError if the decoder would refuse p's file at the default decode limits (ddcodec writes only files
    that decode within them): one line with what decoding it would need, each limit it exceeds, and a size of the
    image (its aspect ratio kept, planned by `size` at these settings) that fits, for the user to resize to."""
    try:
        check_budget(p.arch)
        return
    except DecodeBudgetError:
        pass
    cost, most = decode_cost(p.arch), default_limits(p.arch.height, p.arch.width)
    over = [f"{need} (the limit is {limit})" for need, value, limit_value, limit in (
        (f"{cost.pixels / 1e6:.3g} megapixels", cost.pixels, most.pixels, f"{most.pixels / 1e6:.3g}"),
        (f"{_megabytes(cost.memory)} of memory", cost.memory, most.memory, _megabytes(most.memory)),
        (f"{cost.macs:.2g} multiply-adds", cost.macs, most.macs, f"{most.macs:.2g}"),
    ) if value > limit_value]
    h, w = shape[:2]
    fits = _decodable_size(h, w, shape[2:], size)
    advice = (f"resize it to {fits[1]}x{fits[0]} ({fits[0] * fits[1] / 1e6:.2g} megapixels) or smaller" if fits
              else "no smaller version of it fits either")
    raise InputError(f"a {w}x{h} image is too large for ddcodec at these settings: decoding its file would need "
                     f"{' and '.join(over)}, and ddcodec writes only files within the default decode limits; "
                     f"{advice}")


def _megabytes(n: float) -> str:
    """A number of bytes in MB or GB, for a message."""
    return f"{n / 1e9:.2g} GB" if n >= 1e9 else f"{n / 1e6:.{2 if n < 1e8 else 3}g} MB"


def _decodable_size(h: int, w: int, rest: tuple[int, ...], size: Callable[[tuple[int, ...]], Plan]
                    ) -> tuple[int, int] | None:
    """About the largest (height, width) of the shape h x w scaled down whose plan passes the decode limits (searched
    by halving, then bisecting the scale), or None if none of 8 pixels or more on its short side does."""

    def scaled(k: float) -> tuple[int, int]:
        return max(1, round(h * k)), max(1, round(w * k))

    def fits(k: float) -> bool:
        try:
            check_budget(size((*scaled(k), *rest)).arch)
            return True
        except (DecodeBudgetError, InputError):  # InputError: too small for these settings
            return False

    low, high = 0.5, 1.0
    while not fits(low):
        if min(scaled(low)) < 8:
            return None
        low, high = low / 2, low
    for _ in range(24):
        middle = (low + high) / 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return scaled(low)


def check_options(
    *, bpp: float | None = None, ratio: float | None = None, quality: int | None = None, psnr: float | None = None,
    lmbda: float | None = None, input: str = DEFAULT_INPUT, complexity: str | None = None,
    effort: int | None = None, iters: int | None = None,
    lr: float = DEFAULT_LR, seed: int = 0, tries: int | None = None, coder: str = "range", device: str = "auto",
    batch: int | None = None, preset: Preset | None = None, jobs: int = 1, threads: int | None = None,
) -> tuple[int, Preset]:
    """Check encode_many's options (an InputError names the first one that cannot be used); return how many images
    one call fits together (`batch`, or its default for the device) and the schedule they choose."""
    if input not in INPUTS:
        raise InputError(f"unknown input profile {input!r} (choose from {', '.join(INPUTS)})")
    if coder not in CODERS:
        raise InputError(f"unknown coder {coder!r} (choose from {', '.join(CODERS)})")
    if effort is not None and effort not in EFFORTS:
        raise InputError(f"effort must be one of {sorted(EFFORTS)}, not {effort}")
    if iters is not None and not 1 <= iters <= MAX_ITERS:
        raise InputError(f"iters must be in 1 .. {MAX_ITERS}, not {iters}")
    if tries is not None and tries < 1:
        raise InputError(f"tries must be at least 1, not {tries}")
    for name, value in (("bpp", bpp), ("ratio", ratio), ("lr", lr), ("lambda", lmbda)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a positive finite number, not {value}")
    if psnr is not None and not (math.isfinite(psnr) and 0 < psnr < 100):
        raise InputError(f"psnr must be a number of dB between 0 and 100, not {psnr}")
    if sum(x is not None for x in (bpp, ratio, quality, psnr)) > 1:
        raise InputError("give at most one of bpp, ratio, quality and psnr")
    if complexity is not None:
        complexity_width(complexity)
        if input != "coded":
            raise InputError("complexity sets the coded profile's decoder cost: leave it out with --input seed")
    if lmbda is not None and (psnr is not None or input != "coded"):
        raise InputError("lambda sets the rate of the coded profile's latents: leave out psnr and --input seed")
    if batch is not None and batch < 1:
        raise InputError(f"batch must be at least 1, not {batch}")
    if jobs < 1 or (threads is not None and threads < 1):
        raise InputError(f"jobs and threads must be at least 1, not {jobs} and {threads}")
    try:
        dev = pick_device(device)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if jobs > 1 and dev.type != "cpu":
        raise InputError("jobs spreads tiles over CPU processes; on a GPU they are fitted together (batch)")
    schedule = preset or EFFORTS[effort or (GPU_EFFORT if dev.type == "cuda" else DEFAULT_EFFORT)]
    if tries is not None:
        schedule = dataclasses.replace(schedule, warmup=WarmUp(tries, (tries,), schedule.warmup.share,
                                                               schedule.warmup.coarse))
    if not 0 <= seed <= 2**64 - schedule.warmup.candidates:
        raise InputError("seed must be in 0 .. 2^64-1 minus the number of tries")
    return batch or (16 if dev.type == "cuda" else 1), schedule.with_iters(iters)


def _encode_batch(
    pixels: list[np.ndarray], p: Plan, preset: Preset, lr: float, seed: int, coder: int, dev: torch.device,
    progress: Progress | None, min_psnr: float | None = None, label: str = "", lmbda: float | None = None,
) -> list[EncodeResult]:
    """Warm up, fit, round (refit where the latents overshoot the budget or end over their share of it), allocate
    steps, fine-tune and code B images of one size as B networks in one batch; with `lmbda`, at that rate weight and
    without p's byte budget."""
    start = time.perf_counter()
    if lmbda is not None:
        p = dataclasses.replace(p, budget=None)
    arch, n = p.arch, len(pixels)
    if progress:  # its ETA weighs each stage by what it costs (cost.py)
        progress.costs = stage_costs(arch, preset, n)
    target = torch.stack([torch.from_numpy(a.copy()).permute(2, 0, 1) for a in pixels]).float().div(255).to(dev)
    seeds, z, weights = warm_up(arch, target, seed, preset, lr, progress, label)
    rate = latent_rate_term(p, n, sum(map(preset.phase_iters, preset.fit)), dev, lmbda)
    weights, mse_float = _run(preset, preset.fit, arch, target, z, weights, lr, rate, None, arch.bn_scales,
                              progress, label)
    grids, arm = arch.grid_indices, arch.arm_indices
    weights = round_latents(arch, weights)
    fixed = arch.bn_scales | grids  # step code 0: BN scales (held at 1) and latent grids (integers)

    def measure(ws: list[torch.Tensor]) -> tuple[list, list[list[int]]]:
        """The weights' sensitivities to quantization, and the ARM's step codes, for fitted weights ws."""
        with torch.no_grad():
            return (sensitivities(lambda v: per_image_mse(arch, v, z, target), ws, skip=grids | set(arm)),
                    arm_step_codes(arch, ws))

    sens, arm_codes = measure(weights)

    def allocate(b: int, mu: float) -> list[int]:
        """Image b's step codes at mu from the fit's weights; the ARM's chosen by arm.arm_step_codes."""
        codes = allocate_steps(mu, sens[b], [w[b] for w in weights], fixed)
        for t, c in zip(arm, arm_codes[b]):
            codes[t] = c
        return codes

    def stream(b: int, ws: list[torch.Tensor], mu: float) -> bytes:
        """Image b's file with weights ws[.][b], its steps allocated at mu; with an ARM, the smaller of the files
        with and without it (the linear context model: the ARM's own bits do not pay on the smallest images)."""
        header = Header(arch, seeds[b], coder, tuple(allocate(b, mu)))
        ints = quantize([w[b] for w in ws], header.step_codes)
        files = [pack(header, encode_payload(header, ints))]
        if arch.arm is not None:
            plain = Header(dataclasses.replace(arch, arm=None), seeds[b], coder, header.step_codes[: -len(arm)])
            files.append(pack(plain, encode_payload(plain, ints[: -len(arm)])))
        return min(files, key=len)

    def good(b: int, data: bytes) -> bool:
        """Whether image b's stream meets the target: the byte budget, or the PSNR asked for."""
        if p.budget:
            return len(data) <= p.budget
        return min_psnr is None or psnr(decode_array(data, dev), pixels[b]) >= min_psnr

    over_target = (rate.over_target([weights[t] for t in grids], [weights[t] for t in arm]) if rate and preset.refit
                   else [False] * n)
    over = [o or overshoot(grids, partial(stream, b, weights), p.budget) > 0 for b, o in enumerate(over_target)]
    if preset.refit and rate and any(over):  # the latents overshot: fit on with λ's steering hastened
        rate.hasten(preset.phase_iters(preset.refit))
        refitted, mse = _run(preset, (preset.refit,), arch, target, z, weights, lr, rate, None, arch.bn_scales,
                             progress, label)
        weights = _where(over, round_latents(arch, refitted), weights)
        mse_float = [m if o else f for m, f, o in zip(mse, mse_float, over)]
        sens, arm_codes = measure(weights)
    if rate:
        rate.fix()
    pruned = [prune_to_fit(grids, [w[b] for w in weights], lambda m, b=b: stream(b, weights, m), p.budget)
              if over[b] else 0 for b in range(n)]

    def knob(b: int) -> float:
        """Image b's mu: searched for its budget or PSNR, at λ's slope, or from its float fit's MSE."""
        if p.budget or min_psnr is not None:
            return search_mu(lambda m: stream(b, weights, m), lambda d: good(b, d), p.budget is not None)
        if lmbda is not None:
            return lambda_mu(lmbda, pixels[b].shape[0] * pixels[b].shape[1])
        return unbudgeted_mu(mse_float[b], arch.n_params)

    mus = [knob(b) for b in range(n)]
    before = [stream(b, weights, mus[b]) for b in range(n)] if p.budget else []
    if progress:
        progress.advance(quantization_cost(arch, n))
    steps = step_tensors([allocate(b, mus[b]) for b in range(n)], weights)
    filled = [len(d) / p.budget for d in before] if p.budget else [0.0] * n
    tuned, _ = _run(preset, preset.finetune, arch, target, z, weights, lr, rate, steps, arch.bn_scales | set(arm),
                    progress, label, filled)  # the ARM held as fitted (a last fit of it alone lost: ablations.md)
    tuned = round_latents(arch, tuned)
    arm_codes = arm_step_codes(arch, tuned)

    def tuned_file(b: int) -> bytes:
        """Image b's file after fine-tuning: for a PSNR target the smallest that reaches it; for a budget the
        better by PSNR of the fine-tuned and the fine-tuning's starting file (fine-tuning at a fixed λ can grow
        the latents past the budget: then the starting file)."""
        if min_psnr is not None:
            return search_mu(lambda m: stream(b, tuned, m), lambda d: good(b, d), False, data=True)
        try:
            after = final_stream(lambda m: stream(b, tuned, m), mus[b], p.budget)
        except InputError:
            return before[b]
        return max([after, *before[b:b + 1]], key=lambda d: psnr(decode_array(d, dev), pixels[b]))

    datas = [tuned_file(b) for b in range(n)]
    if progress:
        progress.advance(finishing_cost(arch, n))
    seconds = (time.perf_counter() - start) / n
    return [
        EncodeResult(data=data, arch=parse(data, budget=False)[0].arch, psnr=psnr(decode_array(data, dev), a),
                     psnr_float=10 * math.log10(1 / max(mse, 1e-12)), iters=preset.iters, seconds=seconds,
                     device=str(dev), refitted=bool(preset.refit and rate and o), latents_pruned=k)
        for data, a, mse, o, k in zip(datas, pixels, mse_float, over, pruned)
    ]


def _where(chosen: Sequence[bool], new: list[torch.Tensor], old: list[torch.Tensor]) -> list[torch.Tensor]:
    """B networks' weights (each tensor (B, ...)): network b's from `new` where chosen[b], else from `old`."""
    mask = torch.tensor(chosen, device=old[0].device)
    return [torch.where(mask.view(-1, *[1] * (o.dim() - 1)), w, o) for w, o in zip(new, old)]


def _run(
    preset: Preset, phases, arch: Architecture, target: torch.Tensor, z: torch.Tensor, weights: list[torch.Tensor],
    lr: float, rate: RateTerm | None, steps: list[torch.Tensor] | None, frozen: frozenset[int],
    progress: Progress | None, label: str, filled: list[float] | None = None,
) -> tuple[list[torch.Tensor], list[float]]:
    """Run the phases that get iterations in turn from `weights`, but those coarser than the network allows (a
    1-layer network, for images under about 23 pixels a side, has no half size); the last one's weights and their
    MSEs. `filled`: each image's share of its byte budget spent at the start (0 without a budget: none held),
    which decides whose latents a phase with `hold_filled` holds."""
    ran = [ph for ph in phases if preset.phase_iters(ph) and ph.coarse < arch.layers] or list(phases[-1:])
    for phase in ran:  # (a fit of 0 iterations measures the weights)
        if rate:
            rate.enter(phase.lambda_floor)
            if phase.lambda_restart:
                with torch.no_grad():
                    rate.restart(per_image_mse(arch, weights, z, target))
        held = None if phase.hold_filled is None or filled is None else [f >= phase.hold_filled for f in filled]
        weights, mse = fit(arch, target, z, weights, phase, preset.phase_iters(phase), lr, steps=steps,
                           frozen=frozen, held=held, rate=rate, latent_gain=preset.latent_gain,
                           optimizer=preset.optimizer, progress=progress, label=label)
    return weights, mse
