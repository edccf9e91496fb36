"""The approximate-multiplier golden models (golden/approx.py) against scalar reference
implementations written straight from the definitions, their known error properties,
the metrics on hand-computed cases, the RTL on small N with Amaranth's simulator,
and the one-line errors for bad parameters."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from golden import approx
from rtl.registry import build

# ---- scalar references, one operand pair at a time, straight from the definitions ----


def ref_cut(a, b, bits, vbl, hbl):
    return sum(1 << (i + j) for i in range(bits) for j in range(bits)
               if (a >> i) & 1 and (b >> j) & 1 and j >= hbl and i + j >= vbl)


def ref_trunc(a, b, bits, k, correction):
    p = ref_cut(a, b, bits, k, 0)
    if correction:
        e = sum(Fraction(1 << (i + j), 4) for i in range(bits) for j in range(bits) if i + j < k)
        p += int(e + Fraction(1, 2))   # round half up (E's fraction is never 1/2)
    return p % (1 << (2 * bits))


def ref_drum(a, b, bits, k):
    def seg(x):
        n = x.bit_length()
        if n <= k:
            return x, 0
        s = n - k
        return (x >> s) | 1, s
    va, sa = seg(a)
    vb, sb = seg(b)
    return (va * vb) << (sa + sb)


def ref_mitchell(a, b, bits, f):
    if a == 0 or b == 0:
        return 0
    k1, k2 = a.bit_length() - 1, b.bit_length() - 1
    x1 = Fraction(int(Fraction(a, 1 << k1) * (1 << f)) - (1 << f), 1 << f)   # floor to f fraction bits
    x2 = Fraction(int(Fraction(b, 1 << k2) * (1 << f)) - (1 << f), 1 << f)
    if x1 + x2 < 1:
        p = Fraction(1 << (k1 + k2)) * (1 + x1 + x2)
    else:
        p = Fraction(1 << (k1 + k2 + 1)) * (x1 + x2)
    return int(p)   # floor: the fraction bits below the binary point are truncated


def _pairs(bits):
    return st.tuples(st.integers(0, (1 << bits) - 1), st.integers(0, (1 << bits) - 1))


@st.composite
def operand_batch(draw, min_bits=2, max_bits=16):
    bits = draw(st.integers(min_bits, max_bits))
    pairs = draw(st.lists(_pairs(bits), min_size=1, max_size=40))
    a = np.array([p[0] for p in pairs], np.int64)
    b = np.array([p[1] for p in pairs], np.int64)
    return bits, a, b


@settings(max_examples=60, deadline=None)
@given(operand_batch(), st.data())
def test_trunc_matches_definition(batch, data):
    bits, a, b = batch
    k = data.draw(st.integers(0, 2 * bits))
    corr = data.draw(st.booleans())
    got = approx.trunc(a, b, bits, k, corr)
    assert [int(v) for v in got] == [ref_trunc(int(x), int(y), bits, k, corr) for x, y in zip(a, b)]


@settings(max_examples=60, deadline=None)
@given(operand_batch(), st.data())
def test_bam_matches_definition(batch, data):
    bits, a, b = batch
    vbl = data.draw(st.integers(0, 2 * bits - 1))
    hbl = data.draw(st.integers(0, bits - 1))
    got = approx.bam(a, b, bits, vbl, hbl)
    assert [int(v) for v in got] == [ref_cut(int(x), int(y), bits, vbl, hbl) for x, y in zip(a, b)]


@settings(max_examples=60, deadline=None)
@given(operand_batch(), st.data())
def test_drum_matches_definition(batch, data):
    bits, a, b = batch
    k = data.draw(st.integers(1, bits))
    got = approx.drum(a, b, bits, k)
    assert [int(v) for v in got] == [ref_drum(int(x), int(y), bits, k) for x, y in zip(a, b)]


@settings(max_examples=60, deadline=None)
@given(operand_batch(), st.data())
def test_mitchell_matches_definition(batch, data):
    bits, a, b = batch
    f = data.draw(st.integers(1, bits - 1))
    got = approx.mitchell(a, b, bits, f)
    assert [int(v) for v in got] == [ref_mitchell(int(x), int(y), bits, f) for x, y in zip(a, b)]


@pytest.mark.parametrize("bits", [2, 5, 8])
def test_parameters_that_cut_nothing_are_exact(bits):
    a, b = approx.operands(bits)
    ex = a * b
    assert np.array_equal(approx.trunc(a, b, bits, 0), ex)
    assert np.array_equal(approx.bam(a, b, bits, 0, 0), ex)
    assert np.array_equal(approx.drum(a, b, bits, bits), ex)
    assert np.array_equal(approx.table("mul-array", bits=bits).ravel(), ex)


def test_known_error_bounds_exhaustive_n8():
    a, b = approx.operands(8)
    ex = a * b
    nz = ex > 0
    # Mitchell never overestimates; its worst relative error is 1/9 (x1 = x2 = 1/2)
    for f in (7, 4):
        assert np.all(approx.mitchell(a, b, 8, f) <= ex)
    m = approx.mitchell(a, b, 8, 7)
    assert np.isclose(np.max((ex[nz] - m[nz]) / ex[nz]), 1 / 9)
    # powers of two are exact for Mitchell
    pw = np.array([1 << i for i in range(8)])
    pa, pb = np.meshgrid(pw, pw)
    assert np.array_equal(approx.mitchell(pa, pb, 8, 3), pa * pb)
    # truncation without correction only removes bits: never above, never more than the cut bits
    for k in (4, 8, 12):
        t = approx.trunc(a, b, 8, k)
        cut = sum(1 << (i + j) for i in range(8) for j in range(8) if i + j < k)
        assert np.all(t <= ex) and np.all(ex - t <= cut)
    # DRUM: |error| <= 2^s per operand of >= 2^(k-1+s), so relative error <= 2^(1-k) per operand
    for k in (3, 5):
        d = approx.drum(a, b, 8, k)
        assert np.max(np.abs(d[nz] - ex[nz]) / ex[nz]) <= (1 + 2.0 ** (1 - k)) ** 2 - 1


def test_correction_removes_the_bias():
    for k in (6, 8, 10):
        plain = approx.metrics(approx.table("mul-trunc", k=k), 8)
        corr = approx.metrics(approx.table("mul-trunc", k=k, correction=True), 8)
        assert plain["bias"] < -1 and abs(corr["bias"]) <= 0.5
        assert corr["mae"] < plain["mae"]


def test_metrics_on_a_hand_computed_table():
    t = approx.table("mul-array", bits=2).astype(np.int64)
    t[3, 3] = 8          # one error of -1 on exact 9
    t[2, 1] = 3          # one error of +1 on exact 2
    m = approx.metrics(t, 2)
    assert m["mae"] == pytest.approx(2 / 16)
    assert m["mae_pct"] == pytest.approx(100 * (2 / 16) / 16)
    assert m["wce"] == 1 and m["wce_pct"] == pytest.approx(100 / 16)
    assert m["mre_pct"] == pytest.approx(100 * (1 / 9 + 1 / 2) / 9)   # 9 pairs with a non-zero product
    assert m["ep_pct"] == pytest.approx(100 * 2 / 16)
    assert m["mse"] == pytest.approx(2 / 16)
    assert m["bias"] == 0
    with pytest.raises(ValueError, match="expected 2\\^\\(2\\*3\\)"):
        approx.metrics(t, 3)


def test_table_layout_and_dtype():
    t = approx.table("mul-drum", bits=6, k=3)
    assert t.shape == (64, 64) and t.dtype == np.uint32
    assert t[37, 11] == approx.drum(37, 11, 6, 3)
    assert approx.product("mul-exact", np.array([7]), np.array([9]), bits=4)[0] == 63
    assert approx.exact(2**32 - 1, 2**32 - 1, 32) == (2**32 - 1) ** 2      # no int64 overflow


@pytest.mark.parametrize("design,params,exc,msg", [
    ("mul-trunc", {"bits": 8, "k": 17}, ValueError, "k must be in 0..16, got 17"),
    ("mul-bam", {"bits": 8, "vbl": 16}, ValueError, "vbl must be in 0..15, got 16"),
    ("mul-bam", {"bits": 8, "hbl": 8}, ValueError, "hbl must be in 0..7, got 8"),
    ("mul-drum", {"bits": 8, "k": 9}, ValueError, "k must be in 1..8, got 9"),
    ("mul-mitchell", {"bits": 8, "frac_bits": 8}, ValueError, "frac_bits must be in 1..7, got 8"),
    ("mul-trunc", {"bits": 17}, ValueError, "bits must be in 2..16, got 17"),
    ("mul-drum", {"bits": 1}, ValueError, "bits must be in 2..16, got 1"),
    ("mul-array", {"bits": 33}, ValueError, "bits must be in 2..32, got 33"),
    ("mul-trunc", {"bits": 8, "k": "4"}, TypeError, "k must be an integer in 0..16, not '4'"),
    ("mul-wallace", {}, ValueError, "unknown multiplier family 'mul-wallace'"),
])
def test_bad_parameters_one_line_errors_golden_and_rtl(design, params, exc, msg):
    with pytest.raises(exc, match=msg.replace("(", r"\(").replace(")", r"\)")) as e:
        approx.check_params(design, params)
    assert "\n" not in str(e.value)
    if design != "mul-wallace":      # the RTL constructors say the same
        with pytest.raises(exc, match=msg.replace("(", r"\(").replace(")", r"\)")):
            build(design, params)


def test_table_refuses_too_wide():
    with pytest.raises(ValueError, match="bits <= 12, got 13"):
        approx.table("mul-trunc", bits=13, k=4)


# ---- RTL on small N, every parameter value: Amaranth's simulator, all pairs ----

def _rtl_table(design, params, comb_sweep):
    dut = build(design, params)
    a, b = approx.operands(dut.bits)
    return comb_sweep(dut, {"a": a, "b": b}, "p")


SMALL = ([("mul-array", {"bits": n}) for n in (2, 3, 4)] + [("mul-exact", {"bits": 4})]
         + [("mul-trunc", {"bits": 4, "k": k, "correction": c}) for k in range(9) for c in (False, True)]
         + [("mul-bam", {"bits": 4, "vbl": v, "hbl": h}) for v in range(8) for h in range(4)]
         + [("mul-drum", {"bits": 5, "k": k}) for k in range(1, 6)]
         + [("mul-mitchell", {"bits": n, "frac_bits": f}) for n in (2, 5) for f in range(1, n)])


@pytest.mark.parametrize("design,params", SMALL, ids=[f"{d}-{p}" for d, p in SMALL])
def test_rtl_equals_golden_small_n_every_parameter(design, params, comb_sweep):
    a, b = approx.operands(params["bits"])
    expected = approx.product(design, a, b, **params)
    got = _rtl_table(design, params, comb_sweep)
    bad = np.nonzero(got != expected)[0]
    assert bad.size == 0, (f"{design} {params}: {bad.size} mismatches, first a={a[bad[0]]} b={b[bad[0]]} "
                           f"got {got[bad[0]]} expected {expected[bad[0]]}")
