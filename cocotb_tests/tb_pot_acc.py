"""cocotb tests of mfmac-pe with a tree accumulator (accumulator=treeC): C PoT code pairs per
clock on x and w (element j in bits j*(E+1)...), proven against golden.pot_acc.mac."""
from __future__ import annotations

import numpy as np

import cocotb

from golden import pot_acc

from .common import expect_equal, params, reset, rng, start_clock, stream_mac


def _shape():
    p = params()
    return p["exp_bits"] + 1, pot_acc.chunk(p["accumulator"])


def _pack(codes, bits):
    """(n, C) codes -> n port words, element j at bits j*bits."""
    codes = np.asarray(codes, np.int64)
    return [sum(int(c) << (j * bits) for j, c in enumerate(row)) for row in codes]


async def _check(dut, x, w, valid, clear, what):
    p = params()
    bits, c = _shape()
    await start_clock(dut)
    dut.valid.value = 0
    dut.clear.value = 0
    await reset(dut)
    got = await stream_mac(dut, _pack(x, bits), _pack(w, bits), valid, clear)
    gold = pot_acc.mac(x, w, valid, clear, p["exp_bits"], p["acc_bits"], p["accumulator"])
    expect_equal(what, got, gold, {"x": _pack(x, bits), "w": _pack(w, bits), "valid": valid, "clear": clear})
    dut._log.info(f"{what}: {len(x)} clocks bit-exact")


@cocotb.test()
async def exhaustive_chunks(dut):
    """Every chunk of C code pairs when there are at most 2^16 of them (clear=1 each clock,
    so acc shows the lone chunk sum D = P - N); otherwise 2^12 random chunks, half of their
    codes at the top exponent (the widest tree sums)."""
    bits, c = _shape()
    if 2 * c * bits <= 16:
        k = 2 * c
        idx = np.arange(1 << (k * bits))
        codes = (idx[:, None] >> (bits * np.arange(k))[None, :]) & ((1 << bits) - 1)
    else:
        r = rng(dut)
        codes = r.integers(0, 1 << bits, (1 << 12, 2 * c))
        top = (1 << (bits - 1)) - 1
        big = r.random(codes.shape) < 0.5
        codes = np.where(big, (codes & (1 << (bits - 1))) | top, codes)
    x, w = codes[:, :c], codes[:, c:]
    n = len(x)
    await _check(dut, x, w, np.ones(n, int), np.ones(n, int), "every chunk" if 2 * c * bits <= 16 else "random chunks")


@cocotb.test()
async def random_accumulation(dut):
    """Random chunks with clear/valid interleavings; runs without clear overflow and wrap."""
    bits, c = _shape()
    r = rng(dut, salt=1)
    n = 3000
    x, w = r.integers(0, 1 << bits, (2, n, c))
    top = (1 << (bits - 1)) - 1
    big = r.random((n, c)) < 0.5                # same-sign top exponents: the sum grows and wraps
    x = np.where(big, top, x)
    w = np.where(big, top, w)
    valid = (r.random(n) < 0.85).astype(int)
    clear = (r.random(n) < 0.02).astype(int)
    await _check(dut, x, w, valid, clear, "random accumulation")
