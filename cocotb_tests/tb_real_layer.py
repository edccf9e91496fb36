"""cocotb test: one output tile of a real convolution layer (digits, see test_real_layer.py)
through the RTL. The operands and the emulator's outputs (net.kernels) come in the .npz named
by $ECOMAC_OPERANDS: x (rows x K codes), w (K x cols codes), want (rows x cols accumulations).

mfmac-array computes the whole tile at once (a column of x and a row of w per clock); int-mac
and approx-mac compute one output per K-step stream (clear on its first step)."""
from __future__ import annotations

import os

import numpy as np

import cocotb

from .common import expect_equal, params, reset, start_clock, stream_array_tile, stream_mac


def _operands():
    z = np.load(os.environ["ECOMAC_OPERANDS"])
    return z["x"].astype(np.int64), z["w"].astype(np.int64), z["want"].astype(np.int64)


@cocotb.test()
async def real_layer_tile(dut):
    p = params()
    design = os.environ["ECOMAC_DESIGN"]
    X, W, want = _operands()
    rows, K = X.shape
    cols = W.shape[1]
    await start_clock(dut)
    dut.valid.value = 0
    dut.clear.value = 0
    await reset(dut)
    if design == "mfmac-array":
        got = await stream_array_tile(dut, X, W, p["exp_bits"] + 1, p["acc_bits"])
    else:
        got = []
        ones = np.ones(K, int)
        first = np.zeros(K, int)
        first[0] = 1
        for r in range(rows):
            for c in range(cols):
                accs = await stream_mac(dut, X[r], W[:, c], ones, first, p["bits"])
                got.append(accs[-1])
    expect_equal(f"{design} real-layer tile {rows}x{cols}, K={K}", got, want.ravel())
    dut._log.info(f"{design}: {rows}x{cols} outputs of the real layer (K={K}) equal the emulator's")
