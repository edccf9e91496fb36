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
import io
import json
from pathlib import Path

import numpy as np

from golden import approx
from synth.cache import atomic_write
# the design points and their characterization live below the CLI (the network level's ALWANN
# search prices its candidates with them); re-exported here under their old names
from synth.multipliers import _row, characterize, netlist_table, sweep_points  # noqa: F401 (re-exports)
from synth.multipliers import first_difference as _first_difference

from .plot import save_png

__all__ = ["FAMILIES", "sweep_points", "characterize", "sweep", "pareto", "best_points", "write_sweep",
           "plot_pareto", "netlist_table", "export_table", "load_table", "read_verilog_table", "characterize_verilog",
           "params_text", "JSON_KEYS", "MODES", "CHAR_MAX_BITS"]

FAMILIES = approx.FAMILIES
MODES = ("activity", "static")
JSON_KEYS = ("design", "params", "mae", "mae_pct", "wce", "wce_pct", "mre_pct", "ep_pct", "mse", "bias",
             "cells", "transistors", "energy_pj")
def params_text(params: dict) -> str:
    """`k=4 correction=1` (bits left out when 8); `-` when empty."""
    items = [f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in params.items()
             if not (k == "bits" and v == 8)]
    return " ".join(items) or "-"


def _energy(text: str, top: str, mode: str) -> dict:
    from synth.energy import netlist_energy
    return netlist_energy(text, top, mode=mode)


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


# ---- a user's Verilog: synth/characterize.py (re-exported under the old names) ------------
from synth.characterize import CHAR_MAX_BITS, characterize_verilog, read_verilog_table, signed_metrics  # noqa: E402,F401
