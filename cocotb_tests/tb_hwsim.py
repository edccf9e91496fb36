"""cocotb testbench of `ecomac nn hwsim --engine rtl`: one product streamed through the whole
array (synth.hwsim.array_verilog's `hwsim_array`), tile after tile with no bubble.

$ECOMAC_HWSIM_OPERANDS (.npz): a (G x T x K x R codes: lane group, tile, step, array row),
b (Gw x T x K x C words: lane group or 0 when the groups share their weights, tile, step, array
column), x_bits, w_bits, acc_bits. Step k of a tile drives
a, b with valid high and clear high on k = 0; one clock after a tile's last step its R x C
accumulations are read from c (row-major) while the next tile's first step is in.
Writes c (G x T x R*C) to $ECOMAC_HWSIM_RESULTS (.npz)."""
from __future__ import annotations

import os

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from golden.fixed import pack, unpack


@cocotb.test()
async def product(dut):
    z = np.load(os.environ["ECOMAC_HWSIM_OPERANDS"])
    A, B = z["a"].astype(np.int64), z["b"].astype(np.int64)
    xb, wb, ab = int(z["x_bits"]), int(z["w_bits"]), int(z["acc_bits"])
    G, T, K, R = A.shape
    C = B.shape[3]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.valid.value = 0
    dut.clear.value = 0
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    out = np.zeros((G, T, R * C), np.int64)
    bw = [[[pack(B[h, t, k], wb) for k in range(K)] for t in range(T)] for h in range(B.shape[0])]
    for g in range(G):
        words = bw[g if len(bw) > 1 else 0]
        for t in range(T):
            for k in range(K):
                dut.a.value = pack(A[g, t, k], xb)
                dut.b.value = words[t][k]
                dut.valid.value = 1
                dut.clear.value = int(k == 0)
                await FallingEdge(dut.clk)
            out[g, t] = unpack(dut.c.value.to_unsigned(), ab, R * C)
    dut.valid.value = 0
    np.savez(os.environ["ECOMAC_HWSIM_RESULTS"], c=out)
    dut._log.info(f"{G} lane groups x {T} tiles x {K} steps streamed")
