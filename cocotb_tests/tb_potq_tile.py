"""cocotb: one tile of an ALS-POTQ backward-data product (error codes x weight codes of a real
training step, from $ECOMAC_OPERANDS) streamed through `mfmac-array`, with bubbles (valid low)
between K steps; the accumulators must equal the training step's integer accumulations."""
from __future__ import annotations

import os

import numpy as np

import cocotb

from golden import pot

from .common import expect_equal, params, reset, rng, start_clock, stream_array_tile


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
    got = await stream_array_tile(dut, E, W, E_bits + 1, acc_bits, r.random(K) < 0.2)
    expect_equal(f"ALS-POTQ backward-data tile {rows}x{cols}, K={K}", got, want.ravel())
    dut._log.info(f"backward-data tile {rows}x{cols} (K={K}) of a training step equals the step's accumulations")
