"""cocotb test of the compute tiles `tile-vn`, `tile-near`, `tile-in` (any datapath).

Four phases, each: load a random W row by row (random order, random idle cycles),
then stream random x vectors with random valid gaps while the output side drops
ready at random. Every y is compared with golden.tile.mvm; after each phase, when
the tile is idle, the debug counters must equal golden.tile.counts.
"""
from __future__ import annotations

import os

import numpy as np

import cocotb
from cocotb.triggers import ReadOnly

from golden import asm
from golden import tile as gtile
from golden.fixed import pack, unpack

from .common import FallingEdge, expect_equal, params, reset, rng, start_clock


def _spec() -> gtile.TileSpec:
    kind = os.environ["ECOMAC_DESIGN"].split("-", 1)[1]
    return gtile.spec(kind, **params())


def random_weights(s: gtile.TileSpec, r) -> np.ndarray:
    """Port words of a random W: every code for mfmac, any representable weight for asm."""
    shape = (s.lanes, s.depth)
    if s.datapath == "mfmac":
        return r.integers(0, 1 << s.w_bits, shape)          # negative-zero codes included
    if s.datapath == "asm":
        reps = asm.representable(s.alphabet, s.w_bits)
        w = reps[r.integers(0, reps.size, shape)] * r.choice([-1, 1], shape)
        return gtile.encode_weights(s, w)
    lo, hi = -(1 << (s.w_bits - 1)), 1 << (s.w_bits - 1)
    w = r.integers(lo, hi, shape)
    w[r.random(shape) < 0.2] = lo                           # extremes make the sums wrap
    return gtile.encode_weights(s, w)


def random_inputs(s: gtile.TileSpec, r, n: int) -> np.ndarray:
    shape = (n, s.depth)
    if s.datapath == "mfmac":
        big = (1 << s.exp_bits) - 1
        x = r.integers(0, 1 << s.x_bits, shape)
        return np.where(r.random(shape) < 0.3, x | big, x)   # largest exponents: overflow
    lo, hi = -(1 << (s.x_bits - 1)), 1 << (s.x_bits - 1)
    x = r.integers(lo, hi, shape)
    x[r.random(shape) < 0.2] = lo
    return gtile.encode_inputs(s, x)


class Tb:
    def __init__(self, dut, s):
        self.dut, self.s = dut, s
        self.rows_loaded = 0

    async def idle_inputs(self):
        d = self.dut
        d.wl_en.value = 0
        d.x_valid.value = 0
        d.y_ready.value = 0

    async def load(self, r, wcodes):
        d, s = self.dut, self.s
        for k in r.permutation(s.depth):
            while r.random() < 0.3:                          # idle cycles between row writes
                d.wl_en.value = 0
                await FallingEdge(d.clk)
            d.wl_en.value = 1
            d.wl_addr.value = int(k)
            d.wl_data.value = pack(wcodes[:, k], s.w_width)
            await FallingEdge(d.clk)
            self.rows_loaded += 1
        d.wl_en.value = 0
        await FallingEdge(d.clk)

    async def stream(self, r, xcodes, p_gap, p_stall) -> list[list[int]]:
        """Drive every element of every vector, collect every y; returns y per vector."""
        d, s = self.dut, self.s
        flat = xcodes.ravel()
        i, got, cycles, holding = 0, [], 0, False
        limit = (flat.size * (s.beats + 3) + 20) * 20
        while len(got) < xcodes.shape[0]:
            # set this cycle's inputs (after the falling edge), then look at the settled outputs
            if not holding:                                  # valid, once raised, holds until accepted
                holding = i < flat.size and r.random() >= p_gap
                d.x_valid.value = int(holding)
                if holding:
                    d.x_data.value = int(flat[i])
            y_ready = int(r.random() >= p_stall)
            d.y_ready.value = y_ready
            await ReadOnly()
            if holding and int(d.x_ready.value):
                i, holding = i + 1, False
            if y_ready and int(d.y_valid.value):
                got.append(unpack(d.y_data.value.to_unsigned(), s.acc_bits, s.lanes))
            await FallingEdge(d.clk)
            cycles += 1
            assert cycles < limit, f"stalled: {i} of {flat.size} elements, {len(got)} results after {cycles} cycles"
        d.x_valid.value = 0
        # nothing more may come out: no duplicated result
        d.y_ready.value = 1
        for _ in range(s.beats + 6):
            await ReadOnly()
            assert not int(d.y_valid.value), "an extra result appeared after the last vector"
            await FallingEdge(d.clk)
        self.elements = getattr(self, "elements", 0) + flat.size
        d._log.info(f"{xcodes.shape[0]} vectors ({flat.size} elements) in {cycles} cycles")
        return got

    async def check_counters(self, what):
        d, s = self.dut, self.s
        want = gtile.counts(s, self.rows_loaded, self.elements)
        await ReadOnly()
        got = {"mem_reads": int(d.dbg_mem_reads.value), "mem_writes": int(d.dbg_mem_writes.value),
               "bus_beats": int(d.dbg_bus_beats.value)}
        if s.kind == "in":
            got["bank_writes"] = int(d.dbg_bank_writes.value)
        for key, v in got.items():
            assert v == want[key], f"{what}: counter {key} = {v}, golden {want[key]}"
        await FallingEdge(d.clk)
        d._log.info(f"{what}: counters {got} equal golden")


async def started(dut):
    """(spec, rng, Tb) of a tile clocked, idle and out of reset."""
    s = _spec()
    r = rng(dut)
    tb = Tb(dut, s)
    await start_clock(dut)
    await tb.idle_inputs()
    await reset(dut)
    return s, r, tb


@cocotb.test()
async def random_mvm_streams(dut):
    s, r, tb = await started(dut)
    # (x gap, y stall) probabilities; the last phase keeps ready low ~90% of cycles with x always
    # offered, so a finished vector meets a still-full output slot (back-pressure must stall x)
    phases = [(0.4, 0.4), (0.05, 0.6), (0.6, 0.05), (0.0, 0.9)]
    for n, (p_gap, p_stall) in enumerate(phases):
        w = random_weights(s, r)
        await tb.load(r, w)
        vectors = int(r.integers(8, 20))
        x = random_inputs(s, r, vectors)
        got = await tb.stream(r, x, p_gap, p_stall)
        want = gtile.mvm(s, w, x)
        expect_equal(f"phase {n}: y", np.asarray(got).ravel(), want.ravel())
        await tb.check_counters(f"phase {n}")
    dut._log.info(f"{s.kind}/{s.datapath}: {len(phases)} phases bit-exact")
