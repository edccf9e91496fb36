"""Bit-parallel NumPy evaluation of a Yosys `write_json` gate netlist, with toggle counts.

The netlist is the generic flow of synth/yosys.py: 2-input gates ($_AND_ $_NAND_ $_OR_
$_NOR_ $_XOR_ $_XNOR_ $_ANDNOT_ $_ORNOT_), $_MUX_, $_NOT_, $_BUF_ and $_DFF_P_; constant
bits appear as "0"/"1" ("x"/"z" read as 0). Every net holds a row of uint64 words, one
bit per simulated vector, so one NumPy operation evaluates a whole group of gates on
64 x words vectors at once. Gates are grouped by logic level (a gate depends only on
lower levels) and by kind, so one evaluation is ~3 NumPy operations per level.

Two ways to pack vectors into the bits of a word:
  * time-packed (combinational netlists, one operand stream): bit t is cycle t, the
    whole stream is evaluated in one pass and a net's toggles are the popcount of
    (bits XOR bits shifted by one cycle);
  * lane-packed (netlists with flip-flops, or several independent streams): bit l is
    lane l (an independent stream); the simulator iterates over cycles, carries the
    flip-flop state from one cycle to the next (Q <- D at each rising clock edge) and
    counts, per net, the lanes whose value differs from the previous cycle.
Toggles are zero-delay by default: a net toggles at most once per cycle, glitches are not
seen. With `timed=True` both runs also simulate every cycle with a unit delay per gate
(a gate's output at time step t is its function of its inputs at step t-1, starting from the
previous cycle's settled values with the new inputs and flip-flop outputs applied at step 0)
and count every transition of every cell output on the way, glitches included. A gate whose
shortest path from a changing source is m gates and whose longest is L can only change at
steps m..L, so step t evaluates just the gates with m <= t <= L (vectorized per gate kind).
After depth steps every net holds its zero-delay value (the tests check it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CMOS_TRANSISTORS", "GateNetlist", "NetlistError", "pack_values", "unpack_values"]

# Transistors per cell: the table Yosys's `stat -tech cmos` uses (kernel/cost.h,
# CellCosts::cmos_gate_cost). The energy model weighs every cell with it.
CMOS_TRANSISTORS = {
    "$_BUF_": 1, "$_NOT_": 2,
    "$_AND_": 6, "$_NAND_": 4, "$_OR_": 6, "$_NOR_": 4,
    "$_ANDNOT_": 6, "$_ORNOT_": 6, "$_XOR_": 12, "$_XNOR_": 12,
    "$_AOI3_": 6, "$_OAI3_": 6, "$_AOI4_": 8, "$_OAI4_": 8,
    "$_MUX_": 12, "$_NMUX_": 10,
    "$_DFF_P_": 16, "$_DFF_N_": 16,
}

ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
ZERO = np.uint64(0)
# Y = ((A ^ ia) & (B ^ ib)) ^ io for the AND-like gates
_AND_FORMS = {"$_AND_": (0, 0, 0), "$_NAND_": (0, 0, 1), "$_OR_": (1, 1, 1), "$_NOR_": (1, 1, 0),
              "$_ANDNOT_": (0, 1, 0), "$_ORNOT_": (1, 0, 1)}
# Y = A ^ B ^ io for the XOR-like gates (NOT and BUF read B as constant 0)
_XOR_FORMS = {"$_XOR_": 0, "$_XNOR_": 1, "$_NOT_": 1, "$_BUF_": 0}


class NetlistError(ValueError):
    """The netlist has a cell type or structure this simulator does not handle."""


@dataclass
class _Group:
    kind: str              # "and" | "xor" | "mux"
    y: np.ndarray          # output net rows
    a: np.ndarray
    b: np.ndarray
    s: np.ndarray | None = None    # mux select
    ia: np.ndarray | None = None   # (n, 1) masks, None when all zero
    ib: np.ndarray | None = None
    io: np.ndarray | None = None


def _mask(flags) -> np.ndarray | None:
    flags = np.asarray(flags, bool)
    if not flags.any():
        return None
    return np.where(flags, ONES, ZERO).astype(np.uint64)[:, None]


class GateNetlist:
    """A flattened gate-level module ready for bit-parallel evaluation.

    Net rows: 0 = constant 0, 1 = constant 1, then one row per netlist bit.
    """

    def __init__(self, netlist: dict, top: str | None = None):
        mods = netlist.get("modules", {})
        if not mods:
            raise NetlistError("netlist has no modules")
        if top is not None and top in mods:
            mod = mods[top]
        else:
            tops = [m for m in mods.values() if str(m.get("attributes", {}).get("top", "0")).strip("0") != ""]
            mod = tops[0] if len(tops) == 1 else next(iter(mods.values()))
        rows: dict = {"0": 0, "1": 1, "x": 0, "z": 0}

        def row(bit) -> int:
            if bit not in rows:
                rows[bit] = len(rows) - 2   # "x"/"z" share row 0
            return rows[bit]

        self.inputs: dict[str, list[int]] = {}
        self.outputs: dict[str, list[int]] = {}
        for name, p in mod.get("ports", {}).items():
            bits = [row(b) for b in p["bits"]]
            if p["direction"] == "input":
                self.inputs[name] = bits
            elif p["direction"] == "output":
                self.outputs[name] = bits
            else:
                raise NetlistError(f"port {name} is {p['direction']}: inout ports are not simulated")
        self.cell_types: dict[str, int] = {}
        comb = []           # (type, {pin: row})
        dff_d, dff_q, clocks = [], [], set()
        for cname, c in mod.get("cells", {}).items():
            t = c["type"]
            if t not in CMOS_TRANSISTORS:
                raise NetlistError(f"cell {cname} has type {t}, which the gate simulator does not model")
            self.cell_types[t] = self.cell_types.get(t, 0) + 1
            pins = {p: row(bits[0]) for p, bits in c["connections"].items()}
            if t == "$_DFF_P_":
                dff_d.append(pins["D"])
                dff_q.append(pins["Q"])
                clocks.add(pins["C"])
            elif t in _AND_FORMS or t in _XOR_FORMS or t == "$_MUX_":
                comb.append((t, pins))
            else:
                raise NetlistError(f"cell type {t} is counted but not simulated (use the generic flow)")
        self.n_rows = len(rows) - 2
        self.dff_d = np.array(dff_d, np.intp)
        self.dff_q = np.array(dff_q, np.intp)
        self.clock_rows = clocks
        # ports that carry the clock are not data inputs
        self.clock_ports = [n for n, b in self.inputs.items() if len(b) == 1 and b[0] in clocks]
        self.cost_rows, self.cost = self._levelize(comb)
        self.transistors = sum(CMOS_TRANSISTORS[t] * n for t, n in self.cell_types.items())
        self.flip_flops = len(dff_d)

    @property
    def sequential(self) -> bool:
        return self.flip_flops > 0

    def _levelize(self, comb):
        level = np.full(self.n_rows, -1, np.int64)
        level[[0, 1]] = 0
        for bits in self.inputs.values():
            level[bits] = 0
        level[self.dff_q] = 0
        sources = {0, 1, *self.dff_q.tolist()}
        for bits in self.inputs.values():
            sources.update(bits)
        driver = {}
        for i, (t, pins) in enumerate(comb):
            y = pins["Y"]
            if y in driver or y in sources:
                raise NetlistError("a net has more than one driver")
            driver[y] = i
        # Kahn's topological order: a cell's level is one more than its deepest input
        ins = [[pins[p] for p in ("A", "B", "S") if p in pins] for _, pins in comb]
        waiting = np.zeros(len(comb), np.int64)
        fanout: dict[int, list[int]] = {}
        for i, rs in enumerate(ins):
            for r in rs:
                if level[r] < 0:
                    if r not in driver:
                        raise NetlistError("a gate input is driven by nothing")
                    waiting[i] += 1
                    fanout.setdefault(r, []).append(i)
        cell_level = np.full(len(comb), -1, np.int64)
        ready = [i for i in range(len(comb)) if waiting[i] == 0]
        while ready:
            i = ready.pop()
            cell_level[i] = max(level[r] for r in ins[i]) + 1
            y = comb[i][1]["Y"]
            level[y] = cell_level[i]
            for j in fanout.get(y, ()):
                waiting[j] -= 1
                if waiting[j] == 0:
                    ready.append(j)
        if (cell_level < 0).any():
            raise NetlistError("combinational loop in the netlist")
        self.depth = int(cell_level.max()) if len(comb) else 0
        self._comb = comb
        groups: list[_Group] = []
        for lv in range(1, self.depth + 1):            # one group per gate kind and level
            groups.extend(self._kind_groups(np.nonzero(cell_level == lv)[0]))
        self.groups = groups
        self._comb, self._cell_level = comb, cell_level
        self._timed = None
        # energy weights: one entry per cell output (combinational and flip-flop Q)
        cost_rows = np.array([p["Y"] for _, p in comb] + list(self.dff_q), np.intp)
        cost = np.array([CMOS_TRANSISTORS[t] for t, _ in comb] + [CMOS_TRANSISTORS["$_DFF_P_"]] * len(self.dff_q),
                        np.float64)
        return cost_rows, cost

    # ---- evaluation -------------------------------------------------------------------
    def evaluate(self, V: np.ndarray) -> None:
        """Settle every gate output in V (rows x words), inputs and flip-flop Q already set."""
        V[0] = ZERO
        V[1] = ONES
        for g in self.groups:
            V[g.y] = self._apply(g, V)

    # ---- unit-delay (timed) evaluation ----------------------------------------------------
    def _timed_plan(self) -> list[list[_Group]]:
        """Per time step t = 1..depth: the gates (grouped by kind) that can change at step t."""
        if self._timed is not None:
            return self._timed
        comb, lvl = self._comb, self._cell_level
        # earliest step each net can change: 0 for inputs and flip-flop outputs, never
        # (a large number) for constants, 1 + the earliest of a gate's inputs otherwise
        never = 1 << 30
        early = np.full(self.n_rows, -1, np.int64)
        early[[0, 1]] = never
        for bits in self.inputs.values():
            early[bits] = 0
        early[self.dff_q] = 0
        cell_early = np.zeros(len(comb), np.int64)
        for i in np.argsort(lvl, kind="stable"):           # level order is a topological order
            pins = comb[i][1]
            e = min(int(early[pins[p]]) for p in ("A", "B", "S") if p in pins)
            cell_early[i] = e + 1 if e < never else never
            early[pins["Y"]] = cell_early[i]
        steps = []
        for t in range(1, self.depth + 1):
            idx = np.nonzero((cell_early <= t) & (lvl >= t))[0]
            steps.append(self._kind_groups(idx))
        self._timed = steps
        return steps

    def _kind_groups(self, idx) -> list[_Group]:
        comb = self._comb
        out = []
        by_kind: dict[str, list[int]] = {"and": [], "xor": [], "mux": []}
        for i in idx:
            t = comb[i][0]
            by_kind["and" if t in _AND_FORMS else "xor" if t in _XOR_FORMS else "mux"].append(i)
        for kind, members in by_kind.items():
            if not members:
                continue
            ts = [comb[i][0] for i in members]
            pins = [comb[i][1] for i in members]
            y = np.array([p["Y"] for p in pins], np.intp)
            a = np.array([p["A"] for p in pins], np.intp)
            b = np.array([p.get("B", 0) for p in pins], np.intp)
            if kind == "and":
                forms = np.array([_AND_FORMS[t] for t in ts], bool)
                out.append(_Group("and", y, a, b, ia=_mask(forms[:, 0]), ib=_mask(forms[:, 1]),
                                  io=_mask(forms[:, 2])))
            elif kind == "xor":
                out.append(_Group("xor", y, a, b, io=_mask([_XOR_FORMS[t] for t in ts])))
            else:
                out.append(_Group("mux", y, a, b, s=np.array([p["S"] for p in pins], np.intp)))
        return out

    @staticmethod
    def _apply(g: _Group, V: np.ndarray) -> np.ndarray:
        A = V[g.a]
        B = V[g.b]
        if g.kind == "mux":
            return A ^ ((A ^ B) & V[g.s])
        if g.kind == "and":
            if g.ia is not None:
                A ^= g.ia
            if g.ib is not None:
                B ^= g.ib
            A &= B
        else:
            A ^= B
        if g.io is not None:
            A ^= g.io
        return A

    def evaluate_timed(self, V: np.ndarray, mask=None) -> np.ndarray:
        """Unit-delay sweep: V holds the previous settled values of every gate output with the
        new inputs and flip-flop outputs already applied; on return V is settled. Returns the
        transitions per net row (glitches included), popcount over the words AND `mask`."""
        V[0] = ZERO
        V[1] = ONES
        counts = np.zeros(self.n_rows, np.int64)
        for groups in self._timed_plan():
            new = [(g.y, self._apply(g, V)) for g in groups]     # every gate reads step t-1
            for y, Y in new:
                D = V[y] ^ Y
                if mask is not None:
                    D &= mask
                counts[y] += np.bitwise_count(D).sum(axis=1, dtype=np.int64)
                V[y] = Y
        return counts

    def input_bits(self, name: str) -> list[int]:
        try:
            return self.inputs[name]
        except KeyError:
            raise ValueError(f"stream names port {name!r}, which is not an input "
                             f"(inputs: {', '.join(sorted(self.inputs))})") from None

    def run_time_packed(self, words: dict[str, np.ndarray], n: int, timed: bool = False) -> dict:
        """Combinational netlist, one stream of n cycles; words[port] = (width, ceil(n/64)) uint64.

        Returns toggles per cost row (summed over the n-1 transitions) and the settled V; with
        `timed`, also timed_toggles per cost row (unit delay, glitches included) and V_timed,
        the values the unit-delay sweep settled to.
        """
        if self.sequential:
            raise NetlistError("time-packed evaluation needs a netlist without flip-flops")
        W = -(-n // 64)
        V = np.zeros((self.n_rows, W), np.uint64)
        for name, w in words.items():
            V[self.input_bits(name)] = w
        self.evaluate(V)
        X = V[self.cost_rows]
        prev = (X << np.uint64(1))
        prev[:, 1:] |= X[:, :-1] >> np.uint64(63)
        T = X ^ prev
        T[:, 0] &= ~np.uint64(1)                       # cycle 0 has no predecessor
        tail = n - 64 * (W - 1)                        # valid bits in the last word
        if tail < 64:
            T[:, -1] &= np.uint64((1 << tail) - 1)
        out = {"toggles": np.bitwise_count(T).sum(axis=1, dtype=np.int64), "V": V, "transitions": n - 1}
        if timed:
            # bit t starts from cycle t-1's settled gate outputs (the words shifted by one
            # cycle) with cycle t's inputs; bit 0 (no predecessor) and the padding are masked
            Vt = (V << np.uint64(1))
            Vt[:, 1:] |= V[:, :-1] >> np.uint64(63)
            Vt[:, 0] |= V[:, 0] & np.uint64(1)           # cycle 0 starts settled: no transitions
            for name, w in words.items():
                Vt[self.input_bits(name)] = w
            mask = np.full(W, ONES, np.uint64)
            mask[0] &= ~np.uint64(1)
            if tail < 64:
                mask[-1] &= np.uint64((1 << tail) - 1)
            counts = self.evaluate_timed(Vt, mask)
            out["timed_toggles"] = counts[self.cost_rows]
            out["V_timed"] = Vt
        return out

    def run_lanes(self, cycle_words, cycles: int, lanes: int, timed: bool = False) -> dict:
        """Lane-packed run: cycle_words(t) -> {port: (width, words) uint64} for cycle t.

        Flip-flops start at 0 (the reset state of Amaranth registers). Toggles are counted
        between consecutive cycles (cycles-1 transitions per lane); Q toggles at the clock edge.
        With `timed`, cycles 1.. are also swept with unit delays from the previous cycle's
        settled values: timed_toggles per cost row (glitches included) and the outputs of
        that sweep (outputs_timed) come back too.
        """
        W = -(-lanes // 64)
        lane_mask = np.full(W, ONES, np.uint64)
        if lanes % 64:
            lane_mask[-1] = np.uint64((1 << (lanes % 64)) - 1)
        V = np.zeros((self.n_rows, W), np.uint64)
        state = np.zeros((len(self.dff_q), W), np.uint64)
        toggles = np.zeros(len(self.cost_rows), np.int64)
        prev = None
        outs = {name: np.zeros((len(b), cycles, W), np.uint64) for name, b in self.outputs.items()}
        timed_toggles = np.zeros(len(self.cost_rows), np.int64) if timed else None
        outs_t = {name: np.zeros((len(b), cycles, W), np.uint64) for name, b in self.outputs.items()} if timed else None
        Vt = np.zeros_like(V) if timed else None
        for t in range(cycles):
            w_t = cycle_words(t)
            for name, w in w_t.items():
                V[self.input_bits(name)] = w
            V[self.dff_q] = state
            if timed and t > 0:
                Vt[:] = prev_V                     # last cycle settled, new inputs and Q at step 0
                for name, w in w_t.items():
                    Vt[self.input_bits(name)] = w
                q_flips = np.bitwise_count((Vt[self.dff_q] ^ state) & lane_mask).sum(axis=1, dtype=np.int64)
                Vt[self.dff_q] = state
                counts = self.evaluate_timed(Vt, lane_mask)
                counts[self.dff_q] += q_flips
                timed_toggles += counts[self.cost_rows]
                for name, b in self.outputs.items():
                    outs_t[name][:, t] = Vt[b]
            self.evaluate(V)
            if timed:
                if t == 0:
                    for name, b in self.outputs.items():
                        outs_t[name][:, 0] = V[b]
                prev_V = V.copy()
            X = V[self.cost_rows]
            if prev is not None:
                toggles += np.bitwise_count((X ^ prev) & lane_mask).sum(axis=1, dtype=np.int64)
            prev = X
            for name, b in self.outputs.items():
                outs[name][:, t] = V[b]
            state = V[self.dff_d]
        out = {"toggles": toggles, "transitions": cycles - 1, "outputs": outs}
        if timed:
            out.update(timed_toggles=timed_toggles, outputs_timed=outs_t)
        return out

    def read_port(self, V_rows: np.ndarray, n: int, signed: bool = False) -> np.ndarray:
        """(width, words) packed bits -> n integers (bit 0 = first vector / lane)."""
        return unpack_values(V_rows, n, signed)


def pack_values(values, width: int) -> np.ndarray:
    """n integers (two's complement for negatives, taken modulo 2^width) ->
    (width, ceil(n/64)) uint64, vector i in bit i % 64 of word i // 64.
    A trailing partial word is padded with the last value (no extra toggles).

    Ports up to 64 bits take any integer array; wider ports take an object array of
    Python ints (or any integer array whose values fit), packed 64 bits at a time."""
    v = np.asarray(values)
    if v.ndim != 1:
        raise ValueError("pack_values wants a 1-D array")
    if width > 64:
        obj = v.astype(object)
        chunks = []
        for lo in range(0, width, 64):    # Python ints: >> is arithmetic, & gives two's complement
            part = np.array([int(x) >> lo & 0xFFFF_FFFF_FFFF_FFFF for x in obj], np.uint64)
            chunks.append(pack_values(part, min(64, width - lo)))
        return np.concatenate(chunks) if chunks else np.zeros((0, -(-len(v) // 64)), np.uint64)
    n = len(v)
    W = -(-n // 64)
    if v.dtype.kind == "O":
        u = np.array([int(x) & 0xFFFF_FFFF_FFFF_FFFF for x in v], np.uint64)
    else:
        u = v.astype(np.int64).astype(np.uint64) if v.dtype.kind in "iub" else v.astype(np.uint64)
    if W * 64 > n:
        u = np.concatenate([u, np.full(W * 64 - n, u[-1] if n else 0, np.uint64)])
    shifts = np.arange(width, dtype=np.uint64)
    bits = ((u[None, :] >> shifts[:, None]) & np.uint64(1)).astype(np.uint8)   # (width, n)
    packed = np.packbits(bits.reshape(width, W, 64), axis=2, bitorder="little")  # (width, W, 8)
    return packed.reshape(width, W * 8).view("<u8").astype(np.uint64)


def unpack_values(words: np.ndarray, n: int, signed: bool = False) -> np.ndarray:
    """(width, words) packed bits -> n integers (vector i from bit i % 64 of word i // 64).

    Up to 64 bits: a uint64 (or int64 when signed) array; wider: an object array of Python ints."""
    width, W = words.shape
    if width > 64:
        out = np.zeros(n, dtype=object)
        for lo in range(0, width, 64):
            part = unpack_values(words[lo:lo + 64], n).astype(object)
            out = out + (part << lo)
        if signed:
            out = np.where(out >= (1 << (width - 1)), out - (1 << width), out)
        return out
    b = np.unpackbits(np.ascontiguousarray(words.astype("<u8")).view(np.uint8).reshape(width, W * 8),
                      axis=1, bitorder="little")[:, :n].astype(np.uint64)
    val = np.zeros(n, np.uint64)
    for i in range(width):
        val |= b[i] << np.uint64(i)
    if signed and width:
        v = val.astype(np.int64) if width < 64 else val.view(np.int64)
        if width < 64:
            v = np.where(v >= (1 << (width - 1)), v - (1 << width), v)
        return v
    return val
