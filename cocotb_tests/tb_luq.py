"""cocotb tests of luq-quant (the stochastic PoT error quantizer) against golden.luq.luq_fixed:
every (x, kmax, r) when there are at most 2^20 of them, else seeded random inputs with the
tensor-shaped ones (|x| <= 2^kmax) weighted in; with rng=lfsr, a stream against the golden
LFSR's words."""
from __future__ import annotations

import numpy as np

import cocotb

from golden import luq

from .common import FallingEdge, Timer, expect_equal, params, reset, rng, start_clock


def _inputs(dut):
    p = params()
    w, kb = p["in_bits"], len(dut.kmax)
    return p, w, kb


async def _comb(dut, xs, ks, rs):
    out = []
    for x, k, r in zip(xs, ks, rs):
        dut.x.value = int(x) % (1 << len(dut.x))
        dut.kmax.value = int(k)
        dut.r.value = int(r)
        await Timer(1, unit="ns")
        out.append(int(dut.code.value))
    return out


@cocotb.test(skip=params().get("rng") != "input")
async def every_input(dut):
    """Exhaustive over x (two's complement), kmax (every port value) and r when <= 2^20 triples;
    otherwise 2^14 seeded random triples, half with |x| <= 2^kmax (a valid scale)."""
    p, w, kb = _inputs(dut)
    R, E = p["rand_bits"], p["exp_bits"]
    if w + kb + R <= 20:
        x, k, r = np.meshgrid(np.arange(-(1 << (w - 1)), 1 << (w - 1)), np.arange(1 << kb), np.arange(1 << R),
                              indexing="ij")
        x, k, r = x.ravel(), k.ravel(), r.ravel()
        what = f"all {x.size} (x, kmax, r)"
    else:
        g = rng(dut)
        n = 1 << 14
        k = g.integers(0, w + 1, n)
        x = g.integers(-(1 << (w - 1)), 1 << (w - 1), n)
        small = g.random(n) < 0.5
        xs = np.floor(g.random(n) * np.ldexp(1.0, k)).astype(np.int64) * np.where(g.random(n) < 0.5, -1, 1)
        x = np.where(small, np.clip(xs, -(1 << (w - 1)), (1 << (w - 1)) - 1), x)
        r = g.integers(0, 1 << R, n)
        what = f"{n} random (x, kmax, r)"
    got = await _comb(dut, x, k, r)
    gold = luq.luq_fixed(x, k, r, E, R)
    expect_equal(what, got, gold, {"x": x, "kmax": k, "r": r})
    dut._log.info(f"{what}: bit-exact")


@cocotb.test(skip=params().get("rng") != "lfsr")
async def lfsr_stream(dut):
    """A stream of seeded random elements with valid gaps: each valid element is quantized with
    the next word of golden.luq.lfsr_words (the LFSR holds while valid is low)."""
    p, w, kb = _inputs(dut)
    R, E = p["rand_bits"], p["exp_bits"]
    g = rng(dut, salt=1)
    n = 3000
    k = g.integers(0, w + 1, n)
    x = np.floor(g.random(n) * np.ldexp(1.0, k)).astype(np.int64) * np.where(g.random(n) < 0.5, -1, 1)
    x = np.clip(x, -(1 << (w - 1)), (1 << (w - 1)) - 1)
    valid = (g.random(n) < 0.8).astype(int)
    await start_clock(dut)
    dut.valid.value = 0
    await reset(dut)
    got = []
    for i in range(n):
        dut.x.value = int(x[i]) % (1 << w)
        dut.kmax.value = int(k[i])
        dut.valid.value = int(valid[i])
        await Timer(1, unit="ns")
        got.append(int(dut.code.value))
        await FallingEdge(dut.clk)
    words = luq.lfsr_words(p["seed"], int(valid.sum()) + 1, p["lfsr_bits"], R)
    idx = np.concatenate([[0], np.cumsum(valid)[:-1]])       # element i sees the word after its valid predecessors
    gold = luq.luq_fixed(x, k, words[idx], E, R)
    expect_equal("lfsr stream", got, gold, {"x": x, "kmax": k, "valid": valid})
    dut._log.info(f"{n} clocks ({int(valid.sum())} valid): bit-exact")
