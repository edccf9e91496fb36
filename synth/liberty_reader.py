"""A small reader for the parts of a Liberty (.lib) cell library that ecomac reports:
per cell its area, whether it is sequential (has an ff/latch group), its leakage and
the average of its output pins' internal-power tables.

Internal power in Liberty is energy per transition, in voltage_unit x capacitive_load_unit
(1 V x 1 pF = 1 pJ for sky130). `internal_pj` is the plain mean over every entry of the
rise_power and fall_power tables of the cell's output pins (all input slews, output loads
and related pins weigh the same): a coarse "energy per output transition" that ignores the
switched load capacitance outside the cell. It is a report, not an input to the model.
"""
from __future__ import annotations

import gzip
import hashlib as _hashlib
import re
from pathlib import Path

import numpy as _np

__all__ = ["read_liberty", "parse_cells", "sequential_cells", "units", "energy_summary", "library", "lib_cell",
           "parse_function", "eval_function", "function_pins", "lookup", "ONES"]

_CELL = re.compile(r'\bcell\s*\(\s*"?([\w$.]+)"?\s*\)\s*\{')
_PIN = re.compile(r'\bpin\s*\(\s*"?([\w$.\[\]]+)"?\s*\)\s*\{')
_SEQ = re.compile(r'\b(ff|latch|ff_bank|latch_bank|statetable)\s*\(')
_POWER = re.compile(r'\b(rise_power|fall_power)\s*\([^)]*\)\s*\{[^}]*?\bvalues\s*\(([^)]*)\)', re.S)
_NUM = re.compile(r'[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?')


def _blocks(text: str, pattern) -> list[tuple[str, str]]:
    marks = list(pattern.finditer(text))
    return [(m.group(1), text[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(text)])
            for i, m in enumerate(marks)]


def _attr(block: str, name: str) -> float | None:
    m = re.search(rf'\b{name}\s*:\s*({_NUM.pattern})', block)
    return float(m.group(1)) if m else None


def sequential_cells(text: str) -> set[str]:
    """Names of the cells with an ff, latch or statetable group."""
    out = set()
    for name, block in _blocks(text, _CELL):
        head = _PIN.split(block, maxsplit=1)[0]   # sequential groups sit before or among pins
        if _SEQ.search(head) or _SEQ.search(block):
            out.add(name)
    return out


def units(text: str) -> dict:
    head = _CELL.split(text, maxsplit=1)[0]
    get = {}
    for k in ("time_unit", "voltage_unit", "leakage_power_unit", "current_unit"):
        m = re.search(rf'\b{k}\s*:\s*"?([^";]+)"?\s*;', head)
        if m:
            get[k] = m.group(1).strip()
    m = re.search(r'capacitive_load_unit\s*\(\s*([^,]+),\s*"?(\w+)"?\s*\)', head)
    if m:
        get["capacitive_load_unit"] = f"{float(m.group(1)):g}{m.group(2)}"
    return get


def parse_cells(text: str, names=None) -> dict[str, dict]:
    """{cell: {area, sequential, leakage, internal_pj, internal_tables}} for `names` (or all)."""
    want = None if names is None else set(names)
    out = {}
    for name, block in _blocks(text, _CELL):
        if want is not None and name not in want:
            continue
        pins = _blocks(block, _PIN)
        head = block[: block.find(pins[0][1]) if pins else len(block)]
        vals, tables = [], 0
        for _, pblock in pins:
            if not re.search(r'\bdirection\s*:\s*"?output"?', pblock):
                continue
            for m in _POWER.finditer(pblock):
                nums = [float(x) for x in _NUM.findall(m.group(2))]
                if nums:
                    vals.append(sum(nums) / len(nums))
                    tables += 1
        out[name] = {"area": _attr(head, "area"), "sequential": bool(_SEQ.search(block)),
                     "leakage": _attr(head, "cell_leakage_power"),
                     "internal_pj": (sum(vals) / len(vals)) if vals else None,
                     "internal_tables": tables}
    return out


def energy_summary(text: str, cells: dict[str, int]) -> dict:
    """The library's own figures for a mapped netlist's cells (`cells`: type -> count)."""
    lib = parse_cells(text, cells)
    rows = []
    for name, n in sorted(cells.items()):
        c = lib.get(name, {})
        rows.append({"cell": name, "count": n, "area_um2": c.get("area"),
                     "internal_pj": c.get("internal_pj"), "leakage": c.get("leakage"),
                     "sequential": c.get("sequential", False)})
    have = [r for r in rows if r["internal_pj"] is not None]
    leak = [r for r in rows if r["leakage"] is not None]
    return {"units": units(text), "cells": rows,
            # energy if every cell output made one transition (sum of count x internal_pj)
            "internal_pj_all_toggle": sum(r["count"] * r["internal_pj"] for r in have) if have else None,
            "leakage_total": sum(r["count"] * r["leakage"] for r in leak) if leak else None,
            "cells_without_power_tables": sorted(r["cell"] for r in rows if r["internal_pj"] is None)}


# ==== the library's functions and power / delay tables ====
ONES = _np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_TEMPLATE = re.compile(r'\b(?:power_lut_template|lu_table_template)\s*\(\s*"?([\w.]+)"?\s*\)\s*\{([^}]*)\}', re.S)
_IPOWER = re.compile(r'\binternal_power\s*\(\s*\)\s*\{')
_TABLE = re.compile(r'\b(rise_power|fall_power)\s*\(\s*"?([\w.]*)"?\s*\)\s*\{([^}]*)\}', re.S)
_FF = re.compile(r'\bff\s*\(\s*"?(\w+)"?\s*,\s*"?(\w+)"?\s*\)\s*\{([^}]*)\}', re.S)
_STR = r'\s*:\s*"([^"]*)"'

# sky130's own defaults: the slew at which the tables are read, and the stated clock
NOMINAL_SLEW_NS = 0.05
DEFAULT_CLOCK_MHZ = 100.0


def _floats(text: str) -> list[float]:
    return [float(x) for x in _NUM.findall(text)]


def _index(block: str, name: str):
    m = re.search(rf'\b{name}\s*\(\s*"([^"]*)"\s*\)', block)
    return _floats(m.group(1)) if m else None


def lookup(table: dict, slew: float, load: float) -> float:
    """Bilinear interpolation (clamped at the table's edges) at (input slew, output load)."""
    vals = table["values"]
    i1, i2 = table["index_1"], table["index_2"]
    if i2 is None or vals.ndim == 1:
        v = vals.ravel()
        return float(_np.interp(slew, i1, v[: len(i1)])) if i1 is not None and len(i1) == v.size else float(v.mean())
    rows = _np.array([_np.interp(load, i2, vals[r]) for r in range(vals.shape[0])])
    return float(_np.interp(slew, i1, rows))


def _power_tables(pblock: str, templates: dict) -> list[dict]:
    """Every internal_power group of a pin: {related, rise, fall} tables."""
    marks = list(_IPOWER.finditer(pblock))
    out = []
    for i, m in enumerate(marks):
        body = pblock[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(pblock)]
        rel = re.search(r'\brelated_pin' + _STR, body)
        group = {"related": rel.group(1) if rel else None}
        for t in _TABLE.finditer(body):
            kind, tmpl, tb = t.groups()
            group[kind.split("_")[0]] = _lookup_table(tb, templates.get(tmpl, {}))
        out.append(group)
    return out


def _lookup_table(tb: str, base: dict) -> dict:
    """One lookup-table group's body -> {values, index_1, index_2} (indices from the group or its
    template; values 1-D when there is no second index or the sizes do not match)."""
    vm = re.search(r'\bvalues\s*\((.*?)\)\s*;', tb, re.S)
    vals = _np.array(_floats(vm.group(1))) if vm else _np.zeros(1)
    i1 = _index(tb, "index_1") or base.get("index_1")
    i2 = _index(tb, "index_2") or base.get("index_2")
    if i1 is not None and i2 is not None and vals.size == len(i1) * len(i2):
        vals = vals.reshape(len(i1), len(i2))
    else:
        i2 = None
    return {"values": vals, "index_1": i1, "index_2": i2}


_TIMING = re.compile(r'\btiming\s*\(\s*\)\s*\{')
_DELAY = re.compile(r'\b(cell_rise|cell_fall)\s*\(\s*"?([\w.]*)"?\s*\)\s*\{([^}]*)\}', re.S)


def _delay_tables(pblock: str, templates: dict) -> list[dict]:
    """cell_rise/cell_fall tables of every timing() group of a pin (same shape as the power tables)."""
    marks = list(_TIMING.finditer(pblock))
    out = []
    for i, m in enumerate(marks):
        body = pblock[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(pblock)]
        group = {}
        for t in _DELAY.finditer(body):
            kind, tmpl, tb = t.groups()
            group["rise" if kind == "cell_rise" else "fall"] = _lookup_table(tb, templates.get(tmpl, {}))
        if group:
            out.append(group)
    return out


_LIBS: dict[str, dict] = {}


def library(text: str) -> dict:
    """Units, nominal voltage, templates and the cell blocks of a library (cells parsed on
    demand by `lib_cell`). Kept once per library text (in-process cache)."""
    key = _hashlib.sha256(text.encode()).hexdigest()
    if key in _LIBS:
        return _LIBS[key]
    head = _CELL.split(text, maxsplit=1)[0]
    templates = {m.group(1): {"index_1": _index(m.group(2), "index_1"), "index_2": _index(m.group(2), "index_2")}
                 for m in _TEMPLATE.finditer(head)}
    nom = re.search(r'\bnom_voltage\s*:\s*(' + _NUM.pattern + ')', head)
    lib = {"units": units(text), "nom_voltage": float(nom.group(1)) if nom else None, "templates": templates,
           "blocks": dict(_blocks(text, _CELL)), "cells": {}}
    _LIBS[key] = lib
    return lib


def lib_cell(lib: dict, name: str) -> dict | None:
    """One cell: pins (direction, capacitance, function, clock flag, internal power tables),
    its ff group (or None), leakage and whether it is a latch; None if the library lacks it."""
    if name in lib["cells"]:
        return lib["cells"][name]
    block = lib["blocks"].get(name)
    if block is None:
        return None
    pins = {}
    for pname, pblock in _blocks(block, _PIN):
        d = re.search(r'\bdirection\s*:\s*"?(\w+)"?', pblock)
        f = re.search(r'\bfunction' + _STR, pblock)
        clk = re.search(r'\bclock\s*:\s*"?(\w+)"?', pblock)
        pins[pname] = {"direction": d.group(1) if d else None, "capacitance": _attr(pblock, "capacitance") or 0.0,
                       "function": f.group(1) if f else None, "clock": bool(clk and clk.group(1) == "true"),
                       "power": _power_tables(pblock, lib["templates"]),
                       "delay": _delay_tables(pblock, lib["templates"])}
    ff = _FF.search(block)
    ffd = None
    if ff:
        body = ff.group(3)
        ns, co = re.search(r'\bnext_state' + _STR, body), re.search(r'\bclocked_on' + _STR, body)
        ffd = {"iq": ff.group(1), "iqn": ff.group(2), "next_state": ns.group(1) if ns else None,
               "clocked_on": co.group(1) if co else None,
               "async": bool(re.search(r'\b(clear|preset)\s*:', body))}
    cell = {"pins": pins, "ff": ffd, "leakage": _attr(_PIN.split(block, maxsplit=1)[0], "cell_leakage_power") or 0.0,
            "latch": bool(re.search(r'\blatch\s*\(', block))}
    lib["cells"][name] = cell
    return cell


# ---- Liberty boolean functions ------------------------------------------------------------
def _tokens(expr: str):
    i = 0
    while i < len(expr):
        c = expr[i]
        if c.isspace():
            i += 1
            continue
        m = re.match(r'[A-Za-z_][\w\[\]]*|[01]|[!\'&*|+^()]', expr[i:])
        if not m:
            raise ValueError(f"liberty function {expr!r}: cannot read {expr[i:]!r}")
        yield m.group(0)
        i += len(m.group(0))


def parse_function(expr: str):
    """A Liberty function ("(A1&A2) | !B", "A B'", "A^B") -> nested tuples:
    ("or"|"xor"|"and", [args]), ("not", arg), ("pin", name), ("const", 0|1).
    Precedence, lowest first: | (or +), ^, & (or * or juxtaposition), then ! prefix and ' postfix."""
    toks = list(_tokens(expr))
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def p_or():
        args = [p_xor()]
        while peek() in ("|", "+"):
            take()
            args.append(p_xor())
        return args[0] if len(args) == 1 else ("or", args)

    def p_xor():
        args = [p_and()]
        while peek() == "^":
            take()
            args.append(p_and())
        return args[0] if len(args) == 1 else ("xor", args)

    def p_and():
        args = [p_unary()]
        while peek() is not None and peek() not in ("|", "+", "^", ")"):
            if peek() in ("&", "*"):
                take()
            args.append(p_unary())
        return args[0] if len(args) == 1 else ("and", args)

    def p_unary():
        t = take() if peek() is not None else None
        if t is None:
            raise ValueError(f"liberty function {expr!r} ends early")
        if t == "!":
            node = ("not", p_unary())
        elif t == "(":
            node = p_or()
            if take() != ")" if peek() is not None else True:
                raise ValueError(f"liberty function {expr!r}: unbalanced parentheses")
        elif t in ("0", "1"):
            node = ("const", int(t))
        elif re.match(r'[A-Za-z_]', t):
            node = ("pin", t)
        else:
            raise ValueError(f"liberty function {expr!r}: unexpected {t!r}")
        while peek() == "'":
            take()
            node = ("not", node)
        return node

    tree = p_or()
    if pos != len(toks):
        raise ValueError(f"liberty function {expr!r}: unexpected {toks[pos]!r}")
    return tree


def eval_function(tree, env: dict):
    """Evaluate a parsed function on packed uint64 arrays (env: pin -> array)."""
    op = tree[0]
    if op == "pin":
        return env[tree[1]]
    if op == "const":
        return ONES if tree[1] else _np.uint64(0)
    if op == "not":
        return ~eval_function(tree[1], env)
    vals = [eval_function(a, env) for a in tree[1]]
    out = vals[0]
    for v in vals[1:]:
        out = (out & v) if op == "and" else (out | v) if op == "or" else (out ^ v)
    return out


def function_pins(tree) -> set[str]:
    if tree[0] == "pin":
        return {tree[1]}
    if tree[0] == "const":
        return set()
    if tree[0] == "not":
        return function_pins(tree[1])
    return set().union(*(function_pins(a) for a in tree[1]))


def read_liberty(path: str) -> str:
    """The text of a .lib or .lib.gz file; one line if it is missing, a folder, or holds no library group."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"liberty file {path} is a folder, not a file")
    if not p.is_file():
        raise FileNotFoundError(f"liberty file {path} does not exist")
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8", errors="replace")
    if not re.search(r"\blibrary\s*\(", text):
        raise ValueError(f"liberty file {path} does not parse: no library(...) group")
    return text
