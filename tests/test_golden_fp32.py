"""golden/fp32.py against NumPy float32 arithmetic (an independent implementation).

Supported cases must be bit-identical to NumPy. The flushed cases (subnormal operands,
results below 2^-126) are checked against independent references built from NumPy too:
 * add: a subnormal sum of two normals is exact, so NumPy's result with its subnormal
   replaced by a zero of the same sign is the flushed result;
 * mul: the significands' product rounded by NumPy in float32 (no range issue near 1),
   rescaled exactly in float64, is the product rounded with an unbounded exponent.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from golden import fp32 as g

U32 = st.integers(0, 2**32 - 1)
TWO_M126 = 2.0 ** -126


def _daz(u) -> np.ndarray:
    """Subnormal patterns -> zero of the same sign (written here, independently of the model)."""
    u = np.asarray(u, np.uint32)
    sub = (u & np.uint32(0x7F800000)) == 0
    return np.where(sub, u & np.uint32(0x80000000), u).astype(np.uint32)


def _canon(y) -> np.ndarray:
    """NumPy float32 results as the units report them: canonical NaN, subnormals -> signed zero."""
    u = g.to_bits(y)
    u = np.where(np.isnan(y), g.QNAN, u)
    return _daz(u)


def _np(op, a, b):
    fa, fb = g.from_bits(_daz(a)), g.from_bits(_daz(b))
    with np.errstate(all="ignore"):
        return op(fa, fb)


def ref_add(a, b) -> np.ndarray:
    return _canon(_np(np.add, a, b))


def _exact_product(a, b) -> np.ndarray:
    """a*b in float64 (exact: 48-bit significand, exponent within float64's range)."""
    with np.errstate(all="ignore"):
        return g.from_bits(_daz(a)).astype(np.float64) * g.from_bits(_daz(b)).astype(np.float64)


def mul_supported(a, b) -> np.ndarray:
    """Where the datasheet promises IEEE results: exact |a*b| is 0, Inf, NaN or >= 2^-126."""
    x = np.abs(_exact_product(a, b))
    return ~((x > 0) & (x < TWO_M126))


def ref_mul_unbounded(a, b) -> np.ndarray:
    """Flush-to-zero product for finite nonzero operands, independently of golden/fp32.py."""
    with np.errstate(all="ignore"):
        return _mul_unbounded(a, b)


def _mul_unbounded(a, b) -> np.ndarray:
    fa = g.from_bits(_daz(a)).astype(np.float64)
    fb = g.from_bits(_daz(b)).astype(np.float64)
    ma, ea = np.frexp(fa)
    mb, eb = np.frexp(fb)
    r = np.float32(2 * ma) * np.float32(2 * mb)         # exact operands in [1, 2): RNE in float32
    x = r.astype(np.float64) * np.exp2((ea + eb - 2).astype(np.float64))
    sign = np.signbit(fa) ^ np.signbit(fb)
    y = np.where(np.abs(x) >= 2.0 ** 128, np.inf, np.where(np.abs(x) < TWO_M126, 0.0, x))
    y = np.where(sign, -np.abs(y), np.abs(y)).astype(np.float32)
    return g.to_bits(y)


def ref_mul(a, b) -> np.ndarray:
    """NumPy where supported, the unbounded-exponent flush reference elsewhere."""
    a, b = np.broadcast_arrays(np.asarray(a, np.uint32), np.asarray(b, np.uint32))
    return np.where(mul_supported(a, b), _canon(_np(np.multiply, a, b)), ref_mul_unbounded(a, b))


def _expect(got, want, a, b, what):
    bad = np.nonzero(np.asarray(got) != np.asarray(want))[0]
    if bad.size:
        i = bad[0]
        raise AssertionError(f"{what}: {bad.size} mismatches of {np.size(got)}; first a={int(a[i]):#010x} "
                             f"b={int(b[i]):#010x} got {int(got[i]):#010x} want {int(want[i]):#010x}")


def structured(r: np.random.Generator, n: int, exp_lo=1, exp_hi=254) -> np.ndarray:
    """Random normals with short significands (many trailing zero bits): exact results and ties."""
    s = r.integers(0, 2, n, dtype=np.uint32) << 31
    e = r.integers(exp_lo, exp_hi + 1, n).astype(np.uint32) << 23
    keep = r.integers(0, 24, n)                         # significant mantissa bits kept
    m = r.integers(0, 1 << 23, n, dtype=np.uint32) >> (23 - keep).astype(np.uint32) << (23 - keep).astype(np.uint32)
    return (s | e | m).astype(np.uint32)


EDGES = g.EDGE_CASES


def _edge_pairs():
    a, b = np.meshgrid(EDGES, EDGES, indexing="ij")
    return a.ravel(), b.ravel()


# ---------------------------------------------------------------- multiply

def test_mul_edge_cross_product():
    a, b = _edge_pairs()
    _expect(g.mul(a, b), ref_mul(a, b), a, b, "mul edges")


def test_mul_large_random_uniform_and_structured():
    r = np.random.default_rng(101)
    n = 1 << 20
    a = np.concatenate([r.integers(0, 2**32, n, dtype=np.uint32), structured(r, n)])
    b = np.concatenate([r.integers(0, 2**32, n, dtype=np.uint32), structured(r, n)])
    got = g.mul(a, b)
    sup = mul_supported(a, b)
    assert sup.mean() > 0.7
    _expect(got[sup], _canon(_np(np.multiply, a, b))[sup], a[sup], b[sup], "mul vs numpy")
    _expect(got, ref_mul(a, b), a, b, "mul incl. flushed")


def test_mul_ties_round_to_even():
    r = np.random.default_rng(102)
    n = 1 << 20
    a, b = structured(r, n, 100, 154), structured(r, n, 100, 154)
    x = _exact_product(a, b)
    frac, _ = np.frexp(np.abs(x))
    tie = np.modf(frac * 2.0**24)[0] == 0.5          # exactly half an ulp above a float32
    assert tie.sum() > 1000
    want = _canon(_np(np.multiply, a, b))
    got = g.mul(a, b)
    _expect(got[tie], want[tie], a[tie], b[tie], "mul ties")
    frac, ex = np.frexp(np.abs(x[tie]))
    truncated = g.to_bits(np.float32(np.ldexp(np.floor(frac * 2.0**24), ex - 24)))
    up = (got[tie] & 0x7FFFFFFF) != truncated
    assert ((got[tie] & 1) == 0).all()                # a tie lands on the even significand
    assert up.sum() > 100 and (~up).sum() > 100       # ... both upwards and downwards


def test_mul_named_cases():
    one, two = 0x3F800000, 0x40000000
    cases = [
        (0x7F800000, 0x00000000, g.QNAN),            # Inf * 0
        (0x80000000, 0xFF800000, g.QNAN),            # -0 * -Inf
        (0x7F800000, 0x00000001, g.QNAN),            # Inf * subnormal (read as 0)
        (0x7FC00123, one, g.QNAN),                   # NaN payloads are not propagated
        (0xFF800000, 0xBF800000, g.POS_INF),         # -Inf * -1
        (g.MAX_NORMAL, two, g.POS_INF),              # overflow
        (0xFF7FFFFF, 0x3F800001, g.NEG_INF),         # rounds above the largest normal
        (0x80000000, 0x3F800000, 0x80000000),        # -0 * 1 = -0
        (0x807FFFFF, 0x3F800000, 0x80000000),        # -subnormal read as -0
        (0x00800000, 0x3F000000, 0x00000000),        # 2^-127: flushed
        (0x80800000, 0x3F000000, 0x80000000),        # ... with the sign of the product
        (0x00800000, 0x3F7FFFFF, 0x00000000),        # 2^-126 - 2^-150, exact at 24 bits: flushed
        (0x1F800000, 0x1F800000, 0x00000000),        # 2^-64 * 2^-64 underflows
        (0x3F800800, 0x3F800800, 0x3F801000),        # (1+2^-12)^2: tie, rounds down to even
        (0x3F800800, 0x3F801800, 0x3F802002),        # 1 + 2^-10 + 3*2^-24: tie, rounds up to even
        (g.MIN_NORMAL, one, g.MIN_NORMAL),
    ]
    a, b, want = (np.array(c, np.uint32) for c in zip(*cases))
    _expect(g.mul(a, b), want, a, b, "mul named")
    _expect(g.mul(b, a), want, b, a, "mul named, commuted")


def test_mul_just_above_a_tie_rounds_up():
    """Products whose only sticky bit is bit 0 of the 48-bit significand product (random
    operands almost never give one): NumPy rounds them up, and so must the model."""
    from cocotb_tests.tb_fp32 import sticky_lsb_products
    a, b = sticky_lsb_products(np.random.default_rng(106), 2000)
    got = g.mul(a, b)
    _expect(got, _canon(_np(np.multiply, a, b)), a, b, "mul just above a tie")
    frac, ex = np.frexp(np.abs(_exact_product(a, b)))
    truncated = g.to_bits(np.float32(np.ldexp(np.floor(frac * 2.0**24), ex - 24)))
    assert ((got & 0x7FFFFFFF) == truncated + 1).all()


def test_mul_rounds_up_to_smallest_normal():
    """An exact product just below 2^-126 that rounds (24 bits) to 2^-126 is kept, not flushed."""
    r = np.random.default_rng(103)
    siga = r.integers(1 << 23, 1 << 24, 1 << 16)
    sigb = (2.0 / (siga / 2.0**23) * 2.0**23).astype(np.int64)      # sig_b ~ 2/sig_a, rounded down
    p = siga * sigb                                                   # p / 2^46 in (2 - eps, 2)
    hit = (p < 1 << 47) & (p > (1 << 47) - (1 << 22)) & (p % (1 << 23) != 0)
    assert hit.sum() > 10
    a = ((60 << 23) | (siga[hit] - (1 << 23))).astype(np.uint32)      # sig_a * 2^-67
    b = ((67 << 23) | (sigb[hit] - (1 << 23)) | (1 << 31)).astype(np.uint32)  # -sig_b * 2^-60
    assert (_exact_product(a, b) > -TWO_M126).all()                   # exact product is tiny
    got = g.mul(a, b)
    assert (got == (g.MIN_NORMAL | 0x80000000)).all()
    _expect(got, _canon(_np(np.multiply, a, b)), a, b, "mul round-up to 2^-126 vs numpy")
    _expect(got, ref_mul_unbounded(a, b), a, b, "mul round-up to 2^-126")


def test_mul_subnormal_inputs_read_as_signed_zero():
    r = np.random.default_rng(104)
    sub = r.integers(1, 1 << 23, 4096, dtype=np.uint32) | (r.integers(0, 2, 4096, dtype=np.uint32) << 31)
    other = np.concatenate([r.integers(0, 2**32, 4096 - len(EDGES), dtype=np.uint32), EDGES])
    _expect(g.mul(sub, other), g.mul(sub & np.uint32(0x80000000), other), sub, other, "mul DAZ")


@settings(max_examples=3000, deadline=None)
@given(U32, U32)
def test_mul_hypothesis_bits(a, b):
    a, b = np.array([a], np.uint32), np.array([b], np.uint32)
    _expect(g.mul(a, b), ref_mul(a, b), a, b, "mul")
    _expect(g.mul(a, b), g.mul(b, a), a, b, "mul commutes")


@settings(max_examples=2000, deadline=None)
@given(st.floats(width=32, allow_subnormal=False), st.floats(width=32, allow_subnormal=False))
def test_mul_hypothesis_floats(x, y):
    a, b = g.to_bits(np.array([x], np.float32)), g.to_bits(np.array([y], np.float32))
    want = ref_mul(a, b)
    _expect(g.mul(a, b), want, a, b, "mul")


def test_no_output_is_subnormal_or_noncanonical_nan():
    r = np.random.default_rng(105)
    a = np.concatenate([r.integers(0, 2**32, 1 << 18, dtype=np.uint32), _edge_pairs()[0]])
    b = np.concatenate([r.integers(0, 2**32, 1 << 18, dtype=np.uint32), _edge_pairs()[1]])
    assert (g.daz(a) == _daz(a)).all()
    for y in (g.mul(a, b), g.add(a, b)):
        exp, man = (y >> 23) & 0xFF, y & 0x7FFFFF
        assert not ((exp == 0) & (man != 0)).any()
        assert (y[(exp == 255) & (man != 0)] == g.QNAN).all()


# ---------------------------------------------------------------- add

def test_add_edge_cross_product():
    a, b = _edge_pairs()
    _expect(g.add(a, b), ref_add(a, b), a, b, "add edges")


def test_add_large_random():
    r = np.random.default_rng(201)
    n = 1 << 20
    a = np.concatenate([r.integers(0, 2**32, n, dtype=np.uint32), structured(r, n)])
    b = np.concatenate([r.integers(0, 2**32, n, dtype=np.uint32), structured(r, n)])
    # exponents of b near a's, so both operands matter in most sums
    shift = r.integers(-30, 31, 2 * n)
    ebits = np.clip(((a >> 23) & 0xFF).astype(np.int64) + shift, 0, 255).astype(np.uint32)
    b2 = (b & np.uint32(0x807FFFFF)) | (ebits << 23)
    for bb in (b, b2):
        _expect(g.add(a, bb), ref_add(a, bb), a, bb, "add")


def test_add_cancellation():
    """x + (-(x perturbed in the low bits)): every amount of cancellation, down to exact zero."""
    r = np.random.default_rng(202)
    n = 1 << 18
    a = structured(r, n, 1, 254) | r.integers(0, 1 << 23, n, dtype=np.uint32) & 0x7FFFFF
    delta = r.integers(-(1 << 12), 1 << 12, n)
    b = ((a.astype(np.int64) + delta) & 0xFFFFFFFF).astype(np.uint32) ^ np.uint32(0x80000000)
    fa, fb = g.from_bits(a), g.from_bits(b)
    ok = np.isfinite(fa) & np.isfinite(fb)
    a, b = a[ok], b[ok]
    got = g.add(a, b)
    _expect(got, ref_add(a, b), a, b, "add cancellation")
    lost = ((a >> 23) & 0xFF).astype(np.int64) - ((got >> 23) & 0xFF).astype(np.int64)
    assert ((got != 0) & (lost >= 20)).sum() > 100    # deep normalization shifts were exercised
    opposite = a == (b ^ np.uint32(0x80000000))
    assert opposite.sum() > 10 and (got[opposite] == 0).all()     # x + (-x) = +0


def test_add_wide_exponent_differences():
    r = np.random.default_rng(203)
    n = 1 << 18
    a = structured(r, n, 60, 200) | r.integers(0, 1 << 23, n, dtype=np.uint32) & 0x7FFFFF
    diff = r.integers(20, 60, n)
    eb = ((a >> 23) & 0xFF).astype(np.int64) - diff
    b = (r.integers(0, 2, n, dtype=np.uint32) << 31) | (eb.astype(np.uint32) << 23) | \
        r.integers(0, 1 << 23, n, dtype=np.uint32)
    _expect(g.add(a, b), ref_add(a, b), a, b, "add wide exponents")
    _expect(g.add(b, a), ref_add(a, b), b, a, "add wide exponents, commuted")


def test_add_ties_round_to_even():
    r = np.random.default_rng(204)
    n = 1 << 20
    a = structured(r, n, 100, 125)
    b = structured(r, n, 100, 125)
    x = g.from_bits(a).astype(np.float64) + g.from_bits(b).astype(np.float64)   # exact: <= 50 bits
    frac, _ = np.frexp(np.abs(x))
    tie = (np.modf(frac * 2.0**24)[0] == 0.5)
    assert tie.sum() > 1000
    got = g.add(a[tie], b[tie])
    _expect(got, ref_add(a[tie], b[tie]), a[tie], b[tie], "add ties")
    assert ((got & 1) == 0).all()


def test_add_named_cases():
    cases = [
        (0x4B800000, 0x3F800000, 0x4B800000),        # 2^24 + 1: tie, stays even
        (0x4B800000, 0x40400000, 0x4B800002),        # 2^24 + 3: tie, rounds up to even
        (0x4B800001, 0x3F800000, 0x4B800002),        # (2^24+2) + 1: tie, rounds up to even
        (0x7F7FFFFF, 0x73000000, g.POS_INF),         # max + half an ulp: tie, odd -> overflow
        (0x7F7FFFFF, 0x72FFFFFF, 0x7F7FFFFF),        # max + just under half an ulp
        (0x7F7FFFFF, 0x7F7FFFFF, g.POS_INF),
        (0x7F800000, 0xFF800000, g.QNAN),            # Inf - Inf
        (0xFF800000, 0xFF800000, g.NEG_INF),
        (0xFF800000, 0x7F7FFFFF, g.NEG_INF),
        (0x3F800000, 0xBF800000, 0x00000000),        # x - x = +0
        (0x80000000, 0x80000000, 0x80000000),        # -0 + -0 = -0
        (0x80000000, 0x00000000, 0x00000000),        # -0 + +0 = +0
        (0x80000001, 0x80000000, 0x80000000),        # -subnormal read as -0
        (0x00800001, 0x80800000, 0x00000000),        # 2^-149: subnormal difference flushed, sign +
        (0x80800001, 0x00800000, 0x80000000),        # ... sign -
        (0x01000001, 0x81000000, 0x00000000),        # 2^-148, flushed
        (0x01000000, 0x80800001, 0x00000000),    # 2^-125 - 2^-126 - 2^-149 < 2^-126: flushed
        (0x3F800000, 0x33800000, 0x3F800000),        # 1 + 2^-24: tie to even
        (0x3F800000, 0x33800001, 0x3F800001),        # 1 + just over half an ulp
        (0x3F800000, 0xB3800000, 0x3F7FFFFF),        # 1 - 2^-24 exact (one bit of cancellation)
        (0x3F800000, 0xB3000000, 0x3F800000),        # 1 - 2^-25: tie below 1, to even
    ]
    a, b, want = (np.array(c, np.uint32) for c in zip(*cases))
    _expect(g.add(a, b), want, a, b, "add named")
    _expect(g.add(b, a), want, b, a, "add named, commuted")
    _expect(want, ref_add(a, b), a, b, "named cases vs numpy (+ DAZ/FTZ)")


@settings(max_examples=3000, deadline=None)
@given(U32, U32)
def test_add_hypothesis_bits(a, b):
    a, b = np.array([a], np.uint32), np.array([b], np.uint32)
    _expect(g.add(a, b), ref_add(a, b), a, b, "add")
    _expect(g.add(a, b), g.add(b, a), a, b, "add commutes")


@settings(max_examples=2000, deadline=None)
@given(st.floats(width=32), st.floats(width=32))
def test_add_hypothesis_floats(x, y):
    a, b = g.to_bits(np.array([x], np.float32)), g.to_bits(np.array([y], np.float32))
    _expect(g.add(a, b), ref_add(a, b), a, b, "add")


# ---------------------------------------------------------------- MAC

def _numpy_mac(x, w, valid, clear):
    """Sequential float32 reference: product rounded, then sum rounded."""
    fx, fw = g.from_bits(x), g.from_bits(w)
    acc = np.float32(0.0)
    out = []
    with np.errstate(all="ignore"):
        for t in range(len(fx)):
            p = np.float32(fx[t] * fw[t])
            if clear[t]:
                acc = p if valid[t] else np.float32(0.0)
            elif valid[t]:
                acc = np.float32(acc + p)
            out.append(acc)
    return _canon(np.array(out, np.float32))


def test_mac_matches_sequential_float32():
    r = np.random.default_rng(301)
    n = 5000
    x = g.to_bits(r.standard_normal(n).astype(np.float32))
    w = g.to_bits((r.standard_normal(n) * 4).astype(np.float32))
    valid = r.random(n) < 0.8
    clear = r.random(n) < 0.03
    _expect(g.mac(x, w, valid, clear), _numpy_mac(x, w, valid, clear), x, w, "mac")


def test_mac_lanes_and_contract():
    r = np.random.default_rng(302)
    n, lanes = 400, 3
    x = g.to_bits(r.standard_normal((n, lanes)).astype(np.float32))
    w = g.to_bits(r.standard_normal((n, lanes)).astype(np.float32))
    valid = r.random(n) < 0.7
    clear = r.random(n) < 0.05
    out = g.mac(x, w, valid, clear)
    for k in range(lanes):
        _expect(out[:, k], _numpy_mac(x[:, k], w[:, k], valid, clear), x[:, k], w[:, k], f"lane {k}")
    # clear with valid loads the product itself: -1 * +0 = -0, not +0 + -0 = +0
    one, neg = np.uint32(0x3F800000), np.uint32(0xBF800000)
    assert g.mac([neg], [0], [1], [1])[0] == 0x80000000
    assert g.mac([neg, one], [0, one], [1, 0], [0, 1])[1] == 0          # clear without valid: +0
    # overflow to Inf, then Inf + (-Inf) = NaN, stays NaN until a clear
    big = np.uint32(0x7F000000)
    seq = g.mac([big, big, big, 0xFF800000, one, one], [0x40000000] * 3 + [one, one, one],
                [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 1])
    assert list(seq[:5]) == [0x7F800000, g.POS_INF, g.POS_INF, g.QNAN, g.QNAN] and seq[5] == one
