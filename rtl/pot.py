"""MF-MAC of ALS-POTQ: power-of-two code products by sign XOR and exponent add.

No multiplier anywhere: the exponent sum is decoded into a one-hot magnitude
(a shift of 1) and added to or subtracted from the accumulator.
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.pot import product_bits
from golden.pot_acc import chunk

from .params import Param, check_int, parse_bool
from .pot_acc import elaborate_tree, parse_accumulator
from .pot_product import PotProduct
from .registry import design

__all__ = ["PotProduct", "MfmacPe", "MfmacArray"]


def _check_pot(exp_bits, acc_bits):
    check_int("exp_bits", exp_bits, 1, 5)
    check_int("acc_bits", acc_bits, product_bits(exp_bits), 64)


_POT_PARAMS = (
    Param("exp_bits", 3, "1..5", "exponent field width E (code = sign + E bits)"),
    Param("acc_bits", 24, "2^(E+1)-2..64", "two's-complement accumulator width (wraps)",
          follows=lambda p: max(24, product_bits(p["exp_bits"])), follows_doc="max(24, 2^(E+1)-2)"),
)


_ACC_PARAM = Param("accumulator", "serial", "serial/tree2/tree4/tree8/tree16",
                   "serial: one product per clock; treeC: C products per clock (C codes per operand "
                   "element) in sign-split one-hot trees, one add (golden/pot_acc.py)",
                   parse=parse_accumulator)


@design("mfmac-pe", "PoT multiplication-free MAC: acc += (-1)^(sx^sw) 2^(ex+ew-2), no multiplier",
        _POT_PARAMS + (Param("pipeline", 0, "0..2", "register stages added to shorten the clock path: 1 = "
                             "the signed product registered before the accumulator add (latency 2); 2 = also "
                             "the accumulator split in two halves, the low half's carry registered into the "
                             "high half (latency 3)", parse=lambda n, t: _parse_pipeline(n, t)),
                       _ACC_PARAM),
        family="mfmac", op_count=lambda p: _acc_chunk(p.get("accumulator", "serial")))
class MfmacPe(wiring.Component):
    """One MF-MAC processing element.

    On each clock: if `clear`, acc <- (valid ? x*w : 0); elif `valid`, acc <- acc + x*w.
    `acc` shows the result one cycle after the inputs (`latency` = 1). With `pipeline` = 1, the
    signed product (and valid, clear) is registered first and the accumulator updates one
    clock later (`latency` = 2): the clock path is then the accumulator's two-input add,
    as in int-mac, instead of product decode plus a three-input add. With `pipeline` = 2 the
    accumulator is also split: the low half adds at stage 2 and registers its carry, the high
    half adds that carry at stage 3, and the low half is delayed one clock to meet it
    (`latency` = 3; `acc` is the plain accumulator one clock later): the clock path is then a
    half-width add.
    """
    latency = 1

    def __init__(self, exp_bits: int = 3, acc_bits: int = 24, pipeline: int = 0,
                 accumulator: str = "serial"):
        _check_pot(exp_bits, acc_bits)
        # False/True are the 0/1 of the former boolean parameter
        check_int("pipeline", int(pipeline) if isinstance(pipeline, bool) else pipeline, 0, 2)
        self.exp_bits, self.acc_bits, self.pipeline = exp_bits, acc_bits, int(pipeline)
        self.latency = 1 + self.pipeline
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
        if self.pipeline == 2:
            return self._elaborate_split(m, term, valid, clear)
        # stage 2: the accumulator, a two-input add as in int-mac
        acc = Signal(signed(n))
        with m.If(clear):
            m.d.sync += acc.eq(Mux(valid, term, 0))
        with m.Elif(valid):
            m.d.sync += acc.eq(acc + term)
        m.d.comb += self.acc.eq(acc)
        return m

    def _elaborate_split(self, m, term, valid, clear):
        # stages 2 and 3: the accumulator as two halves, so no carry chain is longer than half
        # the width. Stage 2 adds the low half and registers its carry out (0 unless it added),
        # stage 3 adds the high half of the same term plus that carry; the low half is delayed
        # one clock so that acc = {hi, lo delayed} is the whole accumulator one clock late.
        n = self.acc_bits
        lo_bits = (n + 1) // 2
        lo, carry = Signal(lo_bits, name="lo"), Signal(name="carry")
        lo_sum = Signal(lo_bits + 1, name="lo_sum")
        m.d.comb += lo_sum.eq(Mux(clear, 0, lo) + term[:lo_bits])
        with m.If(valid):
            m.d.sync += lo.eq(lo_sum[:lo_bits])
        with m.Elif(clear):
            m.d.sync += lo.eq(0)
        m.d.sync += carry.eq(valid & lo_sum[lo_bits])
        term_hi, lo_late = Signal(n - lo_bits, name="term_hi"), Signal(lo_bits, name="lo_late")
        valid_hi, clear_hi = Signal(name="valid_hi"), Signal(name="clear_hi")
        m.d.sync += [term_hi.eq(term[lo_bits:]), valid_hi.eq(valid), clear_hi.eq(clear), lo_late.eq(lo)]
        hi = Signal(n - lo_bits, name="hi")
        # hi + term_hi + carry as one two-input add: the carry enters below both operands'
        # lowest bits (c + c carries c into bit 1), so the mapper builds one carry chain
        hi_sum = Signal(n - lo_bits + 1, name="hi_sum")
        m.d.comb += hi_sum.eq(Cat(carry, Mux(clear_hi, 0, hi)) + Cat(carry, term_hi))
        with m.If(valid_hi):
            m.d.sync += hi.eq(hi_sum[1:])
        with m.Elif(clear_hi):
            m.d.sync += hi.eq(0)
        m.d.comb += self.acc.eq(Cat(lo_late, hi))
        return m


def _parse_pipeline(name, text):
    low = text.strip().lower()
    if low in ("true", "yes", "on", "false", "no", "off"):     # the former boolean spellings
        return int(parse_bool(name, low))
    try:
        return int(low, 10)
    except ValueError:
        raise ValueError(f"{name} must be 0, 1 or 2 (register stages added), got {text!r}") from None


def _acc_chunk(accumulator) -> int:
    return chunk(accumulator)


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
