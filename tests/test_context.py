"""The context model of latent grids (ddcodec.format.context, entropy.CONTEXT): exact round trips, a gain on correlated
grids, and crafted descriptors refused with BitstreamError."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ddcodec import BitstreamError
from ddcodec.format.context import TAPS
from ddcodec.format.entropy import CONTEXT, RANGE, decode_ints, encode_ints


def correlated_grid(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Integers like fitted latents: a smooth field (cumulative sums of Laplace noise, damped) plus sparse noise."""
    rng = np.random.default_rng(seed)
    field = np.zeros((h, w))
    for y in range(h):
        above = field[y - 1] if y else 0
        field[y] = 0.8 * above + rng.laplace(0, 0.6, w)
    return np.round(field).astype(np.int64)


def _payload_with_context(grid: np.ndarray) -> bytes:
    payload = encode_ints([grid], RANGE, grids={0})
    assert payload[0] == CONTEXT
    return payload


def test_context_model_round_trips_and_beats_the_flat_model():
    grids = [correlated_grid(64, 48), correlated_grid(32, 32, seed=1), np.zeros((8, 8), np.int64)]
    payload = encode_ints(grids, RANGE, grids={0, 1, 2})
    out = decode_ints(payload, [g.shape for g in grids], RANGE)
    assert all(np.array_equal(g.ravel(), o) for g, o in zip(grids, out))
    assert len(payload) < 0.9 * len(encode_ints(grids, RANGE))


@settings(max_examples=40, deadline=None)
@given(arrays(np.int64, st.tuples(st.integers(4, 20), st.integers(4, 20)), elements=st.integers(-40, 40)))
def test_any_grid_round_trips(grid):
    payload = encode_ints([grid], RANGE, grids={0})
    assert np.array_equal(decode_ints(payload, [grid.shape], RANGE)[0], grid.ravel())


def test_a_context_model_on_a_tensor_that_is_not_a_grid_is_refused():
    grid = correlated_grid(48, 48)
    with pytest.raises(BitstreamError, match="not a grid"):
        decode_ints(_payload_with_context(grid), [grid.size], RANGE)


def test_a_growing_predictor_is_refused_not_overflowed():
    grid = correlated_grid(40, 16) + 1
    payload = bytearray(_payload_with_context(grid))
    payload[1 : 1 + TAPS] = bytes([127] * TAPS)  # every tap weighs ~8: values would grow 32-fold per row
    with pytest.raises(BitstreamError):
        decode_ints(bytes(payload), [grid.shape], RANGE)


def test_a_categorical_bucket_model_is_refused():
    grid = correlated_grid(48, 48)
    payload = bytearray(_payload_with_context(grid))
    payload[1 + TAPS] = 2  # the first bucket's model: categorical, whose counts a decoder cannot check in advance
    with pytest.raises(BitstreamError):
        decode_ints(bytes(payload), [grid.shape], RANGE)
