"""Energy from a real cell library: the netlist mapped to the library's cells (Yosys `dfflibmap`,
`abc -liberty`), simulated bit-parallel from the cells' Liberty functions (zero-delay, or timed
with the cells' delays), every transition priced by the library's power tables and the net's
load (synth/liberty_reader.py reads the library)."""
from __future__ import annotations

import json

import numpy as _np

from .liberty_reader import (DEFAULT_CLOCK_MHZ, NOMINAL_SLEW_NS, ONES, energy_summary, eval_function, function_pins,
                             lib_cell, library, lookup, parse_cells, parse_function, read_liberty, sequential_cells,
                             units)
from .yosys import LIBERTY_FLOW_VERSION, _generic_script, run_yosys

# the reader's names stay importable from here (synth.liberty.library, ...)
__all__ = ["mapped_netlist", "MappedNetlist", "net_loads", "netlist_energy_lib", "liberty_energy", "spearman",
           "DELAY_STEP_NS", "LIB_ENERGY_VERSION", "DEFAULT_CLOCK_MHZ", "NOMINAL_SLEW_NS", "energy_summary",
           "eval_function", "function_pins", "lib_cell", "library", "parse_cells", "parse_function", "read_liberty",
           "sequential_cells", "units"]

# ---- the mapped netlist ------------------------------------------------------------------
LIB_ENERGY_VERSION = "1"      # bump when the energy below changes: cached results stop matching
_CONTROL_DEFAULTS = {"valid": 1, "clear": 0, "rst": 0}
COMB_LANES, COMB_CYCLES = 256, 65         # combinational: 256 x 64 = 16,384 random transitions
SEQ_LANES, SEQ_CYCLES = 1024, 33          # clocked: synth.energy's default streams


def mapped_netlist(verilog_text: str, top: str, liberty: str) -> dict:
    """Yosys JSON netlist of `top` mapped to the library (dfflibmap + abc -liberty, the flow
    of `ecomac synth --liberty`); cached by the Verilog, top and library text."""
    from . import cache
    lib_text = read_liberty(liberty)
    k = cache.key("libnet", LIBERTY_FLOW_VERSION, top, verilog_text, lib_text)
    hit = cache.load("libnet", k)
    if hit is not None:
        return hit
    script = _generic_script(top, "cells.lib", sequential_cells(lib_text)) + "write_json netlist.json\n"
    res = run_yosys(script, {"design.v": verilog_text, "cells.lib": lib_text}, ["netlist.json"])
    net = json.loads(res["netlist.json"])
    cache.store("libnet", k, net)
    return net


class MappedNetlist:
    """A netlist of library cells, evaluated bit-parallel (lanes in the bits of uint64 words)
    from the cells' Liberty functions; flip-flops from their ff groups (next_state on the
    rising clock). Net rows: 0 = constant 0, 1 = constant 1, then one per netlist bit."""

    def __init__(self, netlist: dict, top: str, lib: dict):
        mods = netlist.get("modules", {})
        mod = mods.get(top) or next(m for m in mods.values()
                                     if str(m.get("attributes", {}).get("top", "0")).strip("0"))
        rows: dict = {"0": 0, "1": 1, "x": 0, "z": 0}

        def row(bit):
            if bit not in rows:
                rows[bit] = len(rows) - 2
            return rows[bit]
        self.inputs, self.outputs = {}, {}
        for name, p in mod.get("ports", {}).items():
            (self.inputs if p["direction"] == "input" else self.outputs)[name] = [row(b) for b in p["bits"]]
        self.cells = []                   # (type, lib cell, {pin: row})
        self.cell_types: dict[str, int] = {}
        for cname, c in mod.get("cells", {}).items():
            lc = lib_cell(lib, c["type"])
            if lc is None:
                raise ValueError(f"cell {cname} has type {c['type']}, which the library does not define")
            if lc["latch"] or (lc["ff"] and (lc["ff"]["async"] or not lc["ff"]["next_state"])):
                raise ValueError(f"cell type {c['type']} (latch, or flip-flop with asynchronous "
                                 "clear/preset) is not simulated")
            self.cells.append((c["type"], lc, {p: row(b[0]) for p, b in c["connections"].items() if b}))
            self.cell_types[c["type"]] = self.cell_types.get(c["type"], 0) + 1
        self.n_rows = len(rows) - 2
        self.lib = lib
        self._plan()

    def _plan(self):
        funcs = {}
        comb, ffs = [], []
        for i, (t, lc, pins) in enumerate(self.cells):
            if t not in funcs:
                outs = {}
                for pn, pd in lc["pins"].items():
                    if pd["direction"] == "output" and pd["function"]:
                        outs[pn] = parse_function(pd["function"])
                funcs[t] = outs
            (ffs if lc["ff"] else comb).append(i)
        self.funcs = funcs
        clock_rows = set()
        self.ff = []                      # (cell index, next_state tree, {pin: row}, q rows, qn rows)
        src = {0, 1}
        for rs in self.inputs.values():
            src.update(rs)
        for i in ffs:
            t, lc, pins = self.cells[i]
            f = lc["ff"]
            clock_rows.add(pins.get(f["clocked_on"]))
            q = [pins[p] for p, tr in funcs[t].items() if tr == ("pin", f["iq"]) and p in pins]
            qn = [pins[p] for p, tr in funcs[t].items() if tr == ("not", ("pin", f["iq"])) or tr == ("pin", f["iqn"])
                  if p in pins]
            self.ff.append((i, parse_function(f["next_state"]), pins, q, qn))
            src.update(q)
            src.update(qn)
        self.clock_ports = [n for n, b in self.inputs.items() if len(b) == 1 and b[0] in clock_rows]
        # flip-flops grouped by type: next-state pins, Q and Q_N rows (-1 where unconnected)
        by_type: dict = {}
        for i, tree, pins, q, qn in self.ff:
            by_type.setdefault(self.cells[i][0], []).append((tree, pins, q, qn))
        self.ff_groups = []
        for t, members in by_type.items():
            tree = members[0][0]
            need = function_pins(tree)
            rows_p = {p: _np.array([m[1].get(p, 0) for m in members], _np.intp) for p in need}
            q = _np.array([m[2][0] if m[2] else -1 for m in members], _np.intp)
            qn = _np.array([m[3][0] if m[3] else -1 for m in members], _np.intp)
            self.ff_groups.append((tree, rows_p, q, qn))
        self.flip_flops = len(self.ff)
        driver = {}
        for i in comb:
            t, lc, pins = self.cells[i]
            for pn in self.funcs[t]:
                if pn in pins:
                    driver[pins[pn]] = i
        level = {r: 0 for r in src}
        cell_level = {}
        order = list(comb)
        # relax levels until stable (netlists are DAGs; bounded by the number of cells)
        ins = {i: [self.cells[i][2][p] for p in set().union(*(function_pins(tr) for tr in self.funcs[self.cells[i][0]].values()))
                   if p in self.cells[i][2]] for i in comb}
        pending = set(comb)
        for _ in range(len(comb) + 1):
            progressed = False
            for i in list(pending):
                if all(r in level or r not in driver for r in ins[i]):
                    lv = 1 + max((level.get(r, 0) for r in ins[i]), default=0)
                    cell_level[i] = lv
                    t, _, pins = self.cells[i]
                    for pn in self.funcs[t]:
                        if pn in pins:
                            level[pins[pn]] = lv
                    pending.discard(i)
                    progressed = True
            if not pending or not progressed:
                break
        if pending:
            raise ValueError("combinational loop in the mapped netlist")
        groups: dict = {}
        for i in order:
            groups.setdefault((cell_level[i], self.cells[i][0]), []).append(i)
        self.groups = []
        for (lv, t), members in sorted(groups.items()):
            pins = {p: _np.array([self.cells[i][2].get(p, 0) for i in members], _np.intp)
                    for p in set().union(*(function_pins(tr) for tr in self.funcs[t].values()))}
            outs = {p: _np.array([self.cells[i][2].get(p, -1) for i in members], _np.intp) for p in self.funcs[t]}
            self.groups.append((t, pins, outs))
        self.depth = max(cell_level.values(), default=0)
        self._cell_level = cell_level
        self._timed = None

    # ---- timed sweep with the library's delays ----------------------------------------------
    def _timed_plan(self, load, slew_ns: float, step_ns: float):
        """Per cell: delay in steps of step_ns (mean of cell_rise/cell_fall over its output pins'
        timing groups at slew_ns and the output net's load); the window of steps in which its
        output can change; per step the active cells grouped by type."""
        delay = {}
        for i in self._cell_level:
            t, lc, pins = self.cells[i]
            ds = []
            for pn in self.funcs[t]:
                pd = lc["pins"][pn]
                if pn in pins:
                    v = _table_energy(pd["delay"], slew_ns, load[pins[pn]])   # the same rise/fall mean
                    ds.append(v)
            delay[i] = max(1, int(round((sum(ds) / len(ds) if ds else 0.0) / step_ns)))
        never = 1 << 40
        early = _np.full(self.n_rows, never, _np.int64)
        late = _np.full(self.n_rows, -1, _np.int64)
        for rs in self.inputs.values():
            early[rs], late[rs] = 0, 0
        for _, rows_p, q, qn in self.ff_groups:
            for r in _np.concatenate([q[q >= 0], qn[qn >= 0]]):
                early[r], late[r] = 0, 0
        early[[0, 1]], late[[0, 1]] = never, -1
        window = {}
        for i in sorted(self._cell_level, key=self._cell_level.get):
            t, lc, pins = self.cells[i]
            ins = [pins[p] for p in set().union(*(function_pins(tr) for tr in self.funcs[t].values())) if p in pins]
            e = min((int(early[r]) for r in ins), default=never)
            lt = max((int(late[r]) for r in ins), default=-1)
            if e >= never or lt < 0:
                continue
            window[i] = (e + delay[i], lt + delay[i])
            for pn in self.funcs[t]:
                if pn in pins:
                    early[pins[pn]], late[pins[pn]] = e + delay[i], lt + delay[i]
        T = max((w[1] for w in window.values()), default=0)
        steps = []
        for t in range(1, T + 1):
            by: dict = {}
            for i, (e, lt) in window.items():
                if e <= t <= lt:
                    by.setdefault(self.cells[i][0], []).append(i)
            groups = []
            for typ, members in by.items():
                need = set().union(*(function_pins(tr) for tr in self.funcs[typ].values()))
                pins = {p: _np.array([self.cells[i][2].get(p, 0) for i in members], _np.intp) for p in need}
                outs = {p: _np.array([self.cells[i][2].get(p, -1) for i in members], _np.intp) for p in self.funcs[typ]}
                groups.append((typ, pins, outs, _np.array([delay[i] for i in members], _np.intp)))
            steps.append(groups)
        return steps, max(delay.values(), default=1)

    def sweep_timed(self, V_prev, V0, mask, plan):
        """One cycle with the library's delays: V_prev = last cycle settled, V0 = the same with
        this cycle's inputs and flip-flop outputs. Returns (settled V, transitions per row)."""
        steps, max_d = plan
        R = max_d + 1
        H = _np.repeat(V_prev[None], R, axis=0)
        H[0] = V0
        counts = _np.zeros(self.n_rows, _np.int64)
        counts += _np.bitwise_count((V0 ^ V_prev) & mask).sum(axis=1, dtype=_np.int64)
        V = V0.copy()
        for t, groups in enumerate(steps, start=1):
            new = []
            for typ, pins, outs, d in groups:
                slot = (t - d) % R
                env = {p: H[slot, r] for p, r in pins.items()}
                for p, r in outs.items():
                    ok = r >= 0
                    val = eval_function(self.funcs[typ][p], env)
                    val = _np.broadcast_to(val, (len(r), V.shape[1])) if _np.ndim(val) < 2 else val
                    new.append((r[ok], val[ok]))
            for r, val in new:
                counts[r] += _np.bitwise_count((V[r] ^ val) & mask).sum(axis=1, dtype=_np.int64)
                V[r] = val
            H[t % R] = V
        return V, counts

    def run_lanes(self, cycle_words, cycles: int, lanes: int, timed=None) -> dict:
        """cycle_words(t) -> {port: (width, words)}; returns toggles per net row (summed over
        cycles-1 transitions of every lane) and the outputs per cycle. timed = (load per row,
        slew ns, step ns): also every transition with the library's delays (timed_toggles,
        glitches included) and the values that sweep settled to (outputs_timed)."""
        W = -(-lanes // 64)
        mask = _np.full(W, ONES, _np.uint64)
        if lanes % 64:
            mask[-1] = _np.uint64((1 << (lanes % 64)) - 1)
        V = _np.zeros((self.n_rows, W), _np.uint64)
        state = [_np.zeros((len(q), W), _np.uint64) for _, _, q, _ in self.ff_groups]
        toggles = _np.zeros(self.n_rows, _np.int64)
        prev = None
        outs = {n: _np.zeros((len(b), cycles, W), _np.uint64) for n, b in self.outputs.items()}
        plan = self._timed_plan(*timed) if timed is not None else None
        timed_toggles = _np.zeros(self.n_rows, _np.int64)
        outs_t = {n: _np.zeros((len(b), cycles, W), _np.uint64) for n, b in self.outputs.items()}
        for t in range(cycles):
            for name, w in cycle_words(t).items():
                V[self.inputs[name]] = w
            for (tree, rows_p, q, qn), st in zip(self.ff_groups, state):
                V[q[q >= 0]] = st[q >= 0]
                V[qn[qn >= 0]] = ~st[qn >= 0]
            V[0], V[1] = 0, ONES
            if plan is not None and prev is not None:
                Vt, c = self.sweep_timed(prev, V.copy(), mask, plan)
                timed_toggles += c
                for n, b in self.outputs.items():
                    outs_t[n][:, t] = Vt[b]
            for typ, pins, orows in self.groups:
                env = {p: V[r] for p, r in pins.items()}
                for p, r in orows.items():
                    ok = r >= 0
                    val = eval_function(self.funcs[typ][p], env)
                    val = _np.broadcast_to(val, (len(r), W)) if _np.ndim(val) < 2 else val
                    V[r[ok]] = val[ok]
            if prev is not None:
                toggles += _np.bitwise_count((V ^ prev) & mask).sum(axis=1, dtype=_np.int64)
            prev = V.copy()
            for n, b in self.outputs.items():
                outs[n][:, t] = V[b]
            state = [_np.broadcast_to(eval_function(tree, {p: V[r] for p, r in rows_p.items()}), (len(q), W)).copy()
                     for tree, rows_p, q, qn in self.ff_groups]
        out = {"toggles": toggles, "transitions": cycles - 1, "outputs": outs}
        if plan is not None:
            for n, b in self.outputs.items():
                outs_t[n][:, 0] = outs[n][:, 0]
            out.update(timed_toggles=timed_toggles, outputs_timed=outs_t)
        return out


# ---- energy ------------------------------------------------------------------------------
def _table_energy(tables: list[dict], slew: float, load: float | None) -> float:
    """Mean over the internal_power groups of (rise + fall) / 2 at (slew, load): the energy
    of one transition when it is not known which related pin caused it."""
    vals = []
    for g in tables:
        parts = [lookup(g[k], slew, load if load is not None else 0.0) for k in ("rise", "fall") if k in g]
        if parts:
            vals.append(sum(parts) / len(parts))
    return sum(vals) / len(vals) if vals else 0.0


def _check_units(u: dict, nom) -> None:
    want = {"voltage_unit": "1V", "capacitive_load_unit": "1pf", "leakage_power_unit": "1nW", "time_unit": "1ns"}
    for k, v in want.items():
        if u.get(k, "").lower() != v.lower():
            raise ValueError(f"liberty energy needs {k} {v} (sky130's units), the library says {u.get(k)!r}")
    if nom is None:
        raise ValueError("liberty energy needs the library's nom_voltage")


DELAY_STEP_NS = 0.01        # the timed sweep's time step: each cell's delay is a whole number of these


def net_loads(g: MappedNetlist) -> "_np.ndarray":
    """Capacitance (pF) on every net: the input pins it drives (clock pins excluded)."""
    load = _np.zeros(g.n_rows)
    for t, lc, pins in g.cells:
        for pn, row in pins.items():
            pd = lc["pins"].get(pn)
            if pd is not None and pd["direction"] == "input" and not pd["clock"]:
                load[row] += pd["capacitance"]
    return load


def netlist_energy_lib(g: MappedNetlist, toggles_per_cycle, clock_mhz: float = DEFAULT_CLOCK_MHZ,
                       slew_ns: float = NOMINAL_SLEW_NS) -> dict:
    """pJ per cycle from per-row toggle rates: output-pin internal energy at the net's load
    + 1/2 C V^2 of that load + input-pin internal energy of the fan-out + clock pins + leakage."""
    lib = g.lib
    _check_units(lib["units"], lib["nom_voltage"])
    V = lib["nom_voltage"]
    load = _np.zeros(g.n_rows)
    in_energy = _np.zeros(g.n_rows)
    clock_pj = 0.0
    for t, lc, pins in g.cells:
        for pn, row in pins.items():
            pd = lc["pins"].get(pn)
            if pd is None or pd["direction"] != "input":
                continue
            if pd["clock"]:
                # both clock edges every cycle: the pin's own internal energy + C V^2 of its input
                clock_pj += 2 * _table_energy(pd["power"], slew_ns, None) + pd["capacitance"] * V * V
                continue
            load[row] += pd["capacitance"]
            in_energy[row] += _table_energy(pd["power"], slew_ns, None)
    out_energy = _np.zeros(g.n_rows)
    driven = _np.zeros(g.n_rows, bool)
    for t, lc, pins in g.cells:
        for pn, pd in lc["pins"].items():
            if pd["direction"] == "output" and pn in pins:
                r = pins[pn]
                out_energy[r] += _table_energy(pd["power"], slew_ns, load[r]) + 0.5 * load[r] * V * V
                driven[r] = True
    tog = _np.asarray(toggles_per_cycle, float)
    internal = float(tog[driven] @ (out_energy[driven] - 0.5 * load[driven] * V * V))
    switching = float(tog[driven] @ (0.5 * load[driven] * V * V))
    inputs = float(tog @ in_energy)
    leak_nw = sum(lc["leakage"] for _, lc, _ in g.cells)
    leakage = leak_nw * (1e3 / clock_mhz) * 1e-6          # nW x ns = 1e-6 pJ
    return {"internal_pj": internal, "switching_pj": switching, "input_pin_pj": inputs, "clock_pj": clock_pj,
            "leakage_pj": leakage, "energy_per_cycle_pj": internal + switching + inputs + clock_pj + leakage,
            "clock_mhz": clock_mhz, "slew_ns": slew_ns, "voltage": V, "leakage_nw": leak_nw}


def liberty_energy(verilog_text: str, top: str, liberty: str, *, ops_per_cycle: float = 1,
                   clock_mhz: float = DEFAULT_CLOCK_MHZ, seed: int = 2014, timed: bool = False) -> dict:
    """Energy per operation of `top` mapped to the library `liberty`, in pJ at its node:
    uniform random data (valid=1, clear=0, rst=0 on clocked designs), zero-delay toggles of the
    mapped netlist (timed: every transition with the library's cell delays, glitches included),
    priced by netlist_energy_lib; cached."""
    from . import cache
    if not clock_mhz or clock_mhz <= 0:
        raise ValueError(f"clock must be > 0 MHz, got {clock_mhz}")
    lib_text = read_liberty(liberty)
    k = cache.key("libenergy", LIB_ENERGY_VERSION, top, verilog_text, lib_text, clock_mhz, seed,
                  *(("timed", DELAY_STEP_NS) if timed else ()))
    hit = cache.load("libenergy", k)
    if hit is None:
        net = mapped_netlist(verilog_text, top, liberty)
        g = MappedNetlist(net, top, library(lib_text))
        rng = _np.random.default_rng(seed)
        lanes, cycles = (SEQ_LANES, SEQ_CYCLES) if g.flip_flops else (COMB_LANES, COMB_CYCLES)
        W = -(-lanes // 64)
        data = [n for n in g.inputs if n not in g.clock_ports]

        def words(t):
            w = {}
            for n in data:
                if n in _CONTROL_DEFAULTS and len(g.inputs[n]) == 1 and g.flip_flops:
                    w[n] = _np.full((1, W), ONES if _CONTROL_DEFAULTS[n] else 0, _np.uint64)
                else:
                    w[n] = rng.integers(0, 2**64, size=(len(g.inputs[n]), W), dtype=_np.uint64)
            return w
        res = g.run_lanes(words, cycles, lanes,
                          timed=(net_loads(g), NOMINAL_SLEW_NS, DELAY_STEP_NS) if timed else None)
        zero = res["toggles"] / (res["transitions"] * lanes)
        tog = res["timed_toggles"] / (res["transitions"] * lanes) if timed else zero
        hit = {**netlist_energy_lib(g, tog, clock_mhz), "cells_total": sum(g.cell_types.values()),
               "flip_flops": g.flip_flops, "toggles_per_cycle": float(tog.sum()), "lanes": lanes, "cycles": cycles,
               "timed": timed}
        if timed:
            hit["zero_delay_toggles_per_cycle"] = float(zero.sum())
        cache.store("libenergy", k, hit)
    out = dict(hit)
    out.update(ops_per_cycle=ops_per_cycle, energy_pj=hit["energy_per_cycle_pj"] / ops_per_cycle)
    return out


def spearman(a, b) -> float:
    """Spearman rank correlation (ties get their average rank)."""
    def ranks(x):
        x = _np.asarray(x, float)
        order = _np.argsort(x, kind="stable")
        r = _np.empty(len(x))
        r[order] = _np.arange(len(x), dtype=float)
        for v in _np.unique(x):
            m = x == v
            r[m] = r[m].mean()
        return r
    ra, rb = ranks(a), ranks(b)
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        raise ValueError("spearman needs at least two points that are not all tied")
    return float(_np.corrcoef(ra, rb)[0, 1])
