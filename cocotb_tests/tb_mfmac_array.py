"""cocotb test of `mfmac-array`: random code matrices streamed over K steps, tile after tile."""
from __future__ import annotations

import cocotb

from golden import pot
from .common import expect_equal, params, reset, rng, start_clock, stream_array_tile


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
        got = await stream_array_tile(dut, A, B, E + 1, acc_bits, gaps)
        want = pot.matmul(A, B, E, acc_bits).ravel()
        expect_equal(f"tile {t} (K={K})", got, want)
    dut._log.info(f"{tiles} random tiles of {rows}x{cols} bit-exact")
