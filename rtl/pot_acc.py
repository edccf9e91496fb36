"""MF-MAC tree accumulators (golden/pot_acc.py defines them): C PoT products per clock,
split by sign into two unsigned one-hot adder trees, one narrow subtract, one acc_bits add.

Why: in the serial PE the 24-bit register, its clock and a sign-extended addend that flips
every high bit whenever the product's sign changes cost ~90% of a MAC. A tree shares the
register and its clock among C MACs and never sign-extends inside the tree (each tree adds
non-negative one-hot magnitudes, whose sums change in few bits).
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed

from golden.pot_acc import ACCUMULATORS, check_accumulator

from .pot_product import PotProduct

__all__ = ["parse_accumulator", "elaborate_tree"]


def parse_accumulator(name: str, text: str) -> str:
    if text not in ACCUMULATORS:
        raise ValueError(f"{name} must be one of {', '.join(ACCUMULATORS)}, got {text!r}")
    return text


def _tree(m: Module, terms: list, label: str):
    """Unsigned adder tree over `terms` (each level one bit wider)."""
    level = 0
    while len(terms) > 1:
        nxt = []
        for i in range(0, len(terms) - 1, 2):
            s = Signal(max(len(terms[i]), len(terms[i + 1])) + 1, name=f"{label}_l{level}_{i // 2}")
            m.d.comb += s.eq(terms[i] + terms[i + 1])
            nxt.append(s)
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms, level = nxt, level + 1
    return terms[0]


def elaborate_tree(pe) -> Module:
    """The body of an MfmacPe whose accumulator is treeC (pe.x, pe.w: arrays of C codes)."""
    check_accumulator(pe.accumulator)
    m = Module()
    pos, neg = [], []
    for j in range(pe.chunk):
        prod = PotProduct(pe.exp_bits)
        m.submodules[f"prod{j}"] = prod
        m.d.comb += [prod.x.eq(pe.x[j]), prod.w.eq(pe.w[j])]
        width = len(prod.mag)
        p, n = Signal(width, name=f"pos{j}"), Signal(width, name=f"neg{j}")
        # the sign routes the one-hot magnitude into one tree; the other sees 0
        m.d.comb += [p.eq(prod.mag & Cat(*([~prod.sign] * width))),
                     n.eq(prod.mag & Cat(*([prod.sign] * width)))]
        pos.append(p)
        neg.append(n)
    P, N = _tree(m, pos, "pos"), _tree(m, neg, "neg")
    d = Signal(signed(len(P) + 1))
    m.d.comb += d.eq(P - N)
    acc = Signal(signed(pe.acc_bits))
    base = Mux(pe.clear, 0, acc)
    with m.If(pe.valid):
        m.d.sync += acc.eq(base + d)
    with m.Elif(pe.clear):
        m.d.sync += acc.eq(0)
    m.d.comb += pe.acc.eq(acc)
    return m
