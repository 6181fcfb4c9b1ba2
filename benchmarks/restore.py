"""Restoration benchmark: the Deep Decoder and Deep Image Prior against scikit-image and Pillow baselines.

    python -m benchmarks.restore [--images DIR] [--crops N] [--size S] [--preset cpu|full] [--device auto|cpu|cuda]
                                 [--iters N] [--shard I/N] [--out DIR]

Degradations of center crops, from fixed seeds: Gaussian noise sigma 25 and 50 (clipped to 8 bits), 50 % of the
pixels missing, a text mask, and x4 downsampling (Pillow bicubic). Every method's output is cached as a PNG with its
PSNR, SSIM and seconds under DIR/cache/, so runs resume and `--shard I/N` splits the work over N processes; each
run then rewrites DIR/results.json, DIR/table.md and DIR/crops.png from whatever the cache holds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from skimage.metrics import structural_similarity
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, denoise_wavelet, inpaint_biharmonic

from ddcodec import restore
from ddcodec.metrics import psnr

HERE = Path(__file__).resolve().parent
TASKS = ("noise25", "noise50", "missing50", "text", "sr4")
PRIORS = ("dd", "dip")
Method = Callable[[np.ndarray, dict], np.ndarray]


def degrade(task: str, x: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
    """The degraded image and what the methods may know about it (sigma, the known-pixel mask)."""
    rng = np.random.default_rng(seed)
    h, w = x.shape[:2]
    if task.startswith("noise"):
        sigma = float(task[5:])
        return np.clip(x + rng.normal(0, sigma, x.shape), 0, 255).round().astype(np.uint8), {"sigma": sigma}
    if task == "missing50":
        known = rng.random((h, w)) >= 0.5
    elif task == "text":
        known = text_mask(h, w)
    else:
        return np.asarray(Image.fromarray(x).resize((w // 4, h // 4), Image.BICUBIC)), {"scale": 4}
    return np.where(known[..., None], x, 0).astype(np.uint8), {"known": known}


def text_mask(h: int, w: int) -> np.ndarray:
    """True where known: lines of black text over the image, in Pillow's bundled font."""
    mask = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(mask)
    font = ImageFont.load_default(size=max(h // 12, 8))
    for i, y in enumerate(range(2, h, max(h // 7, 10))):
        draw.text((4 - 9 * (i % 3), y), "untrained priors restore images " * 4, fill=0, font=font)
    return np.asarray(mask) > 127


def classical(task: str) -> dict[str, Method]:
    """The baselines for a task, given the same knowledge as the priors (the true sigma, the mask)."""
    if task.startswith("noise"):
        s = lambda k: k["sigma"] / 255  # noqa: E731
        return {
            "tv_chambolle": lambda y, k: denoise_tv_chambolle(y / 255, weight=s(k), channel_axis=-1),
            "wavelet": lambda y, k: denoise_wavelet(y / 255, sigma=s(k), channel_axis=-1, convert2ycbcr=True,
                                                    method="BayesShrink", mode="soft", rescale_sigma=True),
            "nl_means": lambda y, k: denoise_nl_means(y / 255, h=0.8 * s(k), sigma=s(k), patch_size=5,
                                                      patch_distance=6, fast_mode=True, channel_axis=-1),
        }
    if task == "sr4":
        up = lambda mode: lambda y, k: np.asarray(  # noqa: E731
            Image.fromarray(y).resize((y.shape[1] * 4, y.shape[0] * 4), mode)) / 255
        return {"bicubic": up(Image.BICUBIC), "lanczos": up(Image.LANCZOS)}
    return {"biharmonic": lambda y, k: inpaint_biharmonic(y / 255, ~k["known"], channel_axis=-1)}


def prior_method(task: str, prior: str, preset: str, device: str, iters: int | None) -> Method:
    """A ddcodec prior at the task's default settings (or `iters` iterations)."""
    common = dict(prior=prior, preset=preset, device=device, iters=iters, progress=False)
    if task.startswith("noise"):
        return lambda y, k: np.asarray(restore.denoise(y, sigma=k["sigma"], **common))
    if task == "sr4":
        return lambda y, k: np.asarray(restore.superres(y, scale=4, **common))
    return lambda y, k: np.asarray(restore.inpaint(y, mask=k["known"].astype(np.uint8) * 255, **common))


def to_uint8(x: np.ndarray) -> np.ndarray:
    return x if x.dtype == np.uint8 else (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def center_crop(path: Path, size: int) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    s = min(size, img.width, img.height)
    left, top = (img.width - s) // 2, (img.height - s) // 2
    return np.asarray(img.crop((left, top, left + s, top + s)))


def run_one(cache: Path, x: np.ndarray, y: np.ndarray, known: dict, method: Method) -> dict:
    """Run a method unless cached; write its output PNG and scores."""
    meta = cache.with_suffix(".json")
    if meta.exists():
        return json.loads(meta.read_text())
    start = time.perf_counter()
    out = to_uint8(method(y, known))
    seconds = time.perf_counter() - start
    Image.fromarray(out).save(cache.with_suffix(".png"))
    scores = {"psnr": psnr(out, x), "ssim": float(structural_similarity(out, x, channel_axis=2, data_range=255)),
              "seconds": seconds}
    meta.write_text(json.dumps(scores))
    return scores


def report(out: Path, names: list[str], args: argparse.Namespace) -> None:
    """Merge the cache into results.json, table.md (means over images) and crops.png."""
    cache = out / "cache"
    per_image: dict = {}
    for meta in sorted(cache.glob("*/*/*.json")):
        image, task, method = meta.parent.parent.name, meta.parent.name, meta.stem
        per_image.setdefault(task, {}).setdefault(method, {})[image] = json.loads(meta.read_text())
    lines = [f"Means over {len(names)} {args.size}x{args.size} crops ({', '.join(names)}); preset {args.preset}, "
             f"device {args.device}. PSNR (dB) / SSIM / seconds per image.", "",
             "| task | method | PSNR | SSIM | s/image | images |", "|---|---|---:|---:|---:|---:|"]
    means: dict = {}
    for task in TASKS:
        for method, runs in sorted(per_image.get(task, {}).items(), key=lambda kv: (kv[0] in PRIORS, kv[0])):
            m = {k: float(np.mean([r[k] for r in runs.values()])) for k in ("psnr", "ssim", "seconds")}
            means.setdefault(task, {})[method] = {**m, "images": len(runs)}
            lines.append(f"| {task} | {method} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['seconds']:.1f} | "
                         f"{len(runs)} |")
    settings = {"images": names, "size": args.size, "preset": args.preset, "device": args.device, "iters": args.iters,
                "torch": torch.__version__, "threads": torch.get_num_threads()}
    (out / "results.json").write_text(json.dumps({"settings": settings, "means": means, "per_image": per_image},
                                                 indent=1))
    (out / "table.md").write_text("\n".join(lines) + "\n")
    figure(out, names[0], means)


def figure(out: Path, image: str, means: dict) -> None:
    """One row per task for one crop: degraded | best classical | dd | dip | original."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = out / "cache" / image
    rows = [t for t in TASKS if (folder / t / "degraded.png").exists()]
    if not rows:
        return
    fig, axes = plt.subplots(len(rows), 5, figsize=(12.5, 2.6 * len(rows)), squeeze=False)
    for r, task in enumerate(rows):
        best = max((m for m in means.get(task, {}) if m not in PRIORS), key=lambda m: means[task][m]["psnr"],
                   default=None)
        for c, (name, label) in enumerate([("degraded", "degraded"), (best, f"classical: {best}"), ("dd", "dd"),
                                           ("dip", "dip"), ("original", "original")]):
            ax = axes[r][c]
            ax.axis("off")
            png = folder / task / f"{name}.png"
            if name and png.exists():
                ax.imshow(Image.open(png), interpolation="nearest")
                meta = png.with_suffix(".json")
                score = f" {json.loads(meta.read_text())['psnr']:.2f} dB" if meta.exists() else ""
                ax.set_title(f"{task}: {label}{score}" if c == 0 else f"{label}{score}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "crops.png", dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=HERE / "images" / "cpu")
    p.add_argument("--crops", type=int, default=3, help="how many images (sorted by name) to use")
    p.add_argument("--size", type=int, default=256, help="center crop side")
    p.add_argument("--preset", choices=["cpu", "full"], default="cpu")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    p.add_argument("--iters", type=int, help="fitting iterations of the priors (default: each task's)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: the CPU run shares its cores)")
    p.add_argument("--report", action="store_true", help="only rewrite the report from the cache")
    p.add_argument("--shard", default="0/1", help="I/N: run every N-th job starting at I")
    p.add_argument("--out", type=Path, default=HERE / "results" / "restore-cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    shard, shards = map(int, args.shard.split("/"))
    paths = sorted(args.images.glob("*.png"))[: args.crops]
    names = [path.stem for path in paths]
    jobs = []
    for seed, path in enumerate(paths):
        x = center_crop(path, args.size)
        for t, task in enumerate(TASKS):
            folder = args.out / "cache" / path.stem / task
            folder.mkdir(parents=True, exist_ok=True)
            y, known = degrade(task, x, 1000 * seed + t)
            Image.fromarray(x).save(folder / "original.png")
            Image.fromarray(y).save(folder / "degraded.png")
            methods = classical(task)
            methods.update({pr: prior_method(task, pr, args.preset, args.device, args.iters) for pr in PRIORS})
            jobs += [(folder / name, x, y, known, method) for name, method in methods.items()]
    for i, (cache, x, y, known, method) in enumerate(jobs):
        if i % shards == shard and not args.report:
            scores = run_one(cache, x, y, known, method)
            print(f"{cache.parent.parent.name} {cache.parent.name} {cache.name}: {scores['psnr']:.2f} dB "
                  f"{scores['ssim']:.4f} {scores['seconds']:.1f} s", flush=True)
    report(args.out, names, args)


if __name__ == "__main__":
    main()
