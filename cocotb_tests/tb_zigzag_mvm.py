"""cocotb: one matrix-vector product on a tile (`tile-vn`, `tile-near`, `tile-in`): load W row by row,
stream one x vector, check y against golden.tile.mvm, then write the tile's debug counters (memory
reads, writes, bus beats, bank writes) as JSON to $ECOMAC_COUNTS_OUT for tests/test_zigzag_tiles.py,
which compares them with ZigZag's access counts on the tile's accelerator description."""
from __future__ import annotations

import json
import os

import numpy as np

import cocotb
from cocotb.triggers import ReadOnly

from golden import tile as gtile

from .common import FallingEdge, expect_equal
from .tb_tile import random_inputs, random_weights, started


@cocotb.test()
async def one_mvm_counters(dut):
    s, r, tb = await started(dut)
    w = random_weights(s, r)
    await tb.load(r, w)
    x = random_inputs(s, r, 1)
    got = await tb.stream(r, x, 0.0, 0.0)
    expect_equal("y", np.asarray(got).ravel(), gtile.mvm(s, w, x).ravel())
    await ReadOnly()
    counts = {"mem_reads": int(dut.dbg_mem_reads.value), "mem_writes": int(dut.dbg_mem_writes.value),
              "bus_beats": int(dut.dbg_bus_beats.value)}
    if s.kind == "in":
        counts["bank_writes"] = int(dut.dbg_bank_writes.value)
    await FallingEdge(dut.clk)
    with open(os.environ["ECOMAC_COUNTS_OUT"], "w") as f:
        json.dump(counts, f)
    dut._log.info(f"{s.kind}: one MVM, counters {counts}")
