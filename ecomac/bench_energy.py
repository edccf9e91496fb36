"""`make bench` figures for the energy model: Yosys synthesis time per default design
(generic flow, empty cache) and the activity simulator's rate in operations per second
for the 8x8 array multiplier (time-packed) and the int-mac PE (lane-packed, sequential),
zero-delay and timed (unit-delay, glitches counted), with the timed/zero-delay time ratio
measured in the same run."""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np


def _synthesis_times() -> dict:
    from rtl.export import generate
    from rtl.registry import all_designs
    from synth.yosys import synthesize
    out = {}
    old = os.environ.get("ECOMAC_CACHE")
    with tempfile.TemporaryDirectory(prefix="ecomac-bench-") as d:
        os.environ["ECOMAC_CACHE"] = d          # empty cache: every run really calls Yosys
        try:
            for des in all_designs():
                if not des.default:
                    continue
                text, sheet = generate(des.name, {})
                t0 = time.perf_counter()
                r = synthesize(text, sheet["module"])
                out[des.name] = {"seconds": round(time.perf_counter() - t0, 3), "cells": r["cells_total"],
                                 "transistors": r["transistors"]}
        finally:
            if old is None:
                os.environ.pop("ECOMAC_CACHE", None)
            else:
                os.environ["ECOMAC_CACHE"] = old
    return out


def _sim_rate(design: str, params: dict, repeats: int = 5, timed: bool = False) -> dict:
    from synth.energy import _count_units, _design_verilog
    from synth.gatesim import GateNetlist
    from synth.yosys import synthesize
    text, top, ops, _ = _design_verilog(design, params)
    net = synthesize(text, top, netlist=True)["netlist"]
    t0 = time.perf_counter()
    g = GateNetlist(net, top)
    build = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = _count_units(g, {}, timed=timed)
        times.append(time.perf_counter() - t0)
    n_ops = (res["cycles"] - 1) * res["lanes"] * ops
    best = min(times)
    return {"design": design, "params": params, "cells": sum(g.cell_types.values()),
            "ops_per_run": n_ops, "best_s": round(best, 4), "median_s": round(float(np.median(times)), 4),
            "ops_per_second": round(n_ops / best), "netlist_build_s": round(build, 4),
            "packing": "time" if not g.sequential else "lanes", "timed": timed}


def run(outdir) -> dict:
    sims = {}
    for key, design, params in (("mul8", "mul-array", {"bits": 8}), ("int_mac", "int-mac", {}),
                                ("mfmac_pe", "mfmac-pe", {})):
        zero = _sim_rate(design, params)
        timed = _sim_rate(design, params, timed=True)
        sims[key] = zero
        sims[f"{key}_timed"] = {**timed, "time_vs_zero_delay": round(timed["best_s"] / zero["best_s"], 2)}
    return {"synthesis_s": _synthesis_times(), "activity_sim": sims}
