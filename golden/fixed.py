"""Two's-complement helpers shared by the golden models."""
from __future__ import annotations

import numpy as np

__all__ = ["wrap", "to_unsigned", "to_signed", "pack", "unpack", "accumulate"]


def wrap(value, bits: int):
    """Reduce integers modulo 2^bits into the signed range [-2^(bits-1), 2^(bits-1))."""
    v = np.asarray(value, dtype=object if bits > 62 else np.int64)
    m = 1 << bits
    h = 1 << (bits - 1)
    return ((v + h) % m) - h


def to_unsigned(value, bits: int):
    """Two's-complement bit pattern of `value` as a non-negative integer."""
    v = np.asarray(value, dtype=object if bits > 62 else np.int64)
    return v % (1 << bits)


def to_signed(raw, bits: int):
    """Interpret `bits`-wide unsigned bit patterns as two's-complement integers."""
    return wrap(raw, bits)


def pack(values, bits: int) -> int:
    """Pack a sequence of integers (element 0 in the low bits) into one integer."""
    out = 0
    for i, v in enumerate(values):
        out |= (int(v) % (1 << bits)) << (i * bits)
    return out


def unpack(word: int, bits: int, count: int, signed: bool = True) -> list[int]:
    m = (1 << bits) - 1
    vals = [(int(word) >> (i * bits)) & m for i in range(count)]
    if signed:
        vals = [v - (1 << bits) if v >> (bits - 1) else v for v in vals]
    return vals


def accumulate(products, valid=None, clear=None, acc_bits: int = 24, acc0: int = 0):
    """Accumulator register after each clock edge, as every ecomac PE does it.

    if clear: acc <- valid ? p : 0;  elif valid: acc <- acc + p; wraps at acc_bits.
    Vectorized: int64 sums wrap mod 2^64, which 2^acc_bits divides.
    """
    p = np.asarray(products, np.int64)
    n = p.shape[0]
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    clear = np.zeros(n, bool) if clear is None else np.asarray(clear, bool)
    term = np.where(valid, p, 0)
    with np.errstate(over="ignore"):
        csum = np.cumsum(term, dtype=np.int64) + np.int64(wrap(acc0, 64))
        last = np.maximum.accumulate(np.where(clear, np.arange(n), -1))
        c = np.maximum(last, 0)
        acc = np.where(last >= 0, csum - (csum[c] - term[c]), csum)
    return wrap(acc, acc_bits)
