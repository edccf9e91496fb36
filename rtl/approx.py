"""The approximate-multiplier library: unsigned N x N -> 2N-bit combinational multipliers.

`mul-array` is the exact array multiplier built gate by gate (AND partial products,
carry-save rows of full adders, final ripple adder); `mul-trunc` and `mul-bam` are the
same array with partial-product bits cut out, so the saving is exactly the removed
cells. `mul-drum` and `mul-mitchell` are dynamic-range designs around a leading-one
detector. `mul-exact` leaves the multiplier to Yosys (`a * b`). The golden models and
the exact definitions are in golden/approx.py.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.approx import trunc_correction

from .params import Param, check_int, parse_bool
from .registry import design

__all__ = ["array_bits", "MulArray", "MulExact", "MulTrunc", "MulBam", "MulDrum", "MulMitchell"]


class _Gates:
    """Explicit 1-bit gates, each output a named Signal (so Yosys sees gates, never a word-level +/*)."""

    def __init__(self, m: Module, prefix: str):
        self.m, self.prefix, self.n = m, prefix, 0

    def wire(self, expr, tag: str):
        s = Signal(name=f"{self.prefix}_{tag}{self.n}")
        self.n += 1
        self.m.d.comb += s.eq(expr)
        return s

    def add(self, ins: list, tag: str):
        """Sum of 1, 2 or 3 bits: (sum, carry or None). Half adder for 2, full adder for 3."""
        if len(ins) == 1:
            return ins[0], None
        if len(ins) == 2:
            x, y = ins
            return self.wire(x ^ y, tag + "s"), self.wire(x & y, tag + "c")
        x, y, z = ins
        xy = self.wire(x ^ y, tag + "x")
        return self.wire(xy ^ z, tag + "s"), self.wire((x & y) | (z & xy), tag + "c")


def array_bits(m: Module, a, b, bits: int, keep=lambda i, j: True, const: int = 0, prefix: str = "arr",
               rows: list | None = None):
    """Structural array multiplier of `a` and `b` (`bits` wide) keeping partial product a_i b_j
    where keep(i, j), plus the constant `const`; returns the 2*bits output bits (mod 2^(2 bits)).

    Row j of partial products enters a row of adders at columns j..j+bits-1 together with
    the running sum and carry vectors (carry-save: a carry goes to the next row, one column
    left); the last sum and carry vectors are merged by a ripple-carry adder.

    `rows`, when given, receives the carry-save state after each row j: {"sum": {column:
    signal name or 1}, "carry": {column: signal name}} (1 = a constant-one bit). The row-by-row
    formal proof (synth/prove.py) cuts the netlist at these signals.
    """
    g = _Gates(m, prefix)
    width = 2 * bits
    S = [Const(1, 1) if (const >> c) & 1 else None for c in range(width)]
    C = [None] * (width + 1)
    for j in range(bits):
        newC = [None] * (width + 1)
        for c in range(j, j + bits):
            i = c - j
            pp = g.wire(a[i] & b[j], f"pp{i}_{j}_") if keep(i, j) else None
            ins = [x for x in (pp, S[c], C[c]) if x is not None]
            if not ins:
                continue
            s, cy = g.add(ins, f"r{j}c{c}")
            S[c] = s
            if cy is not None:
                newC[c + 1] = cy
            C[c] = None
        # every carry lands inside the next row's columns, so none is left behind
        assert all(x is None for x in C), "carry outside the next row's columns"
        C = newC
        if rows is not None:
            rows.append({"sum": {c: _bit_name(x) for c, x in enumerate(S) if x is not None},
                         "carry": {c: _bit_name(x) for c, x in enumerate(C) if x is not None}})
    out, carry = [], None
    for c in range(width):
        ins = [x for x in (S[c], C[c], carry) if x is not None]
        if not ins:
            out.append(Const(0, 1))
            carry = None
            continue
        s, carry = g.add(ins, f"f{c}")
        out.append(s)
    return out


def _bit_name(x):
    """A carry-save bit for the proof's record: its Verilog signal name, or 1 for a constant one."""
    if isinstance(x, Const):
        return x.value
    return x.name


_BITS32 = Param("bits", 8, "2..32", "operand width N (unsigned); product is 2N bits")
_BITS16 = Param("bits", 8, "2..16", "operand width N (unsigned); product is 2N bits")


def _ports(bits: int) -> dict:
    return {"a": In(bits), "b": In(bits), "p": Out(2 * bits)}


class _Mul(wiring.Component):
    def __init__(self, bits: int, hi: int):
        check_int("bits", bits, 2, hi)
        self.bits = bits
        super().__init__(_ports(bits))

    def _array(self, m, keep=lambda i, j: True, const=0):
        # the carry-save state after each row, filled when the design is elaborated (the
        # row-by-row formal proof cuts the generated netlist there)
        self.carry_save_rows = []
        m.d.comb += self.p.eq(Cat(*array_bits(m, self.a, self.b, self.bits, keep, const,
                                               rows=self.carry_save_rows)))
        return m


@design("mul-array", "exact unsigned array multiplier from gates (AND rows, carry-save adders, ripple adder)",
        (_BITS32,), family="approx-mul")
class MulArray(_Mul):
    """Combinational. Partial products a_i & b_j, one carry-save row of full/half adders per
    bit of b, final ripple-carry adder; every adder is written as explicit XOR/AND/OR gates,
    so Yosys never sees a $mul. The reference architecture mul-trunc and mul-bam are cut from."""

    def __init__(self, bits: int = 8):
        super().__init__(bits, 32)

    def elaborate(self, platform):
        return self._array(Module())


@design("mul-exact", "exact unsigned multiplier a*b, mapped by Yosys", (_BITS32,), family="approx-mul")
class MulExact(_Mul):
    """Combinational `p = a * b`; the gate-level structure is Yosys's choice."""

    def __init__(self, bits: int = 8):
        super().__init__(bits, 32)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(self.a * self.b)
        return m


@design("mul-trunc", "truncated array multiplier: partial products with i+j < k dropped, optional constant correction",
        (_BITS16, Param("k", 8, "0..2*bits", "columns dropped: every a_i b_j with i + j < k",
                          follows=lambda p: min(8, 2 * p["bits"]), follows_doc="min(8, 2*bits)"),
         Param("correction", False, "0/1", "add round(expected value of the dropped bits)", parse=parse_bool)),
        family="approx-mul")
class MulTrunc(_Mul):
    """Combinational. The mul-array structure with the partial-product bits of the k low
    columns removed. With correction, the constant round(sum_{i+j<k} 2^(i+j)/4) is added
    inside the array (its bits below column k appear directly on p)."""

    def __init__(self, bits: int = 8, k: int = 8, correction: bool = False):
        super().__init__(bits, 16)
        check_int("k", k, 0, 2 * bits)
        if not isinstance(correction, bool):
            raise TypeError(f"correction must be a boolean, not {correction!r}")
        self.k, self.correction = k, correction

    @property
    def datasheet_extra(self):
        return {"correction_constant": trunc_correction(self.bits, self.k) if self.correction else 0}

    def elaborate(self, platform):
        const = trunc_correction(self.bits, self.k) if self.correction else 0
        return self._array(Module(), lambda i, j: i + j >= self.k, const)


@design("mul-bam", "broken-array multiplier: rows j < hbl and columns i+j < vbl removed",
        (_BITS16, Param("vbl", 8, "0..2*bits-1", "vertical break line: a_i b_j kept only if i + j >= vbl",
                          follows=lambda p: min(8, 2 * p["bits"] - 1), follows_doc="min(8, 2*bits-1)"),
         Param("hbl", 0, "0..bits-1", "horizontal break line: rows b_j with j < hbl removed")),
        family="approx-mul")
class MulBam(_Mul):
    """Combinational. The mul-array structure keeping a_i b_j only where j >= hbl and i + j >= vbl
    (Mahdiani et al.'s broken-array multiplier)."""

    def __init__(self, bits: int = 8, vbl: int = 8, hbl: int = 0):
        super().__init__(bits, 16)
        check_int("vbl", vbl, 0, 2 * bits - 1)
        check_int("hbl", hbl, 0, bits - 1)
        self.vbl, self.hbl = vbl, hbl

    def elaborate(self, platform):
        return self._array(Module(), lambda i, j: j >= self.hbl and i + j >= self.vbl)


def _leading_one(m: Module, x, bits: int, name: str):
    """Position of the leading one of `x` (0 when x == 0) by a priority chain."""
    pos = Signal(range(bits), name=f"{name}_lod")
    for i in range(bits):            # later assignments win: the highest set bit
        with m.If(x[i]):
            m.d.comb += pos.eq(i)
    return pos


@design("mul-drum", "DRUM: k-bit dynamic-range segments of each operand (LSB forced to 1), k x k array multiply, shift",
        (_BITS16, Param("k", 4, "1..bits", "bits kept from each operand's leading one",
                          follows=lambda p: min(4, p["bits"]), follows_doc="min(4, bits)")),
        family="approx-mul")
class MulDrum(_Mul):
    """Combinational. Per operand: leading-one detector, right shift by s = max(t-k+1, 0) to k
    bits with the lowest kept bit forced to 1 when s > 0; the two k-bit values go through a
    k x k structural array multiplier (as mul-array) and the 2k-bit product is shifted left by
    s_a + s_b (Hashemi et al., ICCAD 2015)."""

    def __init__(self, bits: int = 8, k: int = 4):
        super().__init__(bits, 16)
        check_int("k", k, 1, self.bits)
        self.k = k

    def _segment(self, m, x, name):
        bits, k = self.bits, self.k
        t = _leading_one(m, x, bits, name)
        s = Signal(range(bits - k + 1), name=f"{name}_s")
        v = Signal(k, name=f"{name}_v")
        with m.If(t >= k):
            m.d.comb += s.eq(t - (k - 1))
        shifted = Signal(bits, name=f"{name}_shr")
        m.d.comb += shifted.eq(x >> s)
        if k == 1:   # a one-bit segment is the leading one itself: 1 unless x == 0
            m.d.comb += v.eq(x != 0)
        else:
            m.d.comb += v.eq(Cat(shifted[0] | (s != 0), shifted[1:k]))
        return v, s

    def elaborate(self, platform):
        m = Module()
        if self.k == self.bits:      # nothing is ever dropped: DRUM is the exact array
            return self._array(m)
        va, sa = self._segment(m, self.a, "a")
        vb, sb = self._segment(m, self.b, "b")
        core = Signal(2 * self.k)
        m.d.comb += core.eq(Cat(*array_bits(m, va, vb, self.k, prefix="core")))
        m.d.comb += self.p.eq(core << (sa + sb))
        return m


@design("mul-mitchell", "Mitchell logarithmic multiplier: leading-one log, fraction add, antilog shift",
        (_BITS16, Param("frac_bits", 7, "1..bits-1", "fraction bits kept of each operand's log (bits-1 = all)",
                          follows=lambda p: min(7, p["bits"] - 1), follows_doc="min(7, bits-1)")),
        family="approx-mul")
class MulMitchell(_Mul):
    """Combinational. a = 2^k1 (1 + x1): k1 from a leading-one detector, x1 = the N-1 bits below
    the leading one, left-aligned (a << (N-1-k1)), truncated to the top frac_bits = f bits.
    s = x1 + x2 with carry c; mantissa M = 1.(s mod 2^f); p = (M << (k1 + k2 + c)) >> f, the
    bits shifted below the binary point being truncated. An operand of zero gives p = 0."""

    def __init__(self, bits: int = 8, frac_bits: int = 7):
        super().__init__(bits, 16)
        check_int("frac_bits", frac_bits, 1, self.bits - 1)
        self.frac_bits = frac_bits

    def _log(self, m, x, name):
        bits, f = self.bits, self.frac_bits
        k = _leading_one(m, x, bits, name)
        sh = Signal(range(bits), name=f"{name}_sh")
        m.d.comb += sh.eq(bits - 1 - k)
        norm = Signal(bits, name=f"{name}_norm")          # leading one moved to bit N-1
        m.d.comb += norm.eq(x << sh)
        return k, norm[bits - 1 - f:bits - 1]

    def elaborate(self, platform):
        m = Module()
        bits, f = self.bits, self.frac_bits
        k1, x1 = self._log(m, self.a, "a")
        k2, x2 = self._log(m, self.b, "b")
        s = Signal(f + 1)
        m.d.comb += s.eq(x1 + x2)
        e = Signal(range(2 * bits))
        m.d.comb += e.eq(k1 + k2 + s[f])
        mant = Cat(s[:f], Const(1, 1))
        wide = Signal(2 * bits + f)
        m.d.comb += wide.eq(mant << e)
        zero = (self.a == 0) | (self.b == 0)
        m.d.comb += self.p.eq(Mux(zero, 0, wide[f:]))
        return m
