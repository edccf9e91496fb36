"""Signed MAC built on an approximate unsigned multiplier of rtl/approx.py (sign-magnitude).

The arithmetic (and the exact mapping of two's-complement operands to magnitudes) is
documented in golden/approx_mac.py.
"""
from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.approx_mac import FAMILY_PARAMS, family_params, product_bits

from .approx import MulArray, MulBam, MulDrum, MulExact, MulMitchell, MulTrunc
from .params import Param, check_choice, check_int, parse_bool
from .registry import design

__all__ = ["ApproxSignedMul", "ApproxMac", "MULTIPLIERS", "PARAM_DEFAULTS"]

MULTIPLIERS = {"mul-array": MulArray, "mul-exact": MulExact, "mul-trunc": MulTrunc, "mul-bam": MulBam,
               "mul-drum": MulDrum, "mul-mitchell": MulMitchell}
# defaults of the family parameters (each applies only to the families that take it)
from golden.approx_mac import PARAM_DEFAULTS  # noqa: E402  (one definition of the defaults)


def _multiplier_params(multiplier, bits, params: dict) -> dict:
    """Validate the multiplier choice and its own parameters (through the family's constructor);
    a parameter the family does not take must stay at its default."""
    check_choice("multiplier", multiplier, tuple(MULTIPLIERS))
    check_int("bits", bits, 2, 12)
    own = family_params(multiplier, params)
    for name, value in params.items():
        if name not in own and value != PARAM_DEFAULTS[name]:
            takes = ", ".join(FAMILY_PARAMS[multiplier]) or "none besides bits"
            raise ValueError(f"{name} does not apply to multiplier {multiplier} (its parameters: {takes})")
    probe = MULTIPLIERS[multiplier](bits=bits, **own)     # the family's own one-line errors
    probe._MustUse__silence = True                        # built only to validate, never elaborated
    return own


def _parse_text(name: str, text: str) -> str:
    return text.strip()


class ApproxSignedMul(wiring.Component):
    """Combinational p = (-1)^(sx ^ sw) * M(|x|, |w|): magnitudes by conditional negation
    (`bits`-bit unsigned, so |-2^(bits-1)| fits), the unsigned family multiplier M, and a
    conditional negation of its 2*bits-bit product. The multiply part of `approx-mac`."""

    def __init__(self, multiplier: str = "mul-drum", bits: int = 8, **params):
        self.own = _multiplier_params(multiplier, bits, {**PARAM_DEFAULTS, **params})
        self.multiplier, self.bits = multiplier, bits
        super().__init__({"x": In(signed(bits)), "w": In(signed(bits)), "p": Out(signed(product_bits(bits)))})

    def elaborate(self, platform):
        m = Module()
        b = self.bits
        m.submodules.mul = mul = MULTIPLIERS[self.multiplier](bits=b, **self.own)
        sx, sw = self.x[b - 1], self.w[b - 1]
        mx, mw = Signal(b), Signal(b)
        # truncation to b bits keeps -(-2^(b-1)) = 2^(b-1) exact as an unsigned magnitude
        m.d.comb += [mx.eq(Mux(sx, -self.x, self.x)), mw.eq(Mux(sw, -self.w, self.w)),
                     mul.a.eq(mx), mul.b.eq(mw)]
        mag = Signal(signed(product_bits(b)))
        m.d.comb += [mag.eq(mul.p), self.p.eq(Mux(sx ^ sw, -mag, mag))]
        return m


_PARAMS = (
    Param("multiplier", "mul-drum", ", ".join(MULTIPLIERS), "unsigned bits x bits multiplier family applied "
          "to the operand magnitudes", parse=_parse_text),
    Param("k", PARAM_DEFAULTS["k"], "mul-trunc: 0..2*bits, mul-drum: 1..bits",
          "mul-trunc: columns dropped; mul-drum: bits kept from the leading one"),
    Param("correction", PARAM_DEFAULTS["correction"], "0/1", "mul-trunc: add the dropped bits' expected value",
          parse=parse_bool),
    Param("vbl", PARAM_DEFAULTS["vbl"], "0..2*bits-1", "mul-bam: vertical break line"),
    Param("hbl", PARAM_DEFAULTS["hbl"], "0..bits-1", "mul-bam: horizontal break line"),
    Param("frac_bits", PARAM_DEFAULTS["frac_bits"], "1..bits-1", "mul-mitchell: fraction bits of the logarithm"),
    Param("bits", 8, "2..12", "operand width (signed two's complement); magnitudes are bits-bit unsigned"),
    Param("acc_bits", 24, "2*bits+1..64", "two's-complement accumulator width (wraps)",
          follows=lambda p: max(24, product_bits(p["bits"])), follows_doc="max(24, 2*bits+1)"),
)


@design("approx-mac", "signed MAC: approximate unsigned multiplier on |x|, |w| (sign-magnitude), accumulate",
        _PARAMS, default=False, family="approx-mul")
class ApproxMac(wiring.Component):
    """Signed MAC whose multiply is one of the approximate-multiplier families.

    x and w are two's complement (`bits`); the product is (-1)^(sx ^ sw) * M(|x|, |w|) with
    |x|, |w| as `bits`-bit unsigned magnitudes (so |-2^(bits-1)| = 2^(bits-1) is exact) and M
    the chosen family at N = bits (golden/approx_mac.py). Only the parameters of the chosen
    family apply; the others must stay at their defaults. if clear: acc <- (valid ? p : 0);
    elif valid: acc <- acc + p (wraps at acc_bits); `latency` = 1, as int-mac.
    """
    latency = 1

    def __init__(self, multiplier: str = "mul-drum", k: int = 4, correction: bool = False, vbl: int = 8,
                 hbl: int = 0, frac_bits: int = 7, bits: int = 8, acc_bits: int = 24):
        params = {"k": k, "correction": correction, "vbl": vbl, "hbl": hbl, "frac_bits": frac_bits}
        self.own = _multiplier_params(multiplier, bits, params)
        check_int("acc_bits", acc_bits, product_bits(bits), 64)
        self.multiplier, self.bits, self.acc_bits = multiplier, bits, acc_bits
        super().__init__({
            "x": In(signed(bits)), "w": In(signed(bits)),
            "valid": In(1), "clear": In(1),
            "acc": Out(signed(acc_bits)),
        })

    def datasheet_extra(self) -> dict:
        return {"multiplier_params": {"bits": self.bits, **self.own},
                "sign_magnitude": "p = (-1)^(x<0 xor w<0) * M(|x|, |w|), |x|, |w| as bits-bit unsigned"}

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = ApproxSignedMul(self.multiplier, self.bits, **self.own)
        m.d.comb += [mul.x.eq(self.x), mul.w.eq(self.w)]
        acc = Signal(signed(self.acc_bits))
        with m.If(self.clear):
            m.d.sync += acc.eq(Mux(self.valid, mul.p, 0))
        with m.Elif(self.valid):
            m.d.sync += acc.eq(acc + mul.p)
        m.d.comb += self.acc.eq(acc)
        return m
