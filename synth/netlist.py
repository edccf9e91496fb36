"""Any Verilog module's statistics and energy (`ecomac netlist`): the generic or cell-library
synthesis of synth/yosys.py, the energy model of synth/energy.py, and Yosys's errors reworded to
name the user's file (Yosys only sees temporary copies)."""
from __future__ import annotations

from .yosys import SynthError, synthesize

__all__ = ["netlist_stats", "netlist_energy", "user_error"]


def user_error(e: Exception, path: str, top: str) -> Exception:
    """A SynthError naming `path` (a liberty file's own error is kept)."""
    msg = str(e)
    if msg.startswith("liberty file "):
        return e
    if "not found" in msg and top in msg:
        return SynthError(f"{path}: top module {top!r} not found")
    return SynthError(f"{path}: {msg}")


def netlist_stats(verilog_text: str, path: str, top: str, liberty: str | None = None) -> dict:
    """synth.yosys.synthesize of `top`; with a cell library also its per-cell summary ("library":
    synth.liberty_reader.energy_summary). A module with no cells has zero of everything."""
    try:
        res = dict(synthesize(verilog_text, top, liberty=liberty))
    except SynthError as e:
        raise user_error(e, path, top) from None
    if liberty:
        from .liberty_reader import energy_summary, read_liberty
        res["library"] = energy_summary(read_liberty(liberty), res["cells"])
    return res


def netlist_energy(verilog_text: str, path: str, top: str, mode: str = "static", ops_per_cycle: float = 1.0) -> dict:
    """synth.energy.netlist_energy of `top`, errors naming `path`."""
    from . import energy
    try:
        return energy.netlist_energy(verilog_text, top, mode=mode, ops_per_cycle=ops_per_cycle)
    except SynthError as e:
        raise user_error(e, path, top) from None
