"""The approximate-multiplier library as a service: sweep points, characterization (exhaustive
error metrics + cells, transistors, energy from the synthesized netlist), Pareto fronts,
tf-approximate export and characterization of a user's own Verilog multiplier.

Metrics come from the golden tables (golden/approx.py), which cocotb proves equal to the RTL;
cells/transistors/energy come from the same generated Verilog (synth.yosys, synth.energy), and
every characterization also evaluates the synthesized gate netlist on all pairs and checks it
computes the golden table (the circuit that is priced is the circuit that was proven).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from golden import approx
from synth import cache
from synth.cache import atomic_write

from .plot import save_png

__all__ = ["FAMILIES", "sweep_points", "characterize", "sweep", "pareto", "best_points", "write_sweep",
           "plot_pareto", "netlist_table", "export_table", "load_table", "read_verilog_table", "characterize_verilog",
           "params_text", "JSON_KEYS", "MODES", "CHAR_MAX_BITS"]

FAMILIES = approx.FAMILIES
MODES = ("activity", "static")
JSON_KEYS = ("design", "params", "mae", "mae_pct", "wce", "wce_pct", "mre_pct", "ep_pct", "mse", "bias",
             "cells", "transistors", "energy_pj")
CHAR_MAX_BITS = 10        # user Verilog is simulated exhaustively: 2^20 pairs at most
_VERSION = "2"            # bump when a characterization's contents change
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


def params_text(params: dict) -> str:
    """`k=4 correction=1` (bits left out when 8); `-` when empty."""
    items = [f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in params.items()
             if not (k == "bits" and v == 8)]
    return " ".join(items) or "-"


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
    from synth.energy import netlist_energy
    return netlist_energy(text, top, mode=mode)


def netlist_table(text: str, top: str, bits: int, names=("a", "b", "p")) -> np.ndarray:
    """The 2^N x 2^N table computed by the synthesized gate netlist (the one the energy model
    prices), evaluated bit-parallel on all pairs by synth.gatesim."""
    from synth.gatesim import GateNetlist, pack_values
    from synth.yosys import synthesize
    g = GateNetlist(synthesize(text, top, netlist=True)["netlist"], top)
    a, b = approx.operands(bits)
    res = g.run_time_packed({names[0]: pack_values(a, bits), names[1]: pack_values(b, bits)}, len(a))
    out = g.read_port(res["V"][g.outputs[names[2]]], len(a))
    return np.asarray(out, np.int64).reshape(1 << bits, 1 << bits)


def _first_difference(t1, t2, bits) -> str:
    i = int(np.flatnonzero(np.asarray(t1).ravel() != np.asarray(t2).ravel())[0])
    return f"a={i >> bits}, b={i & ((1 << bits) - 1)}: {np.asarray(t1).ravel()[i]} vs {np.asarray(t2).ravel()[i]}"


def _row(design: str, params: dict, table: np.ndarray, text: str, top: str) -> dict:
    bits = params["bits"]
    net = netlist_table(text, top, bits)
    if not np.array_equal(net, table):   # the netlist that is priced must compute the golden table
        raise RuntimeError(f"synthesized netlist of {design} {params} differs from the golden table at "
                           f"{_first_difference(net, table, bits)}")
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


def _characterize_one(args):
    return characterize(*args)


def sweep(points, workers: int = 2, progress: bool = True) -> list[dict]:
    """Characterize every (design, params) point in `workers` processes, in order."""
    from synth.pool import check_workers, worker_pool
    from .table import Progress
    check_workers(workers)
    points = list(points)
    rows = []
    with Progress(len(points), "approx sweep") if progress else _Quiet() as prog:
        if workers <= 1:
            for p in points:
                rows.append(characterize(*p))
                prog.step(note=p[0])
        else:
            with worker_pool(workers) as pool:       # Ctrl-C: workers stopped, none left behind
                for row in pool.map(_characterize_one, points):
                    rows.append(row)
                    prog.step(note=f"{row['design']} {params_text(row['params'])}")
    return rows


class _Quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def step(self, *a, **k):
        pass


def pareto(rows: list[dict], err_key: str, energy_key: str = "energy_pj") -> list[dict]:
    """Points no other point beats on both error and energy (ties kept), by rising error."""
    pts = sorted(rows, key=lambda r: (r[err_key], r[energy_key]))
    front, best = [], float("inf")
    for r in pts:
        if r[energy_key] < best:
            front.append(r)
            best = r[energy_key]
    return front


def best_points(rows: list[dict], limits=(2.0, 5.0), energy_key: str = "energy_pj") -> list[dict]:
    """For each approximate family and each MRE% limit, the lowest-energy point within it,
    with its saving against mul-array (same N) in both energy modes."""
    ref = {r["params"]["bits"]: r for r in rows if r["design"] == "mul-array"}
    out = []
    for fam in approx.APPROX_FAMILIES:
        for lim in limits:
            cands = [r for r in rows if r["design"] == fam and r["mre_pct"] <= lim]
            if not cands:
                out.append({"design": fam, "limit": lim, "row": None})
                continue
            best = min(cands, key=lambda r: r[energy_key])
            item = {"design": fam, "limit": lim, "row": best}
            base = ref.get(best["params"]["bits"])
            if base is not None:
                for mode in ("static", "activity"):
                    key = f"energy_{mode}_pj"
                    item[f"saving_{mode}_pct"] = 100.0 * (1 - best[key] / base[key])
            out.append(item)
    return out


_CSV_KEYS = ("design", "params", "mae", "mae_pct", "wce", "wce_pct", "mre_pct", "ep_pct", "mse", "bias",
             "cells", "transistors", "depth", "energy_pj", "energy_static_pj", "energy_activity_pj")


def write_sweep(rows: list[dict], outdir, stem: str = "approx_sweep") -> dict:
    """Write STEM.csv, STEM.json and STEM_pareto.png into `outdir`; return their paths."""
    outdir = Path(outdir)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_CSV_KEYS)
    for r in rows:
        w.writerow([params_text(r["params"]) if k == "params" else r[k] for k in _CSV_KEYS])
    paths = {"csv": outdir / f"{stem}.csv", "json": outdir / f"{stem}.json", "png": outdir / f"{stem}_pareto.png"}
    atomic_write(paths["csv"], buf.getvalue())
    atomic_write(paths["json"], json.dumps(rows, indent=2) + "\n")
    plot_pareto(rows, paths["png"])
    return paths


_MARKERS = {"mul-array": ("k", "s"), "mul-exact": ("0.5", "D"), "mul-trunc": ("tab:blue", "o"),
            "mul-bam": ("tab:orange", "^"), "mul-drum": ("tab:green", "v"), "mul-mitchell": ("tab:red", "P")}


def plot_pareto(rows: list[dict], path, energy_key: str = "energy_pj") -> None:
    """Energy per multiply against MAE% and MRE%, each family its marker, Pareto front as a step line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    mode = "activity" if energy_key in ("energy_pj", "energy_activity_pj") else "static"
    for ax, key, label in ((axes[0], "mae_pct", "MAE (% of 2^2N)"), (axes[1], "mre_pct", "MRE (%)")):
        for fam in FAMILIES:
            pts = [r for r in rows if r["design"] == fam]
            if pts:
                color, marker = _MARKERS[fam]
                ax.scatter([r[key] for r in pts], [r[energy_key] for r in pts], c=color, marker=marker,
                           label=fam, s=36, zorder=3)
        front = pareto(rows, key, energy_key)
        ax.step([r[key] for r in front], [r[energy_key] for r in front], where="post", c="0.3", lw=1,
                ls="--", label="Pareto front", zorder=2)
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_xlabel(label)
        ax.set_ylabel(f"energy per multiply (pJ, {mode} model)")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=8)
    bits = sorted({r["params"]["bits"] for r in rows})
    fig.suptitle(f"Approximate {'/'.join(map(str, bits))}-bit multipliers: energy vs error "
                 f"(45 nm model calibrated on mul-array 8x8 = 0.2 pJ)")
    fig.tight_layout()
    save_png(fig, path)


# ---- tables in files ---------------------------------------------------------------------
def export_table(design: str, params: dict, path, fmt: str = "bin") -> np.ndarray:
    """Write the design's product table: `bin` = tf-approximate (65,536 little-endian uint16,
    index a*256 + b; N = 8 only), `npy` = the 2^N x 2^N array T[a, b]."""
    from rtl.registry import get_design
    if fmt not in ("bin", "npy"):
        raise ValueError(f"format must be bin or npy, got {fmt!r}")
    if design not in FAMILIES:
        raise ValueError(f"unknown multiplier family {design!r} (families: {', '.join(FAMILIES)})")
    full = get_design(design).full_params(params)
    get_design(design).validate(full)       # the RTL's one-line parameter errors
    bits = full["bits"]
    if fmt == "bin" and bits != 8:
        raise ValueError(f"the tf-approximate .bin format holds 8x8 multipliers only (bits=8), got bits={bits}; "
                         f"use --format npy")
    t = approx.table(design, **full)
    if fmt == "bin":
        atomic_write(path, t.astype("<u2").tobytes())
    else:
        buf = io.BytesIO()
        np.save(buf, t.astype(np.uint16 if bits <= 8 else np.uint32))
        atomic_write(path, buf.getvalue())
    return t


def load_table(path) -> np.ndarray:
    """Read a table written by export_table (or by tf-approximate): .npy, else .bin."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"table file {path} does not exist")
    if p.suffix == ".npy":
        return np.load(p)
    raw = p.read_bytes()
    if len(raw) != 2 * 65536:
        raise ValueError(f"{path}: a tf-approximate table has 131072 bytes (65,536 uint16), got {len(raw)}")
    return np.frombuffer(raw, dtype="<u2").reshape(256, 256)


# ---- a user's Verilog --------------------------------------------------------------------
def _module_ports(text: str, top: str, source: str = "Verilog") -> list[dict]:
    """[{name, direction, width}] of module `top` in declaration order (Yosys front end)."""
    from synth.yosys import SynthError, run_yosys
    script = f"read_verilog -sv design.v\nhierarchy -top {top}\nproc\nwrite_json -noscopeinfo ports.json\n"
    try:
        out = run_yosys(script, {"design.v": text}, ["ports.json"])["ports.json"]
    except SynthError as e:
        raise ValueError(f"{source}: cannot read module {top}: {e}") from None
    mods = json.loads(out)["modules"]
    if top not in mods:
        raise ValueError(f"module {top} not found (modules: {', '.join(sorted(mods))})")
    return [{"name": n, "direction": p["direction"], "width": len(p["bits"])}
            for n, p in mods[top]["ports"].items()]


def _check_ports(ports: list[dict], top: str) -> tuple[str, str, str, int]:
    ins = [p for p in ports if p["direction"] == "input"]
    outs = [p for p in ports if p["direction"] == "output"]
    seen = ", ".join(f"{p['direction']} {p['name']}[{p['width']}]" for p in ports) or "no ports"
    ok = (len(ins) == 2 and len(outs) == 1 and len(ports) == 3 and ins[0]["width"] == ins[1]["width"]
          and outs[0]["width"] == 2 * ins[0]["width"])
    if not ok:
        raise ValueError(f"module {top} must have two N-bit inputs and one 2N-bit output, has {seen}")
    # operand a is the input named a (any case) when the names are a and b, else the first in the header
    if sorted(p["name"].lower() for p in ins) == ["a", "b"]:
        ins.sort(key=lambda p: p["name"].lower())
    n = ins[0]["width"]
    if not 2 <= n <= CHAR_MAX_BITS:
        raise ValueError(f"module {top} has N={n}; characterize simulates all pairs, N must be in "
                         f"2..{CHAR_MAX_BITS}")
    return ins[0]["name"], ins[1]["name"], outs[0]["name"], n


_TB = """`timescale 1ns/1ps
module ecomac_char_tb;
  reg [{n1}:0] a, b;
  wire [{p1}:0] p;
  integer i, j, fd;
  {top} dut (.{an}(a), .{bn}(b), .{pn}(p));
  initial begin
    fd = $fopen("table.hex", "w");
    for (i = 0; i < {size}; i = i + 1)
      for (j = 0; j < {size}; j = j + 1) begin
        a = i; b = j;
        #1 $fwrite(fd, "%h\\n", p);
      end
    $fclose(fd);
    $finish;
  end
endmodule
"""


def _esc(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else f"\\{name} "


def read_verilog_table(path, top: str) -> tuple[np.ndarray, int, str]:
    """Simulate module `top` of Verilog file `path` on all 2^(2N) pairs with Icarus Verilog:
    (table T[a, b], N, Verilog text). Inputs named a and b (any case) are a and b; otherwise the
    first input of the module header is a, the second b."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"Verilog file {path} does not exist")
    text = p.read_text(errors="replace")
    an, bn, pn, n = _check_ports(_module_ports(text, top, str(path)), top)
    if not shutil.which("iverilog"):
        raise FileNotFoundError("Icarus Verilog (iverilog) is not installed: sudo apt-get install iverilog")
    with tempfile.TemporaryDirectory(prefix="ecomac-char-") as d:
        tb = _TB.format(n1=n - 1, p1=2 * n - 1, top=_esc(top), an=_esc(an), bn=_esc(bn), pn=_esc(pn),
                        size=1 << n)
        Path(d, "tb.v").write_text(tb)
        Path(d, "dut.v").write_text(text)
        comp = subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", "-s", "ecomac_char_tb", "tb.v", "dut.v"],
                              cwd=d, capture_output=True, text=True)
        if comp.returncode != 0:
            first = (comp.stderr or comp.stdout).strip().splitlines()
            raise ValueError(f"iverilog cannot compile {path}: {first[0] if first else 'error'}")
        run = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=d, capture_output=True, text=True)
        out = Path(d, "table.hex")
        if run.returncode != 0 or not out.exists():
            raise ValueError(f"simulating {path} failed: {(run.stderr or run.stdout).strip()[:200]}")
        lines = out.read_text().split()
    if len(lines) != 1 << (2 * n):
        raise ValueError(f"simulation of {top} gave {len(lines)} results, expected {1 << (2 * n)}")
    bad = [i for i, s in enumerate(lines) if not re.fullmatch(r"[0-9a-fA-F]+", s)]
    if bad:
        i = bad[0]
        raise ValueError(f"output {pn} of {top} is undefined ({lines[i]}) for a={i >> n}, b={i & ((1 << n) - 1)}")
    t = np.array([int(s, 16) for s in lines], dtype=np.int64).reshape(1 << n, 1 << n)
    return t, n, text


def characterize_verilog(path, top: str) -> dict:
    """Exhaustive metrics, cells, transistors and both energies of a user's N x N multiplier."""
    t, n, text = read_verilog_table(path, top)
    an, bn, pn, _ = _check_ports(_module_ports(text, top), top)
    net = netlist_table(text, top, n, (an, bn, pn))
    if not np.array_equal(net, t):
        raise ValueError(f"Yosys's netlist of {top} disagrees with the Icarus simulation at "
                         f"{_first_difference(net, t, n)} (netlist vs simulation): the energy would "
                         f"price another circuit")
    m = approx.metrics(t, n)
    es = _energy(text, top, "static")
    ea = _energy(text, top, "activity")
    return {"design": f"{top} ({Path(path).name})", "params": {"bits": n}, **m,
            "cells": es["cells_total"], "transistors": es["transistors"], "depth": es["depth"],
            "energy_pj": ea["energy_pj"], "energy_static_pj": es["energy_pj"],
            "energy_activity_pj": ea["energy_pj"], "toggles_per_op": ea.get("toggles_per_cycle")}
