"""MF-MAC accumulators: how the products of PoT codes reach the accumulator register.

  serial   (the ALS-POTQ PE, mfmac-pe's default) one product per clock, added to the
           acc_bits two's-complement register: acc <- acc + (-1)^s 2^k (golden.pot.mac).
  treeC    (C = 2, 4, 8, 16) C products per clock, i.e. a chunk of C consecutive steps of
           the K loop: the x and w ports carry C codes each. Each product is split by its
           sign into a positive part (2^k if s = 0, else 0) and a negative part (2^k if
           s = 1); the C positive one-hot magnitudes are summed in an unsigned adder tree
           (P), the negative ones in another (N), and one narrow subtract D = P - N feeds
           the single acc_bits add per clock: acc <- acc + D. No sign-extended addend ever
           enters a tree, and the accumulator register (and its clock) is shared by C MACs.
           A K-step dot product takes ceil(K / C) clocks, the last chunk padded with zero
           codes (code 0 is the value 0, so padding adds nothing).

Every variant gives the same wrapped sum as `serial` on the same sequence of products
(addition modulo 2^acc_bits is associative): tests/test_pot_acc.py proves it, and the
cocotb testbench proves the RTL equals `mac` below.
"""
from __future__ import annotations

import numpy as np

from . import pot
from .fixed import accumulate

__all__ = ["ACCUMULATORS", "DEFAULT_ACCUMULATOR", "chunk", "check_accumulator", "tree_parts",
           "chunk_sum", "to_chunks", "mac", "dot"]

ACCUMULATORS = ("serial", "tree2", "tree4", "tree8", "tree16")
DEFAULT_ACCUMULATOR = "serial"


def check_accumulator(accumulator) -> str:
    if accumulator not in ACCUMULATORS:
        raise ValueError(f"accumulator must be one of {', '.join(ACCUMULATORS)}, got {accumulator!r}")
    return accumulator


def chunk(accumulator: str) -> int:
    """Products per clock (1 for serial)."""
    check_accumulator(accumulator)
    return 1 if accumulator == "serial" else int(accumulator[4:])


def tree_parts(x, w, exp_bits: int = 3):
    """(P, N): sums over the last axis (the chunk) of the positive and of the negative
    products' magnitudes, as the two unsigned one-hot adder trees compute them."""
    s, nz, shift = pot.product_parts(x, w, exp_bits)
    mag = np.where(nz, np.left_shift(np.int64(1), shift), 0)
    return np.where(s == 0, mag, 0).sum(axis=-1), np.where(s == 1, mag, 0).sum(axis=-1)


def chunk_sum(x, w, exp_bits: int = 3):
    """D = P - N per clock: the value a tree accumulator adds (x, w: (..., C) codes)."""
    p, n = tree_parts(x, w, exp_bits)
    return p - n


def to_chunks(codes, c: int):
    """(..., K) codes -> (..., ceil(K / c), c), zero codes padding the last chunk."""
    a = np.asarray(codes, np.int64)
    k = a.shape[-1]
    pad = -k % c
    if pad:
        a = np.concatenate([a, np.zeros((*a.shape[:-1], pad), np.int64)], axis=-1)
    return a.reshape(*a.shape[:-1], -1, c)


def mac(x, w, valid=None, clear=None, exp_bits: int = 3, acc_bits: int = 24,
        accumulator: str = DEFAULT_ACCUMULATOR, acc0: int = 0):
    """Cycle-by-cycle model of mfmac-pe with `accumulator`: acc after each clock edge.

    serial: x, w are (cycles,) codes; treeC: (cycles, C) codes (element j = step j of
    the chunk). valid/clear are per clock, as golden.fixed.accumulate."""
    c = chunk(accumulator)
    if c == 1:
        return pot.mac(x, w, valid, clear, exp_bits, acc_bits, acc0)
    x = np.asarray(x, np.int64)
    w = np.asarray(w, np.int64)
    if x.ndim != 2 or x.shape[1] != c or w.shape != x.shape:
        raise ValueError(f"{accumulator}: x and w must be (cycles, {c}) code arrays, got {x.shape} and {w.shape}")
    return accumulate(chunk_sum(x, w, exp_bits), valid, clear, acc_bits, acc0)


def dot(x, w, exp_bits: int = 3, acc_bits: int = 24, accumulator: str = DEFAULT_ACCUMULATOR):
    """One K-step dot product (x, w: (K,) codes) as the PE computes it: the final acc."""
    c = chunk(accumulator)
    if c == 1:
        return int(pot.mac(x, w, exp_bits=exp_bits, acc_bits=acc_bits)[-1])
    return int(mac(to_chunks(x, c), to_chunks(w, c), exp_bits=exp_bits, acc_bits=acc_bits,
                   accumulator=accumulator)[-1])
