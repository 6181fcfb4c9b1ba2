"""Rate-distortion benchmark: ddcodec against six classical settings (ddcodec/classical.py), earlier ddcodec
versions and, on the full Kodak set, published curves.

    python -m benchmarks.rd --preset {smoke,cpu,full,kodak} [--images DIR] [--out DIR] [--jobs N] [--codecs ...]
                            [--tile-side N --out DIR]   (tiling's cost: the same images in tiles)
                            [--complexity NAME]   (another decoder-complexity preset: results/<preset>-<NAME>)

Writes, under the output folder (default `benchmarks/results/<preset>/`, which always holds the current version's
run: a run by another ddcodec version found there is moved to `benchmarks/results/history/<preset>-v<version>/`
first): `points/<codec>/` (one JSON per image and setting, written as each finishes: an interrupted run resumes
where it stopped), one CompressAI-style JSON per codec (the mean over images at each complete setting, marked
`partial` while some setting lacks images), `per-image.json`, `bdrate.md` and `rd.png`. While ddcodec has
finished only some images at every rate, the same files for those images alone go to `finished/` (removed once
every image is done).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import bjontegaard as bd
import numpy as np
import PIL
import torch
from PIL import Image
from pytorch_msssim import ms_ssim
from tqdm import tqdm

import ddcodec
from benchmarks.history import EARLIER, archive_if_older, earlier_curves
from benchmarks.points import aggregate, finished_images, load_point, point_path, progress, save_point, write_json
from ddcodec import classical
from ddcodec.encoder.plans import COMPLEXITY_WIDTHS, DEFAULT_COMPLEXITY
from ddcodec.format import tiles
from ddcodec.metrics import psnr
from ddcodec.format.options import DEFAULT_INPUT, INPUTS
from ddcodec.training.presets import EFFORTS

HERE = Path(__file__).resolve().parent
ANCHORS = HERE / "anchors"
IMAGE_SUFFIXES = {".png", ".ppm", ".bmp", ".tif", ".tiff"}
MSSSIM_MIN_SIDE = 161  # 5 scales of an 11-px window need more than (11 - 1) * 2**4 pixels on the short side
PUBLISHED = ("COIN", "COIN++", "SPY", "VC-INR", "COOL-CHIC", "C3", "BPG", "VTM")
PLOTTED = ("COIN", "COOL-CHIC", "C3", "BPG", "VTM")
FINISHED = "finished"  # subfolder of a partial run: the report on the images ddcodec has finished at every rate
PLOTTED_EARLIER = 2  # earlier ddcodec versions drawn (the newest)
Curve = tuple[Sequence[float], Sequence[float]]  # (bpp, PSNR)


@dataclass(frozen=True)
class Preset:
    """Images, ddcodec rate points and iterations, classical settings, the ddcodec device and torch's CPU threads."""

    images: Path
    rates: tuple[float, ...]
    iters: int
    settings: dict[str, tuple[float, ...]]
    device: str
    threads: int | None = None  # None: torch's default
    input: str = DEFAULT_INPUT  # ddcodec's profile: coded or seed
    tile_side: int | None = None  # the encoder's largest tile side (None: format.tiles.TILE_SIDE), to measure tiling
    complexity: str | None = None  # a decoder-complexity preset other than the encoder's default (None: the default)


# Knob values of each classical codec: from about 0.1 bpp to past 2 bpp on Kodak (JPEG 2000: compression ratios).
SWEEP = {
    "jpeg": (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
    "jpeg-444": (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
    "webp": (0, 5, 15, 30, 45, 60, 75, 85, 92),
    "jpeg2000": (300, 200, 150, 100, 75, 50, 40, 30, 24, 16, 12, 8),
    "avif": (5, 10, 20, 30, 40, 50, 60, 70, 80),
    "jxl": (1, 5, 15, 30, 45, 60, 75, 85, 92),
}
RATES = (0.15, 0.3, 0.6, 1.2)
RD_ITERS = EFFORTS[3].iters  # the rate-distortion presets fit 2000 iterations (effort 3), as v0.5-v0.9 did
PRESETS = {
    "smoke": Preset(HERE / "images" / "smoke", (1.0, 2.0), 50, {c: s[2::3] for c, s in SWEEP.items()}, "cpu",
                    threads=1),  # tiny tensors: one thread is several times faster than two on busy cores
    # one thread, as its runs with --jobs 2 had: a point moves by up to 0.2 dB with the threads (ablations.md, dev8)
    "cpu": Preset(HERE / "images" / "cpu", RATES, RD_ITERS, SWEEP, "cpu", threads=1),
    "full": Preset(HERE / "images" / "full", RATES, RD_ITERS, SWEEP, "cpu", threads=1),
    "kodak": Preset(HERE.parent / ".kodak", RATES, RD_ITERS, SWEEP, "auto", threads=1),
}


def ms_ssim_rgb(a: np.ndarray, b: np.ndarray) -> float | None:
    """MS-SSIM of two uint8 RGB images on the 0-255 scale; None where the standard 5 scales do not fit."""
    if min(a.shape[:2]) < MSSSIM_MIN_SIDE:
        return None
    x, y = (torch.from_numpy(np.array(t, np.float32)).permute(2, 0, 1)[None] for t in (a, b))  # float32: 3x faster
    return float(ms_ssim(x, y, data_range=255))


def quality(original: np.ndarray, decoded: np.ndarray, n_bytes: int) -> dict:
    """Size and distortion of one decoded image."""
    h, w = original.shape[:2]
    return {"height": h, "width": w, "bytes": n_bytes, "bpp": 8 * n_bytes / (h * w),
            "psnr": psnr(original, decoded), "ms_ssim": ms_ssim_rgb(original, decoded)}


def run_pillow(codec: str, setting: float, image: np.ndarray) -> dict:
    """Encode with one classical codec at one setting to memory, decode the bytes back and measure."""
    start = time.perf_counter()
    data = classical.encode(codec, image, setting)
    encoding_time = time.perf_counter() - start
    start = time.perf_counter()
    decoded = classical.decode(data)
    return {"encoding_time": encoding_time, "decoding_time": time.perf_counter() - start,
            **quality(image, decoded, len(data))}


def run_ddcodec(rate: float, images: Sequence[np.ndarray], preset: Preset) -> list[dict]:
    """Encode images with ddcodec at a bpp target through the library API (images of one size fitted together on a
    GPU), decode the bytes on the CPU and measure."""
    with tile_side(preset.tile_side):
        results = ddcodec.encode_many(images, bpp=rate, iters=preset.iters, device=preset.device, input=preset.input,
                                      complexity=preset.complexity)
    records = []
    for image, result in zip(images, results):
        start = time.perf_counter()
        decoded = np.asarray(ddcodec.decode(result.data).convert("RGB"))
        records.append({
            "encoding_time": result.seconds, "decoding_time": time.perf_counter() - start,
            "widths": list(result.arch.widths), "latents": list(result.arch.latents), "params": result.n_params,
            "macs_per_pixel": result.arch.macs_per_pixel(), "iters": result.iters, "device": result.device,
            "threads": torch.get_num_threads(), "refitted": result.refitted, "latents_pruned": result.latents_pruned,
            **quality(image, decoded, len(result.data))})
    return records


@contextmanager
def tile_side(side: int | None) -> Iterator[None]:
    """The encoder's largest tile side set to `side` (None: left as it is) for the block."""
    kept = tiles.TILE_SIDE
    tiles.TILE_SIDE = side or kept
    try:
        yield
    finally:
        tiles.TILE_SIDE = kept


def load_images(folder: Path) -> dict[str, np.ndarray]:
    """The folder's images as uint8 RGB arrays, by file stem."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise SystemExit(f"error: no images in {folder}")
    return {p.stem: np.asarray(Image.open(p).convert("RGB")) for p in paths}


def point_key(codec: str, setting: float, image: np.ndarray, preset: Preset) -> dict:
    """What a stored result must have been made with to be reused: ddcodec's version, profile and iterations, or
    the classical codec's library versions and save options."""
    if codec == "ddcodec":
        tiling = {"tile_side": preset.tile_side} if preset.tile_side else {}
        complexity = {"complexity": preset.complexity} if preset.complexity else {}
        return {"ddcodec": ddcodec.__version__, "input": preset.input, "iters": preset.iters} | tiling | complexity
    key = {"pillow": PIL.__version__, "options": classical.CODECS[codec].options(setting, *image.shape[:2])}
    plugin = classical.CODECS[codec].plugin
    return key | ({"plugin": f"{plugin} {classical.plugin_version(codec)}"} if plugin else {})


def ddcodec_tag(preset: Preset) -> str:
    """The file-name tag of ddcodec's points: version, profile, iterations, and tiling and complexity if set."""
    return (f"v{ddcodec.__version__}_{preset.input}_it{preset.iters}"
            + (f"_tile{preset.tile_side}" if preset.tile_side else "")
            + (f"_{preset.complexity}" if preset.complexity else ""))


def where(out: Path, preset: Preset, codec: str, setting: float, name: str, image: np.ndarray) -> tuple[Path, dict]:
    """The file of one point of the run in `out` and the key it must hold to be reused."""
    tag = ddcodec_tag(preset) if codec == "ddcodec" else ""
    return point_path(out, codec, name, setting, tag), point_key(codec, setting, image, preset)


@dataclass(frozen=True)
class Job:
    """Work for one process: a codec at one setting on some images (one, or on a GPU several fitted together)."""

    codec: str
    setting: float
    names: tuple[str, ...]


def run_job(job: Job, arrays: Sequence[np.ndarray], preset: Preset) -> tuple[Job, list[dict]]:
    """The job's records, one per image."""
    if job.codec == "ddcodec":
        return job, run_ddcodec(job.setting, arrays, preset)
    return job, [run_pillow(job.codec, job.setting, a) for a in arrays]


def _worker_threads(threads: int) -> None:
    torch.set_num_threads(threads)


def _run_job_args(args: tuple) -> tuple[Job, list[dict]]:
    return run_job(*args)


def execute(jobs: Sequence[Job], images: dict[str, np.ndarray], preset: Preset, processes: int
            ) -> Iterator[tuple[Job, list[dict]]]:
    """Each job's records as it finishes: in this process, or in `processes` spawned workers of preset.threads
    torch threads each (one by default)."""
    work = [(job, [images[n] for n in job.names], preset) for job in jobs]
    if processes == 1:
        yield from (run_job(*w) for w in work)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a parent whose torch threads already exist
    with context.Pool(processes, _worker_threads, (preset.threads or 1,)) as pool:
        yield from pool.imap_unordered(_run_job_args, work)


def plan_jobs(images: dict[str, np.ndarray], preset: Preset, out: Path, codecs: set[str], batch: int
              ) -> tuple[dict[str, list[dict]], list[Job]]:
    """The stored records of every codec of the preset, and the jobs that compute the missing ones of `codecs`:
    classical codecs first (fast), then ddcodec rate by rate, so that rate points complete one after the other.
    `batch`: images per ddcodec job (several are fitted together on a GPU)."""
    stored: dict[str, list[dict]] = {}
    jobs = []
    points = [(c, s) for c, ss in preset.settings.items() for s in ss] + [("ddcodec", r) for r in preset.rates]
    for codec, setting in points:
        missing = []
        for name, image in images.items():
            record = load_point(*where(out, preset, codec, setting, name, image))
            stored.setdefault(codec, []).extend([record] if record else [])
            missing += [] if record or codec not in codecs else [name]
        size = batch if codec == "ddcodec" else 1
        jobs += [Job(codec, setting, tuple(missing[i:i + size])) for i in range(0, len(missing), size)]
    return stored, jobs


def measure(images: dict[str, np.ndarray], preset: Preset, out: Path, codecs: set[str], jobs: int,
            on_ddcodec: Callable[[dict[str, list[dict]]], None]) -> dict[str, list[dict]]:
    """Every codec of `codecs` on every image at every setting, reusing stored points and storing each new one as it
    finishes; calls on_ddcodec with all records after each ddcodec result. `jobs`: images at once, in as many
    processes on the CPU, fitted together in one process on a GPU. Per-image records by codec, of every codec of
    the preset that has any."""
    on_gpu = preset.device != "cpu"
    records, todo = plan_jobs(images, preset, out, codecs, jobs if on_gpu else 1)
    for job, fresh in tqdm(execute(todo, images, preset, 1 if on_gpu else jobs), total=len(todo), desc="rd",
                           dynamic_ncols=True):
        for name, record in zip(job.names, fresh):
            path, key = where(out, preset, job.codec, job.setting, name, images[name])
            records[job.codec].append(save_point(path, key, name, job.setting, record))
        if job.codec == "ddcodec":
            on_ddcodec(records)
    return {codec: recs for codec, recs in records.items() if recs or codec in codecs}


def machine(devices: set[str]) -> str:
    """The CPU model and core count, and the GPU's name where CUDA was used."""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        cpu = "unknown CPU"
    gpu = [torch.cuda.get_device_name(d) for d in sorted(devices) if d.startswith("cuda")]
    return f"{cpu} ({os.cpu_count()} cores)" + "".join(f", GPU {g}" for g in gpu)


def describe(codec: str, records: list[dict], preset_name: str, preset: Preset) -> str:
    """The codec's settings, the preset, the images and the machine, for the JSON description."""
    sizes = sorted({f"{r['width']}x{r['height']}" for r in records})
    n = len({r["image"] for r in records})
    folder = preset.images.resolve()
    shown = folder.relative_to(HERE.parent) if folder.is_relative_to(HERE.parent) else folder
    where = f"preset {preset_name}, {n} images from {shown} ({', '.join(sizes)})"
    if codec == "ddcodec":
        devices, threads = {r["device"] for r in records}, sorted({r["threads"] for r in records})
        what = (f"ddcodec {ddcodec.__version__} ({preset.input} input), bpp targets {list(preset.rates)}, "
                f"{preset.iters} iterations, "
                + (f"tiles of at most {preset.tile_side} px a side, " if preset.tile_side else "")
                + (f"decoder complexity {preset.complexity}, " if preset.complexity else "")
                + f"encoded on {', '.join(sorted(devices))} (torch CPU threads: {threads}), decoded on cpu")
    else:
        devices, first, spec = set(), records[0], classical.CODECS[codec]
        sweep = list(dict.fromkeys(r["setting"] for r in records))
        plugin = f" with {spec.plugin} {classical.plugin_version(codec)}" if spec.plugin else ""
        what = (f"Pillow {PIL.__version__}{plugin} {spec.label}, {spec.knob} {sweep}; save options at the first: "
                f"{spec.options(first['setting'], first['height'], first['width'])}")
    small = any(r["ms_ssim"] is None for r in records)
    ssim = "MS-SSIM null: images under 161 px a side" if small else "MS-SSIM with 5 scales"
    return f"{what}; {where}; {ssim}; machine: {machine(devices)}"


def frontier(bpp: Sequence[float], dist: Sequence[float]) -> tuple[list[float], list[float]]:
    """The curve's points sorted by rate, keeping those better than every cheaper one (PCHIP needs monotone data)."""
    xs, ys = [], []
    for x, y in sorted(zip(bpp, dist)):
        if y is not None and math.isfinite(y) and (not ys or y > ys[-1]):
            xs.append(x)
            ys.append(y)
    return xs, ys


def bd_rate(anchor: Curve, test: Curve) -> tuple[float | None, tuple[float, float] | None]:
    """BD-rate (%) of test against anchor, PCHIP over their PSNR overlap, and that overlap; None where undefined."""
    (ra, da), (rt, dt) = frontier(*anchor), frontier(*test)
    if min(len(da), len(dt)) < 2 or max(da[0], dt[0]) >= min(da[-1], dt[-1]):
        return None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = bd.bd_rate(ra, da, rt, dt, method="pchip", require_matching_points=False, min_overlap=0)
    overlap = (max(da[0], dt[0]), min(da[-1], dt[-1]))
    return (float(value), overlap) if math.isfinite(value) else (None, None)


def anchors(measured: dict[str, dict], on_kodak: bool) -> list[tuple[str, str, Curve]]:
    """(name, origin, curve) of every curve ddcodec is compared with: this run's classical codecs (those not run
    taken, on full Kodak, from benchmarks/anchors), earlier ddcodec runs, and on full Kodak the published curves."""
    rows = [(c, "earlier ddcodec run" if c.startswith(EARLIER) else "this run", (r["bpp"], r["psnr-rgb"]))
            for c, r in measured.items() if c != "ddcodec"]
    if on_kodak:
        for c in classical.CODECS:
            if c not in measured and (ANCHORS / f"pillow-{c}.json").exists():
                res = json.loads((ANCHORS / f"pillow-{c}.json").read_text())["results"]
                rows.append((c, "precomputed, full Kodak", (res["bpp"], res["psnr-rgb"])))
        published = json.loads((ANCHORS / "published.json").read_text())
        rows += [(c, "published, full Kodak", (published[c]["bpp"], published[c]["psnr-rgb"])) for c in PUBLISHED]
    return rows


def bd_table(measured: dict[str, dict], title: str, on_kodak: bool, partial: str = "") -> str:
    """Markdown table of ddcodec's BD-rate against each anchor curve: classical codecs strongest first (the one
    ddcodec needs the most extra bits against), then earlier ddcodec runs, then published curves."""
    ours = (measured["ddcodec"]["bpp"], measured["ddcodec"]["psnr-rgb"])
    rows = [(name, origin, *bd_rate(curve, ours)) for name, origin, curve in anchors(measured, on_kodak)]
    ranked = sorted((r for r in rows if r[0] in classical.CODECS), key=lambda r: -math.inf if r[2] is None else -r[2])
    rows = ranked + [r for r in rows if r[0] not in classical.CODECS]
    lines = [f"# BD-rate of ddcodec ({title})", "",
             "Negative: ddcodec needs fewer bits for the same PSNR (RGB). PCHIP on log-rate over the PSNR overlap, "
             "using each curve's points that beat every cheaper point; classical codecs strongest first.", ""]
    if partial:
        lines += [f"**Partial run: {partial}. Only rate points that every image has reached are compared.**", ""]
    if not on_kodak:
        lines += ["Published curves are on the full 24-image Kodak set and are compared only on a full-Kodak run.", ""]
    if ranked and ranked[0][2] is not None:
        name, _, value, _ = ranked[0]
        lines += [f"Strongest classical codec on this run: **{classical.CODECS[name].label}** ({name}; ddcodec "
                  f"{value:+.1f} %).", ""]
    lines += ["| anchor | setting | curve | BD-rate (%) | PSNR overlap (dB) |", "|---|---|---|---:|---|"]
    for name, origin, value, overlap in rows:
        setting = classical.CODECS[name].label if name in classical.CODECS else ""
        cells = ("n/a", "none") if value is None else (f"{value:+.1f}", f"{overlap[0]:.2f} - {overlap[1]:.2f}")
        lines.append(f"| {name} | {setting} | {origin} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


# One colour per codec, the same in every panel; earlier ddcodec runs are grey.
COLOURS = {"ddcodec": "black", "jpeg": "tab:blue", "jpeg-444": "navy", "webp": "tab:orange", "jpeg2000": "tab:green",
           "avif": "tab:red", "jxl": "gold",
           "COIN": "tab:purple", "COOL-CHIC": "tab:brown", "C3": "tab:pink", "BPG": "tab:olive", "VTM": "tab:cyan"}


def _style(codec: str, full_kodak: bool) -> dict:
    """Solid with markers for this run's curves, dashed for full-Kodak ones; colour by codec."""
    style = dict(color=COLOURS.get(codec.split(" (")[0], "gray"), lw=1.3)
    style.update(ls="--") if full_kodak else style.update(marker="o", ms=4)
    if codec == "ddcodec":
        style.update(lw=2.5, zorder=3)
    if codec.startswith(EARLIER):
        style.update(ls=":", color="gray")
    return style


def _fit_y(ax, xmax: float) -> None:
    """The y-range of the points drawn at x <= xmax, with a small margin."""
    ys = [y for line in ax.lines for x, y in zip(*line.get_data()) if x <= xmax]
    if ys:
        pad = 0.05 * (max(ys) - min(ys) or 1)
        ax.set_ylim(min(ys) - pad, max(ys) + pad)


def _draw(ax, name: str, bpp: Sequence[float], values: Sequence[float], full_kodak: bool, label: str) -> None:
    """One curve, its points sorted by rate; nothing for a curve without points (a partial run's first minutes)."""
    if len(bpp):
        ax.plot(*zip(*sorted(zip(bpp, values))), label=label, **_style(name, full_kodak))


def plot(measured: dict[str, dict], path: Path, title: str, on_kodak: bool = False) -> None:
    """PSNR and MS-SSIM (dB) against bpp on this run's images, and published full-Kodak PSNR curves in a third
    panel (with ddcodec only when this run is the full Kodak set); legends below the panels, off the curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(18, 5.5))
    earlier = [c for c in measured if c.startswith(EARLIER)]
    for codec, res in measured.items():
        if codec in earlier[:-PLOTTED_EARLIER]:  # the table lists them all; the plot the newest few
            continue
        _draw(left, codec, res["bpp"], res["psnr-rgb"], False, codec)
        if None not in res["ms-ssim-rgb"]:
            db = [-10 * math.log10(max(1 - m, 1e-10)) for m in res["ms-ssim-rgb"]]
            _draw(middle, codec, res["bpp"], db, False, codec)
    if not middle.lines:
        middle.text(0.5, 0.5, "MS-SSIM undefined: images under 161 px a side", ha="center",
                    transform=middle.transAxes)
    full = [(name, origin, curve) for name, origin, curve in anchors({}, True) if name in PLOTTED or "pre" in origin]
    if on_kodak:
        full.insert(0, ("ddcodec", "this run", (measured["ddcodec"]["bpp"], measured["ddcodec"]["psnr-rgb"])))
    for name, origin, (bpp, db) in full:
        label = f"{name} (published)" if name in PLOTTED else name if name == "ddcodec" else f"{name} (Pillow)"
        _draw(right, name, bpp, db, name != "ddcodec", label)
    xmax = max(1.6, 1.05 * max(measured["ddcodec"]["bpp"], default=0))
    panels = ((left, "PSNR RGB (dB)", "PSNR, this run's images"),
              (middle, "MS-SSIM (dB, -10 log10(1 - MS-SSIM))", "MS-SSIM, this run's images"),
              (right, "PSNR RGB (dB)", "PSNR, full Kodak (24 images, 768×512)"))
    for ax, ylabel, heading in panels:
        ax.set(xlim=(0, xmax), xlabel="bits per pixel", ylabel=ylabel, title=heading)
        ax.grid(alpha=0.3)
        _fit_y(ax, xmax)
    left.legend(loc="upper center", bbox_to_anchor=(1.1, -0.12), ncol=3, fontsize=8, frameon=False)
    right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"Rate-distortion on {title}")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def dataset(images: dict[str, np.ndarray], on_kodak: bool) -> str:
    """The images in words, for titles: the Kodak set, or how many images of which sizes (and which Kodak crops)."""
    if on_kodak:
        return "Kodak (24 images, 768×512)"
    sizes = ", ".join(sorted({f"{a.shape[1]}×{a.shape[0]}" for a in images.values()}))
    whole = all(sorted(a.shape[:2]) == [512, 768] for a in images.values())
    kodak = all(n.startswith("kodim") for n in images)
    what = f"{'' if whole else 'crops of '}Kodak {', '.join(images)}" if kodak else ", ".join(images)
    return f"{len(images)} images of {sizes}: {what}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.rd", description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), required=True)
    p.add_argument("--images", type=Path, help="image folder (default: the preset's; kodak: .kodak, or pass the 24 "
                                               "Kodak images' folder)")
    p.add_argument("--out", type=Path, help="output folder (default benchmarks/results/<preset>)")
    p.add_argument("--rates", type=float, nargs="+", help="ddcodec bpp targets (default: the preset's)")
    p.add_argument("--iters", type=int, help="ddcodec iterations (default: the preset's)")
    p.add_argument("--device", help="ddcodec encoding device: auto, cpu, cuda (default: the preset's)")
    p.add_argument("--threads", type=int, help="torch CPU threads per process (default: the preset's, else torch's)")
    p.add_argument("--jobs", type=int, default=1, help="images at once: processes on the CPU, a batch on a GPU")
    p.add_argument("--input", choices=INPUTS, default=DEFAULT_INPUT, help=f"ddcodec's profile (default {DEFAULT_INPUT})")
    p.add_argument("--tile-side", type=int, help="ddcodec's largest tile side (default the encoder's): the cost of "
                                                 "tiling, e.g. 384 codes 768x512 as 4 tiles of 384x256")
    p.add_argument("--complexity", choices=sorted(COMPLEXITY_WIDTHS),
                   help="the coded profile's decoder-complexity preset (default the encoder's); another than the "
                        "default writes to benchmarks/results/<preset>-<complexity> unless --out says")
    p.add_argument("--codecs", nargs="+", choices=("ddcodec", *classical.CODECS),
                   help="codecs to run (default: all installed); stored points of the others are reported too")
    p.add_argument("--save-anchors", action="store_true",
                   help="on full Kodak: write the classical codecs' complete curves to benchmarks/anchors")
    p.add_argument("--earlier", type=Path, nargs="+", default=[],
                   help="ddcodec.json files of earlier runs on the same images, compared in the table and plot "
                        "(the preset's history folders are read anyway)")
    return p.parse_args(argv)


def resolve_device(device: str) -> str:
    """auto -> cuda where torch sees a GPU, else cpu."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the JSON files, the BD-rate table and the plot."""
    args = parse_args(argv)
    base = PRESETS[args.preset]
    codecs = set(args.codecs or ("ddcodec", *classical.available()))
    preset = replace(base, images=args.images or base.images, rates=tuple(args.rates or base.rates),
                     iters=args.iters or base.iters, device=resolve_device(args.device or base.device),
                     threads=args.threads or base.threads, input=args.input, tile_side=args.tile_side,
                     complexity=None if args.complexity == DEFAULT_COMPLEXITY else args.complexity,
                     settings={c: s for c, s in base.settings.items() if c in classical.available()})
    if not preset.images.is_dir():
        raise SystemExit(f"error: image folder {preset.images} not found; pass one with --images")
    if args.jobs < 1:
        raise SystemExit("error: --jobs must be at least 1")
    images = load_images(preset.images)
    if args.save_anchors and not is_kodak(images):
        raise SystemExit("error: --save-anchors needs the 24 full Kodak images")
    run_name = args.preset + (f"-{preset.complexity}" if preset.complexity else "")
    out = args.out or HERE / "results" / run_name
    if args.out is None and (moved := archive_if_older(out, run_name, ddcodec.__version__)):
        print(f"moved the earlier version's run from {out} to {moved}")
    earlier = earlier_curves(args.preset)
    earlier |= {f"{EARLIER} ({p.parent.name}/{p.stem})": json.loads(p.read_text())["results"] for p in args.earlier}
    threads = torch.get_num_threads()
    torch.set_num_threads(preset.threads or threads)

    def write(records: dict[str, list[dict]]) -> str:
        return report(images, records, args.preset, preset, out, earlier) + report_finished(images, records,
                                                                                            args.preset, preset, out)

    try:
        records = measure(images, preset, out, codecs, args.jobs, write)
        print(write(records))
    finally:
        torch.set_num_threads(threads)
    if args.save_anchors:
        save_anchors(images, records, preset)
    print(f"results in {out}")
    return 0


def is_kodak(images: dict[str, np.ndarray]) -> bool:
    """Whether the images are the full Kodak set: 24 images of 768×512 (either way up)."""
    return len(images) == 24 and all(sorted(a.shape[:2]) == [512, 768] for a in images.values())


def save_anchors(images: dict[str, np.ndarray], records: dict[str, list[dict]], preset: Preset) -> None:
    """Write each classical codec's curve, where every setting has all 24 images, to benchmarks/anchors."""
    for codec, recs in records.items():
        if codec == "ddcodec" or any(n < len(images) for n in progress(recs, preset.settings[codec]).values()):
            continue
        curve = aggregate(recs, preset.settings[codec], len(images))
        write_json(ANCHORS / f"pillow-{codec}.json", {
            "name": codec, "dataset": "kodak", "results": {"bpp": curve["bpp"], "psnr-rgb": curve["psnr-rgb"]},
            "description": f"{describe(codec, recs, 'kodak', preset)}; mean bpp and mean per-image PSNR over RGB"})
        print(f"wrote {ANCHORS / f'pillow-{codec}.json'}")


def report(images: dict[str, np.ndarray], records: dict[str, list[dict]], name: str, preset: Preset, out: Path,
           earlier: dict[str, dict] | None = None, subset_of: int = 0) -> str:
    """Write the per-codec JSON (marked partial where some setting lacks images), the per-image JSON, the BD-rate
    table and the plot; returns the table (empty without ddcodec points). `subset_of`: the number of images of the
    run when these are the part of it that ddcodec has finished (the table says so)."""
    measured, missing = {}, []
    for codec, recs in records.items():
        settings = preset.rates if codec == "ddcodec" else preset.settings[codec]
        measured[codec] = aggregate(recs, settings, len(images))
        done = progress(recs, settings)
        missing += [f"{codec} at {s}: {n} of {len(images)} images" for s, n in done.items() if n < len(images)]
        doc = {"name": codec, "results": measured[codec], "partial": any(n < len(images) for n in done.values()),
               "images_done": done, "description": describe(codec, recs, name, preset) if recs else ""}
        write_json(out / f"{codec}.json", doc | ({"version": ddcodec.__version__} if codec == "ddcodec" else {}))
    order = {codec: list(preset.rates if codec == "ddcodec" else preset.settings[codec]) for codec in records}
    write_json(out / "per-image.json", {codec: sorted(recs, key=lambda r: (order[codec].index(r["setting"]),
                                                                           r["image"]))
                                        for codec, recs in records.items()})
    if "ddcodec" not in measured:
        return ""
    measured.update(earlier or {})
    on_kodak = is_kodak(images)
    complexity = f", complexity {preset.complexity}" if preset.complexity else ""
    title = (f"{dataset(images, on_kodak)} (preset {name}, ddcodec, {preset.input} input{complexity}, "
             f"{preset.iters} iterations)")
    if subset_of:
        missing.insert(0, f"these are the {len(images)} of its {subset_of} images that ddcodec has finished at every "
                          f"rate")
    table = bd_table(measured, title, on_kodak, "; ".join(missing))
    (out / "bdrate.md").write_text(table)
    plot(measured, out / "rd.png", title, on_kodak)
    return table


def report_finished(images: dict[str, np.ndarray], records: dict[str, list[dict]], name: str, preset: Preset,
                    out: Path) -> str:
    """While ddcodec has finished some images at every rate but not all: the same report on those images alone, each
    codec on the same images, in `out/finished/` (a partial run's like-for-like BD-rate); returns its table, or ""
    (and removes that folder) when there is no such subset."""
    names = finished_images(records.get("ddcodec", []), preset.rates)
    if not 0 < len(names) < len(images):
        shutil.rmtree(out / FINISHED, ignore_errors=True)  # a subset report left by the run's earlier sittings
        return ""
    subset = {n: images[n] for n in names}
    return report(subset, {codec: [r for r in recs if r["image"] in subset] for codec, recs in records.items()},
                  name, preset, out / FINISHED, subset_of=len(images))


if __name__ == "__main__":
    raise SystemExit(main())
