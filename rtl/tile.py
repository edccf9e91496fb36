"""Compute tiles y = W.x around a selectable MAC datapath: von Neumann, near-memory, in-memory.

All three tiles share one interface (see `_Tile`) and one stream controller; they
differ in where the weights live and how they reach the arithmetic:

  tile-vn    PE row + a separate weight memory of bus-word slices; for every x element
             its weight row crosses a `bus_bits` bus into the PEs' weight register,
             one slice per beat (the von Neumann baseline).
  tile-near  one weight memory beside the PE row (one row = one weight per lane); a
             single row read feeds every lane in the same cycle.
  tile-in    each lane's weights are a column sub-array; a small bank inside the array
             holds the multiples of the current x (int: x, 3x; asm: a*x for the
             alphabet; mfmac: x's sign and one-hot magnitude) and the stored weight
             codes act as the bank's read selectors; the shifts are in the periphery.

The tile-level golden model (memory/bus/bank counts included) is golden/tile.py;
docs/tiles.md is the design note.
"""
from __future__ import annotations

from amaranth import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden import pot as gpot
from golden.tile import DATAPATHS, TileSpec, spec

from .asm import AsmLane, AsmPeRow, AsmPrecomputeBank, AsmWeightDecoder, bank_width
from .intmac import IntMac
from .params import Param, parse_int_list
from .pot import MfmacPe
from .registry import design

__all__ = ["PeRow", "InMemoryRow", "TileVn", "TileNear", "TileIn", "COUNTER_BITS"]

COUNTER_BITS = 32


def _text(name: str, text: str) -> str:
    return text.strip()


def _x_shape(s: TileSpec):
    return signed(s.x_bits) if s.x_signed else unsigned(s.x_bits)


def _accumulate(m: Module, name: str, term, add_one, valid, clear, acc_bits: int):
    """The shared PE accumulator: if clear: acc <- valid ? t : 0; elif valid: acc <- acc + t."""
    acc = Signal(signed(acc_bits), name=name)
    base = Mux(clear, 0, acc)
    with m.If(valid):
        m.d.sync += acc.eq(base + term + add_one)
    with m.Elif(clear):
        m.d.sync += acc.eq(0)
    return acc


def _row_signature(s: "TileSpec", **extra) -> dict:
    """Ports every compute row shares: broadcast x, one weight word and one accumulator per lane."""
    return {"x": In(_x_shape(s)), **extra,
            "w": In(data.ArrayLayout(s.w_width, s.lanes)),
            "valid": In(1), "clear": In(1),
            "acc": Out(data.ArrayLayout(signed(s.acc_bits), s.lanes))}


def _asm_control_words(m: Module, s: TileSpec, w) -> list:
    """Each lane's asm control word: the stored word itself, or (weight_storage=index) the
    compact word through one AsmWeightDecoder per lane. Every lane reads its weight in the
    same cycle, so a decoder shared by the row would have to serialize the lanes."""
    if s.weight_storage != "index":
        return [w[l] for l in range(s.lanes)]
    out = []
    for l in range(s.lanes):
        dec = AsmWeightDecoder(s.w_bits, s.alphabet)
        m.submodules[f"wdec{l}"] = dec
        m.d.comb += dec.c.eq(w[l])
        out.append(dec.w)
    return out


class PeRow(wiring.Component):
    """`lanes` PEs of the datapath sharing a broadcast x (the compute of tile-vn and tile-near).

    int: one `int-mac` per lane (operands sign-extended to max(x_bits, w_bits));
    mfmac: one `mfmac-pe` per lane; asm: one `asm-pe-row` (one shared pre-computer bank).
    Contract of every PE: acc[l] updates on the clock after x, w, valid, clear.
    """
    latency = 1

    def __init__(self, s: TileSpec):
        self.s = s
        super().__init__(_row_signature(s))

    def elaborate(self, platform):
        m = Module()
        s = self.s
        if s.datapath == "asm":
            m.submodules.pes = row = AsmPeRow(s.x_bits, s.w_bits, s.alphabet, s.lanes, s.acc_bits)
            m.d.comb += [row.x.eq(self.x), row.w.eq(Cat(*_asm_control_words(m, s, self.w))), row.valid.eq(self.valid),
                         row.clear.eq(self.clear), self.acc.eq(row.acc)]
            return m
        for l in range(s.lanes):
            if s.datapath == "int":
                pe = IntMac(max(s.x_bits, s.w_bits), s.acc_bits)
                w = self.w[l].as_signed()
            else:
                pe = MfmacPe(s.exp_bits, s.acc_bits)
                w = self.w[l]
            m.submodules[f"pe{l}"] = pe
            m.d.comb += [pe.x.eq(self.x), pe.w.eq(w), pe.valid.eq(self.valid),
                         pe.clear.eq(self.clear), self.acc[l].eq(pe.acc)]
        return m


class InMemoryRow(wiring.Component):
    """The compute of tile-in: a bank of x multiples written once per x element, read by
    every lane with its stored weight code as the selector, shifted in the periphery.

    Cycle t: `bank_we` writes the bank from `x`. Cycle t+1: `w` (the codes read from the
    lanes' sub-arrays), `valid`, `clear` -> acc[l] updates at the end of t+1.
      int   bank {x, 3x}; w (two's complement, sign-extended to an even width) is read as
            radix-4 digits, digit d selecting 0, x, x<<1 or 3x, the top digit signed
            (0, x, -(x<<1), -x); each digit's entry is shifted by 2i.
      mfmac bank = sign of x and its one-hot magnitude 2^(ex-1); the weight exponent ew
            shifts it by ew-1, the signs XOR (0 when either exponent field is 0).
      asm   bank = a*x for each alphabet member (the `asm-pe-row` pre-computer, once
            per x); each weight quartet selects a member, shifted by s and 4j.
    """
    latency = 1

    def __init__(self, s: TileSpec):
        self.s = s
        super().__init__(_row_signature(s, bank_we=In(1)))

    def elaborate(self, platform):
        m = Module()
        s = self.s
        getattr(self, f"_elaborate_{s.datapath}")(m)
        return m

    def _lanes_out(self, m, terms):
        """terms[l] = (term, add_one) added to lane l's accumulator."""
        for l, (term, one) in enumerate(terms):
            acc = _accumulate(m, f"acc{l}", term, one, self.valid, self.clear, self.s.acc_bits)
            m.d.comb += self.acc[l].eq(acc)

    def _elaborate_int(self, m):
        s = self.s
        bw = s.x_bits + 2
        b1 = Signal(signed(bw), name="bank_x")
        b3 = Signal(signed(bw), name="bank_3x")
        with m.If(self.bank_we):
            m.d.sync += [b1.eq(self.x), b3.eq((self.x << 1) + self.x)]
        digits = -(-s.w_bits // 2)
        pw = s.x_bits + 2 * digits                     # |x * w| fits, w sign-extended
        terms = []
        for l in range(s.lanes):
            w = Signal(signed(2 * digits), name=f"w{l}")
            m.d.comb += w.eq(self.w[l].as_signed())
            parts = []
            for i in range(digits):
                d = w[2 * i:2 * i + 2]
                e = Signal(signed(bw + 1), name=f"sel{l}_{i}")
                if i < digits - 1:       # unsigned digit: 0, x, 2x, 3x
                    m.d.comb += e.eq(Mux(d[1], Mux(d[0], b3, b1 << 1), Mux(d[0], b1, 0)))
                else:                    # signed top digit: 0, x, -2x, -x
                    m.d.comb += e.eq(Mux(d[1], Mux(d[0], -b1, -(b1 << 1)), Mux(d[0], b1, 0)))
                parts.append(e << (2 * i))
            p = Signal(signed(pw), name=f"p{l}")
            total = parts[0]
            for t in parts[1:]:
                total = total + t
            m.d.comb += p.eq(total)
            terms.append((p, 0))
        self._lanes_out(m, terms)

    def _elaborate_mfmac(self, m):
        s = self.s
        E = s.exp_bits
        top = gpot.max_exp(E)
        sx = Signal(name="bank_sign")
        mx = Signal(top + 1, name="bank_mag")            # one-hot 2^(ex-1), 0 for ex = 0
        ex = self.x[:E]
        with m.If(self.bank_we):
            m.d.sync += [sx.eq(self.x[E]),
                         mx.eq(Cat(ex == i + 1 for i in range(top + 1)))]
        terms = []
        for l in range(s.lanes):
            ew, sw = self.w[l][:E], self.w[l][E]
            mag = Signal(2 * top + 1, name=f"mag{l}")
            # periphery shift by ew - 1 (ew = 0: zero weight)
            m.d.comb += mag.eq(Mux(ew == 0, 0, (mx << ew) >> 1))
            sign = Signal(name=f"sign{l}")
            m.d.comb += sign.eq(sx ^ sw)
            term = Signal(s.acc_bits, name=f"term{l}")
            m.d.comb += term.eq(mag ^ sign.replicate(s.acc_bits))
            terms.append((term, sign))
        self._lanes_out(m, terms)

    def _elaborate_asm(self, m):
        s = self.s
        n = len(s.alphabet)
        m.submodules.precompute = pre = AsmPrecomputeBank(s.x_bits, s.alphabet)
        bank = Signal(data.ArrayLayout(signed(bank_width(s.x_bits)), n), name="bank")
        m.d.comb += pre.x.eq(self.x)
        with m.If(self.bank_we):
            m.d.sync += bank.eq(pre.m)
        terms = []
        controls = _asm_control_words(m, s, self.w)
        for l in range(s.lanes):
            lane = AsmLane(s.x_bits, s.w_bits, s.alphabet)
            m.submodules[f"lane{l}"] = lane
            m.d.comb += [lane.bank.eq(bank), lane.w.eq(controls[l])]
            mag = Signal(signed(s.acc_bits), name=f"mag{l}")
            term = Signal(s.acc_bits, name=f"term{l}")
            m.d.comb += [mag.eq(lane.mag), term.eq(mag ^ lane.sign.replicate(s.acc_bits))]
            terms.append((term, lane.sign))
        self._lanes_out(m, terms)


_INTERFACE = (
    "Weight load: when wl_en, row wl_addr (0..depth-1) of W is written with wl_data (element l = "
    "lane l's weight word); load only while the tile is idle (no x element waiting or in flight). "
    "Input stream x_valid/x_ready/x_data: ONE x element per beat, elements 0..depth-1 of a vector "
    "in order, vector after vector. Output stream y_valid/y_ready/y_data: one beat per vector, "
    "y_data element l = lane l's wrapped sum. Valid never waits for ready, valid+data hold until "
    "ready (AXI-stream rules); the tile stalls x (x_ready low) rather than lose or duplicate a "
    "result. dbg_mem_reads/dbg_mem_writes/dbg_bus_beats count weight-memory word reads, word "
    "writes and bus beats (32-bit, wrapping); golden.tile.counts gives them."
)


def _acc_bits_default(p) -> int:
    """The smallest accumulator from 24 bits up that golden.tile.spec accepts (24 at the defaults)."""
    for acc in range(24, 65):
        try:
            spec("near", p["lanes"], p["depth"], p["datapath"], p["x_bits"], p["w_bits"], p["exp_bits"],
                 p["alphabet"], acc)
            return acc
        except (ValueError, TypeError):
            continue
    return 24


def _common_params(extra=()):
    return (
        Param("lanes", 4, "1..64", "output lanes (rows of W)"),
        Param("depth", 8, "1..4096", "K: elements per input vector (columns of W)"),
        Param("datapath", "int", ", ".join(DATAPATHS), "MAC datapath", parse=_text),
        Param("x_bits", 0, "0 (auto: 8, or exp_bits+1 for mfmac) or 2..24",
              "activation width (int/asm two's complement; mfmac: the PoT code)"),
        Param("w_bits", 0, "0 (auto: 8, or exp_bits+1 for mfmac); int 2..16, asm 4/8/12",
              "weight width (int two's complement; asm sign-magnitude)"),
        Param("exp_bits", 3, "1..5", "mfmac only: PoT exponent field width"),
        Param("alphabet", (1, 3, 5, 7), "odd members of 1..15 including 1", "asm only: alphabet set",
              parse=parse_int_list),
        Param("acc_bits", 24, "product width..64", "two's-complement accumulator width (wraps)",
              follows=_acc_bits_default, follows_doc="max(24, the datapath's product width)"),
        Param("weight_storage", "control", "control, index", "asm only: stored weight word: the lanes' "
              "control word, or the compact index into the representable set (decoded per lane)", parse=_text),
    ) + tuple(extra)


def _ops(p):
    return p["lanes"]


class _Tile(wiring.Component):
    """Shared interface and stream controller (see `_INTERFACE`).

    Element k is accepted (x_valid & x_ready) in cycle t; its weights are read in t,
    the MAC happens in t+1 (acc updates at its end), and after the last element the
    finished sums are copied into the output register in t+2 (the next vector may
    already be accumulating: its first element clears the accumulators at the same
    edge). One output slot: the LAST element of a vector is accepted only when no
    result is in flight and the slot is free or being emptied this cycle.
    """
    kind = ""
    latency = 3      # cycles from accepting a vector's last element to its y_valid

    def __init__(self, lanes=4, depth=8, datapath="int", x_bits=0, w_bits=0, exp_bits=3,
                 alphabet=(1, 3, 5, 7), acc_bits=24, weight_storage="control", **extra):
        self.s = spec(self.kind, lanes, depth, datapath, x_bits, w_bits, exp_bits, alphabet,
                      acc_bits, weight_storage=weight_storage, **extra)
        s = self.s
        sig = {
            "wl_en": In(1), "wl_addr": In(max(1, ceil_log2(s.depth))),
            "wl_data": In(data.ArrayLayout(s.w_width, s.lanes)),
            "x_valid": In(1), "x_ready": Out(1), "x_data": In(_x_shape(s)),
            "y_valid": Out(1), "y_ready": In(1),
            "y_data": Out(data.ArrayLayout(signed(s.acc_bits), s.lanes)),
            "dbg_mem_reads": Out(COUNTER_BITS), "dbg_mem_writes": Out(COUNTER_BITS),
            "dbg_bus_beats": Out(COUNTER_BITS),
        }
        sig.update(self._extra_ports())
        super().__init__(sig)

    def _extra_ports(self) -> dict:
        return {}

    def datasheet_extra(self) -> dict:
        s = self.s
        out = {"interface": _INTERFACE,
               "resolved": {"x_bits": s.x_bits, "w_bits": s.w_bits, "stored_weight_bits": s.w_width,
                            "row_bits": s.row_bits, "memory_bits": s.memory_bits},
               "throughput": self._throughput(),
               "weight_word": {"int": f"two's complement, {s.w_bits} bits",
                               "mfmac": f"PoT code, sign + {s.exp_bits}-bit exponent field (golden/pot.py)",
                               "asm": (f"compact weight: sign + index into the representable magnitudes, "
                                       f"{s.w_width} bits, decoded per lane (golden/asm.py compact_encode)"
                                       if s.weight_storage == "index" else
                                       f"encoded sign-magnitude weight, {s.w_width} bits (golden/asm.py)")}[s.datapath],
               "x_word": ("two's complement" if s.x_signed else "PoT code") + f", {s.x_bits} bits"}
        if s.datapath == "asm":
            out["resolved"]["alphabet"] = list(s.alphabet)
        return out

    # -- pieces shared by the three tiles
    def _controller(self, m, can_issue):
        """Drives x_ready, the output register and y_*; `self._acc` must be the PE sums.

        Returns (accept, k, s1_valid, s1_clear): the handshake, the accepted element's
        index, and the PE row's valid/clear for the MAC cycle that follows.
        """
        s = self.s
        k = Signal(range(s.depth), name="k")
        last = Signal(name="is_last")
        m.d.comb += last.eq(k == s.depth - 1)
        inflight = Signal(name="inflight")
        y_valid = Signal(name="y_full")
        slot_free = ~inflight & (~y_valid | self.y_ready)
        m.d.comb += self.x_ready.eq(can_issue & (~last | slot_free))
        accept = Signal(name="accept")
        m.d.comb += accept.eq(self.x_valid & self.x_ready)
        with m.If(accept):
            m.d.sync += k.eq(Mux(last, 0, k + 1))
        # pipeline: s1 = MAC cycle of the accepted element, fin = sums complete
        s1_valid, s1_clear, s1_last, fin = (Signal(name=n) for n in ("s1_valid", "s1_clear", "s1_last", "fin"))
        m.d.sync += [s1_valid.eq(accept), s1_clear.eq(accept & (k == 0)), s1_last.eq(accept & last),
                     fin.eq(s1_valid & s1_last)]
        with m.If(accept & last):
            m.d.sync += inflight.eq(1)
        with m.Elif(fin):
            m.d.sync += inflight.eq(0)
        y = Signal(data.ArrayLayout(signed(s.acc_bits), s.lanes), name="y_reg")
        with m.If(fin):
            m.d.sync += [y.eq(self._acc), y_valid.eq(1)]
        with m.Elif(y_valid & self.y_ready):
            m.d.sync += y_valid.eq(0)
        m.d.comb += [self.y_valid.eq(y_valid), self.y_data.eq(y)]
        return accept, k, s1_valid, s1_clear

    def _counter(self, m, port, inc):
        c = Signal(COUNTER_BITS, name=f"{port.name}_q")
        m.d.sync += c.eq(c + inc)
        m.d.comb += port.eq(c)

    def _zero_bus(self, m):
        m.d.comb += self.dbg_bus_beats.eq(0)

    def _rows(self, m, name, width):
        """One memory per name: (read port, write port)."""
        mem = Memory(shape=unsigned(width), depth=self.s.depth, init=[])
        m.submodules[name] = mem
        return mem.read_port(), mem.write_port()

    def _addr(self):
        return self.wl_addr[:ceil_log2(self.s.depth)] if self.s.depth > 1 else self.wl_addr[:0]


class _LocalTile(_Tile):
    """tile-near and tile-in: the row read happens in the accept cycle (always ready)."""

    def __init__(self, lanes=4, depth=8, datapath="int", x_bits=0, w_bits=0, exp_bits=3,
                 alphabet=(1, 3, 5, 7), acc_bits=24, weight_storage="control"):
        super().__init__(lanes, depth, datapath, x_bits, w_bits, exp_bits, alphabet, acc_bits, weight_storage)

    def _throughput(self):
        return "one x element per cycle; the last element of a vector waits for a free output slot"


_VN_PARAMS = (Param("bus_bits", 64, "1..4096", "memory-to-PE bus width (bits per beat)"),)


@design("tile-vn", "von Neumann tile: PE row + separate weight memory, weights cross a bus every use",
        _common_params(_VN_PARAMS), family="tile", op_count=_ops)
class TileVn(_Tile):
    """The baseline. The weight memory is `beats` = ceil(lanes * stored_weight_bits / bus_bits)
    slices of bus_bits (a row write fills every slice of the row). When an x element is
    presented, its weight row is fetched on demand over the bus into the PEs' weight
    register, one slice (one memory read, one bus beat) per cycle, then the element is
    accepted and the PE row (int-mac / mfmac-pe per lane, or asm-pe-row) does the MAC.
    Nothing is fetched ahead of the x element, so a weight reload never meets a stale row.
    """
    kind = "vn"

    def __init__(self, lanes=4, depth=8, datapath="int", x_bits=0, w_bits=0, exp_bits=3,
                 alphabet=(1, 3, 5, 7), acc_bits=24, weight_storage="control", bus_bits=64):
        super().__init__(lanes, depth, datapath, x_bits, w_bits, exp_bits, alphabet, acc_bits,
                         weight_storage, bus_bits=bus_bits)

    def _throughput(self):
        return f"one x element per {self.s.beats + 2} cycles (beats + 2)"

    def elaborate(self, platform):
        m = Module()
        s = self.s
        B, nb = s.bus_bits, s.beats
        m.submodules.pes = pes = PeRow(s)
        self._acc = pes.acc
        row_full = Signal(name="row_full")           # the PEs' weight register holds row k
        fetching = Signal(name="fetching")
        beat = Signal(range(nb + 1), name="beat")
        arr_valid = Signal(name="arr_valid")          # a slice is on the bus this cycle
        arr_beat = Signal(range(nb + 1), name="arr_beat")
        accept, k, s1_valid, s1_clear = self._controller(m, row_full)
        start = Signal(name="start")
        m.d.comb += start.eq(self.x_valid & ~fetching & ~arr_valid & ~row_full)
        issue = Signal(name="issue")
        issue_beat = Signal.like(beat, name="issue_beat")
        m.d.comb += [issue.eq(start | fetching), issue_beat.eq(Mux(fetching, beat, 0))]
        with m.If(issue):
            m.d.sync += [beat.eq(issue_beat + 1), fetching.eq(issue_beat != nb - 1)]
        m.d.sync += [arr_valid.eq(issue), arr_beat.eq(issue_beat)]
        # the slices: one memory each; a row write fills all of them
        padded = Signal(nb * B)
        m.d.comb += padded.eq(self.wl_data.as_value())
        bus = Signal(B, name="bus")
        outs = []
        for j in range(nb):
            rp, wp = self._rows(m, f"slice{j}", B)
            m.d.comb += [wp.en.eq(self.wl_en), wp.addr.eq(self._addr()),
                         wp.data.eq(padded[j * B:(j + 1) * B]),
                         rp.en.eq(issue & (issue_beat == j)), rp.addr.eq(k)]
            outs.append(rp.data)
        m.d.comb += bus.eq(Array(outs)[arr_beat] if nb > 1 else outs[0])
        wreg = Signal(nb * B, name="pe_weights")
        for j in range(nb):
            with m.If(arr_valid & (arr_beat == j)):
                m.d.sync += wreg[j * B:(j + 1) * B].eq(bus)
        with m.If(arr_valid & (arr_beat == nb - 1)):
            m.d.sync += row_full.eq(1)
        with m.Elif(accept):
            m.d.sync += row_full.eq(0)
        x_reg = Signal.like(self.x_data, name="x_reg")
        with m.If(accept):
            m.d.sync += x_reg.eq(self.x_data)
        m.d.comb += [pes.x.eq(x_reg), pes.w.eq(wreg[:s.row_bits]), pes.valid.eq(s1_valid),
                     pes.clear.eq(s1_clear)]
        self._counter(m, self.dbg_mem_reads, issue)
        self._counter(m, self.dbg_bus_beats, arr_valid)
        self._counter(m, self.dbg_mem_writes, Mux(self.wl_en, nb, 0))
        return m


@design("tile-near", "near-memory tile: weight memory beside the PE row, one row read feeds all lanes",
        _common_params(), family="tile", op_count=_ops)
class TileNear(_LocalTile):
    """One weight memory (row = one stored weight per lane) beside the PE row (int-mac /
    mfmac-pe per lane, or asm-pe-row). The accepted element's row is read in the accept
    cycle; the memory's registered read data feeds every lane directly in the MAC cycle.
    Weights never leave the tile; no bus.
    """
    kind = "near"

    def elaborate(self, platform):
        m = Module()
        s = self.s
        m.submodules.pes = pes = PeRow(s)
        self._acc = pes.acc
        accept, k, s1_valid, s1_clear = self._controller(m, 1)
        rp, wp = self._rows(m, "weights", s.row_bits)
        m.d.comb += [wp.en.eq(self.wl_en), wp.addr.eq(self._addr()), wp.data.eq(self.wl_data.as_value()),
                     rp.en.eq(accept), rp.addr.eq(k)]
        x_reg = Signal.like(self.x_data, name="x_reg")
        with m.If(accept):
            m.d.sync += x_reg.eq(self.x_data)
        m.d.comb += [pes.x.eq(x_reg), pes.w.eq(rp.data), pes.valid.eq(s1_valid), pes.clear.eq(s1_clear)]
        self._counter(m, self.dbg_mem_reads, accept)
        self._counter(m, self.dbg_mem_writes, self.wl_en)
        self._zero_bus(m)
        return m


@design("tile-in", "in-memory tile: x multiples in a bank inside the array, weight codes select, shift in periphery",
        _common_params(), family="tile", op_count=_ops)
class TileIn(_LocalTile):
    """Each lane's weights are a column sub-array (depth x stored_weight_bits) beside its
    selector. Accepting x element k writes the bank of x multiples (InMemoryRow: int
    {x, 3x}, asm {a*x}, mfmac sign + one-hot magnitude) and reads word k of every lane's
    sub-array; in the next cycle each lane's code selects bank entries (one per radix-4
    digit / quartet / code), the periphery shifts and adds them into the lane's
    accumulator. Extra debug counter dbg_bank_writes (bank updates); bank reads are
    lanes x selectors per lane per element (golden.tile.counts).
    """
    kind = "in"

    def _extra_ports(self):
        return {"dbg_bank_writes": Out(COUNTER_BITS)}

    def datasheet_extra(self):
        out = super().datasheet_extra()
        entries, bits, reads = self.s.bank
        out["bank"] = {"entries": entries, "entry_bits": bits, "reads_per_lane_per_element": reads}
        return out

    def elaborate(self, platform):
        m = Module()
        s = self.s
        m.submodules.array = row = InMemoryRow(s)
        self._acc = row.acc
        accept, k, s1_valid, s1_clear = self._controller(m, 1)
        for l in range(s.lanes):
            rp, wp = self._rows(m, f"col{l}", s.w_width)
            m.d.comb += [wp.en.eq(self.wl_en), wp.addr.eq(self._addr()), wp.data.eq(self.wl_data[l]),
                         rp.en.eq(accept), rp.addr.eq(k), row.w[l].eq(rp.data)]
        m.d.comb += [row.x.eq(self.x_data), row.bank_we.eq(accept),
                     row.valid.eq(s1_valid), row.clear.eq(s1_clear)]
        self._counter(m, self.dbg_mem_reads, Mux(accept, s.lanes, 0))
        self._counter(m, self.dbg_mem_writes, Mux(self.wl_en, s.lanes, 0))
        self._counter(m, self.dbg_bank_writes, accept)
        self._zero_bus(m)
        return m
