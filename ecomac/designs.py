"""The CLI side of the designs: synth/designs.py's Verilog files and synthesis with their
progress on stderr (Heartbeat lines for slow steps, the `synth --all` bar) and the synthesis
summary table. `ecomac verilog|synth`, `make report` and `ecomac alwann` look the names up here."""
from __future__ import annotations

from pathlib import Path

from synth import designs as library
from synth.designs import default_designs  # noqa: F401 (re-export: the CLI and its fuzz test look it up here)

from .table import Heartbeat, format_table, progress_bar

__all__ = ["write_verilog", "synth_design", "default_designs", "synth_defaults", "summary_table"]


def write_verilog(name: str, params: dict | None, out: str | Path, module: str | None = None) -> dict:
    """synth.designs.write_verilog with a Heartbeat while the Verilog is generated."""
    return library.write_verilog(name, params, out, module, heartbeat=Heartbeat)


def synth_design(name: str, params: dict | None = None, target: str = "generic",
                 liberty: str | None = None) -> dict:
    """synth.designs.synth_design with a Heartbeat on each slow step."""
    return library.synth_design(name, params, target=target, liberty=liberty, heartbeat=Heartbeat)


def synth_defaults(outdir: str | Path | None = None, target: str = "generic",
                   liberty: str | None = None) -> list[dict]:
    """synth.designs.synth_defaults (two worker processes) with its bar on stderr."""
    with progress_bar("synth") as step:
        return library.synth_defaults(outdir, target=target, liberty=liberty, workers=2, progress=step,
                                      heartbeat=Heartbeat)


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
