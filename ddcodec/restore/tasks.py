"""Restoration with an untrained network as the prior: denoising, inpainting and super-resolution.

Each task fits a prior (priors.py) so that a degradation of its output matches the observed image: the identity
for denoising (stopped before the noise is fitted), a mask for inpainting (the loss sees only known pixels), and a
fixed antialiased bicubic downsampler for super-resolution. The result is an exponential average of the outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from ddcodec.training.adam import Adam
from ddcodec.errors import InputError
from ddcodec.training.fit import pick_device
from ddcodec.io.images import ImageLike, to_array, to_pil
from ddcodec.restore.priors import PRIORS, make_prior


@dataclass(frozen=True)
class Settings:
    """Fitting schedule of one task and prior: Adam's lr, iterations, input jitter, output averaging, weights."""

    iters: int
    lr: float = 0.01
    jitter: float = 0.0  # std of the noise added to the network input at each step
    ema: float = 0.99  # decay of the exponential average of the outputs
    ratio: float = 8.0  # Deep Decoder only: 3·H·W / weights


SETTINGS = {
    ("denoise", "dd"): Settings(iters=2000, ratio=8.0),
    ("denoise", "dip"): Settings(iters=2000, jitter=1 / 30),
    ("inpaint", "dd"): Settings(iters=1200, ratio=4.0),
    ("inpaint", "dip"): Settings(iters=1200, jitter=0.03),
    ("superres", "dd"): Settings(iters=1200, ratio=4.0),
    ("superres", "dip"): Settings(iters=1200, jitter=0.03),
}
DEFAULT_PRIOR = "dip"
SCALES = range(2, 9)  # super-resolution factors accepted


def denoise(image: ImageLike, sigma: float | None = None, **options) -> Image.Image:
    """Denoise an image; `sigma` is the noise std on the 0-255 scale, estimated from the image when None.

    The fit stops when its MSE to the noisy image falls to sigma² (the discrepancy principle: further progress
    would be fitting the noise). Options are `_run`'s.
    """
    y = _tensor(to_array(image))
    if sigma is not None and not 0 <= sigma <= 255:
        raise InputError(f"sigma must be in 0..255, not {sigma}")
    s = (estimate_sigma(y) if sigma is None else sigma / 255)
    out = _run("denoise", y, y.shape[1:], lambda x: x, None, stop_mse=s * s, **options)
    return _image(out)


def inpaint(image: ImageLike, mask: ImageLike | None = None, missing_fraction: float | None = None,
            **options) -> Image.Image:
    """Fill the unknown pixels: `mask` is white where the image is known (any image of the same size), or give
    `missing_fraction` to drop that share of pixels at random (from `seed`) for experiments. Known pixels are kept.
    """
    arr = to_array(image)
    known = _known(arr.shape[:2], mask, missing_fraction, options.get("seed", 0))
    y = _tensor(arr)
    out = _run("inpaint", y, y.shape[1:], lambda x: x, known, **options)
    return _image(torch.where(known > 0, y, out))


def superres(image: ImageLike, scale: int = 4, **options) -> Image.Image:
    """Upscale by `scale` (2..8) so that the output, downsampled by `downsample`, matches the input."""
    if scale not in SCALES:
        raise InputError(f"scale must be an integer in {SCALES.start}..{SCALES.stop - 1}, not {scale}")
    y = _tensor(to_array(image))
    size = (scale * y.shape[1], scale * y.shape[2])
    out = _run("superres", y, size, lambda x: downsample(x, y.shape[1:]), None, **options)
    return _image(out)


def downsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The super-resolution loss's fixed downsampler: bicubic with antialiasing (PyTorch's, close to Pillow's)."""
    return F.interpolate(x, size=tuple(size), mode="bicubic", antialias=True, align_corners=False)


def estimate_sigma(y: torch.Tensor) -> float:
    """Gaussian noise std of an image (C, H, W) in [0, 1] by the median absolute deviation of its finest diagonal
    Haar coefficients (Donoho's robust estimator), averaged over channels."""
    h, w = (y.shape[1] // 2) * 2, (y.shape[2] // 2) * 2
    if h == 0 or w == 0:
        raise InputError("image is too small to estimate its noise: give sigma")
    a = y[:, :h, :w].double()
    hh = (a[:, 0::2, 0::2] - a[:, 0::2, 1::2] - a[:, 1::2, 0::2] + a[:, 1::2, 1::2]) / 2
    return float(hh.flatten(1).abs().median(dim=1).values.mean() / 0.6745)


def _run(
    task: str, y: torch.Tensor, size: tuple[int, int], observe: Callable[[torch.Tensor], torch.Tensor],
    known: torch.Tensor | None, *, prior: str = DEFAULT_PRIOR, preset: str = "cpu", iters: int | None = None,
    lr: float | None = None, seed: int = 0, device: str = "auto", progress: bool = False,
    stop_mse: float | None = None,
) -> torch.Tensor:
    """Fit the prior so that observe(output) matches y on the known pixels; return the averaged output (C, H, W)."""
    if prior not in PRIORS:
        raise InputError(f"unknown prior {prior!r} (choose from {', '.join(PRIORS)})")
    s = SETTINGS[task, prior]
    iters = s.iters if iters is None else iters
    if iters < 1:
        raise InputError(f"iters must be at least 1, not {iters}")
    if not 0 <= seed < 2**63:
        raise InputError("seed must be in 0 .. 2^63-1")
    try:
        dev = pick_device(device)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    target = y[None].to(dev)
    weight = torch.ones_like(target[:, :1]) if known is None else known[None].to(dev)
    n_known = float(weight.sum()) * target.shape[1]
    if n_known == 0:
        raise InputError("the mask marks no pixel as known")
    try:
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if dev.type == "cuda" else []):
            torch.manual_seed(seed)
            net = make_prior(prior, preset, *size, y.shape[0], s.ratio, seed, dev)
            avg = _fit(net, observe, target, weight, n_known, iters, s.lr if lr is None else lr, s, stop_mse,
                       progress, f"{task} ({prior})")
    except torch.OutOfMemoryError:
        raise InputError(f"out of memory on {dev} for a {size[1]}x{size[0]} output; try device cpu or a "
                         "smaller image") from None
    return avg[0].cpu()


def _fit(net, observe, target, weight, n_known, iters, lr, s: Settings, stop_mse, progress, desc) -> torch.Tensor:
    """Adam on the masked MSE; the output average's decay ramps up to s.ema ((1 + t) / (10 + t), so early
    outputs fade fast); stops early once the MSE, smoothed over about 10 steps (the input jitter makes it noisy),
    reaches stop_mse."""
    opt = Adam(net.parameters, lr=lr)
    avg, smooth = None, math.inf
    bar = tqdm(range(iters), desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for t in bar:
        x = net(s.jitter)
        mse = (((observe(x) - target) ** 2) * weight).sum() / n_known
        opt.zero_grad()
        mse.backward()
        opt.step()
        with torch.no_grad():
            avg = x.detach().clone() if avg is None else avg.lerp_(x.detach(), 1 - min(s.ema, (1 + t) / (10 + t)))
        loss = float(mse.detach())
        smooth = loss if t == 0 else 0.9 * smooth + 0.1 * loss
        if progress and t % 10 == 0:
            bar.set_postfix(loss=f"{loss:.2e}", psnr=f"{-10 * math.log10(max(loss, 1e-12)):.2f}")
        if stop_mse is not None and smooth <= stop_mse:
            break
    return avg


def _known(shape: tuple[int, int], mask: ImageLike | None, fraction: float | None, seed: int) -> torch.Tensor:
    """(1, H, W) float mask, 1 where the pixel is known: from a mask image (white = known) or a random fraction."""
    if (mask is None) == (fraction is None):
        raise InputError("give a mask image or missing_fraction (one of them)")
    if fraction is not None:
        if not 0 <= fraction < 1:
            raise InputError(f"missing_fraction must be in [0, 1), not {fraction}")
        keep = np.random.default_rng(seed).random(shape) >= fraction
    else:
        m = to_array(mask)
        if m.shape[:2] != shape:
            raise InputError(f"mask is {m.shape[1]}x{m.shape[0]}, the image {shape[1]}x{shape[0]}")
        keep = m.mean(axis=2) > 127
    return torch.from_numpy(keep.astype(np.float32))[None]


def _tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255)


def _image(x: torch.Tensor) -> Image.Image:
    return to_pil((x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
