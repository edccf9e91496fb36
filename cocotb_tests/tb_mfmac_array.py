"""cocotb test of `mfmac-array`: random code matrices streamed over K steps, tile after tile."""
from __future__ import annotations

import cocotb

from golden import pot
from golden.fixed import pack, unpack

from .common import FallingEdge, expect_equal, params, reset, rng, start_clock


@cocotb.test()
async def random_tiles(dut):
    p = params()
    rows, cols, E, acc_bits = p["rows"], p["cols"], p["exp_bits"], p["acc_bits"]
    r = rng(dut)
    await start_clock(dut)
    dut.valid.value = 0
    dut.clear.value = 0
    await reset(dut)
    tiles = 12
    for t in range(tiles):
        K = int(r.integers(1, 40))
        A = r.integers(0, 1 << (E + 1), (rows, K))
        B = r.integers(0, 1 << (E + 1), (K, cols))
        gaps = r.random(K) < 0.25
        k = 0
        first = True
        while k < K:
            if gaps[k] and not first:                # a bubble: valid low, nothing must change
                dut.valid.value = 0
                dut.clear.value = 0
                gaps[k] = False
            else:
                dut.a.value = pack(A[:, k], E + 1)
                dut.b.value = pack(B[k, :], E + 1)
                dut.valid.value = 1
                dut.clear.value = int(first)
                first = False
                k += 1
            await FallingEdge(dut.clk)
        dut.valid.value = 0
        dut.clear.value = 0
        got = unpack(dut.c.value.to_unsigned(), acc_bits, rows * cols)
        want = pot.matmul(A, B, E, acc_bits).ravel()
        expect_equal(f"tile {t} (K={K})", got, want)
    dut._log.info(f"{tiles} random tiles of {rows}x{cols} bit-exact")
