"""cocotb test of the approximate-multiplier library: every (a, b) pair against the golden table.

Combinational designs: set a and b, wait 1 ns, read p; one pair per step, all pairs
of one design in one simulation, compared in bulk at the end.
"""
from __future__ import annotations

import os

import numpy as np

import cocotb

from golden import approx

from .common import Timer, expect_equal, params, rng


@cocotb.test()
async def all_pairs(dut):
    """Exhaustive for 2N <= 20 bits of input space, else random pairs (fixed seed): 2^16 up to
    N = 16, 2^12 beyond (the 32-bit array has ~6,000 gates and simulates slowly event by event)."""
    p = params()
    design = os.environ["ECOMAC_DESIGN"]
    bits = p["bits"]
    if 2 * bits <= 20:
        a, b = approx.operands(bits)
    else:
        r = rng(dut)
        n = 1 << 16 if bits <= 16 else 1 << 12
        a, b = r.integers(0, 1 << bits, n), r.integers(0, 1 << bits, n)
    expected = approx.product(design, a, b, **p)
    got = np.empty(len(a), dtype=object)
    for i in range(len(a)):
        dut.a.value = int(a[i])
        dut.b.value = int(b[i])
        await Timer(1, "ns")
        got[i] = int(dut.p.value)
    expect_equal(f"{design} {p}", got, expected, {"a": a, "b": b})
    dut._log.info(f"{design} {p}: {len(a)} pairs bit-exact")
