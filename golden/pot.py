"""Power-of-two (PoT) codes of ALS-POTQ and the multiplication-free MAC (MF-MAC).

Code layout, E = exp_bits (default 3, a 4-bit code)::

    bit E      : sign s
    bits E-1..0: exponent field e

value(code) = 0 if e == 0 (either sign) else (-1)^s * 2^(e-1), so the
magnitudes are 1, 2, ..., 2^(2^E - 2).  A tensor is codes * 2^k with one
integer k per tensor.

Quantizer (per tensor):
  * k = round(log2(max|x|)) - (2^E - 2): the largest magnitude lands on the top
    code (k = 0 for an all-zero tensor);
  * each element: t = |x| / 2^k; t < 1/2 -> zero code (it is nearer to 0 than
    to the smallest power 1 in the linear domain); otherwise
    n = round(log2 t) (in the log domain the threshold between 2^n and
    2^(n+1) is their geometric mean 2^(n+0.5), never exactly a float), clipped to 0..2^E-2, and e = n + 1; s = sign of x (0 for x >= 0).

Product of two codes: s = sx XOR sw; if ex == 0 or ew == 0 the product is 0,
else its magnitude is 2^(ex + ew - 2), the exponent sum taken by an
(E+1)-bit adder (it never overflows: ex + ew <= 2^(E+1) - 2).
"""
from __future__ import annotations

import numpy as np

from .fixed import accumulate, wrap

__all__ = ["max_exp", "product_bits", "encode", "decode", "quantize", "dequantize",
           "product", "product_parts", "mac", "matmul"]


def max_exp(exp_bits: int) -> int:
    """Largest power of two a code represents: 2^(2^E - 2)."""
    return (1 << exp_bits) - 2


def product_bits(exp_bits: int) -> int:
    """Width of a signed product of two codes (the smallest legal accumulator)."""
    return 2 * max_exp(exp_bits) + 2


def encode(sign, exp_field, exp_bits: int = 3):
    return (np.asarray(sign, np.int64) << exp_bits) | np.asarray(exp_field, np.int64)


def decode(codes, exp_bits: int = 3):
    """Integer value of each code (without the tensor scale)."""
    c = np.asarray(codes, np.int64)
    e = c & ((1 << exp_bits) - 1)
    s = (c >> exp_bits) & 1
    mag = np.where(e == 0, 0, np.left_shift(1, np.maximum(e - 1, 0)))
    return np.where(s == 1, -mag, mag)


def quantize(x, exp_bits: int = 3):
    """Float array -> (codes, k) with value ~= decode(codes) * 2^k."""
    x = np.asarray(x, np.float64)
    top = max_exp(exp_bits)
    amax = float(np.max(np.abs(x))) if x.size else 0.0
    if not np.isfinite(amax):
        raise ValueError("quantize: input contains NaN or Inf")
    k = int(np.round(np.log2(amax))) - top if amax > 0 else 0
    t = np.ldexp(np.abs(x), -k)  # ldexp: no overflow for tiny (subnormal) tensors
    with np.errstate(divide="ignore"):
        n = np.round(np.log2(np.where(t > 0, t, 1.0)))
    n = np.clip(n, 0, top).astype(np.int64)
    e = np.where(t < 0.5, 0, n + 1)
    s = (x < 0).astype(np.int64) & (e != 0)
    return encode(s, e, exp_bits), k


def dequantize(codes, k: int, exp_bits: int = 3):
    return np.ldexp(decode(codes, exp_bits).astype(np.float64), k)


def product_parts(x, w, exp_bits: int = 3):
    """(sign, nonzero, shift) of the code product, as the hardware computes them."""
    x = np.asarray(x, np.int64)
    w = np.asarray(w, np.int64)
    em = (1 << exp_bits) - 1
    ex, ew = x & em, w & em
    s = ((x >> exp_bits) ^ (w >> exp_bits)) & 1
    nz = (ex != 0) & (ew != 0)
    esum = (ex + ew) & ((1 << (exp_bits + 1)) - 1)  # (E+1)-bit adder
    shift = np.where(nz, esum - 2, 0)
    return s, nz, shift


def product(x, w, exp_bits: int = 3):
    """Signed integer product of two codes (XOR of signs, sum of exponents)."""
    s, nz, shift = product_parts(x, w, exp_bits)
    mag = np.where(nz, np.left_shift(np.int64(1), shift), 0)
    return np.where(s == 1, -mag, mag)


def mac(x, w, valid=None, clear=None, exp_bits: int = 3, acc_bits: int = 24, acc0: int = 0):
    """Cycle-by-cycle model of `mfmac-pe`: acc after each clock edge (see fixed.accumulate)."""
    return accumulate(product(x, w, exp_bits), valid, clear, acc_bits, acc0)


def matmul(a, b, exp_bits: int = 3, acc_bits: int = 24):
    """C = A.B over codes, each element accumulated in an acc_bits wrapping register."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    p = product(a[:, :, None], b[None, :, :], exp_bits)  # rows x K x cols
    return wrap(p.sum(axis=1), acc_bits)
