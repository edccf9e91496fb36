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

import re

__all__ = ["parse_cells", "sequential_cells", "units", "energy_summary"]

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
