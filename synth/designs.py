"""Registered designs as files and synthesis results (rtl/registry.py names them).

  default_designs()                    the designs `make` builds (registry `default=True`)
  write_verilog(name, params, out)     FILE.v and its datasheet FILE.json, both atomically
  synth_design(name, params, ...)      Yosys statistics of one design (cached by synth.yosys)
  synth_defaults(outdir, ...)          every default design, in worker processes; one failure
                                       does not lose the others' results

`heartbeat(label)`, when given, is a context-manager factory entered around each slow step
(generating the Verilog, synthesizing it): the CLI passes its Heartbeat, which prints a line when
a step runs long (synth_defaults sends it to its worker processes: a class or a module-level
function, not a lambda). `progress(done, total, note)`, when given, is called once with done = 0 after
the arguments are validated and before any work, then after each design.
"""
from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

from rtl.export import generate
from rtl.registry import all_designs, get_design

from .cache import atomic_write
from .proc import ToolError
from .yosys import SynthError, synthesize

__all__ = ["default_designs", "write_verilog", "synth_design", "synth_defaults"]


def default_designs():
    return [d for d in all_designs() if d.default]


def write_verilog(name: str, params: dict | None, out: str | Path, module: str | None = None,
                  heartbeat=None) -> dict:
    """Write FILE.v and the datasheet FILE.json beside it (both atomically); `module` renames
    the top module."""
    out = Path(out)
    with (heartbeat or nullcontext)(f"generating {name} Verilog"):
        text, sheet = generate(name, params, module)
    atomic_write(out, text)
    atomic_write(out.with_suffix(".json"), json.dumps(sheet, indent=2) + "\n")
    return sheet


def synth_design(name: str, params: dict | None = None, target: str = "generic",
                 liberty: str | None = None, heartbeat=None) -> dict:
    step = heartbeat or nullcontext
    d = get_design(name)
    with step(f"generating {name} Verilog"):
        text, sheet = generate(name, params)
    with step(f"synthesizing {name} (Yosys; cached afterwards)"):
        res = dict(synthesize(text, sheet["module"], target=target, liberty=liberty))
    res.pop("netlist", None)
    res["design"] = name
    res["params"] = sheet["parameters"]
    res["ops_per_cycle"] = d.op_count(sheet["parameters"])
    return res


def _synth_one(args):
    """(result, None) or (None, "design: what failed") -- one failure must not lose the others."""
    name, target, liberty, heartbeat = args
    try:
        return synth_design(name, {}, target=target, liberty=liberty, heartbeat=heartbeat), None
    except (SynthError, ToolError, ValueError) as e:
        return None, f"{name}: {e}"


def synth_defaults(outdir: str | Path | None = None, target: str = "generic", liberty: str | None = None,
                   workers: int = 2, progress=None, heartbeat=None) -> list[dict]:
    """Synthesize every default design in parallel worker processes (cached); each result is
    written to OUTDIR/<module>.json as it finishes. Raises SynthError naming every design that
    failed, after the others have finished."""
    from .pool import check_workers, worker_pool
    check_workers(workers)
    names = [d.name for d in default_designs()]
    rows, failed = [], []
    if progress is not None:
        progress(0, len(names), "")
    with worker_pool(workers) as pool:
        jobs = [(n, target, liberty, heartbeat) for n in names]
        for (res, err), name in zip(pool.map(_synth_one, jobs), names):
            if err is not None:
                failed.append(err)
                note = f"{name} FAILED"
            else:
                rows.append(res)
                if outdir is not None:   # written as it finishes: a later failure keeps it
                    atomic_write(Path(outdir) / f"{get_design(name).module}.json", json.dumps(res, indent=2) + "\n")
                note = name
            if progress is not None:
                progress(len(rows) + len(failed), len(names), note)
    if failed:
        kept = f"; the other {len(rows)} results are in {outdir}/" if outdir is not None and rows else ""
        raise SynthError(f"synthesis ({target}) failed for {len(failed)} of {len(names)} designs: "
                         f"{' | '.join(failed)}{kept}")
    return rows
