"""cocotb: one tile of an ALS-POTQ backward-data product (error codes x weight codes of a real
training step, from $ECOMAC_OPERANDS) streamed through `mfmac-array`, with bubbles (valid low)
between K steps; the accumulators must equal the training step's integer accumulations."""
from __future__ import annotations

import os

import numpy as np

import cocotb

from golden import pot
from golden.fixed import pack, unpack

from .common import FallingEdge, expect_equal, params, reset, rng, start_clock


@cocotb.test()
async def potq_backward_data_tile(dut):
    p = params()
    E_bits, acc_bits = p["exp_bits"], p["acc_bits"]
    z = np.load(os.environ["ECOMAC_OPERANDS"])
    E, W, want = (z[k].astype(np.int64) for k in ("e", "w", "want"))
    rows, K = E.shape
    cols = W.shape[1]
    expect_equal("operands vs golden", want.ravel(), pot.matmul(E, W, E_bits, acc_bits).ravel())
    r = rng(dut)
    await start_clock(dut)
    dut.valid.value = 0
    dut.clear.value = 0
    await reset(dut)
    k = 0
    while k < K:
        if k > 0 and r.random() < 0.2:               # a bubble: nothing may change
            dut.valid.value = 0
            dut.clear.value = 0
        else:
            dut.a.value = pack(E[:, k], E_bits + 1)
            dut.b.value = pack(W[k, :], E_bits + 1)
            dut.valid.value = 1
            dut.clear.value = int(k == 0)
            k += 1
        await FallingEdge(dut.clk)
    dut.valid.value = 0
    got = unpack(dut.c.value.to_unsigned(), acc_bits, rows * cols)
    expect_equal(f"ALS-POTQ backward-data tile {rows}x{cols}, K={K}", got, want.ravel())
    dut._log.info(f"backward-data tile {rows}x{cols} (K={K}) of a training step equals the step's accumulations")
