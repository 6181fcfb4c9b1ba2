"""The warm-up: candidate networks from several seeds fitted briefly, the best kept (Cool-chic's warm-up, C3's).

The seed is free (it is in the header), and on Kodak crops the full fit's PSNR spreads by up to 0.9 dB over seeds;
a short fit roughly predicts the ranking. Candidates are fitted on the image shrunk 2^coarse times (the network's
last upsamplings skipped, latent grids left at 0), a fraction of the pixels: in v0.9 the warm-up cost about 4 % of
an encode's pixel-iterations. Rounds narrow the field: round r goes on fitting the best `survivors[r]` candidates
of each image; the best one after the last round is the network the fit starts from.
"""

from __future__ import annotations

import torch

from ddcodec.format.architecture import Architecture
from ddcodec.training.fit import fit
from ddcodec.component.model import init_weights, network_input
from ddcodec.training.presets import Phase, Preset
from ddcodec.training.progress import Progress


def warm_up(
    arch: Architecture, target: torch.Tensor, seed: int, preset: Preset, lr: float,
    progress: Progress | None = None, label: str = "",
) -> tuple[list[int], torch.Tensor, list[torch.Tensor]]:
    """Per image of `target` (B, C, H, W), the seed among seed .. seed + candidates − 1 whose network fits best.

    Returns the chosen seeds, their inputs (B, c, h0, w0) and warmed-up weights (each (B, ...))."""
    n, dev = target.shape[0], target.device
    w = preset.warmup
    iters = preset.warmup_iters()
    tries = w.candidates if iters else 1
    inputs = [network_input(arch, seed + j, dev) for j in range(tries)]
    inits = [init_weights(arch, torch.Generator().manual_seed(seed + j)) for j in range(tries)]
    z = torch.stack(inputs * n)  # network b * tries + j: image b, seed + j
    weights = [torch.stack([init[t] for init in inits] * n).to(dev) for t in range(len(inits[0]))]
    alive = [list(range(b * tries, (b + 1) * tries)) for b in range(n)]  # each image's candidates, best first
    phase = Phase("warm-up", w.share, coarse=min(w.coarse, arch.layers - 1), latents="hard")
    for survivors in w.survivors if iters else ():
        alive = [a[:survivors] for a in alive]
        idx = [i for a in alive for i in a]
        fitted, mse = fit(arch, target[[i // tries for i in idx]], z[idx], [t[idx] for t in weights], phase, iters,
                          lr, frozen=arch.bn_scales | arch.grid_indices | set(arch.arm_indices), progress=progress,
                          label=label)
        for t, f in zip(weights, fitted):
            t[idx] = f
        score = dict(zip(idx, mse))
        alive = [sorted(a, key=score.__getitem__) for a in alive]
    best = [a[0] for a in alive]
    return [seed + i % tries for i in best], z[best], [t[best] for t in weights]
