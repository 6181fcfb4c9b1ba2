"""The network's shape as the .ddc header records it, without torch (the parser and both decoders share it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

BN_EPS = 1e-5  # BatchNorm's variance floor, part of the format


@dataclass(frozen=True)
class Architecture:
    """Image size and network shape; `widths[0]` is the input's channel count, `widths[i]` layer i's output."""

    height: int
    width: int
    channels: int
    widths: tuple[int, ...]

    @property
    def layers(self) -> int:
        return len(self.widths) - 1

    @property
    def input_size(self) -> tuple[int, int]:
        """Input grid (h0, w0): the smallest whose 2^(layers-1) upsampling covers the image."""
        f = 2 ** (self.layers - 1)
        return math.ceil(self.height / f), math.ceil(self.width / f)

    def tensor_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the weight tensors in stream order: per layer (conv, BN scale, BN shift), then output conv."""
        shapes: list[tuple[int, ...]] = []
        for c_in, c_out in zip(self.widths[:-1], self.widths[1:]):
            shapes += [(c_out, c_in), (c_out,), (c_out,)]
        return shapes + [(self.channels, self.widths[-1])]

    @property
    def bn_scales(self) -> frozenset[int]:
        """Indices of the BatchNorm scales: redundant with the next convolution's columns (W·(γ·x) = (W·diag γ)·x),
        so the encoder keeps them at 1 and codes each as one constant."""
        return frozenset(3 * i + 1 for i in range(self.layers))

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.tensor_shapes())
