"""MF-MAC of ALS-POTQ: power-of-two code products by sign XOR and exponent add.

No multiplier anywhere: the exponent sum is decoded into a one-hot magnitude
(a shift of 1) and added to or subtracted from the accumulator.
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.pot import max_exp, product_bits

from .params import Param, check_int, parse_bool
from .registry import design

__all__ = ["PotProduct", "MfmacPe", "MfmacArray"]


def _check_pot(exp_bits, acc_bits):
    check_int("exp_bits", exp_bits, 1, 5)
    check_int("acc_bits", acc_bits, product_bits(exp_bits), 64)


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


_POT_PARAMS = (
    Param("exp_bits", 3, "1..5", "exponent field width E (code = sign + E bits)"),
    Param("acc_bits", 24, "2^(E+1)-2..64", "two's-complement accumulator width (wraps)",
          follows=lambda p: max(24, product_bits(p["exp_bits"])), follows_doc="max(24, 2^(E+1)-2)"),
)


_ACC_PARAM = Param("accumulator", "serial", "serial/tree2/tree4/tree8/tree16",
                   "serial: one product per clock; treeC: C products per clock (C codes per operand "
                   "element) in sign-split one-hot trees, one add (golden/pot_acc.py)",
                   parse=lambda n, t: _parse_accumulator(n, t))


@design("mfmac-pe", "PoT multiplication-free MAC: acc += (-1)^(sx^sw) 2^(ex+ew-2), no multiplier",
        _POT_PARAMS + (Param("pipeline", False, "0/1", "register the signed product before the accumulator "
                             "add (latency 2, a shorter clock path)", parse=parse_bool),
                       _ACC_PARAM),
        family="mfmac", op_count=lambda p: _acc_chunk(p.get("accumulator", "serial")))
class MfmacPe(wiring.Component):
    """One MF-MAC processing element.

    On each clock: if `clear`, acc <- (valid ? x*w : 0); elif `valid`, acc <- acc + x*w.
    `acc` shows the result one cycle after the inputs (`latency` = 1). With `pipeline`, the
    signed product (and valid, clear) is registered first and the accumulator updates one
    clock later (`latency` = 2): the clock path is then the accumulator's two-input add,
    as in int-mac, instead of product decode plus a three-input add.
    """
    latency = 1

    def __init__(self, exp_bits: int = 3, acc_bits: int = 24, pipeline: bool = False,
                 accumulator: str = "serial"):
        _check_pot(exp_bits, acc_bits)
        if not isinstance(pipeline, bool):
            raise TypeError(f"pipeline must be a boolean (0/1), not {pipeline!r}")
        self.exp_bits, self.acc_bits, self.pipeline = exp_bits, acc_bits, pipeline
        self.latency = 2 if pipeline else 1
        # treeC: C products per clock, x and w carry C codes (element j = step j of the chunk)
        self.accumulator, self.chunk = accumulator, _acc_chunk(accumulator)
        if pipeline and self.chunk > 1:
            raise ValueError(f"pipeline applies to accumulator=serial only, got accumulator={accumulator}")
        code = exp_bits + 1 if self.chunk == 1 else data.ArrayLayout(exp_bits + 1, self.chunk)
        super().__init__({
            "x": In(code), "w": In(code),
            "valid": In(1), "clear": In(1),
            "acc": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        if self.chunk > 1:
            from .pot_acc import elaborate_tree
            return elaborate_tree(self)
        m = Module()
        if self.pipeline:
            return self._elaborate_pipelined(m)
        m.submodules.prod = prod = PotProduct(self.exp_bits)
        m.d.comb += [prod.x.eq(self.x), prod.w.eq(self.w)]
        # conditional negation folded into the adder: acc + (mag ^ s..s) + s
        term = Signal(self.acc_bits)
        m.d.comb += term.eq(prod.mag ^ Cat(*([prod.sign] * self.acc_bits)))
        acc = Signal(signed(self.acc_bits))
        base = Mux(self.clear, 0, acc)
        with m.If(self.valid):
            m.d.sync += acc.eq(base + term + prod.sign)
        with m.Elif(self.clear):
            m.d.sync += acc.eq(0)
        m.d.comb += self.acc.eq(acc)
        return m

    def _elaborate_pipelined(self, m):
        # stage 1: the signed product and the controls. Each bit is a function of the two
        # exponent fields and the sign only, written as a truth table (no exponent adder, so
        # no carry chain: the LUT mapper sees plain logic). -2^k in two's complement is every
        # bit from k up set.
        E, n = self.exp_bits, self.acc_bits
        pos, neg = Signal(n), Signal(n)
        with m.Switch(Cat(self.x[:E], self.w[:E])):
            for ex in range(1 << E):
                for ew in range(1 << E):
                    if ex and ew:
                        k = ex + ew - 2
                        with m.Case(ex | (ew << E)):
                            m.d.comb += [pos.eq(1 << k), neg.eq(((1 << n) - 1) ^ ((1 << k) - 1))]
        sign = self.x[E] ^ self.w[E]
        term = Signal(signed(n))
        valid, clear = Signal(), Signal()
        m.d.sync += [term.eq(Mux(sign, neg, pos)), valid.eq(self.valid), clear.eq(self.clear)]
        # stage 2: the accumulator, a two-input add as in int-mac
        acc = Signal(signed(n))
        with m.If(clear):
            m.d.sync += acc.eq(Mux(valid, term, 0))
        with m.Elif(valid):
            m.d.sync += acc.eq(acc + term)
        m.d.comb += self.acc.eq(acc)
        return m


def _acc_chunk(accumulator) -> int:
    from golden.pot_acc import chunk
    return chunk(accumulator)


def _parse_accumulator(name, text):
    from .pot_acc import parse_accumulator
    return parse_accumulator(name, text)


def _check_dim(name, value):
    return check_int(name, value, 1, 64)


@design("mfmac-array", "rows x cols outer-product array of MF-MAC PEs: C += A[:,k] (x) B[k,:] per step",
        (Param("rows", 4, "1..64", "output tile rows"),
         Param("cols", 4, "1..64", "output tile columns")) + _POT_PARAMS + (_ACC_PARAM,),
        family="mfmac", op_count=lambda p: p["rows"] * p["cols"] * _acc_chunk(p.get("accumulator", "serial")))
class MfmacArray(wiring.Component):
    """Output-stationary array: PE(i, j) accumulates sum_k A[i,k] * B[k,j].

    Streaming protocol: for k = 0..K-1 present column k of A on `a` (row i in
    element i) and row k of B on `b` (column j in element j) with `valid`
    high; raise `clear` with the first step of a new tile. One cycle after the
    last step `c` holds C (element i*cols + j). Forward W.x, backward W^T.d and
    weight-gradient d.x^T products differ only in which operands are fed.
    With accumulator=treeC each clock takes a chunk of C steps k0..k0+C-1: element
    i*C + j of `a` is A[i, k0+j], element j*C + jj of `b` is B[k0+jj, j].
    """
    latency = 1

    def __init__(self, rows: int = 4, cols: int = 4, exp_bits: int = 3, acc_bits: int = 24,
                 accumulator: str = "serial"):
        _check_dim("rows", rows)
        _check_dim("cols", cols)
        _check_pot(exp_bits, acc_bits)
        self.rows, self.cols, self.exp_bits, self.acc_bits = rows, cols, exp_bits, acc_bits
        self.accumulator, self.chunk = accumulator, _acc_chunk(accumulator)
        super().__init__({
            "a": In(data.ArrayLayout(exp_bits + 1, rows * self.chunk)),
            "b": In(data.ArrayLayout(exp_bits + 1, cols * self.chunk)),
            "valid": In(1), "clear": In(1),
            "c": Out(data.ArrayLayout(signed(acc_bits), rows * cols)),
        })

    def elaborate(self, platform):
        m = Module()
        for i in range(self.rows):
            for j in range(self.cols):
                pe = MfmacPe(self.exp_bits, self.acc_bits, accumulator=self.accumulator)
                m.submodules[f"pe_{i}_{j}"] = pe
                c = self.chunk
                m.d.comb += [
                    pe.x.eq(Cat(*(self.a[i * c + jj] for jj in range(c)))),
                    pe.w.eq(Cat(*(self.b[j * c + jj] for jj in range(c)))),
                    pe.valid.eq(self.valid), pe.clear.eq(self.clear),
                    self.c[i * self.cols + j].eq(pe.acc),
                ]
        return m
