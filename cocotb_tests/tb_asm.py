"""cocotb tests of the ASM units: `asm-mul` (combinational) and `asm-pe-row` (clocked).

asm-mul: every x against every representable signed weight when that space is
<= 2^20, a fixed-seed random sample beyond; one vector per 1 ns step.
asm-pe-row: random streams of (x, lanes' weights, valid, clear), one per clock.
"""
from __future__ import annotations

import os

import numpy as np

import cocotb

from golden import asm
from golden.fixed import accumulate, pack, to_unsigned, unpack

from .common import FallingEdge, Timer, expect_equal, params, reset, rng, start_clock


def _signed_weights(alphabet, w_bits) -> np.ndarray:
    reps = asm.representable(alphabet, w_bits)
    return np.concatenate([-reps[:0:-1], reps])       # every representable signed weight, once


def _random_weights(r, alphabet, w_bits, shape) -> np.ndarray:
    w = _signed_weights(alphabet, w_bits)
    return w[r.integers(0, w.size, shape)]


async def _asm_mul(dut):
    p = params()
    xb, wb, alphabet = p["x_bits"], p["w_bits"], tuple(p["alphabet"])
    ws = _signed_weights(alphabet, wb)
    xs = np.arange(-(1 << (xb - 1)), 1 << (xb - 1))
    if xs.size * ws.size <= 1 << 20:
        x, w = (a.ravel() for a in np.meshgrid(xs, ws, indexing="ij"))
        what = "exhaustive products"
    else:
        r = rng(dut)
        n = 1 << 16
        x, w = r.choice(xs, n), r.choice(ws, n)
        order = np.argsort(x, kind="stable")   # a combinational unit: grouping by x only saves sim time
        x, w = x[order], w[order]
        what = "random products"
    enc = asm.encode(w, alphabet, wb)
    xu = to_unsigned(x, xb)
    got = []
    # x is the outer loop: Icarus re-evaluates the whole bank when x changes (10x slower per step)
    for i in range(x.size):
        dut.x.value = int(xu[i])
        dut.w.value = int(enc[i])
        await Timer(1, "ns")
        got.append(dut.p.value.to_signed())
    # the golden reference is plain integer x*w: the encoding must decode to the same weight
    assert np.array_equal(asm.decode(enc, alphabet, wb), w)
    expect_equal(what, got, x * w, {"x": x, "w": w, "enc": enc})
    dut._log.info(f"{what}: {x.size} vectors bit-exact (alphabet {alphabet}, w_bits={wb})")


async def _asm_pe_row(dut):
    p = params()
    xb, wb, alphabet = p["x_bits"], p["w_bits"], tuple(p["alphabet"])
    lanes, acc_bits = p["lanes"], p["acc_bits"]
    eb = asm.encoded_bits(alphabet, wb)
    r = rng(dut, salt=2)
    n = 3000
    x = r.integers(-(1 << (xb - 1)), 1 << (xb - 1), n)
    w = _random_weights(r, alphabet, wb, (n, lanes))
    # half the steps use the extreme x and the largest weights so accumulators overflow and wrap
    big = r.random(n) < 0.5
    top = int(asm.representable(alphabet, wb)[-1])
    x = np.where(big, np.where(r.random(n) < 0.5, -(1 << (xb - 1)), (1 << (xb - 1)) - 1), x)
    w = np.where(big[:, None] & (r.random((n, lanes)) < 0.7), np.sign(w + 0.5).astype(np.int64) * top, w)
    valid = (r.random(n) < 0.8).astype(int)
    clear = (r.random(n) < 0.03).astype(int)
    enc = asm.encode(w, alphabet, wb)
    await start_clock(dut)
    dut.valid.value = 0
    dut.clear.value = 0
    await reset(dut)
    xu = to_unsigned(x, xb)
    got = []
    for i in range(n):
        dut.x.value = int(xu[i])
        dut.w.value = pack(enc[i], eb)
        dut.valid.value = int(valid[i])
        dut.clear.value = int(clear[i])
        await FallingEdge(dut.clk)
        got.append(unpack(dut.acc.value.to_unsigned(), acc_bits, lanes))
    got = np.array(got, dtype=object)
    # reference: exact integer products, accumulated with the shared valid/clear semantics
    want = np.stack([accumulate(x * w[:, i], valid, clear, acc_bits) for i in range(lanes)], axis=1)
    for i in range(lanes):
        expect_equal(f"lane {i}", got[:, i], want[:, i],
                     {"x": x, "w": w[:, i], "valid": valid, "clear": clear})
    # and the golden cycle model of the row agrees with the hardware
    expect_equal("golden asm.mac", got.ravel(),
                 asm.mac(x, enc, valid, clear, alphabet, xb, wb, acc_bits).ravel())
    dut._log.info(f"{n} steps x {lanes} lanes bit-exact (alphabet {alphabet}, acc_bits={acc_bits})")


@cocotb.test()
async def asm_unit(dut):
    if os.environ["ECOMAC_DESIGN"] == "asm-mul":
        await _asm_mul(dut)
    else:
        await _asm_pe_row(dut)
