"""cocotb test of `approx-mac`: every signed operand pair (clear=1, acc shows the lone product)
and a random accumulation stream, both against golden/approx_mac.py, in one simulation."""
from __future__ import annotations

import numpy as np

import cocotb

from golden import approx_mac

from .common import expect_equal, params, reset, rng, start_clock, stream_mac


def _model(x, w, valid, clear):
    return approx_mac.mac(x, w, valid, clear, **params())


@cocotb.test()
async def products_and_accumulation(dut):
    p = params()
    bits = p["bits"]
    await start_clock(dut)
    dut.valid.value = 0
    dut.clear.value = 0
    await reset(dut)
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    # every signed pair (2^(2 bits) <= 2^20 here), each with clear=1 so acc shows its product alone
    grid = np.arange(lo, hi)
    x, w = (a.ravel() for a in np.meshgrid(grid, grid, indexing="ij"))
    ones = np.ones(x.size, int)
    got = await stream_mac(dut, x, w, ones, ones, bits)
    expect_equal(f"approx-mac {p}: all pairs", got, _model(x, w, ones, ones), {"x": x, "w": w})
    # random accumulation with valid/clear interleavings; the stream starts with a clear
    r = rng(dut, salt=1)
    n = 4000
    x, w = r.integers(lo, hi, n), r.integers(lo, hi, n)
    valid = (r.random(n) < 0.8).astype(int)
    clear = (r.random(n) < 0.02).astype(int)
    clear[0] = 1
    got = await stream_mac(dut, x, w, valid, clear, bits)
    expect_equal(f"approx-mac {p}: accumulation", got, _model(x, w, valid, clear),
                 {"x": x, "w": w, "valid": valid, "clear": clear})
    dut._log.info(f"approx-mac {p}: {grid.size ** 2} products and {n} accumulation steps bit-exact")
