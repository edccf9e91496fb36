"""Energy per operation from a synthesized gate netlist, calibrated on one reference point.

Cell cost: every cell of the generic Yosys flow weighs its CMOS transistor count
(synth.gatesim.CMOS_TRANSISTORS, the table of `stat -tech cmos`), a proxy for the
capacitance that switches when its output toggles.

Three modes, each with ONE technology constant (pJ per unit) calibrated once so that the
exact unsigned 8x8 array multiplier (`mul-array` bits=8) costs synth.reference.MUL8_PJ
= 0.2 pJ per operation (Horowitz, ISSCC 2014, 45 nm); every other figure is a prediction.

  static    units/cycle = transistors of the whole netlist. Assumption: every cell
            switches with the same probability each cycle (so the activity factor
            folds into the constant), flip-flops included.
  activity  units/cycle = sum over cell outputs of (toggles per cycle x cell transistors)
            + per flip-flop and cycle CLOCK_UNITS_PER_FF (the clock's rise and fall
            drive the clocked half of a 16-transistor master-slave flip-flop: 2 x 8
            transistor-toggles, the same as one output toggle of the flip-flop).
            Toggles are zero-delay (no glitches), counted by synth.gatesim:
            - combinational netlist, default stream: DEFAULT_VECTORS uniform random
              vectors applied on consecutive cycles, evaluated in one time-packed pass;
            - netlist with flip-flops, default stream: DEFAULT_LANES independent random
              streams packed bit-parallel (one lane per bit), iterated for DEFAULT_CYCLES
              cycles from the all-zero (reset) state, flip-flop state carried from cycle to
              cycle; toggles between consecutive cycles (DEFAULT_CYCLES-1 transitions per
              lane). Data inputs are uniform random each cycle; `valid`=1, `clear`=0, `rst`=0
              unless the caller's stream gives them.
            A caller's stream {port: values}: 1-D arrays are one stream of cycles (one lane);
            2-D arrays are (lanes, cycles). Ports it leaves out get the defaults above.
            Values are integers (two's complement for negatives, taken modulo 2^width); a
            port wider than 64 bits takes an object array of Python ints (e.g. the
            concatenated weight words of a multi-lane PE row).
  timed     as activity, on the same streams, but every transition of every cell output is
            counted, glitches included: each cycle is swept with a unit delay per generic gate
            from the previous cycle's settled values (synth.gatesim, timed=True). Reports the
            zero-delay count beside it and the glitch share = 1 - zero-delay toggle units /
            timed toggle units (transistor-weighted; the clock is not a glitch).
energy_pj = constant x units per cycle / operations per cycle (the design's op_count).

Results (calibration and activity counts) are cached by content hash (synth/cache.py).
"""
from __future__ import annotations

import hashlib

import numpy as np

from . import cache, reference
from .gatesim import ONES, GateNetlist, pack_values
from .yosys import FLOW_VERSION, synthesize

__all__ = ["MODES", "design_energy", "netlist_energy", "check_stream", "calibration", "calibration_table",
           "CALIBRATION_DESIGN", "CLOCK_UNITS_PER_FF", "design_liberty_energy", "liberty_correlation",
           "liberty_points", "default_liberty", "liberty_calibration", "glitch_table", "read_stream", "operands_text"]

MODEL_VERSION = "1"          # bump when the model below changes: cached results stop matching
MODES = ("static", "activity", "timed")
STREAM_MODES = ("activity", "timed")      # the modes that simulate a stream
CALIBRATION_DESIGN = ("mul-array", {"bits": 8})
CLOCK_UNITS_PER_FF = 2 * 8   # transistor-toggles per flip-flop per clock cycle
DEFAULT_VECTORS = 16384      # combinational: random vectors on consecutive cycles
DEFAULT_LANES = 1024         # sequential: independent streams
DEFAULT_CYCLES = 33          # sequential: cycles per stream (32 transitions)
SEED = 2014

# what the calibration table compares: (op, design, params, reference pJ)
CALIBRATION_POINTS = (
    ("8-bit multiply", "mul-array", {"bits": 8}, reference.MUL8_PJ),
    ("8-bit add", "int-add", {"bits": 8}, reference.ADD8_PJ),
    ("32-bit add", "int-add", {"bits": 32}, reference.ADD32_PJ),
    ("32-bit multiply", "mul-array", {"bits": 32}, reference.MUL32_PJ),
    ("FP32 add", "fp32-add", {}, reference.FADD32_PJ),
    ("FP32 multiply", "fp32-mul", {}, reference.FMUL32_PJ),
)


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


# ---- streams -----------------------------------------------------------------------------
def _normalize_stream(g: GateNetlist, stream: dict | None) -> dict[str, np.ndarray]:
    out = {}
    for name, v in (stream or {}).items():
        g.input_bits(name)                # raises for a name that is not an input port
        a = np.asarray(v)
        if a.dtype.kind == "O":           # Python ints, for ports wider than 64 bits
            if not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in a.flat):
                raise TypeError(f"stream for port {name} must hold integers; its object array holds others")
        elif a.dtype.kind not in "iub":
            raise TypeError(f"stream for port {name} must hold integers, not {a.dtype}")
        if a.ndim not in (1, 2) or a.shape[-1] < 2:
            raise ValueError(f"stream for port {name} must be 1-D (cycles) or 2-D (lanes, cycles) "
                             f"with at least 2 cycles, got shape {a.shape}")
        if name in g.clock_ports:
            raise ValueError(f"port {name} is the clock; it is not part of the stream")
        out[name] = a
    shapes = {a.shape[-1] for a in out.values()}
    if len(shapes) > 1:
        raise ValueError(f"stream ports disagree on the number of cycles: {sorted(shapes)}")
    lanes = {a.shape[0] for a in out.values() if a.ndim == 2}
    if len(lanes) > 1:
        raise ValueError(f"stream ports disagree on the number of lanes: {sorted(lanes)}")
    return out


def check_stream(design: str, params: dict | None, stream: dict, source: str = "stream") -> None:
    """A caller's stream for registered `design` `params`, checked against the design's ports
    before anything is synthesized: every data input present, no unknown port, every value in its
    port's range (valid/clear/rst may be left out: they default to 1/0/0). `source` opens each
    message (the CLI: "stream file PATH")."""
    from rtl.export import ports
    from rtl.registry import get_design
    d = get_design(design)
    full = d.validate(params)
    comp = d.cls(**full)
    comp._MustUse__silence = True          # read for its ports only, never elaborated
    inputs = {p["name"]: p for p in ports(comp) if p["direction"] == "in"}
    optional = {"valid", "clear", "rst"}
    unknown = sorted(set(stream) - set(inputs) - optional)
    if unknown:
        raise ValueError(f"{source}: {d.name} has no input port {unknown[0]!r} "
                         f"(inputs: {', '.join(inputs)})")
    missing = [n for n in inputs if n not in stream and n not in optional]
    if missing:
        raise ValueError(f"{source} lacks input port {', '.join(missing)} of {d.name}: give every data "
                         f"input ({', '.join(n for n in inputs if n not in optional)}); valid/clear default to 1/0")
    for name, a in stream.items():
        a = np.asarray(a)
        if a.size == 0 or name not in inputs or a.dtype.kind not in "iuO":
            continue            # empty or non-integer arrays: _normalize_stream's own message
        w, signed = inputs[name]["width"], inputs[name]["signed"]
        lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)
        try:
            amin, amax = int(a.min()), int(a.max())
        except (TypeError, ValueError):
            continue
        if amin < lo or amax > hi:
            bad = amin if amin < lo else amax
            raise ValueError(f"{source}: port {name} holds {bad}, outside its "
                             f"{'signed' if signed else 'unsigned'} {w}-bit range {lo}..{hi}")


def _stream_digest(stream: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(stream):
        a = np.ascontiguousarray(stream[name])
        # object arrays (wide ports) hash their values, not their pointers
        data = ",".join(map(str, a.flat)).encode() if a.dtype.kind == "O" else a.tobytes()
        h.update(name.encode() + b"\0" + a.dtype.str.encode() + str(a.shape).encode() + data)
    return h.hexdigest()


_CONTROL_DEFAULTS = {"valid": 1, "clear": 0, "rst": 0}


def _count_units(g: GateNetlist, stream: dict[str, np.ndarray], timed: bool = False) -> dict:
    """Activity units per cycle (toggles x transistors + clock) on `stream` (normalized);
    `timed` counts unit-delay transitions (glitches included) and reports both counts."""
    rng = np.random.default_rng(SEED)
    data_ports = [n for n in g.inputs if n not in g.clock_ports]
    if not g.sequential and all(a.ndim == 1 for a in stream.values()):
        n = next(iter(stream.values())).shape[0] if stream else DEFAULT_VECTORS
        words = {}
        for name in data_ports:
            width = len(g.inputs[name])
            if name in stream:
                words[name] = pack_values(stream[name], width)
            else:
                words[name] = rng.integers(0, 2**64, size=(width, -(-n // 64)), dtype=np.uint64,
                                           endpoint=False)
        res = g.run_time_packed(words, n, timed=timed)
        lanes, cycles = 1, n
    else:
        if stream:
            cycles = next(iter(stream.values())).shape[-1]
            lanes = max((a.shape[0] for a in stream.values() if a.ndim == 2), default=1)
        else:
            cycles, lanes = DEFAULT_CYCLES, DEFAULT_LANES
        W = -(-lanes // 64)
        # a 1-D port is the same stream in every lane
        given = {name: np.broadcast_to(a, (lanes, cycles)) for name, a in stream.items()}
        const = {}
        for name in data_ports:
            if name not in given and name in _CONTROL_DEFAULTS and len(g.inputs[name]) == 1:
                const[name] = np.full((1, W), ONES if _CONTROL_DEFAULTS[name] else 0, np.uint64)
        random_ports = [n for n in data_ports if n not in given and n not in const]

        def cycle_words(t):
            w = dict(const)
            for name in random_ports:
                w[name] = rng.integers(0, 2**64, size=(len(g.inputs[name]), W), dtype=np.uint64)
            for name, a in given.items():
                w[name] = pack_values(a[:, t], len(g.inputs[name]))
            return w
        res = g.run_lanes(cycle_words, cycles, lanes, timed=timed)
    samples = res["transitions"] * lanes
    toggle_units = float(res["toggles"] @ g.cost) / samples
    clock_units = g.flip_flops * CLOCK_UNITS_PER_FF
    out = {"units_per_cycle": toggle_units + clock_units,
           "toggle_units_per_cycle": toggle_units, "clock_units_per_cycle": float(clock_units),
           "toggles_per_cycle": float(res["toggles"].sum()) / samples,
           "cycles": cycles, "lanes": lanes}
    if timed:
        timed_units = float(res["timed_toggles"] @ g.cost) / samples
        out.update(units_per_cycle=timed_units + clock_units, toggle_units_per_cycle=timed_units,
                   zero_delay_toggle_units_per_cycle=toggle_units,
                   zero_delay_toggles_per_cycle=out["toggles_per_cycle"],
                   toggles_per_cycle=float(res["timed_toggles"].sum()) / samples,
                   glitch_share=(1 - toggle_units / timed_units) if timed_units else 0.0)
    return out


def _units(verilog_text: str, top: str, mode: str, stream: dict | None) -> dict:
    """Model units per cycle (uncalibrated) plus the netlist's statistics; cached."""
    raw = {k: np.asarray(v) for k, v in (stream or {}).items()}
    digest = (_stream_digest(raw) if raw else
              f"default:{SEED}:{DEFAULT_VECTORS}:{DEFAULT_LANES}:{DEFAULT_CYCLES}") if mode in STREAM_MODES else ""
    k = cache.key("units", MODEL_VERSION, FLOW_VERSION, mode, top, verilog_text, digest)
    hit = cache.load("units", k)
    if hit is not None:
        return hit
    # one synthesis (with the gate netlist) serves both modes
    stats = synthesize(verilog_text, top, netlist=True)
    if mode == "static":
        out = {"units_per_cycle": float(stats["transistors"]), **_stats(stats)}
    else:
        g = GateNetlist(stats["netlist"], top)
        s = _normalize_stream(g, raw)
        out = {**_count_units(g, s, timed=mode == "timed"), "stream": "uniform random (default)" if not s else "caller's",
               **_stats(stats)}
    cache.store("units", k, out)
    return out


def _stats(stats: dict) -> dict:
    return {k: stats[k] for k in ("transistors", "cells", "cells_total", "flip_flops", "depth")}


_SOURCES_DIGEST: list[str] = []


def _sources_digest() -> str:
    """Hash of every RTL/golden source file and the Amaranth version: generated Verilog
    cached under it is regenerated whenever any design source changes."""
    if not _SOURCES_DIGEST:
        import amaranth
        from pathlib import Path
        root = Path(__file__).resolve().parent.parent
        h = hashlib.sha256(amaranth.__version__.encode())
        for f in sorted(list((root / "rtl").glob("*.py")) + list((root / "golden").glob("*.py"))):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
        _SOURCES_DIGEST.append(h.hexdigest())
    return _SOURCES_DIGEST[0]


def _design_verilog(name: str, params: dict | None):
    """(verilog, top, op_count, full params) of a registered design; the Verilog is cached."""
    import json
    from rtl.export import generate
    from rtl.registry import get_design
    d = get_design(name)
    full = d.full_params(params)
    k = cache.key("verilog", _sources_digest(), name, json.dumps(full, sort_keys=True, default=list))
    hit = cache.load("verilog", k)
    if hit is None:
        text, sheet = generate(name, full)
        hit = {"text": text, "module": sheet["module"], "parameters": sheet["parameters"]}
        cache.store("verilog", k, hit)
    return hit["text"], hit["module"], d.op_count(full), hit["parameters"]


def calibration(mode: str = "static") -> dict:
    """{"pj_per_unit", "units_per_op", "design", "params", "reference_pj"} for `mode`; cached."""
    _check_mode(mode)
    name, params = CALIBRATION_DESIGN
    text, top, ops, _ = _design_verilog(name, params)
    k = cache.key("calibration", MODEL_VERSION, FLOW_VERSION, mode, text, reference.MUL8_PJ)
    hit = cache.load("calibration", k)
    if hit is None:
        units = _units(text, top, mode, None)["units_per_cycle"] / ops
        hit = {"mode": mode, "design": name, "params": params, "units_per_op": units,
               "reference_pj": reference.MUL8_PJ, "pj_per_unit": reference.MUL8_PJ / units,
               "source": reference.SOURCE}
        cache.store("calibration", k, hit)
    return hit


def netlist_energy(verilog_text: str, top: str, *, mode: str = "static", stream: dict | None = None,
                   ops_per_cycle: float = 1) -> dict:
    """Energy per operation of module `top` in `verilog_text` (any synthesizable Verilog).

    Keys: energy_pj (per operation), energy_per_cycle_pj, mode, ops_per_cycle, pj_per_unit,
    units_per_cycle, transistors, cells, cells_total, flip_flops, depth; activity mode adds
    toggles_per_cycle, toggle/clock units, cycles, lanes, stream; timed mode also
    zero_delay_toggles_per_cycle, zero_delay_toggle_units_per_cycle and glitch_share.
    """
    _check_mode(mode)
    if not ops_per_cycle or ops_per_cycle <= 0:
        raise ValueError(f"ops_per_cycle must be > 0, got {ops_per_cycle}")
    if mode == "static" and stream is not None:
        raise ValueError("a stream only applies to --mode activity or timed")
    u = _units(verilog_text, top, mode, stream)
    k = calibration(mode)["pj_per_unit"]
    per_cycle = k * u["units_per_cycle"]
    return {"energy_pj": per_cycle / ops_per_cycle, "energy_per_cycle_pj": per_cycle, "mode": mode,
            "ops_per_cycle": ops_per_cycle, "pj_per_unit": k, **u}


def design_energy(design: str, params: dict | None = None, *, mode: str = "static",
                  stream: dict | None = None) -> dict:
    """netlist_energy of a registered design, per operation = per cycle / op_count(params)."""
    text, top, ops, full = _design_verilog(design, params)
    out = netlist_energy(text, top, mode=mode, stream=stream, ops_per_cycle=ops)
    out.update(design=design, params=full)
    return out


def calibration_table(mode: str = "activity", designs_available=None) -> list[dict]:
    """Prediction vs reference for every point of the 45 nm table: op, design, params,
    predicted_pj, reference_pj, ratio (predicted / reference), and in timed mode the
    glitch_share. Points whose design is not registered are left out."""
    from rtl.registry import all_designs
    have = {d.name for d in all_designs()} if designs_available is None else set(designs_available)
    rows = []
    for op, name, params, ref in CALIBRATION_POINTS:
        if name not in have:
            continue
        r = design_energy(name, params, mode=mode)
        e = r["energy_pj"]
        rows.append({"op": op, "design": name, "params": params, "mode": mode,
                     "predicted_pj": e, "reference_pj": ref, "ratio": e / ref,
                     **({"glitch_share": r["glitch_share"]} if mode == "timed" else {})})
    return rows



# ---- energy from a real cell library (synth/liberty.py) --------------------------------------
def design_liberty_energy(design: str, params: dict | None, liberty: str, clock_mhz: float | None = None,
                          timed: bool = False) -> dict:
    """Energy per operation (pJ at the library's node) of a registered design mapped to `liberty`
    (timed: with the library's cell delays, glitches included)."""
    from .liberty import DEFAULT_CLOCK_MHZ, liberty_energy
    text, top, ops, full = _design_verilog(design, params)
    out = liberty_energy(text, top, liberty, ops_per_cycle=ops,
                         clock_mhz=DEFAULT_CLOCK_MHZ if clock_mhz is None else clock_mhz, timed=timed)
    out.update(design=design, params=full)
    return out


def liberty_correlation(points, liberty: str, mode: str = "activity", progress=None) -> dict:
    """Spearman rank correlation between the calibrated model (`mode`) and the library's energy
    per operation over `points` [(design, params)] (duplicates dropped); with every point."""
    from .liberty import spearman
    _check_mode(mode)
    seen, rows = set(), []
    import json
    for i, (name, params) in enumerate(points):
        key = (name, json.dumps(_design_verilog(name, params)[3], sort_keys=True, default=list))
        if key in seen:                  # the same design given with and without its defaults
            continue
        seen.add(key)
        if progress:
            progress(f"[{i + 1}/{len(points)}] {name} {params or ''}")
        lib = design_liberty_energy(name, params, liberty)
        model = design_energy(name, params, mode=mode)
        rows.append({"design": name, "params": lib["params"], "model_pj": model["energy_pj"],
                     "liberty_pj": lib["energy_pj"], "liberty_parts": {k: lib[k] / lib["ops_per_cycle"] for k in (
                         "internal_pj", "switching_pj", "input_pin_pj", "clock_pj", "leakage_pj")}})
    return {"mode": mode, "liberty": liberty, "points": rows,
            "spearman": spearman([r["model_pj"] for r in rows], [r["liberty_pj"] for r in rows])}


def liberty_points() -> list[tuple[str, dict]]:
    """The designs a cell-library correlation runs on: every default design and the
    approximate-multiplier sweep (synth.multipliers.sweep_points)."""
    from rtl.registry import all_designs

    from .multipliers import sweep_points
    return [(d.name, {}) for d in all_designs() if d.default] + sweep_points()


def default_liberty() -> str | None:
    """The cell library the report prices with: $ECOMAC_LIBERTY, else the sky130 typical corner
    in ../shared/pdk (beside the repository) when it is there; None otherwise."""
    import os
    from pathlib import Path
    env = os.environ.get("ECOMAC_LIBERTY")
    if env:
        return env
    p = Path(__file__).resolve().parent.parent.parent / "shared/pdk/sky130_fd_sc_hd__tt_025C_1v80.lib.gz"
    return str(p) if p.is_file() else None


def liberty_calibration(liberty: str) -> list[dict]:
    """The activity calibration table with each point's energy from the cell library (`liberty_pj`)."""
    return [{**r, "liberty_pj": design_liberty_energy(r["design"], r["params"], liberty)["energy_pj"]}
            for r in calibration_table("activity")]


def glitch_table() -> list[dict]:
    """Timed mode on every default design (its default streams): {design, zero_delay_toggles_per_cycle,
    toggles_per_cycle, glitch_share, energy_pj}."""
    from rtl.registry import all_designs
    keys = ("zero_delay_toggles_per_cycle", "toggles_per_cycle", "glitch_share", "energy_pj")
    return [{"design": d.name, **{k: r[k] for k in keys}}
            for d in all_designs() if d.default for r in [design_energy(d.name, {}, mode="timed")]]


def read_stream(path) -> dict:
    """An operand stream file (.npz: one integer array per input port); one line if it is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise ValueError(f"stream file {path}: not a NumPy .npz archive ({e})") from None


def operands_text(res: dict, stream_path: str | None) -> str:
    """What a design_energy result was measured on, in words."""
    if res.get("mode") == "static":
        return "none (static mode: energy ~ transistors)"
    if stream_path:
        return f"the caller's stream {stream_path}"
    return (f"uniform random over each data input's range, {res.get('lanes', 1)} streams x "
            f"{res.get('cycles', 0)} cycles (not the N(0,1) operands of `energy net`)")
