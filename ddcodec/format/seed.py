"""The network input, derived from a 64-bit seed by SplitMix64 on the element index (docs/FORMAT.md).

Library RNG streams (torch.rand, np.random) are not promised stable across versions, so the decoder could not
rebuild the input; this generator is a few lines of integer arithmetic that any implementation can reproduce.
"""

import numpy as np

from ddcodec.format.limits import SEED_CHUNK

INPUT_SCALE = 0.1  # input values are uniform on [0, INPUT_SCALE)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(seed: int, count: int, start: int = 0) -> np.ndarray:
    """The SplitMix64 outputs for element indices start..start+count-1: mix(seed + (i + 1) * golden), as uint64."""
    with np.errstate(over="ignore"):
        index = np.arange(start + 1, start + count + 1, dtype=np.uint64)
        z = np.uint64(seed & 0xFFFFFFFFFFFFFFFF) + index * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def seeded_input(seed: int, channels: int, height: int, width: int) -> np.ndarray:
    """Float32 array (channels, height, width), uniform on [0, 0.1): the top 24 bits of each output over 2^24.

    Built SEED_CHUNK values at a time into the output, so that it holds 4 bytes a value and a few small uint64
    temporaries (limits.seed_cost)."""
    out = np.empty(channels * height * width, np.float32)
    for start in range(0, out.size, SEED_CHUNK):
        bits = splitmix64(seed, min(SEED_CHUNK, out.size - start), start) >> np.uint64(40)
        np.multiply(bits.astype(np.float32), np.float32(2.0**-24), out=out[start : start + len(bits)])
    out *= np.float32(INPUT_SCALE)
    return out.reshape(channels, height, width)
