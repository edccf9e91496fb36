"""The PoT code product shared by the MF-MAC's serial PE (rtl/pot.py) and its tree
accumulators (rtl/pot_acc.py): sign XOR, exponent add, one-hot magnitude."""
from __future__ import annotations

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.pot import max_exp

from .params import check_int

__all__ = ["PotProduct"]


class PotProduct(wiring.Component):
    """Combinational product of two PoT codes as (sign, nonzero, one-hot magnitude)."""

    def __init__(self, exp_bits: int = 3):
        check_int("exp_bits", exp_bits, 1, 5)
        self.exp_bits = exp_bits
        mag_bits = 2 * max_exp(exp_bits) + 1
        super().__init__({
            "x": In(exp_bits + 1), "w": In(exp_bits + 1),
            "sign": Out(1), "mag": Out(mag_bits),
        })

    def elaborate(self, platform):
        m = Module()
        E = self.exp_bits
        ex, ew = self.x[:E], self.w[:E]
        esum = Signal(E + 1)
        m.d.comb += esum.eq(ex + ew)                       # the (E+1)-bit exponent adder
        nz = (ex != 0) & (ew != 0)
        # one-hot decode of esum - 2: the magnitude 2^(ex-1) * 2^(ew-1)
        m.d.comb += [
            self.sign.eq(self.x[E] ^ self.w[E]),
            self.mag.eq(Cat(nz & (esum == i + 2) for i in range(len(self.mag)))),
        ]
        return m
