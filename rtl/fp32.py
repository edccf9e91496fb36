"""IEEE 754 binary32 multiplier, adder and MAC: the FP32 baselines of the energy comparisons.

Round to nearest even; subnormal operands read as zero of the same sign and results below
2^-126 (after rounding to 24 bits with an unbounded exponent) flushed to a zero with the sign
of the exact result; every NaN output is the canonical quiet NaN 0x7FC00000. golden/fp32.py
is the bit-exact definition; it equals NumPy float32 arithmetic wherever no subnormal is involved.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.fp32 import QNAN

from .registry import design

__all__ = ["Fp32Mul", "Fp32Add", "Fp32Mac"]

_INF = 0xFF << 23

SEMANTICS = {
    "number_format": "IEEE 754 binary32",
    "rounding": "round to nearest, ties to even (one rounding per operation)",
    "subnormals": "flushed: subnormal operands read as zero of the same sign; a result whose magnitude, "
                  "rounded to 24 bits with an unbounded exponent, is below 2^-126 becomes a zero with "
                  "the sign of the exact result (tininess detected after rounding)",
    "nan": f"every NaN output is the quiet NaN 0x{QNAN:08X}; NaN payloads are not propagated; "
           "Inf-Inf and 0*Inf give it too",
    "overflow": "results that round to >= 2^128 become +-Inf",
    "signed_zeros": "x+(-x)=+0, (-0)+(-0)=-0; products carry sign(a) XOR sign(b)",
    "ieee_exact": "bit-identical to IEEE 754 (NumPy float32) whenever no operand is subnormal and the "
                  "result is 0, +-Inf, NaN or, rounded to 24 bits, at least 2^-126 in magnitude",
    "exception_flags": "none",
}


def _fields(v):
    """(sign, exponent, mantissa, is_zero (DAZ), is_inf, is_nan) of a 32-bit pattern."""
    s, e, f = v[31], v[23:31], v[0:23]
    zero = e == 0
    top = e == 0xFF
    return s, e, f, zero, top & (f == 0), top & (f != 0)


def _round_pack(m: Module, s, e, mant, guard, sticky):
    """Round a 24-bit significand (leading one at bit 23) to nearest even and pack it.

    `e` is the signed biased exponent before rounding; rounding up to 2^24 adds one to it.
    e >= 255 afterwards gives Inf, e <= 0 gives a zero (flush-to-zero after rounding).
    """
    rounded = Signal(25)
    m.d.comb += rounded.eq(mant + (guard & (sticky | mant[0])))
    exp = Signal(signed(12))
    m.d.comb += exp.eq(e + rounded[24])
    # on carry-out `rounded` is exactly 2^24, so its low 23 bits are already the zero fraction
    normal = Cat(rounded[0:23], exp[0:8], s)
    return Mux(exp <= 0, Cat(Const(0, 31), s), Mux(exp >= 255, Cat(Const(_INF, 31), s), normal))


def _lzc(v):
    """Leading-zero count of `v` (width a power of two) as a tree: (all_zero, count)."""
    n = len(v)
    if n == 2:
        return ~(v[0] | v[1]), ~v[1]
    zl, cl = _lzc(v[: n // 2])
    zh, ch = _lzc(v[n // 2:])
    return zl & zh, Cat(Mux(zh, cl, ch), zh)


class _Fp32BinaryOp(wiring.Component):
    """Shared shell of fp32-mul and fp32-add: y = a op b on binary32 bit patterns, combinational."""
    latency = 0
    datasheet_extra = SEMANTICS

    def __init__(self):
        super().__init__({"a": In(32), "b": In(32), "y": Out(32)})


@design("fp32-mul", "IEEE 754 binary32 multiplier: round to nearest even, flush-to-zero (combinational)",
        (), family="baseline")
class Fp32Mul(_Fp32BinaryOp):
    """y = a * b on binary32 bit patterns, combinational (latency 0).

    24x24-bit significand product (Yosys maps the `*`), one-bit normalization, round to
    nearest even with guard and sticky bits, exponent a + b - 127 with overflow to Inf and
    flush to zero below 2^-126 (after rounding). Subnormal operands read as signed zeros.
    NaN operands, 0*Inf and Inf*0 give the quiet NaN 0x7FC00000. Bit-exact model: golden/fp32.py mul.
    """
    def elaborate(self, platform):
        m = Module()
        sa, ea, fa, za, ia, na = _fields(self.a)
        sb, eb, fb, zb, ib, nb = _fields(self.b)
        s = sa ^ sb
        prod = Signal(48)
        m.d.comb += prod.eq(Cat(fa, 1) * Cat(fb, 1))       # in [2^46, 2^48)
        hi = prod[47]                                       # significand product in [2, 4)
        mant = Mux(hi, prod[24:48], prod[23:47])
        guard = Mux(hi, prod[23], prod[22])
        sticky = prod[0:22].any() | (hi & prod[22])
        e = Signal(signed(11))
        m.d.comb += e.eq(ea + eb + hi - 127)
        y = _round_pack(m, s, e, mant, guard, sticky)
        y = Mux(za | zb, Cat(Const(0, 31), s), y)
        y = Mux(ia | ib, Cat(Const(_INF, 31), s), y)
        y = Mux(na | nb | (ia & zb) | (za & ib), QNAN, y)
        m.d.comb += self.y.eq(y)
        return m


@design("fp32-add", "IEEE 754 binary32 adder: round to nearest even, flush-to-zero (combinational)",
        (), family="baseline")
class Fp32Add(_Fp32BinaryOp):
    """y = a + b on binary32 bit patterns, combinational (latency 0).

    Operands swapped so L has the larger magnitude; S's significand shifted right by the
    exponent difference into 24 bits + guard + round + sticky (the OR of everything shifted
    out); one adder adds or subtracts; a leading-zero-count tree normalizes after cancellation;
    round to nearest even; overflow to Inf, flush to zero below 2^-126. Exact zero sums are +0
    except (-0) + (-0) = -0. Inf - Inf and NaN operands give 0x7FC00000. Bit-exact model:
    golden/fp32.py add.
    """
    def elaborate(self, platform):
        m = Module()
        sa, ea, fa, za, ia, na = _fields(self.a)
        sb, eb, fb, zb, ib, nb = _fields(self.b)
        ka = Mux(za, 0, self.a[0:31])                       # magnitude order keys (DAZ)
        kb = Mux(zb, 0, self.b[0:31])
        swap = kb > ka
        big, small = Signal(32), Signal(32)
        m.d.comb += [big.eq(Mux(swap, self.b, self.a)), small.eq(Mux(swap, self.a, self.b))]
        sl, el, fl, zl, _, _ = _fields(big)
        ss, es, fs, zs, _, _ = _fields(small)
        sig_l = Mux(zl, 0, Cat(fl, 1))
        sig_s = Mux(zs, 0, Cat(fs, 1))

        # alignment: S into a 27-bit word (24 bits, guard, round, sticky)
        d = Signal(8)
        m.d.comb += d.eq(el - es)                           # >= 0: L has the larger exponent
        dc = Signal(5)
        m.d.comb += dc.eq(Mux(d > 27, 27, d))               # >= 27: all of S is sticky
        wide = Signal(51)
        m.d.comb += wide.eq(Cat(Const(0, 27), sig_s) >> dc)
        aligned = Cat(wide[24] | wide[0:24].any(), wide[25:51])

        # one adder for both: L + S, or L + ~S + 1 whose bit 27 is the (always set) borrow-free carry
        sub = sl ^ ss
        raw = Signal(28)
        m.d.comb += raw.eq(Cat(Const(0, 3), sig_l) + (aligned ^ sub.replicate(27)) + sub)
        total = Cat(raw[0:27], raw[27] & ~sub)

        # normalization: leading one to bit 27
        zero, lz = _lzc(Cat(Const(0, 4), total))
        norm = Signal(28)
        m.d.comb += norm.eq(total << lz)
        e = Signal(signed(11))
        m.d.comb += e.eq(el + 1 - lz)
        y = _round_pack(m, sl, e, norm[4:28], norm[3], norm[0:3].any())
        y = Mux(zero, Cat(Const(0, 31), sa & sb), y)
        y = Mux(ia | ib, Cat(Const(_INF, 31), Mux(ia, sa, sb)), y)
        y = Mux(na | nb | (ia & ib & (sa ^ sb)), QNAN, y)
        m.d.comb += self.y.eq(y)
        return m


@design("fp32-mac", "FP32 multiply-accumulate from fp32-mul and fp32-add (not fused), same contract as mfmac-pe",
        (), family="baseline")
class Fp32Mac(wiring.Component):
    """One FP32 MAC processing element: an fp32-mul feeding an fp32-add and a 32-bit register.

    On each clock: if `clear`, acc <- (valid ? x*w : +0); elif `valid`, acc <- acc + x*w,
    the product rounded to binary32 and then the sum rounded (two roundings, not fused).
    `acc` shows the result one cycle after the inputs (`latency` = 1); reset gives +0.
    Bit-exact model: golden/fp32.py mac.
    """
    latency = 1
    datasheet_extra = SEMANTICS

    def __init__(self):
        super().__init__({
            "x": In(32), "w": In(32),
            "valid": In(1), "clear": In(1),
            "acc": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = Fp32Mul()
        m.submodules.add = add = Fp32Add()
        acc = Signal(32)
        m.d.comb += [mul.a.eq(self.x), mul.b.eq(self.w), add.a.eq(acc), add.b.eq(mul.y)]
        with m.If(self.clear):
            m.d.sync += acc.eq(Mux(self.valid, mul.y, 0))
        with m.Elif(self.valid):
            m.d.sync += acc.eq(add.y)
        m.d.comb += self.acc.eq(acc)
        return m
