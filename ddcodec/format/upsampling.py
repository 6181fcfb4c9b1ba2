"""The learned x2 upsampling of format version 4 as the format defines it (docs/FORMAT.md, "Synthesis (version 4)"):
where each tap reads, the taps that make it the bilinear upsampling, and the band matrices that apply a filter to a
run of samples. Shared by the NumPy decoder (ddcodec/decoders/npsynthesis.py) and the torch synthesis
(ddcodec/component/synthesis.py).

A learned filter of K distinct taps w_0 .. w_{K-1} upsamples an axis of n samples to 2n with half-pixel centres, like
the bilinear one: output 2k lies a quarter sample before input k, output 2k+1 a quarter after, and tap j weighs the
input sample at distance (2j+1)/4 (the same filter as Cool-chic's stride-2 transposed convolution with the symmetric
kernel w_{K-1} .. w_0 w_0 .. w_{K-1}). Input indices are clamped at the edges (replicate padding). w = (0.75, 0.25,
0, ...) is the bilinear upsampling exactly.
"""

from __future__ import annotations

import functools

import numpy as np

BILINEAR = (0.75, 0.25)  # the first taps of the bilinear filter; the others are 0
RUN = 8  # input samples per band product (at least twice the padding: 2·(K // 2) <= 8 for K <= 8)


def tap_offset(j: int) -> int:
    """Where tap j reads, relative to input k, for output 2k: 0, -1, +1, -2, +2, ... (nearest first); output 2k+1
    reads the mirror image, -offset."""
    return -((j + 1) // 2) if j % 2 else j // 2


@functools.lru_cache(maxsize=None)
def band_masks(taps: int, run: int) -> np.ndarray:
    """(taps, 2·run, run + 2·(taps // 2)) float32: mask j marks where tap j stands in the band matrix that maps a
    run of `run` input samples, with taps // 2 samples either side, to its 2·run outputs."""
    pad = taps // 2
    masks = np.zeros((taps, 2 * run, run + 2 * pad), np.float32)
    for j in range(taps):
        o = tap_offset(j)
        for m in range(run):
            masks[j, 2 * m, pad + m + o] = masks[j, 2 * m + 1, pad + m - o] = 1
    masks.setflags(write=False)
    return masks


def bilinear_taps(taps: int) -> np.ndarray:
    """The `taps` taps (float32) that make a learned filter the bilinear upsampling."""
    out = np.zeros(taps, np.float32)
    out[: len(BILINEAR)] = BILINEAR
    return out


def band(taps: np.ndarray) -> np.ndarray:
    """The band matrix (2·RUN, RUN + 2·(K // 2)), float32, that maps a run of RUN input samples along an axis, with
    the K // 2 samples either side that the filter reads, to the run's 2·RUN outputs."""
    return np.einsum("k,kol->ol", taps, band_masks(len(taps), RUN)).astype(np.float32)
