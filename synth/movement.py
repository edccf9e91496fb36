"""Energy of one matrix-vector product (MVM) on a tile: arithmetic + data movement.

    E_MVM = arithmetic (synthesized compute row, per element step, x depth)
          + weight-memory reads + bus + in-memory bank accesses (counts x energy per access)

Counts come from golden.tile.counts (the same numbers the RTL's debug counters show).

Energy per access (all 45 nm, pJ):
  * SRAM read or write of `width` bits from an array of `size` bytes:
    synth.reference.sram_access_pj(size, width) -- log-log interpolation of the
    Horowitz ISSCC 2014 points (8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ per 64 bits),
    extrapolated below 8 KB with the 8-32 KB slope (energy ~ sqrt(size)), linear in width.
      tile-vn   : one weight array (depth x lanes x stored bits), bus_bits per access
      tile-near : the same array, one full row (lanes x stored bits) per access
      tile-in   : one column sub-array per lane (depth x stored bits), one weight per access
    The extrapolation below 8 KB is a model; MovementModel(min_sram_bytes=8192) prices every
    smaller weight array (the tile-in sub-arrays) at the 8 KB energy per bit instead.
  * in-memory bank (tile-in), a register file: the same function extrapolated to the
    bank's size (entries x entry bits); one write of all entries per x element, one
    read of one entry per selector (radix-4 digit / quartet / PoT code) per lane. The
    synthesized compute row of tile-in also holds the bank's flip-flops and select
    multiplexers, so the bank is counted twice: a conservative choice that can only
    understate tile-in's saving.
  * bus (tile-vn): WIRE_PJ_PER_BIT_MM x BUS_MM per weight bit moved. Both are labelled
    ASSUMPTIONS, not measurements: a wire of C = 0.2 pF/mm (a usual figure for an
    intermediate metal layer) switched at V = 0.9 V (the reference's supply) draws
    C V^2 from the supply on a 0->1 transition, which random data makes 1/4 of the
    transfers: 0.25 x 0.2 pF x 0.81 V^2 = 0.0405 pJ per bit per mm (repeaters ignored);
    BUS_MM = 1 mm between a separate weight memory macro and the PE array.
  * arithmetic: synth.energy.netlist_energy (activity mode, calibrated on the 8x8 array
    multiplier = 0.2 pJ) of the tile's compute row at the tile's lane count: tile-vn
    and tile-near use PeRow (the PEs of the datapath), tile-in the InMemoryRow; a
    random stream of representable weights and activations, one element per cycle. With
    weight_storage=index (asm) the memory holds compact words (fewer bits per access) and the
    compute row includes one weight decoder per lane (priced in the same netlist).
    The weight memory itself is not synthesized (it would be depth x lanes x bits
    flip-flops): the SRAM model above stands for it.
Not counted (equal for the three tiles, or a one-time cost): streaming x in and y out,
and weight loading (`weight_load_pj` gives it separately).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden import asm as gasm
from golden import tile as gtile

from .reference import sram_access_pj

__all__ = ["MovementModel", "DEFAULT_MODEL", "access_energies", "movement", "weight_load_pj",
           "arithmetic", "mvm_energy", "WIRE_PJ_PER_BIT_MM", "BUS_MM"]

WIRE_C_PF_PER_MM = 0.2
SUPPLY_V = 0.9
WIRE_PJ_PER_BIT_MM = 0.25 * WIRE_C_PF_PER_MM * SUPPLY_V ** 2     # = 0.0405, an assumption
BUS_MM = 1.0                                                      # an assumption


@dataclass(frozen=True)
class MovementModel:
    wire_pj_per_bit_mm: float = WIRE_PJ_PER_BIT_MM
    bus_mm: float = BUS_MM
    min_sram_bytes: float = 0.0      # > 0: smaller weight arrays cost what one of this size costs per bit

    def sram_pj(self, size_bytes: float, width_bits: int) -> float:
        """A weight-array access (the floor applies); the bank uses sram_access_pj directly."""
        return sram_access_pj(max(size_bytes, self.min_sram_bytes), width_bits)

    @property
    def bus_pj_per_bit(self) -> float:
        return self.wire_pj_per_bit_mm * self.bus_mm


DEFAULT_MODEL = MovementModel()


def access_energies(s: gtile.TileSpec, model: MovementModel = DEFAULT_MODEL) -> dict:
    """pJ per single access of each kind (see the module docstring)."""
    mem_bytes = s.memory_bits / 8
    if s.kind == "vn":
        mem = model.sram_pj(mem_bytes, s.bus_bits)
    elif s.kind == "near":
        mem = model.sram_pj(mem_bytes, s.row_bits)
    else:
        mem = model.sram_pj(s.depth * s.w_width / 8, s.w_width)
    out = {"mem_access_pj": mem, "bus_pj_per_bit": model.bus_pj_per_bit if s.kind == "vn" else 0.0,
           "bank_write_pj": 0.0, "bank_read_pj": 0.0}
    if s.kind == "in":
        entries, bits, _ = s.bank
        bank_bytes = entries * bits / 8
        out["bank_write_pj"] = sram_access_pj(bank_bytes, entries * bits)
        out["bank_read_pj"] = sram_access_pj(bank_bytes, bits)
    return out


def movement(s: gtile.TileSpec, model: MovementModel = DEFAULT_MODEL) -> dict:
    """Data-movement energy of one MVM (depth elements), pJ, by part, with the counts."""
    c = gtile.counts(s, 0, s.depth)
    e = access_energies(s, model)
    bits_on_bus = s.depth * s.row_bits if s.kind == "vn" else 0   # the last beat's padding does not toggle
    parts = {
        "weight_reads_pj": c["mem_reads"] * e["mem_access_pj"],
        "bus_pj": bits_on_bus * e["bus_pj_per_bit"],
        "bank_writes_pj": c["bank_writes"] * e["bank_write_pj"],
        "bank_reads_pj": c["bank_reads"] * e["bank_read_pj"],
    }
    return {"total_pj": sum(parts.values()), "parts": parts, "counts": c, "per_access": e}


def weight_load_pj(s: gtile.TileSpec, model: MovementModel = DEFAULT_MODEL) -> float:
    """One-time energy of writing W (write energy taken equal to a read of the same width)."""
    return gtile.counts(s, s.depth, 0)["mem_writes"] * access_energies(s, model)["mem_access_pj"]


# ---- arithmetic -------------------------------------------------------------------------------
def _probe(s: gtile.TileSpec):
    """The tile's compute row with one port per lane (stream ports must be <= 64 bits)."""
    from amaranth import Module, signed
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from rtl.tile import InMemoryRow, PeRow, _x_shape

    inmem = s.kind == "in"

    class ComputeRow(wiring.Component):
        def __init__(self):
            sig = {"x": In(_x_shape(s)), "valid": In(1), "clear": In(1)}
            if inmem:
                sig["bank_we"] = In(1)
            for l in range(s.lanes):
                sig[f"w{l}"] = In(s.w_width)
                sig[f"acc{l}"] = Out(signed(s.acc_bits))
            super().__init__(sig)

        def elaborate(self, platform):
            m = Module()
            m.submodules.row = row = InMemoryRow(s) if inmem else PeRow(s)
            m.d.comb += [row.x.eq(self.x), row.valid.eq(self.valid), row.clear.eq(self.clear)]
            if inmem:
                m.d.comb += row.bank_we.eq(self.bank_we)
            for l in range(s.lanes):
                m.d.comb += [row.w[l].eq(getattr(self, f"w{l}")), getattr(self, f"acc{l}").eq(row.acc[l])]
            return m
    return ComputeRow()


def _random_words(s: gtile.TileSpec, r, shape, what: str) -> np.ndarray:
    """Representable random port words: weights (what='w') or activations (what='x')."""
    if s.datapath == "mfmac":
        return r.integers(0, 1 << (s.exp_bits + 1), shape)
    if what == "x":
        return r.integers(-(1 << (s.x_bits - 1)), 1 << (s.x_bits - 1), shape)
    if s.datapath == "int":
        return r.integers(-(1 << (s.w_bits - 1)), 1 << (s.w_bits - 1), shape)
    reps = gasm.representable(s.alphabet, s.w_bits)
    w = reps[r.integers(0, reps.size, shape)] * r.choice([-1, 1], shape)
    if s.weight_storage == "index":          # the compact words the memory holds (decoded per lane)
        return gasm.compact_encode(w, s.alphabet, s.w_bits)
    return gasm.encode(w, s.alphabet, s.w_bits)


STREAM_LANES, STREAM_CYCLES, STREAM_SEED = 64, 33, 6


def arithmetic(s: gtile.TileSpec, mode: str = "activity") -> dict:
    """Energy of the compute row per element step (all lanes) and per MVM, from its netlist."""
    from amaranth.back import verilog

    from .energy import netlist_energy

    comp = _probe(s)
    text = verilog.convert(comp, name="compute_row", emit_src=False)
    stream = None
    if mode == "activity":
        r = np.random.default_rng(STREAM_SEED)
        shape = (STREAM_LANES, STREAM_CYCLES)
        stream = {"x": _random_words(s, r, shape, "x")}
        for l in range(s.lanes):
            stream[f"w{l}"] = _random_words(s, r, shape, "w")
        if s.kind == "in":
            stream["bank_we"] = np.ones(STREAM_CYCLES, np.int64)
    res = netlist_energy(text, "compute_row", mode=mode, stream=stream, ops_per_cycle=s.lanes)
    return {"pj_per_mac": res["energy_pj"], "pj_per_step": res["energy_per_cycle_pj"],
            "mvm_pj": res["energy_per_cycle_pj"] * s.depth, "transistors": res["transistors"],
            "cells": res["cells_total"], "flip_flops": res["flip_flops"], "mode": mode}


def mvm_energy(s: gtile.TileSpec, mode: str = "activity", model: MovementModel = DEFAULT_MODEL) -> dict:
    """Arithmetic + movement of one MVM on tile spec `s`, pJ."""
    a = arithmetic(s, mode)
    mv = movement(s, model)
    return {"arithmetic_pj": a["mvm_pj"], "movement_pj": mv["total_pj"],
            "total_pj": a["mvm_pj"] + mv["total_pj"], "arithmetic": a, "movement": mv,
            "weight_load_pj": weight_load_pj(s, model)}
