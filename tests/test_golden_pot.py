"""Properties of the PoT golden model (golden/pot.py) and the shared accumulator."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from golden import intmac, pot
from golden.fixed import accumulate, wrap

floats = hnp.arrays(np.float64, st.integers(1, 64),
                    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))


@given(floats, st.integers(1, 5))
def test_quantize_dequantize_is_idempotent(x, exp_bits):
    codes, k = pot.quantize(x, exp_bits)
    y = pot.dequantize(codes, k, exp_bits)
    codes2, k2 = pot.quantize(y, exp_bits)
    assert np.array_equal(pot.dequantize(codes2, k2, exp_bits), y)


@given(floats, st.integers(1, 5))
def test_quantize_rounds_to_nearest_power_in_log_domain(x, exp_bits):
    codes, k = pot.quantize(x, exp_bits)
    y = pot.dequantize(codes, k, exp_bits)
    top = pot.max_exp(exp_bits)
    nz = y != 0
    # sign kept, magnitudes are powers of two inside the code range
    assert np.all(np.sign(y[nz]) == np.sign(x[nz]))
    e = np.log2(np.abs(y[nz])) - k
    assert np.all((e >= 0) & (e <= top) & (e == np.round(e)))
    # an unclipped element is within half an octave of its quantized value
    inside = nz & (np.abs(x) >= np.ldexp(1.0, k)) & (np.abs(x) <= np.ldexp(1.0, k + top))
    assert np.all(np.abs(np.log2(np.abs(x[inside]) / np.abs(y[inside]))) <= 0.5 + 1e-12)


def test_quantize_largest_element_hits_top_code():
    codes, k = pot.quantize([0.3, -5.0, 1.0], 3)
    assert pot.decode(codes, 3)[1] == -(2 ** pot.max_exp(3))
    assert pot.dequantize(codes, k, 3)[1] == -4.0


def test_quantize_all_zero_and_nan():
    codes, k = pot.quantize(np.zeros(5))
    assert k == 0 and np.all(pot.decode(codes) == 0)
    with pytest.raises(ValueError, match="NaN or Inf"):
        pot.quantize([1.0, np.nan])


@pytest.mark.parametrize("exp_bits", [1, 2, 3, 4, 5])
def test_product_equals_float_product_of_decoded_values_exhaustively(exp_bits):
    c = np.arange(1 << (exp_bits + 1))
    x, w = np.meshgrid(c, c, indexing="ij")
    exact = pot.decode(x, exp_bits).astype(float) * pot.decode(w, exp_bits).astype(float)
    assert np.array_equal(pot.product(x, w, exp_bits).astype(float), exact)
    # the product always fits the minimum accumulator width
    # ... and that width is the minimum: the largest product needs every bit of it
    lim = 1 << (pot.product_bits(exp_bits) - 1)
    assert np.all((-lim <= exact) & (exact < lim))
    assert exact.max() >= lim // 2


@settings(max_examples=200)
@given(st.integers(1, 5), st.integers(0, 40), st.data())
def test_mac_equals_integer_sum_modulo(exp_bits, n, data):
    acc_bits = data.draw(st.integers(pot.product_bits(exp_bits), 64))
    codes = st.integers(0, (1 << (exp_bits + 1)) - 1)
    x = np.array(data.draw(st.lists(codes, min_size=n, max_size=n)), dtype=np.int64)
    w = np.array(data.draw(st.lists(codes, min_size=n, max_size=n)), dtype=np.int64)
    valid = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    clear = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    got = pot.mac(x, w, valid, clear, exp_bits, acc_bits)
    # reference: a plain Python register, arbitrary precision, reduced modulo 2^acc_bits
    acc, ref = 0, []
    for i in range(n):
        p = int(pot.decode(x[i], exp_bits)) * int(pot.decode(w[i], exp_bits))
        if clear[i]:
            acc = p if valid[i] else 0
        elif valid[i]:
            acc += p
        ref.append(acc % (1 << acc_bits))
    assert [int(v) % (1 << acc_bits) for v in got] == ref


def test_accumulate_wraps_like_a_register():
    p = np.full(10, 100)
    got = accumulate(p, acc_bits=8)
    assert list(got) == [int(wrap(100 * (i + 1), 8)) for i in range(10)]


def test_intmac_matches_python_integers():
    rng = np.random.default_rng(1)
    x, w = rng.integers(-128, 128, 500), rng.integers(-128, 128, 500)
    clear = rng.random(500) < 0.1
    got = intmac.mac(x, w, None, clear, acc_bits=16)
    acc, ref = 0, []
    for i in range(500):
        acc = int(x[i]) * int(w[i]) + (0 if clear[i] else acc)
        ref.append(((acc + 2 ** 15) % 2 ** 16) - 2 ** 15)
    assert list(got) == ref


def test_matmul_matches_decoded_float_matmul():
    rng = np.random.default_rng(2)
    A, B = rng.integers(0, 16, (5, 7)), rng.integers(0, 16, (7, 3))
    ref = pot.decode(A).astype(float) @ pot.decode(B).astype(float)
    assert np.array_equal(pot.matmul(A, B, 3, 32), ref.astype(np.int64))
