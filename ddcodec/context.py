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


def predict(north: np.ndarray, north2: np.ndarray, coefs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, bucket) of every value of the rows below `north` (the rows above, shape (..., w)) and `north2`
    (two rows above), both int64; works on one row or on all rows at once."""
    taps = _taps(north, north2)
    pred = (sum(int(c) * t for c, t in zip(coefs, taps)) + COEF_ONE // 2) // COEF_ONE
    return pred, np.searchsorted(EDGES, sum(np.abs(t) for t in taps), side="right")


def _taps(north: np.ndarray, north2: np.ndarray) -> tuple[np.ndarray, ...]:
    zero = np.zeros(north.shape[:-1] + (1,), np.int64)
    return north, np.concatenate([zero, north[..., :-1]], -1), np.concatenate([north[..., 1:], zero], -1), north2


def shifted_rows(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a grid (h, w): the row above and the row two above each row, 0 above the top."""
    zeros = np.zeros((2, q.shape[1]), np.int64)
    padded = np.concatenate([zeros, q.astype(np.int64)])
    return padded[1:-1], padded[:-2]


def fit_coefs(q: np.ndarray) -> np.ndarray:
    """The least-squares predictor of a grid from its taps, rounded to 1/16 and clipped to a signed byte."""
    north, north2 = shifted_rows(q)
    taps = np.stack([t.ravel() for t in _taps(north, north2)], 1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(taps, q.ravel().astype(np.float64), rcond=None)
    return np.clip(np.round(coef * COEF_ONE), -128, 127).astype(np.int64)
