"""Alphabet Set Multipliers: a shared pre-computer bank and select-shift-add lanes.

The bank multiplies x once by every alphabet member with shifts and one
adder/subtractor per member (golden.asm.bank_plan); each lane selects one
multiple per weight quartet, shifts it by s and by 4j, adds the quartets and
applies the weight's sign. No multiplier anywhere. The arithmetic and the
encoded-weight layout are documented in golden/asm.py.

Reusable pieces for tiles: `AsmPrecomputeBank` (one per broadcast x) feeding
any number of `AsmLane`s (one per weight).
"""
from __future__ import annotations

from amaranth import Array, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.asm import (bank_plan, check_w_bits, encoded_bits, index_bits, parse_alphabet,
                        product_bits, quartet_field_bits, representable)

from .params import Param, check_int, parse_int_list
from .registry import design

__all__ = ["AsmPrecomputeBank", "AsmLane", "AsmMul", "AsmPeRow", "bank_width", "quartet_term_bits"]


def bank_width(x_bits: int) -> int:
    """Width of every bank output: a*x for a <= 15 fits in x_bits + 4 signed bits."""
    return x_bits + 4


def quartet_term_bits(x_bits: int) -> int:
    """Width of a lane's quartet term q_j = bank[idx_j] << s_j (signed; s_j <= 3)."""
    return bank_width(x_bits) + 3


def _check_common(x_bits, w_bits, alphabet) -> tuple[int, int, tuple[int, ...]]:
    check_int("x_bits", x_bits, 2, 24)
    check_w_bits(w_bits)
    return x_bits, w_bits, parse_alphabet(alphabet)


class AsmPrecomputeBank(wiring.Component):
    """x -> a*x for every alphabet member a (element i = member i of the sorted alphabet).

    Shifts and one adder or subtractor per non-trivial member (plus a helper
    multiple when a member needs one), as listed by golden.asm.bank_plan.
    """

    def __init__(self, x_bits: int = 8, alphabet=(1, 3, 5, 7)):
        check_int("x_bits", x_bits, 2, 24)
        self.x_bits, self.alphabet = x_bits, parse_alphabet(alphabet)
        self.plan = bank_plan(self.alphabet)
        super().__init__({
            "x": In(signed(x_bits)),
            "m": Out(data.ArrayLayout(signed(bank_width(x_bits)), len(self.alphabet))),
        })

    @property
    def adders(self) -> int:
        return len(self.plan)

    def elaborate(self, platform):
        m = Module()
        w = bank_width(self.x_bits)
        mult = {1: self.x}
        for st in self.plan:
            sig = Signal(signed(w), name=f"x{st.dst}")
            lhs = mult[st.lhs] << st.lshift
            rhs = mult[st.rhs] << st.rshift
            # exact: |dst * x| < 2^(x_bits + 3), so truncating to x_bits + 4 bits loses nothing
            m.d.comb += sig.eq(lhs + rhs if st.sign > 0 else lhs - rhs)
            mult[st.dst] = sig
        for i, a in enumerate(self.alphabet):
            m.d.comb += self.m[i].eq(mult[a])
        return m


class AsmLane(wiring.Component):
    """One weight's select-shift-add: bank multiples + encoded weight -> sign, magnitude, product.

    mag = sum_j nz_j * (bank[idx_j] << s_j) << 4j (signed, x_bits + w_bits bits);
    p = sign ? -mag : mag. A PE folds the sign into its accumulator adder instead of using p.
    """

    def __init__(self, x_bits: int = 8, w_bits: int = 8, alphabet=(1, 3, 5, 7)):
        self.x_bits, self.w_bits, self.alphabet = _check_common(x_bits, w_bits, alphabet)
        P = product_bits(x_bits, w_bits)
        super().__init__({
            "bank": In(data.ArrayLayout(signed(bank_width(x_bits)), len(self.alphabet))),
            "w": In(encoded_bits(self.alphabet, w_bits)),
            "sign": Out(1),
            "mag": Out(signed(P)),
            "p": Out(signed(P)),
        })

    @property
    def quartet_bits(self) -> int:
        return quartet_term_bits(self.x_bits)

    def elaborate(self, platform):
        m = Module()
        n = len(self.alphabet)
        ib = index_bits(self.alphabet)
        F = quartet_field_bits(self.alphabet)
        Q = self.w_bits // 4
        members = [self.bank[i] for i in range(n)]
        terms = []
        for j in range(Q):
            field = self.w[j * F:(j + 1) * F]
            shift, nz = field[:2], field[ib + 2]
            sel = Array(members)[field[2:2 + ib]] if n > 1 else members[0]
            q = Signal(signed(self.quartet_bits), name=f"q{j}")
            m.d.comb += q.eq(Mux(nz, sel << shift, 0))
            terms.append(q << (4 * j))
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        # exact for every word the encoder defines: |mag| < 2^(x_bits + w_bits - 1)
        m.d.comb += [
            self.mag.eq(total),
            self.sign.eq(self.w[Q * F]),
            self.p.eq(Mux(self.sign, -self.mag, self.mag)),
        ]
        return m


def _sheet(alphabet, x_bits, w_bits) -> dict:
    F = quartet_field_bits(alphabet)
    Q = w_bits // 4
    ib = index_bits(alphabet)
    layout = []
    for j in range(Q):
        b = j * F
        layout.append(f"bits {b + 1}..{b}: quartet {j} shift s")
        if ib:
            layout.append(f"bits {b + ib + 1}..{b + 2}: quartet {j} alphabet index")
        layout.append(f"bit {b + ib + 2}: quartet {j} nonzero flag")
    layout.append(f"bit {Q * F}: sign")
    reps = representable(alphabet, w_bits)
    return {
        "alphabet": list(alphabet),
        "encoded_bits": encoded_bits(alphabet, w_bits),
        "encoded_weight_layout": layout,
        "bank_adders": len(bank_plan(alphabet)),
        "bank_plan": [str(s) for s in bank_plan(alphabet)],
        "representable_magnitudes": int(reps.size),
        "representable_fraction": round(reps.size / (1 << w_bits), 6),
    }


_ASM_PARAMS = (
    Param("x_bits", 8, "2..24", "activation width (signed two's complement)"),
    Param("w_bits", 8, "4, 8, 12", "weight magnitude width (sign + magnitude, in 4-bit quartets)"),
    Param("alphabet", (1, 3, 5, 7), "odd members of 1..15 including 1", "alphabet set, e.g. 1,3",
          parse=parse_int_list),
)


@design("asm-mul", "alphabet set multiplier: pre-computer bank + one select-shift-add lane, no multiplier",
        _ASM_PARAMS, family="asm")
class AsmMul(wiring.Component):
    """Combinational p = x * w for an encoded weight w (layout in golden/asm.py and `encoded_weight_layout`).

    The result is exact for every word that `ecomac asm encode` emits; other words are undefined.
    """

    def __init__(self, x_bits: int = 8, w_bits: int = 8, alphabet=(1, 3, 5, 7)):
        self.x_bits, self.w_bits, self.alphabet = _check_common(x_bits, w_bits, alphabet)
        super().__init__({
            "x": In(signed(x_bits)),
            "w": In(encoded_bits(self.alphabet, w_bits)),
            "p": Out(signed(product_bits(x_bits, w_bits))),
        })

    def datasheet_extra(self) -> dict:
        return _sheet(self.alphabet, self.x_bits, self.w_bits)

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = AsmPrecomputeBank(self.x_bits, self.alphabet)
        m.submodules.lane = lane = AsmLane(self.x_bits, self.w_bits, self.alphabet)
        m.d.comb += [bank.x.eq(self.x), lane.bank.eq(bank.m), lane.w.eq(self.w), self.p.eq(lane.p)]
        return m


@design("asm-pe-row", "row of ASM MAC lanes sharing one pre-computer bank: acc[i] += x * w[i]",
        _ASM_PARAMS + (
            Param("lanes", 4, "1..64", "lanes (weights / accumulators) sharing the bank"),
            Param("acc_bits", 24, "x_bits+w_bits..64", "two's-complement accumulator width (wraps)",
                  follows=lambda p: max(24, p["x_bits"] + p["w_bits"]), follows_doc="max(24, x_bits+w_bits)")),
        family="asm", op_count=lambda p: p["lanes"])
class AsmPeRow(wiring.Component):
    """`lanes` MACs that share one broadcast activation x and one pre-computer bank.

    On each clock, for every lane i: if `clear`, acc[i] <- (valid ? x*w[i] : 0);
    elif `valid`, acc[i] <- acc[i] + x*w[i]; `acc` shows the result one cycle after
    the inputs (`latency` = 1). The weight's sign is folded into the accumulator
    adder: acc + (mag ^ sign..sign) + sign.
    """
    latency = 1

    def __init__(self, x_bits: int = 8, w_bits: int = 8, alphabet=(1, 3, 5, 7), lanes: int = 4,
                 acc_bits: int = 24):
        self.x_bits, self.w_bits, self.alphabet = _check_common(x_bits, w_bits, alphabet)
        check_int("lanes", lanes, 1, 64)
        check_int("acc_bits", acc_bits, product_bits(x_bits, w_bits), 64)
        self.lanes, self.acc_bits = lanes, acc_bits
        super().__init__({
            "x": In(signed(x_bits)),
            "w": In(data.ArrayLayout(encoded_bits(self.alphabet, w_bits), lanes)),
            "valid": In(1), "clear": In(1),
            "acc": Out(data.ArrayLayout(signed(acc_bits), lanes)),
        })

    def datasheet_extra(self) -> dict:
        return _sheet(self.alphabet, self.x_bits, self.w_bits)

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = AsmPrecomputeBank(self.x_bits, self.alphabet)
        m.d.comb += bank.x.eq(self.x)
        for i in range(self.lanes):
            lane = AsmLane(self.x_bits, self.w_bits, self.alphabet)
            m.submodules[f"lane{i}"] = lane
            m.d.comb += [lane.bank.eq(bank.m), lane.w.eq(self.w[i])]
            mag = Signal(signed(self.acc_bits), name=f"mag{i}")
            term = Signal(self.acc_bits, name=f"term{i}")
            m.d.comb += [mag.eq(lane.mag), term.eq(mag ^ lane.sign.replicate(self.acc_bits))]
            acc = Signal(signed(self.acc_bits), name=f"acc{i}")
            base = Mux(self.clear, 0, acc)
            with m.If(self.valid):
                m.d.sync += acc.eq(base + term + lane.sign)
            with m.Elif(self.clear):
                m.d.sync += acc.eq(0)
            m.d.comb += self.acc[i].eq(acc)
        return m


# ---- compact weight storage: the decoder next to the lanes (golden.asm.compact_to_control) ----
class AsmWeightDecoder(wiring.Component):
    """Compact stored weight (sign + index into the representable magnitudes) -> the lane's
    control word (golden/asm.py's encoded word). A ROM over the index (out-of-range indices
    give magnitude 0) and the sign passed through unless the magnitude is 0 (canonical 0)."""

    def __init__(self, w_bits: int = 8, alphabet=(1, 3, 5, 7)):
        from golden.asm import compact_bits, compact_index_bits
        self.w_bits = check_w_bits(w_bits)
        self.alphabet = parse_alphabet(alphabet)
        self.index_bits = compact_index_bits(self.alphabet, self.w_bits)
        super().__init__({"c": In(compact_bits(self.alphabet, self.w_bits)),
                          "w": Out(encoded_bits(self.alphabet, self.w_bits))})

    def elaborate(self, platform):
        from golden.asm import compact_to_control, representable
        m = Module()
        ib, n = self.index_bits, representable(self.alphabet, self.w_bits).size
        top = len(self.w) - 1                      # the control word's sign bit
        words = compact_to_control(list(range(1 << ib)), self.alphabet, self.w_bits)  # positive: sign 0
        mag = Signal(top)
        with m.Switch(self.c[:ib]):
            for i in range(1, n):
                with m.Case(i):
                    m.d.comb += mag.eq(int(words[i]))
        nonzero = (self.c[:ib] != 0) & (self.c[:ib] < n)
        m.d.comb += self.w.eq(mag | ((self.c[ib] & nonzero) << top))
        return m
