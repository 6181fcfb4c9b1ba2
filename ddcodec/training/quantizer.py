"""How the latent grids look to the synthesis while they train: the proxies of rounding (C3, Cool-chic >= 3).

The decoder sees integers q = round(y). A fit cannot differentiate through rounding, so during training the
synthesis and the rate term see a proxy of it, chosen per phase of the schedule (ddcodec.training.presets):

- `noise`: y + u, u uniform on [-1/2, 1/2) (Ballé et al., 2017): the v0.6-v0.9 proxy.
- `softround`: s_T(y) = ⌊y⌋ + 1/2 + tanh((y − ⌊y⌋ − 1/2) / T) / (2 tanh(1 / (2T))), a differentiable staircase that
  tends to rounding as the temperature T falls (Agustsson & Theis, 2020).
- `noisy-softround`: s_T(s_T(y) + n) (C3, Kim et al., CVPR 2024; Cool-chic >= 3), n centred noise of the phase's
  kind: `kumaraswamy` (C3: shape a, annealed 2 → 1; a = 1 is uniform) or `gaussian` (Cool-chic 5: std 0.22 → 0.15).
- `ste`: round(y) forward, identity backward (straight-through estimator).
- `ste-softround`: round(y) forward, the soft round's gradient backward (C3's last phase).
- `hard`: round(y), no gradient (the latents are frozen).

The weights' own proxy, for quantization-aware fine-tuning, is `ste_quantize` (their steps: encoder/nnquant.py).

All functions take grids of B networks, (B, h, w), and per-network generators so that a network draws the same
noise in a batch as alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

MODES = ("noise", "softround", "noisy-softround", "ste", "ste-softround", "hard")
NOISES = ("uniform", "kumaraswamy", "gaussian")


@dataclass(frozen=True)
class LatentProxy:
    """A quantization proxy at one iteration: the mode, the soft round's temperature T, and the noise's kind and
    parameter (Kumaraswamy shape a, or Gaussian std; unused for uniform noise)."""

    mode: str = "noise"
    temperature: float = 0.3
    noise: str = "uniform"
    noise_param: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in MODES or self.noise not in NOISES:
            raise ValueError(f"unknown latent proxy {self.mode!r} with {self.noise!r} noise")

    @property
    def noisy(self) -> bool:
        """Whether the proxy draws noise (so that a loss under it is itself noisy)."""
        return self.mode in ("noise", "noisy-softround")


def softround(y: torch.Tensor, temperature: float) -> torch.Tensor:
    """The soft round s_T(y) (Agustsson & Theis, 2020): continuous, increasing, equal to round(y) at half-integers
    ± 1/2 and tending to it as T → 0. Shape and units: those of y."""
    base = torch.floor(y) + 0.5
    return base + torch.tanh((y - base) / temperature) / (2 * torch.tanh(torch.tensor(0.5 / temperature)))


def centred_noise(shape: Sequence[int], proxy: LatentProxy, generator: torch.Generator, device: torch.device
                  ) -> torch.Tensor:
    """Noise of the proxy's kind, centred on 0 on [-1/2, 1/2) (uniform, Kumaraswamy) or unbounded (Gaussian).

    Kumaraswamy(a, b) is sampled by inversion, x = (1 − (1 − u)^(1/b))^(1/a), with b = ((a − 1)·2^a + 1) / a so that
    its mode is 1/2 (a = 1 gives b = 1: uniform); C3 anneals a from 2 (peaked) to 1."""
    u = torch.rand(tuple(shape), generator=generator, device=device)
    if proxy.noise == "gaussian":
        return torch.randn(tuple(shape), generator=generator, device=device) * proxy.noise_param
    if proxy.noise == "kumaraswamy":
        a = proxy.noise_param
        b = ((a - 1) * 2**a + 1) / a
        u = (1 - (1 - u).clamp_min(1e-12) ** (1 / b)) ** (1 / a)
    return u - 0.5


def quantize_latents(grids: Sequence[torch.Tensor], proxy: LatentProxy, generators: Sequence[torch.Generator] = ()
                     ) -> list[torch.Tensor]:
    """B networks' grids (B, h, w) as the synthesis and the rate term see them under `proxy` (network b's noise
    from generators[b])."""
    return [_proxy(g, proxy, generators) for g in grids]


def _proxy(g: torch.Tensor, p: LatentProxy, generators: Sequence[torch.Generator]) -> torch.Tensor:
    if p.mode == "hard":
        return torch.round(g).detach()
    if p.mode == "ste":
        return g + (torch.round(g) - g).detach()
    if p.mode == "softround":
        return softround(g, p.temperature)
    if p.mode == "ste-softround":
        soft = softround(g, p.temperature)
        return soft + (torch.round(g) - soft).detach()
    if p.mode == "noise" and p.noise == "uniform":  # the v0.6-v0.9 proxy, in its arithmetic order
        return g + torch.stack([torch.rand(g.shape[1:], generator=gen, device=g.device) for gen in generators]) - 0.5
    noise = torch.stack([centred_noise(g.shape[1:], p, gen, g.device) for gen in generators])
    if p.mode == "noise":
        return g + noise
    return softround(softround(g, p.temperature) + noise, p.temperature)


def ste_quantize(weights: Sequence[torch.Tensor], steps: Sequence[torch.Tensor | float]) -> list[torch.Tensor]:
    """Quantized weights in the forward pass, identity in the backward pass (straight-through estimator)."""
    return [w + (torch.round(w / s) * s - w).detach() for w, s in zip(weights, steps)]
