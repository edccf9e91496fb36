"""Plain arithmetic used as energy-model calibration points (the 45 nm reference table's
8-bit and 32-bit adds). Multipliers for that table come from `mul-array`."""
from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .params import Param, check_int
from .registry import design

__all__ = ["IntAdd"]


@design("int-add", "unsigned bits-bit adder s = a + b with carry out (energy calibration point)",
        (Param("bits", 8, "1..64", "operand width (unsigned)"),),
        family="arith", default=False)
class IntAdd(wiring.Component):
    """Combinational: s = a + b, `bits`+1 wide (the top bit is the carry).

    The adder architecture is whatever Yosys's generic `synth` maps `$add` to
    (`$alu`/`$lcu` techmap); no hand-built carry chain.
    """
    latency = 0

    def __init__(self, bits: int = 8):
        check_int("bits", bits, 1, 64)
        self.bits = bits
        super().__init__({"a": In(bits), "b": In(bits), "s": Out(bits + 1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.s.eq(self.a + self.b)
        return m
