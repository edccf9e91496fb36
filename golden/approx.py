"""Bit-exact models of the unsigned N x N multipliers of the approximate-multiplier library.

Every family has a vectorized function f(a, b, bits, **params) on integer arrays, `product`
dispatches on the design name, `table` gives the full 2^N x 2^N product table (row a,
column b) and `metrics` the exhaustive error figures against the exact product.

With a = sum a_i 2^i and b = sum b_j 2^j (i, j in 0..N-1):

* mul-array / mul-exact: a * b.
* mul-trunc (k, correction): every partial-product bit a_i b_j with i + j < k is dropped;
  with `correction` the constant C = round(E) is added, E = sum_{i+j<k} 2^(i+j) / 4 being
  the expected value of the dropped bits for independent uniform operand bits (each
  a_i b_j is 1 with probability 1/4). E is a multiple of 1/4 with fraction .25 or 0,
  so round() is floor(E + 1/2) without ties. The result wraps modulo 2^(2N) (it never
  needs to: kept bits + C stay below (2^N - 1)^2 + 1).
* mul-bam (vbl, hbl): P = sum_{j >= hbl} sum_{i : i+j >= vbl} a_i b_j 2^(i+j).
* mul-drum (k): per operand, t = position of the leading one; if t + 1 > k the k bits
  t-k+1..t are kept, their lowest bit forced to 1, and s = t-k+1 bits are dropped,
  else the operand is used as is (s = 0). P = (a' * b') << (s_a + s_b).
* mul-mitchell (frac_bits = f, 1..N-1): a = 2^k1 (1 + x1) with k1 the leading-one
  position; x1 in fixed point with f fraction bits is the N-1 bits below the leading
  one, left-aligned, truncated to their top f bits (x1_fp = floor(x1 * 2^f)). With
  s = x1_fp + x2_fp (f+1 bits) and c = s >> f (the carry, x1 + x2 >= 1):
  mantissa M = 2^f + (s mod 2^f), exponent e = k1 + k2 + c, and
  P = floor(M * 2^e / 2^f) = (M << e) >> f, i.e. the shifted-out fraction bits are
  truncated. This is 2^(k1+k2)(1 + x1 + x2) without carry and 2^(k1+k2+1)(x1 + x2)
  with it. An operand of zero gives P = 0.
"""
from __future__ import annotations

import numpy as np

__all__ = ["FAMILIES", "APPROX_FAMILIES", "exact", "array", "trunc", "trunc_correction", "bam", "drum",
           "mitchell", "product", "table", "operands", "metrics", "error_metrics", "METRIC_KEYS", "check_params",
           "MAX_TABLE_BITS"]

FAMILIES = ("mul-array", "mul-exact", "mul-trunc", "mul-bam", "mul-drum", "mul-mitchell")
APPROX_FAMILIES = ("mul-trunc", "mul-bam", "mul-drum", "mul-mitchell")
METRIC_KEYS = ("mae", "mae_pct", "wce", "wce_pct", "mre_pct", "ep_pct", "mse", "bias")
MAX_TABLE_BITS = 12   # a full table of 2^(2N) products; 2^24 entries is the practical limit


def _u(x):
    return np.asarray(x, dtype=np.int64)


def _check_bits(bits: int, hi: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError(f"bits must be an integer in 2..{hi}, not {bits!r}")
    if not 2 <= bits <= hi:
        raise ValueError(f"bits must be in 2..{hi}, got {bits}")


def _check(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")


def exact(a, b, bits: int = 8):
    if bits > 31:   # products reach 2^64: Python integers
        return np.asarray(a, dtype=object) * np.asarray(b, dtype=object)
    return _u(a) * _u(b)


array = exact


def _kept_sum(a, b, bits: int, vbl: int, hbl: int):
    """sum_{j >= hbl} b_j * ((a with bits i < vbl - j cleared) << j): one masked row per b bit."""
    a, b = _u(a), _u(b)
    out = np.zeros(np.broadcast(a, b).shape, np.int64)
    full = (1 << bits) - 1
    for j in range(hbl, bits):
        lo = max(vbl - j, 0)
        if lo >= bits:
            continue
        row = (a & (full & ~((1 << lo) - 1))) << j
        out += np.where((b >> j) & 1 == 1, row, 0)
    return out


def trunc_correction(bits: int, k: int) -> int:
    """round(E): E = sum over dropped positions (i + j < k) of 2^(i+j) / 4."""
    quarter_sum = sum(1 << (i + j) for i in range(bits) for j in range(bits) if i + j < k)
    return (quarter_sum + 2) // 4     # floor(E + 1/2), E = quarter_sum / 4


def trunc(a, b, bits: int = 8, k: int = 8, correction: bool = False):
    _check_bits(bits, 32)
    _check("k", k, 0, 2 * bits)
    p = _kept_sum(a, b, bits, k, 0)
    if correction:
        p = (p + trunc_correction(bits, k)) & ((1 << (2 * bits)) - 1)
    return p


def bam(a, b, bits: int = 8, vbl: int = 8, hbl: int = 0):
    _check_bits(bits, 32)
    _check("vbl", vbl, 0, 2 * bits - 1)
    _check("hbl", hbl, 0, bits - 1)
    return _kept_sum(a, b, bits, vbl, hbl)


def _leading_one(x, bits: int):
    """Position of the most significant 1 of each element (-1 for zero)."""
    x = _u(x)
    t = np.full(x.shape, -1, np.int64)
    for i in range(bits):
        t += (x >> i) > 0
    return t


def _drum_operand(x, bits: int, k: int):
    x = _u(x)
    t = _leading_one(x, bits)
    s = np.maximum(t - k + 1, 0)
    v = np.where(s > 0, (x >> s) | 1, x)
    return v, s


def drum(a, b, bits: int = 8, k: int = 4):
    _check_bits(bits, 32)
    _check("k", k, 1, bits)
    va, sa = _drum_operand(a, bits, k)
    vb, sb = _drum_operand(b, bits, k)
    return (va * vb) << (sa + sb)


def _mitchell_operand(x, bits: int, f: int):
    x = _u(x)
    t = _leading_one(x, bits)
    tc = np.maximum(t, 0)
    frac = (x << (bits - 1 - tc)) & ((1 << (bits - 1)) - 1)   # N-1 bits below the leading one
    return tc, frac >> (bits - 1 - f)


def mitchell(a, b, bits: int = 8, frac_bits: int = 7):
    _check_bits(bits, 32)
    _check("frac_bits", frac_bits, 1, bits - 1)
    f = frac_bits
    a, b = _u(a), _u(b)
    k1, x1 = _mitchell_operand(a, bits, f)
    k2, x2 = _mitchell_operand(b, bits, f)
    s = x1 + x2
    c = s >> f
    mant = (1 << f) | (s & ((1 << f) - 1))
    p = (mant << (k1 + k2 + c)) >> f
    return np.where((a == 0) | (b == 0), 0, p)


_FUNCS = {"mul-array": array, "mul-exact": exact, "mul-trunc": trunc, "mul-bam": bam,
          "mul-drum": drum, "mul-mitchell": mitchell}


def check_params(design: str, params: dict) -> None:
    """Raise the same one-line errors as the RTL constructors for out-of-range parameters."""
    if design not in _FUNCS:
        raise ValueError(f"unknown multiplier family {design!r} (families: {', '.join(FAMILIES)})")
    bits = params.get("bits", 8)
    _check_bits(bits, 32 if design in ("mul-array", "mul-exact") else 16)
    _FUNCS[design](np.zeros(1, np.int64), np.zeros(1, np.int64), **params)


def product(design: str, a, b, **params):
    """Product of the named design on arrays a, b (unsigned, `bits` wide)."""
    check_params(design, params)
    return _FUNCS[design](a, b, **params)


def operands(bits: int):
    """All 2^(2N) operand pairs, a-major (index a * 2^N + b)."""
    g = np.arange(1 << bits, dtype=np.int64)
    a, b = np.meshgrid(g, g, indexing="ij")
    return a.ravel(), b.ravel()


def table(design: str, **params) -> np.ndarray:
    """The full product table T[a, b] (uint32) of the design; N <= 12."""
    bits = params.get("bits", 8)
    check_params(design, params)
    if bits > MAX_TABLE_BITS:
        raise ValueError(f"a full product table needs bits <= {MAX_TABLE_BITS}, got {bits}")
    a, b = operands(bits)
    return product(design, a, b, **params).astype(np.uint32).reshape(1 << bits, 1 << bits)


def metrics(approx_table, bits: int) -> dict:
    """Exhaustive error metrics of a 2^N x 2^N table against the exact product.

    mae, wce (absolute); mae_pct, wce_pct (% of 2^(2N)); mre_pct (mean |err|/exact over
    pairs with exact != 0, %); ep_pct (% of pairs with any error); mse; bias (mean err).
    """
    a, b = operands(bits)
    return error_metrics(approx_table, a * b, bits)


def error_metrics(approx_table, exact, bits: int) -> dict:
    """The metrics of `metrics` for any operand grid (unsigned or signed): `exact` holds the
    exact product of each table entry, in the table's order; relative errors use |exact|."""
    t = np.asarray(approx_table, dtype=np.int64).reshape(-1)
    if t.size != 1 << (2 * bits):
        raise ValueError(f"table has {t.size} entries, expected 2^(2*{bits}) = {1 << (2 * bits)}")
    ex = np.asarray(exact, np.int64).reshape(-1)
    err = t - ex
    ae = np.abs(err)
    nz = ex != 0
    scale = float(1 << (2 * bits))
    mae = float(ae.mean())
    wce = int(ae.max())
    return {"mae": mae, "mae_pct": 100.0 * mae / scale, "wce": wce, "wce_pct": 100.0 * wce / scale,
            "mre_pct": 100.0 * float((ae[nz] / np.abs(ex[nz])).mean()), "ep_pct": 100.0 * float((err != 0).mean()),
            "mse": float((err.astype(np.float64) ** 2).mean()), "bias": float(err.mean())}
