"""cocotb tests of the single-PE MACs: `mfmac-pe` (PoT codes) and `int-mac` (exact).

Both share one port contract (x, w, valid, clear, acc) so they share the streaming driver.
"""
from __future__ import annotations

import os

import numpy as np

import cocotb

from golden import intmac, pot

from .common import expect_equal, params, reset, rng, start_clock, stream_mac


def _model(x, w, valid, clear):
    p = params()
    if os.environ["ECOMAC_DESIGN"] == "mfmac-pe":
        return pot.mac(x, w, valid, clear, p["exp_bits"], p["acc_bits"])
    return intmac.mac(x, w, valid, clear, p["acc_bits"])


def _operand_bits() -> tuple[int, bool]:
    p = params()
    return (p["exp_bits"] + 1, False) if "exp_bits" in p else (p["bits"], True)


async def _check(dut, x, w, valid, clear, what):
    await start_clock(dut)
    dut.valid.value = 0
    dut.clear.value = 0
    await reset(dut)
    bits, signed = _operand_bits()
    # a pipelined PE (latency 1 + pipeline, MfmacPe.latency) shows step i's acc `pipeline`
    # clocks later: that many idle steps flush it
    extra = int(params().get("pipeline", 0))
    pad = np.zeros(extra, np.int64)
    got = await stream_mac(dut, np.concatenate([x, pad]), np.concatenate([w, pad]),
                           np.concatenate([valid, pad]), np.concatenate([clear, pad]), bits if signed else None)
    got = got[extra:]
    expect_equal(what, got, _model(x, w, valid, clear), {"x": x, "w": w, "valid": valid, "clear": clear})
    dut._log.info(f"{what}: {len(x)} vectors bit-exact")


@cocotb.test()
async def exhaustive_products(dut):
    """Every pair of operands, each with clear=1 so acc shows the lone product.

    For int-mac with bits > 10 the space is above 2^20: a random sample is used."""
    bits, signed = _operand_bits()
    if 2 * bits <= 20:
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
        grid = np.arange(lo, hi)
        x, w = (a.ravel() for a in np.meshgrid(grid, grid, indexing="ij"))
    else:
        r = rng(dut)
        lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
        x, w = r.integers(lo, hi, 1 << 16), r.integers(lo, hi, 1 << 16)
    n = len(x)
    await _check(dut, x, w, np.ones(n, int), np.ones(n, int), "exhaustive products")


@cocotb.test()
async def random_accumulation(dut):
    """Random streams with clear/valid interleavings; long runs without clear overflow and wrap."""
    bits, signed = _operand_bits()
    r = rng(dut, salt=1)
    n = 4000
    if signed:
        x = r.integers(-(1 << (bits - 1)), 1 << (bits - 1), n)
        w = r.integers(-(1 << (bits - 1)), 1 << (bits - 1), n)
    else:
        x = r.integers(0, 1 << bits, n)
        w = r.integers(0, 1 << bits, n)
        # bias towards the largest exponents so the accumulator overflows and wraps
        big = r.random(n) < 0.5
        top = (1 << (bits - 1)) - 1
        x = np.where(big, (x & (1 << (bits - 1))) | top, x)
        w = np.where(big, w & ~(1 << (bits - 1)) | top, w)
    valid = (r.random(n) < 0.8).astype(int)
    clear = (r.random(n) < 0.02).astype(int)
    await _check(dut, x, w, valid, clear, "random accumulation")
