"""Signed MAC with an approximate unsigned multiplier on the operand magnitudes (`approx-mac`).

Sign-magnitude mapping of two's-complement operands (x, w signed, `bits` wide):

    sx = x < 0, mx = |x| in 0..2^(bits-1)      (|-2^(bits-1)| = 2^(bits-1) needs all `bits`
    sw = w < 0, mw = |w|                        bits, so the magnitudes are `bits`-bit unsigned)
    m  = M(mx, mw)                              M = the chosen unsigned bits x bits multiplier
                                                of golden/approx.py, product < 2^(2 bits)
    p  = -m if sx XOR sw else m                 signed, 2 bits + 1 bits

so p = x * w exactly when M is exact, and the approximation error is symmetric in the
operand signs (M sees only magnitudes). The accumulator follows the valid/clear contract
of every ecomac PE (golden.fixed.accumulate), wrapping at acc_bits.
"""
from __future__ import annotations

import numpy as np

from . import approx
from .fixed import accumulate

__all__ = ["FAMILY_PARAMS", "PARAM_DEFAULTS", "family_params", "magnitudes", "product", "mac", "product_bits"]

# the parameters each multiplier family takes besides `bits` (golden/approx.py, rtl/approx.py)
FAMILY_PARAMS = {"mul-array": (), "mul-exact": (), "mul-trunc": ("k", "correction"), "mul-bam": ("vbl", "hbl"),
                 "mul-drum": ("k",), "mul-mitchell": ("frac_bits",)}
# approx-mac's default for each family parameter (one definition; rtl/approx_mac.py takes it)
PARAM_DEFAULTS = {"k": 4, "correction": False, "vbl": 8, "hbl": 0, "frac_bits": 7}


def family_params(multiplier: str, params: dict) -> dict:
    """The subset of `params` that `multiplier` takes (bits excluded)."""
    if multiplier not in FAMILY_PARAMS:
        raise ValueError(f"multiplier must be one of {', '.join(FAMILY_PARAMS)}, got {multiplier!r}")
    return {k: params[k] for k in FAMILY_PARAMS[multiplier] if k in params}


def product_bits(bits: int) -> int:
    """Width of the signed product: a 2*bits-bit magnitude plus a sign."""
    return 2 * bits + 1


def magnitudes(x, bits: int):
    """(sign, |x|) of signed `bits`-bit integers; |x| is a `bits`-bit unsigned value."""
    x = np.asarray(x, np.int64)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"operands must be signed {bits}-bit integers in {lo}..{hi}")
    return x < 0, np.abs(x)


def product(x, w, multiplier: str = "mul-drum", bits: int = 8, **params):
    """Signed products of the sign-magnitude MAC (vectorized)."""
    own = family_params(multiplier, params)
    sx, mx = magnitudes(x, bits)
    sw, mw = magnitudes(w, bits)
    m = np.asarray(approx.product(multiplier, mx, mw, bits=bits, **own), np.int64)
    return np.where(sx ^ sw, -m, m)


def mac(x, w, valid=None, clear=None, multiplier: str = "mul-drum", bits: int = 8, acc_bits: int = 24,
        acc0: int = 0, **params):
    """Cycle model of `approx-mac`: accumulator after each clock edge."""
    return accumulate(product(x, w, multiplier, bits, **params), valid, clear, acc_bits, acc0)
