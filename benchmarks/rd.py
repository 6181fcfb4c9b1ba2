"""Rate-distortion benchmark: ddcodec against Pillow's JPEG, WebP, JPEG 2000 and AVIF, and published Kodak curves.

    python -m benchmarks.rd --preset {smoke,cpu,kodak} [--images DIR] [--out DIR] [--rates BPP ...]

Writes, under the output folder: one CompressAI-style JSON per codec, `per-image.json`, `bdrate.md` and `rd.png`;
per-image results are cached under `cache/<codec>/` so that an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import bjontegaard as bd
import numpy as np
import PIL
import torch
from PIL import Image
from pytorch_msssim import ms_ssim
from tqdm import tqdm

import ddcodec
from ddcodec.options import DEFAULT_INPUT, INPUTS
from ddcodec.presets import DEFAULT_EFFORT, EFFORTS
from ddcodec.metrics import psnr

HERE = Path(__file__).resolve().parent
ANCHORS = HERE / "anchors"
IMAGE_SUFFIXES = {".png", ".ppm", ".bmp", ".tif", ".tiff"}
MSSSIM_MIN_SIDE = 161  # 5 scales of an 11-px window need more than (11 - 1) * 2**4 pixels on the short side
PUBLISHED = ("COIN", "COIN++", "SPY", "VC-INR", "COOL-CHIC", "C3", "BPG", "VTM")
PLOTTED = ("COIN", "COOL-CHIC", "C3", "BPG", "VTM")
EARLIER = "ddcodec earlier"  # name prefix of curves from --earlier files
Curve = tuple[Sequence[float], Sequence[float]]  # (bpp, PSNR)


def _j2k_levels(height: int, width: int) -> int:
    """Resolution levels OpenJPEG accepts: 2^(levels-1) may not exceed the short side (6 is its default)."""
    return min(6, int(math.log2(min(height, width))) + 1)


# Pillow save() arguments for one setting of each codec (quality; for JPEG 2000 the compression ratio).
PILLOW: dict[str, Callable[[float, int, int], dict]] = {
    "jpeg": lambda q, h, w: dict(format="JPEG", quality=int(q), subsampling="4:2:0"),
    "webp": lambda q, h, w: dict(format="WEBP", quality=int(q), method=6),
    "jpeg2000": lambda r, h, w: dict(format="JPEG2000", irreversible=True, mct=1, quality_mode="rates",
                                     quality_layers=[r], num_resolutions=_j2k_levels(h, w)),
    "avif": lambda q, h, w: dict(format="AVIF", quality=int(q), speed=4, subsampling="4:2:0"),
}
SETTING_NAMES = {"jpeg": "quality", "webp": "quality", "jpeg2000": "compression ratio", "avif": "quality"}


@dataclass(frozen=True)
class Preset:
    """Images, ddcodec rate points and iterations, Pillow settings, the ddcodec device and torch's CPU threads."""

    images: Path
    rates: tuple[float, ...]
    iters: int
    settings: dict[str, tuple[float, ...]]
    device: str
    threads: int | None = None  # None: torch's default
    input: str = DEFAULT_INPUT  # ddcodec's profile: coded or seed


FULL_SWEEP = {
    "jpeg": (5, 10, 20, 30, 40, 50, 60, 70, 80, 90),
    "webp": (5, 15, 30, 45, 60, 75, 85, 92),
    "jpeg2000": (200, 150, 100, 75, 50, 40, 30, 24, 16, 12),
    "avif": (10, 20, 30, 40, 50, 60, 70, 80),
}
PRESETS = {
    "smoke": Preset(HERE / "images" / "smoke", (1.0, 2.0), 50,
                    {"jpeg": (30, 70, 90), "webp": (30, 70, 90), "jpeg2000": (48, 24, 12), "avif": (30, 60, 85)}, "cpu",
                    threads=1),  # tiny tensors: one thread is several times faster than two on busy cores
    "cpu": Preset(HERE / "images" / "cpu", (0.15, 0.3, 0.6, 1.2), EFFORTS[DEFAULT_EFFORT].iters, FULL_SWEEP, "cpu"),
    "kodak": Preset(Path("../shared/data/kodak"), (0.1, 0.2, 0.4, 0.7, 1.0, 1.5), 3000, FULL_SWEEP, "auto"),
}


def ms_ssim_rgb(a: np.ndarray, b: np.ndarray) -> float | None:
    """MS-SSIM of two uint8 RGB images on the 0-255 scale; None where the standard 5 scales do not fit."""
    if min(a.shape[:2]) < MSSSIM_MIN_SIDE:
        return None
    x, y = (torch.from_numpy(np.ascontiguousarray(t)).permute(2, 0, 1)[None].double() for t in (a, b))
    return float(ms_ssim(x, y, data_range=255))


def quality(original: np.ndarray, decoded: np.ndarray, n_bytes: int) -> dict:
    """Size and distortion of one decoded image."""
    h, w = original.shape[:2]
    return {"height": h, "width": w, "bytes": n_bytes, "bpp": 8 * n_bytes / (h * w),
            "psnr": psnr(original, decoded), "ms_ssim": ms_ssim_rgb(original, decoded)}


def run_pillow(codec: str, setting: float, image: np.ndarray) -> dict:
    """Encode with one Pillow codec at one setting to memory, decode the bytes back and measure."""
    buf = io.BytesIO()
    start = time.perf_counter()
    Image.fromarray(image).save(buf, **PILLOW[codec](setting, *image.shape[:2]))
    encoding_time = time.perf_counter() - start
    data = buf.getvalue()
    start = time.perf_counter()
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return {"encoding_time": encoding_time, "decoding_time": time.perf_counter() - start,
            **quality(image, decoded, len(data))}


def run_ddcodec(rate: float, images: Sequence[np.ndarray], preset: Preset) -> list[dict]:
    """Encode images with ddcodec at a bpp target through the library API (images of one size fitted together on a
    GPU), decode the bytes on the CPU and measure."""
    results = ddcodec.encode_many(images, bpp=rate, iters=preset.iters, device=preset.device, input=preset.input)
    records = []
    for image, result in zip(images, results):
        start = time.perf_counter()
        decoded = np.asarray(ddcodec.decode(result.data).convert("RGB"))
        records.append({
            "encoding_time": result.seconds, "decoding_time": time.perf_counter() - start,
            "widths": list(result.arch.widths), "latents": list(result.arch.latents), "params": result.n_params,
            "macs_per_pixel": result.arch.macs_per_pixel(), "iters": result.iters, "device": result.device,
            "threads": torch.get_num_threads(), **quality(image, decoded, len(result.data))})
    return records


def load_images(folder: Path) -> dict[str, np.ndarray]:
    """The folder's images as uint8 RGB arrays, by file stem."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise SystemExit(f"no images in {folder}")
    return {p.stem: np.asarray(Image.open(p).convert("RGB")) for p in paths}


def measure(images: dict[str, np.ndarray], preset: Preset, out: Path) -> dict[str, list[dict]]:
    """Every codec on every image at every setting, reusing cached results; per-image records by codec."""
    jobs = [("ddcodec", r) for r in preset.rates] + [(c, s) for c, ss in preset.settings.items() for s in ss]
    records: dict[str, list[dict]] = {codec: [] for codec, _ in jobs}
    with tqdm(total=len(jobs) * len(images), desc="rd", dynamic_ncols=True) as bar:
        for codec, setting in jobs:
            tag = f"_v{ddcodec.__version__}_{preset.input}_it{preset.iters}" if codec == "ddcodec" else ""
            paths = {name: out / "cache" / codec / f"{name}_{setting:g}{tag}.json" for name in images}
            todo = [name for name, path in paths.items() if not path.exists()]
            bar.set_postfix_str(f"{codec} {setting:g}")
            if codec == "ddcodec":  # one call, so that a GPU fits same-size images together
                fresh = dict(zip(todo, run_ddcodec(setting, [images[n] for n in todo], preset))) if todo else {}
            else:
                fresh = {name: run_pillow(codec, setting, images[name]) for name in todo}
            for name, path in paths.items():
                if name in fresh:
                    write_json(path, {"image": name, "setting": setting, **fresh[name]})
                records[codec].append(json.loads(path.read_text()))
                bar.update()
    return records


def write_json(path: Path, obj: object) -> None:
    """Write JSON atomically, so an interrupted run never leaves a half-written cache entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _mean(values: list) -> float | None:
    """Mean of the values, None where any is missing (MS-SSIM on small images)."""
    return None if any(v is None for v in values) else float(np.mean(values))


def aggregate(records: list[dict]) -> dict[str, list]:
    """Per setting, in run order, the mean over images of each metric (PSNR averaged per image, as CompressAI)."""
    settings = list(dict.fromkeys(r["setting"] for r in records))
    keys = {"bpp": "bpp", "psnr-rgb": "psnr", "ms-ssim-rgb": "ms_ssim",
            "encoding_time": "encoding_time", "decoding_time": "decoding_time"}
    return {out: [_mean([r[key] for r in records if r["setting"] == s]) for s in settings] for out, key in keys.items()}


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
                f"encoded on {', '.join(sorted(devices))} (torch CPU threads: {threads}), decoded on cpu")
    else:
        devices, first = set(), records[0]
        sweep = list(dict.fromkeys(r["setting"] for r in records))
        options = PILLOW[codec](first["setting"], first["height"], first["width"])
        what = f"Pillow {PIL.__version__} {codec}, {SETTING_NAMES[codec]} {sweep}; save options at the first: {options}"
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


def anchors(measured: dict[str, dict]) -> list[tuple[str, str, Curve]]:
    """(name, origin, curve) of every curve ddcodec is compared with: this run's, then published full-Kodak ones."""
    published = json.loads((ANCHORS / "published.json").read_text())
    rows = [(c, "earlier ddcodec run" if c.startswith(EARLIER) else "this run", (r["bpp"], r["psnr-rgb"]))
            for c, r in measured.items() if c != "ddcodec"]
    rows += [(c, "published, full Kodak", (published[c]["bpp"], published[c]["psnr-rgb"])) for c in PUBLISHED]
    for c in PILLOW:
        res = json.loads((ANCHORS / f"pillow-{c}.json").read_text())["results"]
        rows.append((f"{c} (Pillow 13)", "precomputed, full Kodak", (res["bpp"], res["psnr-rgb"])))
    return rows


def bd_table(measured: dict[str, dict], title: str, on_kodak: bool) -> str:
    """Markdown table of ddcodec's BD-rate against each anchor curve."""
    ours = (measured["ddcodec"]["bpp"], measured["ddcodec"]["psnr-rgb"])
    lines = [f"# BD-rate of ddcodec ({title})", "",
             "Negative: ddcodec needs fewer bits for the same PSNR (RGB). PCHIP on log-rate over the PSNR overlap, "
             "using each curve's points that beat every cheaper point.", ""]
    if not on_kodak:
        lines += ["**This run is not the full 24-image Kodak set (crops or other images): rows marked "
                  "'full Kodak' compare different images and are indicative only.**", ""]
    lines += ["| anchor | curve | BD-rate (%) | PSNR overlap (dB) |", "|---|---|---:|---|"]
    for name, origin, curve in anchors(measured):
        value, overlap = bd_rate(curve, ours)
        cells = ("n/a", "none") if value is None else (f"{value:+.1f}", f"{overlap[0]:.2f} - {overlap[1]:.2f}")
        lines.append(f"| {name} | {origin} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


# One colour per codec, the same in every panel; earlier ddcodec runs are grey.
COLOURS = {"ddcodec": "black", "jpeg": "tab:blue", "webp": "tab:orange", "jpeg2000": "tab:green", "avif": "tab:red",
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


def plot(measured: dict[str, dict], path: Path, title: str, on_kodak: bool = False) -> None:
    """PSNR and MS-SSIM (dB) against bpp on this run's images, and published full-Kodak PSNR curves in a third
    panel (with ddcodec only when this run is the full Kodak set); legends below the panels, off the curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(18, 5.5))
    for codec, res in measured.items():
        left.plot(*zip(*sorted(zip(res["bpp"], res["psnr-rgb"]))), label=codec, **_style(codec, False))
        if None not in res["ms-ssim-rgb"]:
            db = [-10 * math.log10(max(1 - m, 1e-10)) for m in res["ms-ssim-rgb"]]
            middle.plot(*zip(*sorted(zip(res["bpp"], db))), label=codec, **_style(codec, False))
    if not middle.lines:
        middle.text(0.5, 0.5, "MS-SSIM undefined: images under 161 px a side", ha="center",
                    transform=middle.transAxes)
    full = [(name, curve) for name, origin, curve in anchors({}) if name in PLOTTED or "Pillow" in name]
    if on_kodak:
        full.insert(0, ("ddcodec", (measured["ddcodec"]["bpp"], measured["ddcodec"]["psnr-rgb"])))
    for name, (bpp, db) in full:
        label = f"{name} (published)" if name in PLOTTED else name
        right.plot(*zip(*sorted(zip(bpp, db))), label=label, **_style(name, name != "ddcodec"))
    xmax = max(1.6, 1.05 * max(measured["ddcodec"]["bpp"]))
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
    kodak = all(n.startswith("kodim") for n in images)
    what = f"crops of Kodak {', '.join(images)}" if kodak else ", ".join(images)
    return f"{len(images)} images of {sizes}: {what}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.rd", description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), required=True)
    p.add_argument("--images", type=Path,
                   help="image folder (kodak: pass the Kodak folder; default ../shared/data/kodak)")
    p.add_argument("--out", type=Path, help="output folder (default benchmarks/results/<preset>)")
    p.add_argument("--rates", type=float, nargs="+", help="ddcodec bpp targets (default: the preset's)")
    p.add_argument("--iters", type=int, help="ddcodec iterations (default: the preset's)")
    p.add_argument("--device", help="ddcodec encoding device: auto, cpu, cuda (default: the preset's)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: the preset's, else torch's)")
    p.add_argument("--input", choices=INPUTS, default=DEFAULT_INPUT, help=f"ddcodec's profile (default {DEFAULT_INPUT})")
    p.add_argument("--codecs", nargs="+", choices=("ddcodec", *PILLOW), help="codecs to run (default: all)")
    p.add_argument("--earlier", type=Path, nargs="+", default=[],
                   help="ddcodec.json files of earlier runs on the same images, compared in the table and plot")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the JSON files, the BD-rate table and the plot."""
    args = parse_args(argv)
    base = PRESETS[args.preset]
    codecs = set(args.codecs or ("ddcodec", *PILLOW))
    settings = {c: s for c, s in base.settings.items() if c in codecs}
    rates = tuple(args.rates or base.rates) if "ddcodec" in codecs else ()
    preset = Preset(args.images or base.images, rates, args.iters or base.iters, settings, args.device or base.device,
                    args.threads or base.threads, args.input)
    if not preset.images.is_dir():
        raise SystemExit(f"image folder {preset.images} not found; pass one with --images")
    out = args.out or HERE / "results" / args.preset
    images = load_images(preset.images)
    # read before the run, so that the output folder's own ddcodec.json can serve as the earlier curve
    earlier = {f"{EARLIER} ({p.parent.name}/{p.stem})": json.loads(p.read_text())["results"] for p in args.earlier}
    threads = torch.get_num_threads()
    torch.set_num_threads(preset.threads or threads)
    try:
        report(images, measure(images, preset, out), args.preset, preset, out, earlier)
    finally:
        torch.set_num_threads(threads)
    return 0


def report(images: dict[str, np.ndarray], records: dict[str, list[dict]], name: str, preset: Preset, out: Path,
           earlier: dict[str, dict] | None = None) -> None:
    """Write the per-codec and per-image JSON, the BD-rate table (also printed) and the plot."""
    measured = {}
    for codec, recs in records.items():
        measured[codec] = aggregate(recs)
        write_json(out / f"{codec}.json", {"name": codec, "results": measured[codec],
                                           "description": describe(codec, recs, name, preset)})
    write_json(out / "per-image.json", records)
    measured.update(earlier or {})
    on_kodak = len(images) == 24 and all(sorted(a.shape[:2]) == [512, 768] for a in images.values())
    title = f"{dataset(images, on_kodak)} (preset {name}, ddcodec, {preset.input} input, {preset.iters} iterations)"
    table = bd_table(measured, title, on_kodak)
    (out / "bdrate.md").write_text(table)
    print(table)
    plot(measured, out / "rd.png", title, on_kodak)
    print(f"results in {out}")


if __name__ == "__main__":
    raise SystemExit(main())
