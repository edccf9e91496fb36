"""Design-level services shared by the CLI, the Makefile flows and the tests."""
from __future__ import annotations

import json
from pathlib import Path

from rtl.export import generate
from rtl.registry import all_designs, get_design
from synth.cache import atomic_write
from synth.proc import ToolError
from synth.yosys import SynthError, synthesize

from .table import Heartbeat, Progress, format_table

__all__ = ["write_verilog", "synth_design", "default_designs", "synth_defaults", "summary_table"]


def default_designs():
    return [d for d in all_designs() if d.default]


def write_verilog(name: str, params: dict | None, out: str | Path, module: str | None = None) -> dict:
    """Write FILE.v and the datasheet FILE.json beside it (both atomically); `module` renames
    the top module."""
    out = Path(out)
    with Heartbeat(f"generating {name} Verilog"):
        text, sheet = generate(name, params, module)
    atomic_write(out, text)
    atomic_write(out.with_suffix(".json"), json.dumps(sheet, indent=2) + "\n")
    return sheet


def synth_design(name: str, params: dict | None = None, target: str = "generic",
                 liberty: str | None = None) -> dict:
    d = get_design(name)
    with Heartbeat(f"generating {name} Verilog"):
        text, sheet = generate(name, params)
    with Heartbeat(f"synthesizing {name} (Yosys; cached afterwards)"):
        res = dict(synthesize(text, sheet["module"], target=target, liberty=liberty))
    res.pop("netlist", None)
    res["design"] = name
    res["params"] = sheet["parameters"]
    res["ops_per_cycle"] = d.op_count(sheet["parameters"])
    return res


def _synth_one(args):
    """(result, None) or (None, "design: what failed") -- one failure must not lose the others."""
    name, target, liberty = args
    try:
        return synth_design(name, {}, target=target, liberty=liberty), None
    except (SynthError, ToolError, ValueError) as e:
        return None, f"{name}: {e}"


def synth_defaults(outdir: str | Path | None = None, target: str = "generic",
                   liberty: str | None = None) -> list[dict]:
    """Synthesize every default design in parallel worker processes (cached)."""
    from synth.pool import worker_pool
    names = [d.name for d in default_designs()]
    rows, failed = [], []
    with Progress(len(names), "synth") as prog, worker_pool(2) as pool:
        for (res, err), name in zip(pool.map(_synth_one, [(n, target, liberty) for n in names]), names):
            if err is not None:
                failed.append(err)
                prog.step(note=f"{name} FAILED")
                continue
            rows.append(res)
            if outdir is not None:   # written as it finishes: a later failure keeps it
                atomic_write(Path(outdir) / f"{get_design(name).module}.json", json.dumps(res, indent=2) + "\n")
            prog.step(note=name)
    if failed:
        kept = f"; the other {len(rows)} results are in {outdir}/" if outdir is not None and rows else ""
        raise SynthError(f"synthesis ({target}) failed for {len(failed)} of {len(names)} designs: "
                         f"{' | '.join(failed)}{kept}")
    return rows


def summary_table(rows: list[dict]) -> str:
    generic = all("transistors" in r for r in rows)
    if generic:
        body = [[r["design"], r["cells_total"], r["transistors"], r["flip_flops"], r["depth"],
                 r["ops_per_cycle"], round(r["transistors"] / r["ops_per_cycle"])] for r in rows]
        return format_table(body, ["design", "cells", "transistors", "flip-flops", "depth",
                                   "ops/cycle", "transistors/op"])
    keys = [k for k in ("area_um2", "luts", "carry", "flip_flops", "dsp", "bram") if k in rows[0]]
    body = [[r["design"], r["cells_total"]] + [r[k] for k in keys] for r in rows]
    return format_table(body, ["design", "cells"] + keys)
