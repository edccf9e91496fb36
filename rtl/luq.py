"""The unbiased stochastic PoT quantizer of ALS-POTQ's errors (LUQ) as hardware: golden/luq.py's
`luq_fixed` on one element per clock.

An error leaves the MF-MAC as a two's-complement accumulation x (in_bits, in LSB units); the
tensor's top level is 2^kmax (kmax = ceil(log2 max|x|), from the max pass every per-tensor
scale already needs), so alpha = 2^(kmax - top). Per element: magnitude m = |x|, its leading one
p (priority encoder), lo = kmax - top; one barrel shift takes the R bits of m below bit
max(p, lo) (the fraction below the leading one inside the range, or m / alpha in underflow),
a comparator tests them against the random word r, and the exponent field is p - lo + 1 + up
(inside) or up (underflow), saturated at the top code. No multiplier.

rng = "input": r is a port (the proofs drive every word); rng = "lfsr": r comes from a
lfsr_bits-bit Fibonacci LFSR (golden/luq.py's taps) advanced rand_bits shifts per clock (one
leap-forward XOR network), seeded by reset to `seed`, so every element sees a fresh word
(golden.luq.lfsr_words). The quantized code is combinational in x, kmax and the current word;
the LFSR steps every clock `valid` is high.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.luq import DEFAULT_RAND_BITS, lfsr_taps
from golden.pot import max_exp

from .params import Param, check_choice, check_int
from .registry import design

__all__ = ["LuqQuant", "RNG_SOURCES"]

RNG_SOURCES = ("lfsr", "input")


def _kmax_bits(in_bits: int) -> int:
    return max(1, in_bits.bit_length())        # kmax in 0..in_bits


def _parse_rng(name, text):
    return check_choice(name, text.strip().lower(), RNG_SOURCES)


def leap_matrix(bits: int, steps: int) -> list[list[int]]:
    """For each state bit after `steps` shifts of golden.luq.lfsr_step, the current state bits
    whose XOR it is (a GF(2) linear map)."""
    state = [{i} for i in range(bits)]
    taps = lfsr_taps(bits)
    for _ in range(steps):
        fb = set()
        for t in taps:
            fb ^= state[t - 1]
        state = [fb] + state[:-1]
    return [sorted(s) for s in state]


@design("luq-quant", "unbiased stochastic PoT quantizer of the errors (LUQ): leading one, shift, "
        "compare with a random word, no multiplier; one element per clock",
        (Param("exp_bits", 3, "1..5", "exponent field width E of the output code (sign + E bits)"),
         Param("in_bits", 24, "2..40", "two's-complement width of the input (the accumulator's)"),
         Param("rand_bits", DEFAULT_RAND_BITS, "1..lfsr_bits", "random word width R (bias < 2^-R of a level)"),
         Param("rng", "lfsr", "lfsr/input", "the random word: an internal LFSR or the r port",
               parse=_parse_rng),
         Param("lfsr_bits", 24, "8/12/16/20/24/32", "LFSR width (rng=lfsr)"),
         Param("seed", 1, "1..2^lfsr_bits-1", "LFSR state after reset (rng=lfsr)")),
        family="mfmac")
class LuqQuant(wiring.Component):
    """code = luq_fixed(x, kmax, r); with rng=lfsr, r = the low R bits of the LFSR state (the
    state advances R shifts each clock `valid` is high)."""

    def __init__(self, exp_bits: int = 3, in_bits: int = 24, rand_bits: int = DEFAULT_RAND_BITS,
                 rng: str = "lfsr", lfsr_bits: int = 24, seed: int = 1):
        check_int("exp_bits", exp_bits, 1, 5)
        check_int("in_bits", in_bits, 2, 40)
        check_choice("rng", rng, RNG_SOURCES)
        check_int("lfsr_bits", lfsr_bits, 8, 32)
        lfsr_taps(lfsr_bits)
        check_int("rand_bits", rand_bits, 1, lfsr_bits if rng == "lfsr" else 30)
        check_int("seed", seed, 1, (1 << lfsr_bits) - 1)
        self.exp_bits, self.in_bits, self.rand_bits = exp_bits, in_bits, rand_bits
        self.rng, self.lfsr_bits, self.seed = rng, lfsr_bits, seed
        ports = {"x": In(signed(in_bits)), "kmax": In(_kmax_bits(in_bits)), "code": Out(exp_bits + 1)}
        if rng == "input":
            ports["r"] = In(rand_bits)
        else:
            ports["valid"] = In(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        E, W, R = self.exp_bits, self.in_bits, self.rand_bits
        top = max_exp(E)
        if self.rng == "input":
            r = self.r
        else:
            state = Signal(self.lfsr_bits, init=self.seed)
            nxt = Signal(self.lfsr_bits)
            rows = leap_matrix(self.lfsr_bits, R)
            m.d.comb += nxt.eq(Cat(*[_xor(state, row) for row in rows]))
            with m.If(self.valid):
                m.d.sync += state.eq(nxt)
            r = state[:R]
        neg = self.x[W - 1]
        mag = Signal(W)
        m.d.comb += mag.eq(Mux(neg, -self.x, self.x))
        # leading one p (priority encoder, highest bit wins) and nonzero
        pb = max(1, (W - 1).bit_length())
        p = Signal(pb)
        for i in range(W):
            with m.If(mag[i]):
                m.d.comb += p.eq(i)
        nz = mag != 0
        lo = Signal(signed(_kmax_bits(W) + 2))
        m.d.comb += lo.eq(self.kmax - top)
        inside = Signal()
        m.d.comb += inside.eq(nz & (p >= lo))
        pos = Signal(signed(len(lo) + 1))
        m.d.comb += pos.eq(Mux(inside, p, Mux(lo < 0, 0, lo)))
        # the R bits of mag below bit pos: (mag << R) >> pos, low R bits
        wide = Signal(W + R)
        m.d.comb += wide.eq(Cat(Const(0, R), mag))
        shifted = Signal(W + R)
        m.d.comb += shifted.eq(wide >> pos[:max(1, (W + R).bit_length())])
        up = Signal()
        m.d.comb += up.eq(r < shifted[:R])          # m = 0: shifted is 0, never up
        e_in = Signal(signed(pb + len(lo) + 2))
        m.d.comb += e_in.eq(p - lo + 1 + up)
        e = Signal(E + 1)
        with m.If(inside):
            m.d.comb += e.eq(Mux(e_in > top + 1, top + 1, e_in))
        with m.Else():
            m.d.comb += e.eq(up)
        m.d.comb += self.code.eq(Cat(e[:E], neg & (e != 0)))
        return m


def _xor(state, idx):
    out = state[idx[0]]
    for i in idx[1:]:
        out = out ^ state[i]
    return out
