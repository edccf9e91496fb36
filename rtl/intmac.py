"""Exact signed integer MAC: the reference every multiplier-less design is measured against."""
from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .params import Param, check_int
from .registry import design

__all__ = ["IntMac"]


@design("int-mac", "exact signed integer multiply-accumulate (baseline, same contract as mfmac-pe)",
        (Param("bits", 8, "2..32", "operand width (signed)"),
         Param("acc_bits", 24, "2*bits..64", "two's-complement accumulator width (wraps)",
               follows=lambda p: max(24, 2 * p["bits"]), follows_doc="max(24, 2*bits)")),
        family="baseline")
class IntMac(wiring.Component):
    """if clear: acc <- (valid ? x*w : 0); elif valid: acc <- acc + x*w. `latency` = 1."""
    latency = 1

    def __init__(self, bits: int = 8, acc_bits: int = 24):
        check_int("bits", bits, 2, 32)
        check_int("acc_bits", acc_bits, 2 * bits, 64)
        self.bits, self.acc_bits = bits, acc_bits
        super().__init__({
            "x": In(signed(bits)), "w": In(signed(bits)),
            "valid": In(1), "clear": In(1),
            "acc": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        acc = Signal(signed(self.acc_bits))
        prod = self.x * self.w
        with m.If(self.clear):
            m.d.sync += acc.eq(Mux(self.valid, prod, 0))
        with m.Elif(self.valid):
            m.d.sync += acc.eq(acc + prod)
        m.d.comb += self.acc.eq(acc)
        return m
