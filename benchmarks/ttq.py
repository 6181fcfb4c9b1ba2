"""Time to quality: PSNR of the coded file against the encoder's wall-clock seconds, for the defaults and levers.

    python -m benchmarks.ttq [--images DIR] [--rate BPP] [--levers default iters=1000 threads=1 ...] [--out DIR]

A lever is `default` (encode's defaults) or a space-free list of `key=value` changes to them joined by commas:
`effort`, `iters`, `tries`, `lr`, `input` (seed or coded) and `threads` (torch's CPU threads); and changes to the
effort's schedule (presets.py): `gain` (the latents' gain), `optimizer` (adam or soap), and, for every fit phase,
`latents` (the quantization proxy), `temperature` and `noise_param` (`start:end`), `noise` and `test_every`,
and `lambda_floor` (a share of λ's start) in the phases that have one; `finetune_latents` (the fine-tuning phases'
proxy: `hard` freezes the latents at their rounded values, as Cool-chic's last phase does) and `finetune_lr`; and
`warmup` as `candidates/survivors/...` (Cool-chic's 5 → 2 → 1: `warmup=5/5/2`). Each image is encoded once per
lever at one bpp target; results are cached per image and lever under `cache/`, and the run writes `ttq.json`,
`ttq.md` (a table) and `ttq.png` (PSNR against seconds, one panel per image).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch

import ddcodec
from benchmarks.rd import HERE, load_images, machine
from ddcodec.metrics import psnr
from ddcodec.training.presets import DEFAULT_EFFORT, EFFORTS

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

KEYS = {"iters": int, "tries": int, "lr": float, "input": str, "threads": int, "effort": int}


def _pair(value: str) -> tuple[float, float]:
    """`0.3:0.1` -> (0.3, 0.1); `0.3` -> (0.3, 0.3)."""
    first, _, second = value.partition(":")
    return float(first), float(second or first)


# Schedule keys: changes to the effort's preset (presets.Preset), the fit phases' fields applied to every fit phase.
def _warmup(value: str) -> dict:
    """`5/5/2` -> five candidates, all five fitted in the first round, the best two in the second (presets.WarmUp's
    fields; its share and scale stay the effort's)."""
    candidates, *survivors = (int(n) for n in value.split("/"))
    return {"candidates": candidates, "survivors": tuple(survivors) or (candidates,)}


PRESET_KEYS = {"gain": ("latent_gain", float), "optimizer": ("optimizer", str), "warmup": ("warmup", _warmup)}
PHASE_KEYS = {"latents": str, "temperature": _pair, "noise": str, "noise_param": _pair, "test_every": int,
              "lambda_floor": float}  # a share of λ's start, in the phases that set one (the others hold λ at it)
FINETUNE_KEYS = {"finetune_latents": ("latents", str), "finetune_lr": ("lr", float)}


def parse_lever(lever: str) -> dict:
    """`default` -> {}; `iters=500,threads=1` -> {"iters": 500, "threads": 1}."""
    if lever == "default":
        return {}
    changes = {}
    for item in lever.split(","):
        key, _, value = item.partition("=")
        kind = (KEYS.get(key) or PHASE_KEYS.get(key) or PRESET_KEYS.get(key, (None, None))[1]
                or FINETUNE_KEYS.get(key, (None, None))[1])
        if kind is None or not value:
            keys = sorted({*KEYS, *PHASE_KEYS, *PRESET_KEYS, *FINETUNE_KEYS})
            raise SystemExit(f"bad lever {lever!r}: use default or key=value[,key=value] with keys {keys}")
        changes[key] = kind(value)
    return changes


def _window(value, window: tuple[float, float]):
    """A (start, end) pair over the whole fit, cut to the part `window` of it that one phase runs (its cosine
    window): annealing spans the fit's phases as one schedule. Other values as they are."""
    if not isinstance(value, tuple):
        return value
    return tuple(value[0] + (value[1] - value[0]) * w for w in window)


def encode_options(changes: dict) -> dict:
    """encode()'s keyword arguments for a lever's changes: schedule keys become a `preset` (the effort's, changed)."""
    options = {k: v for k, v in changes.items() if k in KEYS}
    schedule = {k: v for k, v in changes.items() if k not in KEYS}
    if schedule:
        preset = EFFORTS[options.pop("effort", DEFAULT_EFFORT)]
        phases = tuple(dataclasses.replace(p, **{k: _window(v, p.cosine) for k, v in schedule.items()
                                                 if k in PHASE_KEYS and (k != "lambda_floor" or p.lambda_floor)})
                       for p in preset.fit)
        finetune = tuple(dataclasses.replace(p, **{FINETUNE_KEYS[k][0]: v for k, v in schedule.items()
                                                   if k in FINETUNE_KEYS}) for p in preset.finetune)
        fields = {PRESET_KEYS[k][0]: v for k, v in schedule.items() if k in PRESET_KEYS}
        if "warmup" in fields:
            if "tries" in options:
                raise SystemExit("a lever sets the warm-up with tries or warmup, not both")
            fields["warmup"] = dataclasses.replace(preset.warmup, **fields["warmup"])
        options["preset"] = dataclasses.replace(preset, fit=phases, finetune=finetune, **fields)
    return options


def run(image: np.ndarray, rate: float, lever: str, device: str) -> dict:
    """Encode one image at `rate` bpp with the lever's changes; the wall time includes everything encode does."""
    changes = parse_lever(lever)
    threads = changes.pop("threads", None)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        start = time.perf_counter()
        result = ddcodec.encode(image, bpp=rate, device=device, **encode_options(changes))
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(before)
    decoded = ddcodec.decode(result.data, output="numpy")
    return {"lever": lever, "seconds": seconds, "bpp": result.bpp, "psnr": psnr(image, decoded),
            "psnr_float": result.psnr_float, "iters": result.iters, "threads": threads or before,
            "height": image.shape[0], "width": image.shape[1], "device": result.device,
            "load_1min": os.getloadavg()[0]}


def measure(images: dict[str, np.ndarray], rate: float, levers: list[str], out: Path, device: str) -> list[dict]:
    """Every image under every lever, from the cache where a record exists."""
    records = []
    for lever in levers:
        for name, image in images.items():
            path = out / "cache" / lever / f"{name}_{rate:g}_v{ddcodec.__version__}.json"
            if path.exists():
                record = json.loads(path.read_text())
            else:
                record = {"image": name, **run(image, rate, lever, device)}
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(record, indent=1))
            print(f"{name:10s} {lever:28s} {record['seconds']:8.1f} s {record['psnr']:6.2f} dB "
                  f"(float {record['psnr_float']:.2f}) {record['bpp']:.3f} bpp", flush=True)
            records.append(record)
    return records


def table(records: list[dict], levers: list[str], images: list[str]) -> str:
    """Markdown: per lever, seconds and PSNR per image and their means."""
    head = "| lever | " + " | ".join(f"{n} s | {n} dB" for n in images) + " | mean s | mean dB | mean float dB |"
    lines = [head, "|" + "---|" * (2 * len(images) + 4)]
    for lever in levers:
        rows = {r["image"]: r for r in records if r["lever"] == lever}
        cells = " | ".join(f"{rows[n]['seconds']:.0f} | {rows[n]['psnr']:.2f}" for n in images)
        mean = {k: np.mean([rows[n][k] for n in images]) for k in ("seconds", "psnr", "psnr_float")}
        lines.append(f"| {lever} | {cells} | {mean['seconds']:.0f} | {mean['psnr']:.2f} | {mean['psnr_float']:.2f} |")
    return "\n".join(lines)


def plot(records: list[dict], images: list[str], path: Path, title: str) -> None:
    """PSNR against seconds, one panel per image, one marker per lever."""
    fig, axes = plt.subplots(1, len(images), figsize=(4.5 * len(images), 4), squeeze=False)
    for ax, name in zip(axes[0], images):
        for r in (r for r in records if r["image"] == name):
            ax.scatter(r["seconds"], r["psnr"], label=r["lever"])
        ax.set(title=name, xlabel="encode seconds", ylabel="PSNR RGB (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, default=HERE / "images" / "full", help="image folder (default: full/)")
    p.add_argument("--only", nargs="+", help="image names (file stems) to use from the folder")
    p.add_argument("--rate", type=float, default=0.3, help="bpp target (default 0.3)")
    p.add_argument("--levers", nargs="+", default=["default", "iters=1000", "iters=500"])
    p.add_argument("--device", default="cpu", help="encoding device: cpu, cuda or auto (default cpu)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "ttq-cpu")
    args = p.parse_args()
    for lever in args.levers:
        parse_lever(lever)
    images = load_images(args.images)
    if args.only:
        images = {n: images[n] for n in args.only}
    args.out.mkdir(parents=True, exist_ok=True)
    records = measure(images, args.rate, args.levers, args.out, args.device)
    names = list(images)
    sizes = sorted({f"{r['width']}x{r['height']}" for r in records})
    title = (f"ddcodec {ddcodec.__version__}, {args.rate:g} bpp, {', '.join(names)} ({', '.join(sizes)}), "
             f"{machine({r.get('device', 'cpu') for r in records})}")
    md = table(records, args.levers, names)
    (args.out / "ttq.md").write_text(f"# Time to quality\n\n{title}\n\n{md}\n")
    (args.out / "ttq.json").write_text(json.dumps({"title": title, "records": records}, indent=1))
    plot(records, names, args.out / "ttq.png", title)
    print(md)


if __name__ == "__main__":
    main()
