"""The network's shape record, without torch: image size, layer widths and, for the coded-input profile, the latent
grids fed to each layer and the synthesis's learned upsampling and refinement. Fitting, quantization, the bitstream
and both decoders walk the tensor list it defines."""

from __future__ import annotations

import math
from dataclasses import dataclass

BN_EPS = 1e-5  # BatchNorm's variance floor, part of the format
MAX_LAYERS = 8  # format caps (docs/FORMAT.md): hidden layers, and channels of a layer
MAX_WIDTH = 512
MAX_TAPS = 8  # distinct taps of a learned upsampling filter (a symmetric filter of 2·taps samples)
MAX_REFINE = 4  # residual convolutions of the refinement
MAX_REFINE_KERNEL = 7  # their side

ARM_OUTPUTS = 2  # the ARM's outputs per latent value: the Laplace mean and the log2 of its scale


@dataclass(frozen=True)
class ArmShape:
    """The shape of the ARM, the learned context model of the latent grids (ddcodec/encoder/arm.py, docs/FORMAT.md "ARM"):
    `neighbours` causal neighbours (a prefix of armint.NEIGHBOURS), plus the preceding grid's co-located value with
    `coarser`, through hidden ReLU layers of the given widths to ARM_OUTPUTS outputs."""

    neighbours: int = 12
    coarser: bool = True
    hidden: tuple[int, ...] = (8, 8)

    @property
    def inputs(self) -> int:
        return self.neighbours + int(self.coarser)

    def layer_shapes(self) -> list[tuple[int, int]]:
        """(outputs, inputs) of each linear layer, the output layer last."""
        sizes = (self.inputs, *self.hidden, ARM_OUTPUTS)
        return list(zip(sizes[1:], sizes[:-1]))

    @property
    def n_params(self) -> int:
        """Weights and biases of its layers."""
        return sum(o * i + o for o, i in self.layer_shapes())

    def macs_per_value(self) -> int:
        """Multiply-adds of one latent value's prediction."""
        return sum(o * i for o, i in self.layer_shapes())


@dataclass(frozen=True)
class Architecture:
    """Image size and network shape; `widths[0]` is the seeded input's channel count, `widths[i]` layer i's output.

    `latents[i]` (coded-input profile) is the number of coded latent grids added to hidden layer i's input, at that
    layer's resolution; empty or all zero means the seed-only Deep Decoder of the paper.
    Synthesis (format version 4, docs/FORMAT.md): `taps` > 0 replaces each fixed bilinear x2 upsampling by a learned
    separable symmetric filter of 2·taps samples (one per upsampling layer, shared by its channels); `refine` residual
    `refine_kernel` x `refine_kernel` convolutions on the output channels come before the sigmoid. Both default to
    absent: `Architecture(h, w, c, widths, latents)` is the version 3 network.
    """

    height: int
    width: int
    channels: int
    widths: tuple[int, ...]
    latents: tuple[int, ...] = ()
    taps: int = 0
    refine: int = 0
    refine_kernel: int = 3
    arm: ArmShape | None = None  # the latent grids' context model: None codes them as version 3 does

    def __post_init__(self) -> None:
        if self.latents and len(self.latents) != self.layers:
            raise ValueError("one latent channel count per hidden layer is required")
        if self.taps == 1 or not 0 <= self.taps <= MAX_TAPS:
            raise ValueError(f"learned upsampling taps must be 0 (bilinear) or 2 .. {MAX_TAPS}")
        if not 0 <= self.refine <= MAX_REFINE or self.refine_kernel not in range(1, MAX_REFINE_KERNEL + 1, 2):
            raise ValueError(f"refinement: 0 .. {MAX_REFINE} layers of an odd side up to {MAX_REFINE_KERNEL}")

    @property
    def layers(self) -> int:
        return len(self.widths) - 1

    @property
    def learned_upsampling(self) -> bool:
        """Whether the upsamplings use coded filters (else the fixed bilinear one); a network with one layer has no
        upsampling."""
        return self.taps > 0 and self.layers > 1

    @property
    def coded_input(self) -> bool:
        return any(self.latents)

    @property
    def input_size(self) -> tuple[int, int]:
        """Input grid (h0, w0): the smallest whose 2^(layers-1) upsampling covers the image."""
        f = 2 ** (self.layers - 1)
        return math.ceil(self.height / f), math.ceil(self.width / f)

    def layer_size(self, i: int) -> tuple[int, int]:
        """Resolution (h, w) of hidden layer i's input: the input grid upsampled i times (the last layer does not
        upsample, so layer d-1 works at the output resolution)."""
        h0, w0 = self.input_size
        return h0 << i, w0 << i

    def latent_layers(self) -> list[int]:
        """Hidden layers that receive latent grids."""
        return [i for i, n in enumerate(self.latents) if n > 0]

    def tensor_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the coded tensors in stream order (docs/FORMAT.md): per layer (conv, BN scale, BN shift), the
        output conv; then, for the coded-input profile, each latent layer's mixing matrix (widths[i+1] x latents[i]),
        then every latent grid, one channel per tensor, layer by layer; then the synthesis's tensors: the upsampling
        filters (layers-1 x taps) and each refinement kernel (channels x channels x side x side); then, with an ARM,
        its (weight, bias) per layer."""
        shapes: list[tuple[int, ...]] = []
        for c_in, c_out in zip(self.widths[:-1], self.widths[1:]):
            shapes += [(c_out, c_in), (c_out,), (c_out,)]
        shapes.append((self.channels, self.widths[-1]))
        shapes += [(self.widths[i + 1], self.latents[i]) for i in self.latent_layers()]
        for i in self.latent_layers():
            shapes += [self.layer_size(i)] * self.latents[i]
        if self.learned_upsampling:
            shapes.append((self.layers - 1, self.taps))
        shapes += [(self.channels, self.channels, self.refine_kernel, self.refine_kernel)] * self.refine
        if self.arm is not None:
            for o, i in self.arm.layer_shapes():
                shapes += [(o, i), (o,)]
        return shapes

    @property
    def arm_indices(self) -> list[int]:
        """Indices of the ARM's tensors in the tensor list, (weight, bias) per layer; empty without an ARM."""
        if self.arm is None:
            return []
        n = len(self.tensor_shapes())
        return list(range(n - 2 * len(self.arm.layer_shapes()), n))

    def grid_shapes(self) -> list[tuple[int, int]]:
        """(h, w) of each latent grid, in stream order."""
        return [self.layer_size(i) for i in self.latent_layers() for _ in range(self.latents[i])]

    @property
    def n_seed_tensors(self) -> int:
        """Tensors of the seed-only network: 3 per hidden layer and the output conv."""
        return 3 * self.layers + 1

    @property
    def mixers(self) -> dict[int, int]:
        """Hidden layer -> index of its latent mixing matrix in the tensor list."""
        return {i: self.n_seed_tensors + j for j, i in enumerate(self.latent_layers())}

    @property
    def latent_grids(self) -> dict[int, list[int]]:
        """Hidden layer -> indices of its latent grids in the tensor list."""
        out, t = {}, self.n_seed_tensors + len(self.latent_layers())
        for i in self.latent_layers():
            out[i] = list(range(t, t + self.latents[i]))
            t += self.latents[i]
        return out

    @property
    def grid_indices(self) -> frozenset[int]:
        """Indices of all latent grids (integers with step 1, rate-trained, not allocated like weights)."""
        return frozenset(t for ts in self.latent_grids.values() for t in ts)

    @property
    def upsampling_filters(self) -> int | None:
        """Index of the learned upsampling filters (row i: the upsampling after hidden layer i), None if bilinear."""
        return self.n_seed_tensors + len(self.latent_layers()) + self.n_grids if self.learned_upsampling else None

    @property
    def refinement_kernels(self) -> list[int]:
        """Indices of the refinement's kernels, in the order they apply."""
        first = self.n_seed_tensors + len(self.latent_layers()) + self.n_grids + self.learned_upsampling
        return list(range(first, first + self.refine))

    @property
    def n_grids(self) -> int:
        """Latent grids (tensors)."""
        return sum(self.latents)

    @property
    def bn_scales(self) -> frozenset[int]:
        """Indices of the BatchNorm scales: redundant with the next convolution's columns (W·(γ·x) = (W·diag γ)·x),
        so the encoder keeps them at 1 and codes each as one constant."""
        return frozenset(3 * i + 1 for i in range(self.layers))

    @property
    def n_params(self) -> int:
        """Network weights, latent mixers included, latent grids not."""
        grids = self.grid_indices
        return sum(math.prod(s) for t, s in enumerate(self.tensor_shapes()) if t not in grids)

    @property
    def n_synthesis_params(self) -> int:
        """Weights of the synthesis's upsampling filters and refinement kernels (part of n_params)."""
        shapes = self.tensor_shapes()
        indices = self.refinement_kernels + ([self.upsampling_filters] if self.learned_upsampling else [])
        return sum(math.prod(shapes[t]) for t in indices)

    @property
    def n_latents(self) -> int:
        """Coded latent values."""
        return sum(self.latents[i] * math.prod(self.layer_size(i)) for i in self.latent_layers())

    def macs_per_pixel(self) -> float:
        """Multiply-adds of the decoder's convolutions (latent mixers included) per output pixel, the synthesis's
        learned upsampling and refinement included (the fixed bilinear upsampling is not counted)."""
        h, w = self.layer_size(self.layers - 1)
        total = 0
        for i in range(self.layers):
            hi, wi = self.layer_size(i)
            lat = self.latents[i] if self.latents else 0
            total += self.widths[i + 1] * (self.widths[i] + lat) * hi * wi
        total += self.channels * self.widths[-1] * h * w
        return total / (self.height * self.width) + self.synthesis_macs_per_pixel()

    def arm_macs_per_pixel(self) -> float:
        """Multiply-adds of the ARM's predictions (one per coded latent value) per output pixel; 0 without an ARM."""
        return self.arm.macs_per_value() * self.n_latents / (self.height * self.width) if self.arm else 0.0

    def synthesis_macs_per_pixel(self) -> float:
        """Multiply-adds per output pixel of the learned upsampling (taps per output sample along each axis: the
        width pass on h x 2w samples, the height pass on 2h x 2w) and of the refinement (at the image's size)."""
        total = 0
        if self.learned_upsampling:
            for i in range(self.layers - 1):
                hi, wi = self.layer_size(i)
                total += self.widths[i + 1] * self.taps * (2 * hi * wi + 4 * hi * wi)
        refine = self.refine * self.channels**2 * self.refine_kernel**2
        return total / (self.height * self.width) + refine


def layers_for(height: int, width: int) -> int:
    """Depth whose input grid is about 16 pixels on the short side (5 upsamplings for 512, as in the paper)."""
    return int(min(max(round(math.log2(max(min(height, width), 1) / 16)) + 1, 1), MAX_LAYERS - 1))


def width_for(layers: int, channels: int, n_params: float, latent_channels: int = 0) -> int:
    """Largest equal width k whose network codes at most n_params weights (layers·k² + (layers + C + L)·k: the
    BatchNorm scales are constants, and L latent grids add a k-wide mixing column each)."""
    b = layers + channels + latent_channels
    k = int((-b + math.sqrt(b * b + 4 * layers * max(n_params, 0))) / (2 * layers))
    return min(k, MAX_WIDTH)
