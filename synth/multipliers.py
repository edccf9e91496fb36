"""The approximate-multiplier library's design points and their characterization, below the CLI
(the network level's ALWANN search prices its candidates with these; synth/approx_library.py
sweeps them into Pareto fronts and best points).

    sweep_points(families=None, bits=8)  the default design points (`ecomac approx sweep`)
    characterize(design, params)         exhaustive error metrics (golden tables) + cells,
                                         transistors, static and activity energy of the
                                         synthesized netlist, which is first checked to compute
                                         the golden table on all pairs; cached

Metrics come from the golden tables (golden/approx.py), which cocotb proves equal to the RTL;
cells/transistors/energy come from the same generated Verilog (synth.yosys, synth.energy).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from golden import approx

from . import cache

__all__ = ["FAMILIES", "sweep_points", "characterize", "netlist_table", "first_difference"]

FAMILIES = approx.FAMILIES
_VERSION = "2"            # bump when a characterization's contents change (cache key "approx-point")
_ROOT = Path(__file__).resolve().parent.parent


def _sources_digest() -> str:
    """Hash of the code a characterization depends on beyond the Verilog text itself."""
    h = hashlib.sha256()
    import amaranth
    h.update(amaranth.__version__.encode())
    for rel in ("rtl/approx.py", "rtl/export.py", "golden/approx.py", "synth/energy.py", "synth/gatesim.py",
                "synth/yosys.py", "synth/reference.py"):
        try:
            h.update(Path(_ROOT, rel).read_bytes())
        except OSError:
            h.update(rel.encode())
    return h.hexdigest()


def sweep_points(families=None, bits: int = 8) -> list[tuple[str, dict]]:
    """The default design points for N = bits: reference designs plus a sweep of each family."""
    fams = list(families) if families else list(FAMILIES)
    for f in fams:
        if f not in FAMILIES:
            raise ValueError(f"unknown multiplier family {f!r} (families: {', '.join(FAMILIES)})")
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= approx.MAX_TABLE_BITS:
        raise ValueError(f"sweep bits must be in 2..{approx.MAX_TABLE_BITS} (exhaustive metrics), got {bits!r}")
    N = bits
    pts = {
        "mul-array": [{}],
        "mul-exact": [{}],
        "mul-trunc": [{"k": k, "correction": c} for k in sorted({N // 2, N - 2, N - 1, N, N + 1, N + 2})
                      if 1 <= k <= 2 * N for c in (False, True)],
        # row j of the array keeps bits only when j >= vbl - N + 1, so hbl below that changes
        # nothing: every hbl swept here removes at least one row (and differs from mul-trunc)
        "mul-bam": [{"vbl": v, "hbl": h} for v in (N - 4, N - 2, N) if v >= 0
                    for h in range(max(1, v - N + 2), max(1, v - N + 2) + 3) if h <= N - 1],
        "mul-drum": [{"k": k} for k in range(3, N)],
        "mul-mitchell": [{"frac_bits": f} for f in range(N - 1, 2, -1)],
    }
    out = []
    for f in fams:
        for p in pts[f]:
            out.append((f, {"bits": N, **p}))
    return out


def _energy(text: str, top: str, mode: str) -> dict:
    from .energy import netlist_energy
    return netlist_energy(text, top, mode=mode)


def netlist_table(text: str, top: str, bits: int, names=("a", "b", "p")) -> np.ndarray:
    """The 2^N x 2^N table computed by the synthesized gate netlist (the one the energy model
    prices), evaluated bit-parallel on all pairs by synth.gatesim."""
    from .gatesim import GateNetlist, pack_values
    from .yosys import synthesize
    g = GateNetlist(synthesize(text, top, netlist=True)["netlist"], top)
    a, b = approx.operands(bits)
    res = g.run_time_packed({names[0]: pack_values(a, bits), names[1]: pack_values(b, bits)}, len(a))
    out = g.read_port(res["V"][g.outputs[names[2]]], len(a))
    return np.asarray(out, np.int64).reshape(1 << bits, 1 << bits)


def first_difference(t1, t2, bits) -> str:
    i = int(np.flatnonzero(np.asarray(t1).ravel() != np.asarray(t2).ravel())[0])
    return f"a={i >> bits}, b={i & ((1 << bits) - 1)}: {np.asarray(t1).ravel()[i]} vs {np.asarray(t2).ravel()[i]}"


def _row(design: str, params: dict, table: np.ndarray, text: str, top: str) -> dict:
    bits = params["bits"]
    net = netlist_table(text, top, bits)
    if not np.array_equal(net, table):   # the netlist that is priced must compute the golden table
        raise RuntimeError(f"synthesized netlist of {design} {params} differs from the golden table at "
                           f"{first_difference(net, table, bits)}")
    m = approx.metrics(table, bits)
    es = _energy(text, top, "static")
    ea = _energy(text, top, "activity")
    return {"design": design, "params": params, **m,
            "cells": es["cells_total"], "transistors": es["transistors"], "depth": es["depth"],
            "energy_pj": ea["energy_pj"], "energy_static_pj": es["energy_pj"],
            "energy_activity_pj": ea["energy_pj"], "toggles_per_op": ea.get("toggles_per_cycle")}


def characterize(design: str, params: dict | None = None) -> dict:
    """Metrics, cells, transistors and both energies of one design point; cached.

    `energy_pj` is the activity-mode energy (switching from uniform random operands);
    `energy_static_pj` and `energy_activity_pj` give both modes.
    """
    from rtl.export import generate
    from rtl.registry import get_design
    if design not in FAMILIES:
        raise ValueError(f"unknown multiplier family {design!r} (families: {', '.join(FAMILIES)})")
    full = get_design(design).full_params(params)
    get_design(design).validate(full)       # the RTL's one-line parameter errors
    # keyed by the sources that make the Verilog, not the Verilog itself: a hit costs no elaboration
    k = cache.key("approx-point", _VERSION, design, json.dumps(full, sort_keys=True), _sources_digest())
    hit = cache.load("approx-point", k)
    if hit is not None:
        return hit
    text, sheet = generate(design, full)
    params = sheet["parameters"]
    row = _row(design, params, approx.table(design, **params), text, sheet["module"])
    cache.store("approx-point", k, row)
    return row
