"""The PoT quantizers of ALS-POTQ's errors and operands beyond golden/pot.py's log rounding:

* `luq`: the unbiased stochastic PoT quantizer of LUQ (Chmiel et al., "Accurate neural training
  with 4-bit matrix multiplications at standard formats", ICLR 2023, arXiv 2112.10769) with an
  explicit random word per element (so it is deterministic given the words; the hardware draws
  them from an LFSR, rtl/luq.py);
* `nearest`: PoT rounding to the nearest power in the LINEAR domain (threshold 1.5 * 2^n between
  2^n and 2^(n+1): the MSE-optimal choice; golden/pot.py rounds log2, threshold sqrt(2) * 2^n).

Codes are golden/pot.py's (sign in bit E, exponent field e below; value (-1)^s 2^(e-1), e = 0 the
zero code; top power 2^top, top = 2^E - 2). A tensor is codes * 2^k.

luq, per tensor (levels 2^0 .. 2^top, alpha = 2^k the smallest):
  * scale: k = ceil(log2 max|x|) - top, the smallest power-of-two alpha whose top level
    2^top * alpha is >= max|x|: nothing is clipped at the top (k = 0 for an all-zero tensor);
  * each element, u = |x| / 2^k (exact), r its random word, uniform in 0 .. 2^R - 1:
      u >= 1: u = 2^n (1 + f), n = floor(log2 u) in 0..top, f in [0, 1): the code is 2^(n+1)
              (e = n + 2) if r < floor(f * 2^R), else 2^n (e = n + 1): stochastic rounding in
              the linear domain between the neighbouring powers (up with probability ~f);
      u < 1:  stochastic underflow: the code is 1 (e = 1, value alpha) if r < floor(u * 2^R),
              else the zero code;
    the sign is x's (0 on the zero code).
  P(up) = floor(g * 2^R) / 2^R for g = f or u, so E[q(x)] = x - b with 0 <= b < 2^-R * 2^n * alpha
  (the lower neighbour; alpha below the range): unbiased up to the truncation of the
  fraction to R bits (R = 23 on a float32 input's mantissa is exact inside the range). The bits
  compared are the top R bits of the magnitude below its leading one (inside the range) or below
  alpha (underflow): what the hardware compares against its random word.

nearest, per tensor: k = the exponent of max|x|'s nearest power (linear domain) - top, so the
largest magnitude lands on the top code; each element u = |x| / 2^k: u < 1/2 -> zero code,
otherwise u = 2^n (1 + f) goes up to 2^(n+1) when f >= 1/2 (ties up), clipped to the top code.
"""
from __future__ import annotations

import numpy as np

from .pot import encode, max_exp

__all__ = ["DEFAULT_RAND_BITS", "luq_scale", "luq", "luq_fixed", "luq_values", "nearest", "nearest_scale", "bias_bound",
           "lfsr_taps", "lfsr_step", "lfsr_words"]

DEFAULT_RAND_BITS = 16


def _amax(x) -> float:
    a = float(np.max(np.abs(x))) if np.size(x) else 0.0
    if not np.isfinite(a):
        raise ValueError("quantize: input contains NaN or Inf")
    return a


def luq_scale(amax: float, exp_bits: int = 3) -> int:
    """k with 2^(top-1) < amax / 2^k <= 2^top (ceil(log2 amax) - top); 0 for amax == 0."""
    if amax <= 0:
        return 0
    m, e = np.frexp(amax)              # amax = m 2^e, m in [0.5, 1): ceil(log2 amax) = e - (m == 0.5)
    return int(e) - int(m == 0.5) - max_exp(exp_bits)


def nearest_scale(amax: float, exp_bits: int = 3) -> int:
    """k with the max's nearest power (linear domain) on the top code; 0 for amax == 0."""
    if amax <= 0:
        return 0
    m, e = np.frexp(amax)              # amax = 2^(e-1) (2m): up when 2m - 1 >= 1/2
    return int(e) - 1 + int(m >= 0.75) - max_exp(exp_bits)


def _split(u):
    """u > 0 -> (n, f): u = 2^n (1 + f), f in [0, 1), exactly (frexp)."""
    m, e = np.frexp(u)
    return e.astype(np.int64) - 1, 2.0 * m - 1.0


def luq(x, r, exp_bits: int = 3, rand_bits: int = DEFAULT_RAND_BITS, k: int | None = None):
    """(codes, k) of x by the unbiased stochastic PoT quantizer, given the random words r
    (integers 0 .. 2^rand_bits - 1, x's shape). k: the scale exponent (default luq_scale of max|x|;
    a given k must keep max|x| / 2^k <= 2^top)."""
    x = np.asarray(x, np.float64)
    r = np.asarray(r, np.int64)
    if r.shape != x.shape:
        raise ValueError(f"luq: {r.shape} random words for a tensor of shape {x.shape}")
    if not 1 <= rand_bits <= 30:
        raise ValueError(f"luq: rand_bits must be in 1..30, got {rand_bits}")
    if r.size and (r.min() < 0 or r.max() >= 1 << rand_bits):
        raise ValueError(f"luq: random words must be in 0..{(1 << rand_bits) - 1}")
    top = max_exp(exp_bits)
    amax = _amax(x)
    if k is None:
        k = luq_scale(amax, exp_bits)
    u = np.ldexp(np.abs(x), -k)
    if u.size and u.max() > 2.0 ** top:
        raise ValueError(f"luq: scale 2^{k} clips max|x| = {amax} (top level 2^{top + k})")
    n, f = _split(np.where(u > 0, u, 1.0))
    inside = u >= 1.0
    g = np.where(inside, f, u)                       # the fraction compared with r
    up = r < np.floor(np.ldexp(g, rand_bits))
    e = np.where(inside, n + 1 + up, up.astype(np.int64))
    s = (x < 0).astype(np.int64) & (e != 0)
    return encode(s, e, exp_bits), int(k)


def luq_fixed(x, kmax, r, exp_bits: int = 3, rand_bits: int = DEFAULT_RAND_BITS):
    """`luq` on integers, as the hardware unit (rtl/luq.py) computes it, for every input: x signed
    integers (an accumulator's value, in LSB units), kmax the top level's exponent in LSB units
    (alpha = 2^(kmax - top); `luq`'s k = kmax - top), r the random words. With p the leading one
    of m = |x| and lo = kmax - top:
        g   = the R bits of m below bit p (p >= lo: inside the range) or below bit lo (m < 2^lo:
              underflow), i.e. floor(((m << R) >> max(p, lo))) mod 2^R;
        up  = r < g;  e = p - lo + 1 + up inside, up in underflow, saturated at top + 1
              (only reached when m > 2^kmax: a kmax below the tensor's max);
    the sign is x's on a nonzero code. Equal to luq(x, r, k=kmax - top) whenever |x| <= 2^kmax."""
    x = np.asarray(x, np.int64)
    kmax = np.broadcast_to(np.asarray(kmax, np.int64), x.shape)
    r = np.asarray(r, np.int64)
    top = max_exp(exp_bits)
    m = np.abs(x)
    lo = kmax - top
    p = np.where(m > 0, np.floor(np.log2(np.maximum(m, 1))).astype(np.int64), 0)
    p = p - (np.left_shift(1, p) > m) + (np.left_shift(1, p + 1) <= m)     # exact for wide m
    inside = (m > 0) & (p >= lo)
    pos = np.maximum(np.where(inside, p, lo), 0)
    g = np.right_shift(np.left_shift(m, rand_bits), pos) & ((1 << rand_bits) - 1)
    g = np.where(lo < 0, np.where(inside, g, 0), g)       # lo < 0: nothing underflows (m >= 1 > alpha)
    up = (r < g).astype(np.int64)
    e = np.minimum(np.where(inside, p - lo + 1 + up, up), top + 1)
    s = (x < 0).astype(np.int64) & (e != 0)
    return encode(s, e, exp_bits)


def luq_values(x, r, exp_bits: int = 3, rand_bits: int = DEFAULT_RAND_BITS, k: int | None = None):
    """The quantized values (codes' values times 2^k) of `luq`."""
    from .pot import dequantize
    codes, k = luq(x, r, exp_bits, rand_bits, k)
    return dequantize(codes, k, exp_bits)


def bias_bound(x, exp_bits: int = 3, rand_bits: int = DEFAULT_RAND_BITS, k: int | None = None):
    """Per element, the bound b_max with x - b_max < E[luq(x)] <= x (for x >= 0; mirrored below):
    2^-R times the lower neighbour's value (alpha under the range)."""
    x = np.asarray(x, np.float64)
    if k is None:
        k = luq_scale(_amax(x), exp_bits)
    u = np.ldexp(np.abs(x), -k)
    n, _ = _split(np.where(u >= 1.0, u, 1.0))
    return np.ldexp(np.ldexp(1.0, k) * np.exp2(np.where(u >= 1.0, n, 0)), -rand_bits)


def nearest(x, exp_bits: int = 3, k: int | None = None):
    """(codes, k) of x by linear-domain nearest PoT rounding (threshold 1.5 * 2^n)."""
    x = np.asarray(x, np.float64)
    top = max_exp(exp_bits)
    if k is None:
        k = nearest_scale(_amax(x), exp_bits)
    u = np.ldexp(np.abs(x), -k)
    n, f = _split(np.where(u > 0, u, 1.0))
    e = np.where(u < 0.5, 0, np.where(u < 1.0, 1, np.minimum(n + 1 + (f >= 0.5), top + 1)))
    s = (x < 0).astype(np.int64) & (e != 0)
    return encode(s, e, exp_bits), int(k)


# ---- the random words: a Fibonacci LFSR (the hardware's source, rtl/luq.py) -----------------------
# maximal-length taps (XNOR-free form, state never all-zero), from Xilinx XAPP052's table
_TAPS = {8: (8, 6, 5, 4), 12: (12, 6, 4, 1), 16: (16, 15, 13, 4), 20: (20, 17), 24: (24, 23, 22, 17),
         32: (32, 22, 2, 1)}


def lfsr_taps(bits: int) -> tuple[int, ...]:
    """Tap positions (1-based) of a maximal-length LFSR of `bits` bits."""
    if bits not in _TAPS:
        raise ValueError(f"LFSR width must be one of {', '.join(map(str, sorted(_TAPS)))}, got {bits}")
    return _TAPS[bits]


def lfsr_step(state: int, bits: int) -> int:
    """One shift: the new bit (XOR of the taps) enters at bit 0, everything moves up one."""
    fb = 0
    for t in lfsr_taps(bits):
        fb ^= (state >> (t - 1)) & 1
    return ((state << 1) | fb) & ((1 << bits) - 1)


def lfsr_words(seed: int, n: int, bits: int, rand_bits: int, steps: int | None = None) -> np.ndarray:
    """The n random words the hardware's LFSR gives: word i is the low rand_bits of the state
    after i * steps shifts from `seed` (steps default rand_bits: consecutive words share no
    bit). seed: nonzero."""
    if not 0 < seed < 1 << bits:
        raise ValueError(f"LFSR seed must be in 1..{(1 << bits) - 1}, got {seed}")
    steps = rand_bits if steps is None else steps
    out = np.empty(n, np.int64)
    s = seed
    for i in range(n):
        out[i] = s & ((1 << rand_bits) - 1)
        for _ in range(steps):
            s = lfsr_step(s, bits)
    return out
