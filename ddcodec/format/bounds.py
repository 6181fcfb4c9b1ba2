"""Static bounds on the network's activations: a file whose weights could make float32 arithmetic overflow is refused
before the forward pass (docs/FORMAT.md, "Limits"), so that both decoders give the same pixels or the same error.

From the weights alone, layer by layer: the seeded input lies in [0, 0.1); a 1x1 convolution's output is at most
Σ_c |W[o, c]| · (its input's bound) + Σ_j |M[o, j]| · max |L_j|; upsampling and ReLU keep bounds; BatchNorm's output
is at most |γ| · sqrt(n) + |β| (|x − μ| ≤ sqrt(n · σ²) over its n positions). A decoder forms sums of squares of n
values, so every convolution's bound a must keep n · a² below 2^OVERFLOW_EXPONENT, far inside float32's 2^128
(a fitted 512x512 file stays below 2^50). Both decoders also refuse an output that is not finite, so that NaN never
becomes a pixel level.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ddcodec.format.architecture import Architecture
from ddcodec.errors import BitstreamError

OVERFLOW_EXPONENT = 100
INPUT_BOUND = 0.1  # the seeded input's values lie in [0, 0.1)


def check_finite_network(arch: Architecture, weights: Sequence[np.ndarray]) -> None:
    """A BitstreamError when the weights (float32, stream order) could make an activation or a statistic of the
    forward pass overflow float32."""
    bound = INPUT_BOUND
    for i in range(arch.layers + 1):
        w = np.abs(weights[3 * i].astype(np.float64))
        out = w @ np.full(w.shape[1], bound)
        if i in arch.mixers:
            grids = np.array([np.abs(weights[t]).max() for t in arch.latent_grids[i]], np.float64)
            out += np.abs(weights[arch.mixers[i]].astype(np.float64)) @ grids
        reach = float(out.max())
        h, w_ = arch.layer_size(min(i, arch.layers - 1))
        n = 4 * h * w_ if i < arch.layers - 1 else h * w_
        if not math.isfinite(reach) or n * reach * reach >= 2.0**OVERFLOW_EXPONENT:
            raise BitstreamError(f"the weights of layer {i} could make its activations overflow: the file is damaged")
        if i < arch.layers:
            gamma = float(np.abs(weights[3 * i + 1]).max())
            beta = float(np.abs(weights[3 * i + 2]).max())
            bound = beta + gamma * math.sqrt(n)
