import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ddcodec.format.entropy import CODERS, _put_varint, _varints, decode_ints, encode_ints, table_budget

tensor = st.one_of(
    arrays(np.int64, st.integers(1, 300), elements=st.integers(-3, 3)),
    arrays(np.int64, st.integers(1, 50), elements=st.integers(-40000, 40000)),
    arrays(np.int64, st.integers(1, 20), elements=st.integers(-(2**31) + 1, 2**31 - 1)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(tensor, min_size=1, max_size=6), st.sampled_from(sorted(CODERS)))
def test_round_trip(tensors, coder):
    tables = sum(int(np.ptp(t)) + 1 for t in tensors if np.ptp(t) > 0)  # a table spans each tensor's range
    wide = any(np.ptp(t) >= 2**16 for t in tensors) or tables > table_budget([t.size for t in tensors])
    if coder == "range" and wide:
        with pytest.raises(ValueError):
            encode_ints(tensors, CODERS[coder])
        return
    payload = encode_ints(tensors, CODERS[coder])
    out = decode_ints(payload, [t.size for t in tensors], CODERS[coder])
    assert all(np.array_equal(a, b) for a, b in zip(tensors, out))


def test_range_coding_beats_zstd_on_laplacian_weights():
    rng = np.random.default_rng(0)
    tensors = [np.round(rng.laplace(0, 6, 5000)).astype(np.int64), np.round(rng.normal(40, 2, 64)).astype(np.int64)]
    sizes = {c: len(encode_ints(tensors, CODERS[c])) for c in CODERS}
    assert sizes["range"] < sizes["zstd"]
    entropy_bits = -np.sum(np.log2(np.unique(tensors[0], return_counts=True)[1] / 5000) * np.unique(tensors[0], return_counts=True)[1])
    assert 8 * sizes["range"] < 1.05 * entropy_bits + 8 * 300


@given(st.lists(st.integers(0, 2**64 - 1), max_size=40))
def test_vectorized_varints_match_the_one_at_a_time_writer(values):
    expected = bytearray()
    for v in values:
        _put_varint(expected, v)
    assert _varints(np.array(values, dtype=np.uint64)) == bytes(expected)
