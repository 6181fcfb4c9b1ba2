"""The context model of 2-D integer grids (the latent grids): each value is predicted from the two rows above it.

For value q[y, x] the taps are N = q[y-1, x], NW = q[y-1, x-1], NE = q[y-1, x+1] and NN = q[y-2, x] (0 outside
the grid). The coder codes the residual q - pred, pred = floor((c·taps + 8) / 16) with four signed 1/16 weights c
stored in the file, under one of len(EDGES) + 1 models chosen by the bucket of |N| + |NW| + |NE| + |NN|. Everything
is integer arithmetic, so encoder and decoder agree bit for bit on every machine, and a whole row depends only on
rows already decoded, so a row is decoded in a few vectorized calls (docs/FORMAT.md, "Context model").
"""

from __future__ import annotations

import numpy as np

EDGES = np.array([1, 2, 3, 5, 8, 13])  # bucket b holds the values whose tap magnitude sum has b edges at or below it
BUCKETS = len(EDGES) + 1
TAPS = 4  # N, NW, NE, NN
COEF_ONE = 16  # weights are stored as signed bytes in units of 1/16
MAX_VALUE = 1 << 24  # decoded grid values beyond this are refused (a crafted predictor could otherwise grow them)


BUCKET_OF = np.searchsorted(EDGES, np.arange(EDGES[-1] + 1), side="right")  # bucket of each capped tap sum


def padded(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A grid (h, w) inside zeros: two rows above, one column either side, as int64; and its magnitudes. Rows
    y .. y+1 of the padded array hold the two rows above grid row y, so the taps are plain views."""
    p = np.zeros((q.shape[0] + 2, q.shape[1] + 2), np.int64)
    p[2:, 1:-1] = q
    return p, np.abs(p)


def predict(p: np.ndarray, a: np.ndarray, lo: int, hi: int, coefs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, bucket) of grid rows lo .. hi-1 from the padded grid `p` and its magnitudes `a` (padded());
    only rows above lo + 1 need to be filled in, so a decoder calls it one row at a time."""
    north, north2 = slice(lo + 1, hi + 1), slice(lo, hi)
    taps = p[north, 1:-1], p[north, :-2], p[north, 2:], p[north2, 1:-1]
    total = a[north, 1:-1] + a[north, :-2] + a[north, 2:] + a[north2, 1:-1]
    pred = (sum(int(c) * t for c, t in zip(coefs, taps)) + COEF_ONE // 2) // COEF_ONE
    return pred, BUCKET_OF[np.minimum(total, EDGES[-1])]


def fit_coefs(q: np.ndarray) -> np.ndarray:
    """The least-squares predictor of a grid from its taps, rounded to 1/16 and clipped to a signed byte."""
    p, _ = padded(q)
    taps = np.stack([p[1:-1, 1:-1].ravel(), p[1:-1, :-2].ravel(), p[1:-1, 2:].ravel(), p[:-2, 1:-1].ravel()], 1)
    coef, *_ = np.linalg.lstsq(taps.astype(np.float64), q.ravel().astype(np.float64), rcond=None)
    return np.clip(np.round(coef * COEF_ONE), -128, 127).astype(np.int64)
