"""Characterize any N x N multiplier written in Verilog: its exhaustive product table, error
metrics and energy, from the same gate netlist the energy model prices.

Flow: Yosys reads the user's files (each under its own name, so every message names the
user's file and line), lists their modules, flattens `top` and writes it as one Verilog
text; the generic flow (synth.yosys) maps it to gates, and synth.gatesim evaluates that
netlist bit-parallel on all 2^(2N) operand pairs -- a flattened netlist that assigns a wide
wire bit by bit costs no more than any other. Icarus Verilog simulates the user's own files
on a seeded sample of pairs (and the corner operands) as a cross-check that Yosys's reading
of the Verilog is the simulator's: a disagreement is an error, never a silent table. Where
Icarus cannot get through that sample in its time budget (Icarus 11 on a netlist assigning
a 2,048-bit wire bit by bit needs seconds per pair), it also simulates Yosys's flattened
reading of the files, one wire per bit, on the whole sample (the independent simulator then
checks synthesis, mapping and the bit-parallel evaluation; the parser only on what the first
run finished). Icarus and the energy model's calibration run on threads beside Yosys: the
machine's second core does them while the first synthesizes.

Tables: T[a, b] with a, b the operands' N-bit patterns (index a * 2^N + b); unsigned by
default; with signed=True the operands and the 2N-bit product are two's complement and T
holds the signed product values.

Metrics (signed_metrics for signed tables, golden.approx.metrics for unsigned ones, which
reproduces published MAE%/WCE%/MRE%/EP% figures): err = T - exact; mae = mean |err|;
wce = max |err|; mae_pct, wce_pct = % of 2^(2N) (the span of the 2N-bit product); mre_pct
= mean |err| / |exact| over pairs with exact != 0; ep_pct = % of pairs with err != 0; mse;
bias = mean err. For signed tables exact = a * b of the two's-complement values.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from .proc import ToolTimeout, run_tool
from .yosys import _yosys_cmd, failure_log

__all__ = ["CHAR_MAX_BITS", "read_sources", "flatten_top", "read_verilog_table", "characterize_verilog",
           "signed_metrics", "CROSS_CHECK_PAIRS", "CROSS_CHECK_S", "READING_CHECK_S"]

CHAR_MAX_BITS = 10          # 2^20 pairs at most
CROSS_CHECK_PAIRS = 1024    # Icarus samples this many random pairs (after the corners) ...
CROSS_CHECK_S = 1.5         # ... or as many as it finishes in this time (at least the corners, normally)
READING_CHECK_S = 3.0       # the same bound for Yosys's reading, one wire per bit (~0.1 s at 8x8)
_SEED = 2014
_TIMEOUT_S = 300.0          # per tool run (ECOMAC_TOOL_TIMEOUT overrides): an endless loop must not hang


def _limit(timeout: float | None) -> float:
    import os
    if timeout is not None:
        return timeout
    return float(os.environ["ECOMAC_TOOL_TIMEOUT"]) if os.environ.get("ECOMAC_TOOL_TIMEOUT") else _TIMEOUT_S


def read_sources(paths) -> list[tuple[str, str]]:
    """[(user path, text)] with one-line errors for a missing file, a directory, an empty list."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise ValueError("no Verilog file given (--verilog FILE.v, repeatable)")
    out = []
    for p in paths:
        q = Path(p)
        if q.is_dir():
            raise ValueError(f"Verilog file {p} is a directory")
        if not q.is_file():
            raise FileNotFoundError(f"Verilog file {p} does not exist")
        out.append((str(p), q.read_text(errors="replace")))
    return out


def _user_names(msg: str, names: dict[str, str]) -> str:
    for tmp, user in names.items():
        msg = msg.replace(tmp, user)
    return msg


def flatten_top(sources: list[tuple[str, str]], top: str | None, timeout: float | None = None) -> dict:
    """Read every source with Yosys, pick `top`, flatten it: {top, text (one Verilog module,
    one wire per bit), ports [{name, direction, width}] in declaration order, modules (every
    module read)}."""
    names = {f"src{i}_{re.sub(r'[^A-Za-z0-9_.-]', '_', Path(p).name)}": p for i, (p, _) in enumerate(sources)}
    reads = "".join(f"read_verilog -sv {tmp}\n" for tmp in names)
    pick = f"hierarchy -check -top {top}\n" if top else "hierarchy -check -auto-top\n"
    script = (reads + "proc\nwrite_json -noscopeinfo read.json\n" + pick +
              "flatten\nopt_clean\nwrite_json -noscopeinfo ports.json\n"
              # one wire per bit: Icarus 11 re-sends a whole vector to every reader on each
              # change of one of its bits, so a wide wire assigned bit by bit crawls there
              # (later versions defer the update, steveicarus/iverilog#1066)
              "splitnets\nopt_clean\nwrite_verilog -noattr -norename flat.v\n")
    with tempfile.TemporaryDirectory(prefix="ecomac-char-") as d:
        for tmp, (_, text) in zip(names, sources):
            Path(d, tmp).write_text(text)
        Path(d, "script.ys").write_text(script)
        proc = run_tool(_yosys_cmd() + ["-q", "-l", "yosys.log", "-s", "script.ys"], what=f"yosys reading {', '.join(p for p, _ in sources)}",
                        timeout=_limit(timeout), cwd=d)
        modules, tops = [], []
        if Path(d, "read.json").exists() and Path(d, "read.json").stat().st_size:
            read = json.loads(Path(d, "read.json").read_text())["modules"]
            modules = sorted(read)
            used = {c["type"] for mod in read.values() for c in mod.get("cells", {}).values()}
            tops = [m for m in modules if m not in used]      # modules no other module instantiates
            # a netlist beside its cell library: the unused cells are top-level too, but only
            # the netlist instantiates modules of the files
            parents = [m for m in tops if any(c["type"] in read for c in read[m].get("cells", {}).values())]
            if len(tops) > 1 and len(parents) == 1:
                tops = parents
        if modules and not top and len(tops) != 1:
            raise ValueError(f"give --top: {', '.join(p for p, _ in sources)} hold several top-level modules "
                             f"({', '.join(tops or modules)})")
        if proc.returncode != 0:
            m = re.search(r"^(.*ERROR:.*)$", failure_log(proc, d), re.M)   # "FILE:LINE: ERROR: what" or "ERROR: what"
            msg = _user_names(m.group(1).strip() if m else f"yosys exit {proc.returncode}", names)
            if modules and top and top not in modules and re.search(r"not found|top module", msg, re.I):
                raise ValueError(f"module {top} not found in {', '.join(p for p, _ in sources)} "
                                 f"(modules: {', '.join(modules)})")
            if not top and modules and len(modules) > 1:
                raise ValueError(f"give --top: {', '.join(p for p, _ in sources)} hold several modules "
                                 f"({', '.join(modules)})")
            if not modules and "ERROR" not in msg:
                raise ValueError(f"no module in {', '.join(p for p, _ in sources)}")
            # "ERROR: Parser error in line FILE:LINE: what" -> "FILE:LINE: cannot read module TOP: what"
            m = (re.search(r"^(\S+?):(\d+):\s*ERROR:\s*(.*)", msg) or
                 re.search(r"ERROR:\s*(?:Parser error in line\s*)?(?:(\S+?):(\d+):\s*)?(.*)", msg))
            where_line = f"{m.group(1)}:{m.group(2)}" if m and m.group(1) else ", ".join(p for p, _ in sources)
            what = m.group(3).strip() if m else msg
            raise ValueError(f"{where_line}: cannot read module {top or '(top)'}: {what}")
        if not modules:
            raise ValueError(f"no module in {', '.join(p for p, _ in sources)}")
        mods = json.loads(Path(d, "ports.json").read_text())["modules"]
        chosen = top or next((n for n, mod in mods.items() if str(mod.get("attributes", {}).get("top", "0")).strip("0")),
                             None) or next(iter(mods))
        text = Path(d, "flat.v").read_text()
    ports = [{"name": n, "direction": p["direction"], "width": len(p["bits"])} for n, p in mods[chosen]["ports"].items()]
    return {"top": chosen, "text": text, "ports": ports, "modules": modules}


def _check_ports(ports: list[dict], top: str, where: str) -> tuple[str, str, str, int]:
    ins = [p for p in ports if p["direction"] == "input"]
    outs = [p for p in ports if p["direction"] == "output"]
    seen = ", ".join(f"{p['direction']} {p['name']}[{p['width']}]" for p in ports) or "no ports"
    ok = (len(ins) == 2 and len(outs) == 1 and len(ports) == 3 and ins[0]["width"] == ins[1]["width"]
          and outs[0]["width"] == 2 * ins[0]["width"])
    if not ok:
        raise ValueError(f"module {top} must have two N-bit inputs and one 2N-bit output, has {seen} (in {where})")
    # operand a is the input named a (any case) when the names are a and b, else the first in the header
    if sorted(p["name"].lower() for p in ins) == ["a", "b"]:
        ins.sort(key=lambda p: p["name"].lower())
    n = ins[0]["width"]
    if not 2 <= n <= CHAR_MAX_BITS:
        raise ValueError(f"module {top} has N={n}; characterize evaluates all pairs, N must be in 2..{CHAR_MAX_BITS}")
    return ins[0]["name"], ins[1]["name"], outs[0]["name"], n


def _to_signed(v: np.ndarray, bits: int) -> np.ndarray:
    v = np.asarray(v, np.int64)
    return np.where(v >= 1 << (bits - 1), v - (1 << bits), v)


def _netlist_table(text: str, top: str, an: str, bn: str, pn: str, n: int, signed: bool,
                   where: str) -> np.ndarray:
    from .gatesim import GateNetlist, NetlistError, pack_values
    from .yosys import synthesize
    try:
        g = GateNetlist(synthesize(text, top, netlist=True)["netlist"], top)
    except NetlistError as e:
        raise ValueError(f"module {top} ({where}): {e}") from None
    if g.sequential:
        raise ValueError(f"module {top} ({where}) holds flip-flops: characterize takes combinational multipliers")
    grid = np.arange(1 << n, dtype=np.int64)
    a, b = (x.ravel() for x in np.meshgrid(grid, grid, indexing="ij"))
    res = g.run_time_packed({an: pack_values(a, n), bn: pack_values(b, n)}, len(a))
    p = np.asarray(g.read_port(res["V"][g.outputs[pn]], len(a)), np.int64)
    if signed:
        p = _to_signed(p, 2 * n)
    return p.reshape(1 << n, 1 << n)


_TB = """`timescale 1ns/1ps
module ecomac_char_tb;
  reg [{n1}:0] a, b;
  wire [{p1}:0] p;
  reg [{n1}:0] av [0:{last}];
  reg [{n1}:0] bv [0:{last}];
  integer i, fd;
  {top} dut (.{an}(a), .{bn}(b), .{pn}(p));
  initial begin
    $readmemh("a.hex", av);
    $readmemh("b.hex", bv);
    fd = $fopen("out.hex", "w");
    for (i = 0; i <= {last}; i = i + 1) begin
      a = av[i]; b = bv[i];
      #1 $fwrite(fd, "%h\\n", p);
      $fflush(fd);
    end
    $fclose(fd);
    $finish;
  end
endmodule
"""


def _esc(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else f"\\{name} "


def _sample_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The corner operands (every pair of them) first, then CROSS_CHECK_PAIRS seeded random pairs."""
    rng = np.random.default_rng(_SEED)
    hi = (1 << n) - 1
    corners = np.array([0, 1, hi, hi - 1, 1 << (n - 1), (1 << (n - 1)) - 1], np.int64)
    ca, cb = (x.ravel() for x in np.meshgrid(corners, corners, indexing="ij"))
    return (np.concatenate([ca, rng.integers(0, 1 << n, CROSS_CHECK_PAIRS)]),
            np.concatenate([cb, rng.integers(0, 1 << n, CROSS_CHECK_PAIRS)]))


def _icarus_run(files: list[tuple[str, str]], what: str, top: str, an: str, bn: str, pn: str, n: int,
                a: np.ndarray, b: np.ndarray, budget: float, timeout: float | None):
    """(a, b, p) of Icarus simulating `files` [(name in messages, text or None = that path)] on the
    pairs (a, b), cut to those it finished within `budget` seconds; `what` names the files."""
    lim = _limit(timeout)
    with tempfile.TemporaryDirectory(prefix="ecomac-char-sim-") as d:
        Path(d, "tb.v").write_text(_TB.format(n1=n - 1, p1=2 * n - 1, last=len(a) - 1, top=_esc(top), an=_esc(an),
                                              bn=_esc(bn), pn=_esc(pn)))
        Path(d, "a.hex").write_text("".join(f"{v:x}\n" for v in a))
        Path(d, "b.hex").write_text("".join(f"{v:x}\n" for v in b))
        paths = []
        for i, (name, text) in enumerate(files):
            if text is None:
                paths.append(str(Path(name).resolve()))
            else:
                paths.append(str(Path(d, f"src{i}.v")))
                Path(paths[-1]).write_text(text)
        comp = run_tool(["iverilog", "-g2012", "-o", "sim.vvp", "-s", "ecomac_char_tb", "tb.v", *paths],
                        what="iverilog", timeout=lim, cwd=d)
        if comp.returncode != 0:
            first = (comp.stderr or comp.stdout).strip().splitlines()
            msg = first[0] if first else "error"
            for (name, _), path in zip(files, paths):
                msg = msg.replace(path, name)
            raise ValueError(f"iverilog cannot compile {what}: {msg}")
        out = Path(d, "out.hex")
        try:
            # bounded: a netlist whose every bit lives in one wide vector re-evaluates every
            # assign on every event in Icarus; what finished within the budget is compared
            run = run_tool(["vvp", "-n", "sim.vvp"], what=f"vvp simulating {top}", timeout=min(lim, budget), cwd=d)
            if run.returncode != 0 or not out.exists():
                raise ValueError(f"simulating {top} failed: {(run.stderr or run.stdout).strip()[:200]}")
        except ToolTimeout:
            pass
        lines = out.read_text().split() if out.exists() else []
    lines = lines[:len(a)]
    if lines and len(lines) < len(a) and not re.fullmatch(r"[0-9a-fA-F]+|[xXzZ]+", lines[-1]):
        lines = lines[:-1]                      # the last line may be cut by the stop
    a, b = a[:len(lines)], b[:len(lines)]
    for i, s in enumerate(lines):
        if not re.fullmatch(r"[0-9a-fA-F]+", s):
            raise ValueError(f"output {pn} of {top} is undefined ({s}) for a={a[i]}, b={b[i]}")
    return a, b, np.array([int(s, 16) for s in lines], np.int64)


def _icarus_sample(sources: list[tuple[str, str]], flat_text: str, top: str, an: str, bn: str, pn: str, n: int,
                   timeout: float | None) -> dict:
    """Icarus on the sample pairs: {"files": (a, b, p) simulated from the user's files,
    "reading": (a, b, p) from Yosys's flattened reading, or None}; None without iverilog."""
    if not shutil.which("iverilog"):
        return None
    a, b = _sample_pairs(n)
    where = ", ".join(p for p, _ in sources)
    files = _icarus_run([(p, None) for p, _ in sources], where, top, an, bn, pn, n, a, b, CROSS_CHECK_S, timeout)
    reading = None
    if len(files[0]) < len(a):
        # The user's files did not get through the sample in the budget (Icarus 11 on a wide wire
        # assigned bit by bit takes seconds per pair, and longer still to settle the first). Their
        # gate netlist is then checked against the same simulator on the whole sample, reading
        # Yosys's flattening of them with one wire per bit (~0.1 s): a slip of synthesis, of the
        # mapping or of the bit-parallel evaluation still stops the run; the reading of the source
        # is checked on the pairs the first run finished.
        what = f"Yosys's reading of {where}"
        reading = _icarus_run([(what, flat_text)], what, top, an, bn, pn, n, a, b, READING_CHECK_S, timeout)
    return {"files": files, "reading": reading}


class _Background:
    """fn(*args) on a thread; result() waits and returns its value or raises its exception.

    Its tools go through run_tool like every other (own process group, timeout); an interrupt
    of the caller waits for the one in flight, which is bounded (vvp by CROSS_CHECK_S or
    READING_CHECK_S)."""

    def __init__(self, fn, *args):
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn, args):
        try:
            self._value = fn(*args)
        except BaseException as e:          # handed to the caller by result()
            self._error = e

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def wait(self) -> None:
        """Wait without raising: the caller is already failing with its own error."""
        self._thread.join()


def _compare(t: np.ndarray, sample, signed: bool, n: int, top: str, simulated: str) -> int:
    if sample is None:
        return 0
    a, b, p = sample
    if signed:
        p = _to_signed(p, 2 * n)
    bad = np.flatnonzero(t[a, b] != p)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"Yosys's netlist of {top} disagrees with the Icarus simulation of {simulated} at "
                         f"a={a[i]}, b={b[i]}: {t[a[i], b[i]]} vs {p[i]} (the energy would price another "
                         f"circuit)")
    return len(a)


def read_verilog_table(paths, top: str | None = None, signed: bool = False, *, cross_check: bool = True,
                       timeout: float | None = None) -> tuple[np.ndarray, int, dict]:
    """(table T[a, b] (np.int64), N, info) of the multiplier `top` in the Verilog file(s) `paths`.

    Inputs named a and b (any case) are a and b; otherwise the first input of the module
    header is a, the second b. info: top, ports, operand names, flattened Verilog text,
    icarus_checked_pairs (simulated from the user's files), icarus_reading_checked_pairs
    (from Yosys's reading, when the former were cut short)."""
    return _table_of(read_sources(paths), top, signed, cross_check, timeout)


def _table_of(sources: list[tuple[str, str]], top: str | None, signed: bool, cross_check: bool,
              timeout: float | None) -> tuple[np.ndarray, int, dict]:
    flat = flatten_top(sources, top, timeout)
    top = flat["top"]
    where = ", ".join(p for p, _ in sources)
    an, bn, pn, n = _check_ports(flat["ports"], top, where)
    # Icarus on the second core while Yosys synthesizes on the first
    sim = _Background(_icarus_sample, sources, flat["text"], top, an, bn, pn, n, timeout) if cross_check else None
    try:
        # the user's own text (files concatenated) is what gets synthesized and priced: Yosys
        # re-reading its own flattened output maps to a slightly different netlist
        text = "\n".join(t for _, t in sources)
        t = _netlist_table(text, top, an, bn, pn, n, signed, where)
    except BaseException:
        if sim is not None:
            sim.wait()
        raise
    checked = reading = 0
    if sim is not None:
        samples = sim.result()
        if samples is not None:
            checked = _compare(t, samples["files"], signed, n, top, where)
            reading = _compare(t, samples["reading"], signed, n, top, f"Yosys's reading of {where}")
    return t, n, {"top": top, "ports": flat["ports"], "a": an, "b": bn, "p": pn, "text": text,
                  "icarus_checked_pairs": checked, "icarus_reading_checked_pairs": reading,
                  "modules": flat["modules"]}


def signed_metrics(table, bits: int) -> dict:
    """The error metrics of a signed table (definitions in the module doc)."""
    from golden.approx import error_metrics
    grid = _to_signed(np.arange(1 << bits, dtype=np.int64), bits)
    a, b = (x.ravel() for x in np.meshgrid(grid, grid, indexing="ij"))
    return error_metrics(table, a * b, bits)


def _operand_stream(an: str, bn: str, n: int) -> dict:
    """Activity-mode stimuli drawn by role (a first, then b), never by port order."""
    from .energy import DEFAULT_VECTORS, SEED
    rng = np.random.default_rng(SEED)
    a = rng.integers(0, 1 << n, DEFAULT_VECTORS)
    b = rng.integers(0, 1 << n, DEFAULT_VECTORS)
    return {an: a, bn: b}


def _calibrate(user_text: str) -> None:
    """The energy model's calibration in both modes (synth.energy.calibration, cached): with an
    empty cache ~1 s of Amaranth and Yosys that does not depend on the user's circuit, so it
    runs on a thread while the user's files go through Yosys and Icarus."""
    from . import energy
    text = energy._design_verilog(*energy.CALIBRATION_DESIGN)[0]
    if text == user_text:
        # the user's file is the calibration design: the caller's synthesis of the same text
        # would write the same cache entries as this thread's; it calibrates afterwards instead
        return
    for mode in ("static", "activity"):
        energy.calibration(mode)


def characterize_verilog(paths, top: str | None = None, signed: bool = False, *, timeout: float | None = None) -> dict:
    """Exhaustive table, metrics, cells, transistors and both energies of a user's N x N multiplier.

    Keys: design, top, files, params {bits, signed}, table (T[a, b], np.int64), the metric
    keys, icarus_checked_pairs, icarus_reading_checked_pairs (read_verilog_table), cells,
    transistors, depth, energy_pj (= activity), energy_static_pj, energy_activity_pj,
    toggles_per_op."""
    from golden import approx

    from .energy import netlist_energy
    sources = read_sources(paths)
    calibrated = _Background(_calibrate, "\n".join(t for _, t in sources))
    try:
        t, n, info = _table_of(sources, top, signed, True, timeout)
    except BaseException:
        calibrated.wait()
        raise
    calibrated.result()
    m = signed_metrics(t, n) if signed else approx.metrics(t, n)
    text, top = info["text"], info["top"]
    es = netlist_energy(text, top, mode="static")
    ea = netlist_energy(text, top, mode="activity", stream=_operand_stream(info["a"], info["b"], n))
    files = [p for p, _ in sources]
    return {"design": f"{top} ({', '.join(Path(p).name for p in files)})", "top": top, "files": files,
            "params": {"bits": n, "signed": bool(signed)}, "table": t, **m,
            "icarus_checked_pairs": info["icarus_checked_pairs"],
            "icarus_reading_checked_pairs": info["icarus_reading_checked_pairs"],
            "cells": es["cells_total"], "transistors": es["transistors"], "depth": es["depth"],
            "energy_pj": ea["energy_pj"], "energy_static_pj": es["energy_pj"],
            "energy_activity_pj": ea["energy_pj"], "toggles_per_op": ea.get("toggles_per_cycle")}


def bit_by_bit_netlist(bits: int = 8, wire_bits: int = 2048, name: str = "wide_mul") -> str:
    """A flattened-netlist-style exact multiplier that assigns one wide wire bit by bit (the
    shape that made Icarus take 37-46 s): the partial products and ripple-carry rows of an
    array multiplier, each bit its own `assign` into `wire [wire_bits-1:0] t`. For `make bench`."""
    lines = [f"module {name}(input [{bits - 1}:0] a, input [{bits - 1}:0] b, output [{2 * bits - 1}:0] p);",
             f"  wire [{wire_bits - 1}:0] t;"]
    k = 0

    def new(expr):
        nonlocal k
        if k >= wire_bits:
            raise ValueError(f"wire_bits={wire_bits} is too small for a {bits}-bit multiplier")
        lines.append(f"  assign t[{k}] = {expr};")
        k += 1
        return f"t[{k - 1}]"
    acc = [new(f"a[{i}] & b[0]") for i in range(bits)] + ["1'b0"] * bits
    for j in range(1, bits):
        carry = "1'b0"
        for i in range(bits):
            pp = new(f"a[{i}] & b[{j}]")
            x, c = acc[i + j], carry
            s = new(f"{x} ^ {pp} ^ {c}")
            carry = new(f"({x} & {pp}) | ({c} & ({x} ^ {pp}))")
            acc[i + j] = s
        acc[j + bits] = carry
    while k < wire_bits:                       # the rest of the wire: unused bits, as netlists have
        new("1'b0")
    lines.append(f"  assign p = {{{', '.join(reversed(acc))}}};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
