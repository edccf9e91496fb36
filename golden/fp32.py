"""IEEE 754 binary32 multiply, add and multiply-accumulate with flush-to-zero, on uint32 bit patterns.

This is the definition of what `fp32-mul`, `fp32-add` and `fp32-mac` compute, step for step
as the RTL does it (integer significands, guard/sticky bits, one rounding per operation).

Supported (bit-identical to NumPy float32 arithmetic, i.e. IEEE 754 round to nearest even):
  * normal numbers, signed zeros and infinities as operands;
  * every result whose rounded magnitude is >= 2^-126 (the smallest normal), including
    overflow to +-Inf (round to nearest: a result that rounds to >= 2^128 becomes Inf);
  * the sign of exact zero sums: x + (-x) = +0, (-0) + (-0) = -0, (+0) + (-0) = +0;
    products of zeros and infinities carry sign(a) XOR sign(b).

Defined here, differing from IEEE 754 with subnormals:
  * subnormal operands are read as zero of the same sign (denormals-are-zero);
  * a result whose magnitude, rounded to 24 significant bits with an unbounded exponent,
    is below 2^-126 is flushed to zero with the sign of the exact result (flush-to-zero,
    tininess detected after rounding). No subnormal is ever produced. NumPy differs there:
    it returns the subnormal (or, e.g. for 0x3F7FFFFF * 0x00800000 = 2^-126 - 2^-150, rounds
    on the subnormal grid up to 2^-126 where this model gives +0).
  * every NaN result is the canonical quiet NaN 0x7FC00000 (payloads and signs of NaN
    operands are not propagated; signalling NaNs are not distinguished). Invalid
    operations give it too: Inf - Inf, 0 * Inf. No exception flags.

MAC (same valid/clear contract as every ecomac PE, one product and one sum rounded per
step, not fused): if clear: acc <- valid ? x*w : +0; elif valid: acc <- acc + x*w.
"""
from __future__ import annotations

import numpy as np

__all__ = ["QNAN", "POS_INF", "NEG_INF", "MIN_NORMAL", "MAX_NORMAL", "EDGE_CASES", "to_bits", "from_bits",
           "daz", "mul", "add", "mac"]

QNAN = 0x7FC00000        # the only NaN any unit outputs
POS_INF = 0x7F800000
NEG_INF = 0xFF800000
MIN_NORMAL = 0x00800000  # 2^-126
MAX_NORMAL = 0x7F7FFFFF  # (2 - 2^-23) * 2^127

# operands every FP32 test crosses with each other
EDGE_CASES = np.array([
    0x00000000, 0x80000000,                                       # +-0
    0x7F800000, 0xFF800000,                                       # +-Inf
    0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FFFFFFF, 0xFFBFFFFF,   # quiet and signalling NaNs
    0x00000001, 0x807FFFFF, 0x00400000, 0x80000001,               # subnormals
    0x00800000, 0x80800000, 0x00800001, 0x00FFFFFF,               # near the smallest normal
    0x7F7FFFFF, 0xFF7FFFFF, 0x7F7FFFFE, 0x7F000000,               # near the largest normal
    0x3F800000, 0xBF800000, 0x3F800001, 0x3F7FFFFF, 0x3FFFFFFF, 0x3FC00000, 0x40000000,
    0x33800000, 0x34000000, 0x33000000, 0x4B800000, 0x4B7FFFFF, 0x4B000000, 0xCB800001,
    0x1F800000, 0x5F800000, 0x1F000000, 0x60000000, 0x0C000000, 0x73000000,
    0x3F000000, 0x3F000001, 0xBF7FFFFF, 0x3E800000,
], dtype=np.uint32)

_MAN = (1 << 23) - 1
_HIDDEN = 1 << 23


def to_bits(x) -> np.ndarray:
    """float32 values (any float array, rounded to float32 first) -> uint32 bit patterns."""
    return np.asarray(x, np.float32).view(np.uint32)


def from_bits(u) -> np.ndarray:
    """uint32 bit patterns -> float32 values."""
    return np.asarray(u, np.uint32).view(np.float32)


def _fields(u):
    u = np.asarray(u, np.uint32).astype(np.int64)
    s = u >> 31
    e = (u >> 23) & 0xFF
    m = u & _MAN
    zero = e == 0                      # zero or subnormal: read as zero (DAZ)
    inf = (e == 255) & (m == 0)
    nan = (e == 255) & (m != 0)
    return s, e, m, zero, inf, nan


def daz(u) -> np.ndarray:
    """Bit patterns with subnormals replaced by a zero of the same sign (what the units read)."""
    u = np.asarray(u, np.uint32)
    return np.where((u & 0x7F800000) == 0, u & np.uint32(0x80000000), u).astype(np.uint32)


def _round_pack(s, e, mant, guard, sticky):
    """Round a 24-bit significand (hidden bit set) to nearest even and pack it.

    `e` is the biased exponent before rounding; a significand that rounds up to 2^24
    becomes 2^23 with e + 1. e >= 255 after rounding -> Inf, e <= 0 -> signed zero.
    """
    up = guard & (sticky | (mant & 1))
    mant = mant + up
    carry = mant >> 24
    mant = mant >> carry
    e = e + carry
    out = (s << 31) | (np.clip(e, 0, 255) << 23) | (mant & _MAN)
    out = np.where(e >= 255, (s << 31) | POS_INF, out)
    out = np.where(e <= 0, s << 31, out)
    return out


def mul(a, b) -> np.ndarray:
    """Bit-exact model of `fp32-mul`: y = a * b (uint32 patterns in, uint32 out, broadcast)."""
    sa, ea, ma, za, ia, na = _fields(a)
    sb, eb, mb, zb, ib, nb = _fields(b)
    s = sa ^ sb
    prod = (ma | _HIDDEN) * (mb | _HIDDEN)          # 24 x 24 -> 48 bits, in [2^46, 2^48)
    hi = prod >> 47                                  # 1: product significand in [2, 4)
    mant = prod >> (23 + hi)
    guard = (prod >> (22 + hi)) & 1
    sticky = (prod & ((np.int64(1) << (22 + hi)) - 1)) != 0
    out = _round_pack(s, ea + eb - 127 + hi, mant, guard, sticky.astype(np.int64))
    out = np.where(za | zb, s << 31, out)
    out = np.where(ia | ib, (s << 31) | POS_INF, out)
    out = np.where(na | nb | (ia & zb) | (za & ib), QNAN, out)
    return out.astype(np.uint32)


def add(a, b) -> np.ndarray:
    """Bit-exact model of `fp32-add`: y = a + b (uint32 patterns in, uint32 out, broadcast).

    The larger magnitude L and the smaller S (swapped by comparing exponent|mantissa),
    S's significand shifted right by the exponent difference into a 27-bit word
    (24 bits + guard + round + sticky, the sticky being the OR of everything shifted out),
    added or subtracted, normalized by a leading-zero count, rounded once.
    """
    sa, ea, ma, za, ia, na = _fields(a)
    sb, eb, mb, zb, ib, nb = _fields(b)
    ka = np.where(za, 0, (ea << 23) | ma)           # magnitude order key (DAZ)
    kb = np.where(zb, 0, (eb << 23) | mb)
    siga = np.where(za, 0, ma | _HIDDEN)
    sigb = np.where(zb, 0, mb | _HIDDEN)
    swap = kb > ka                                   # L = larger magnitude, S = smaller
    sl, el, sigl = np.where(swap, sb, sa), np.where(swap, eb, ea), np.where(swap, sigb, siga)
    ss, es, sigs = np.where(swap, sa, sb), np.where(swap, ea, eb), np.where(swap, siga, sigb)
    d = np.minimum(el - es, 27)                      # >= 27: all of S lands in the sticky bit
    shifted = (sigs << 27) >> d
    aligned = (shifted >> 24) | ((shifted & ((1 << 24) - 1)) != 0)
    big = sigl << 3
    sub = sl != ss
    total = np.where(sub, big - aligned, big + aligned)   # 28 bits, >= 0
    bitlen = np.frexp(total.astype(np.float64))[1]        # exact for integers < 2^53
    lz = 28 - bitlen                                       # leading zeros in 28 bits (28 for 0)
    norm = (total << lz) & ((1 << 28) - 1)                 # leading one at bit 27
    mant = norm >> 4
    guard = (norm >> 3) & 1
    sticky = ((norm & 7) != 0).astype(np.int64)
    out = _round_pack(sl, el + 1 - lz, mant, guard, sticky)
    out = np.where(total == 0, (sa & sb) << 31, out)      # exact zero: -0 only for (-0) + (-0)
    out = np.where(ia | ib, (np.where(ia, sa, sb) << 31) | POS_INF, out)
    out = np.where(na | nb | (ia & ib & (sa != sb)), QNAN, out)
    return out.astype(np.uint32)


def mac(x, w, valid=None, clear=None, acc0: int = 0) -> np.ndarray:
    """Cycle model of `fp32-mac`: the accumulator (uint32 pattern) after each clock edge.

    Axis 0 of x and w is time; any further axes are independent lanes (vectorized).
    if clear: acc <- valid ? mul(x, w) : +0; elif valid: acc <- add(acc, mul(x, w)).
    """
    x = np.asarray(x, np.uint32)
    w = np.asarray(w, np.uint32)
    prods = mul(x, w)
    n = prods.shape[0]
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    clear = np.zeros(n, bool) if clear is None else np.asarray(clear, bool)
    out = np.empty_like(prods)
    acc = np.broadcast_to(np.uint32(acc0), prods.shape[1:]).astype(np.uint32)
    for t in range(n):
        if clear[t]:
            acc = prods[t] if valid[t] else np.zeros_like(acc)
        elif valid[t]:
            acc = add(acc, prods[t])
        out[t] = acc
    return out
