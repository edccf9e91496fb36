"""The CLI side of the approximate-multiplier library: the sweep with its progress bar on stderr,
and the sweep's files (CSV, JSON, the Pareto PNG). The library itself lives below the CLI:
synth/approx_library.py (sweeps, Pareto fronts, best points, product-table files),
synth/multipliers.py (design points, characterization) and synth/characterize.py (a user's own
Verilog multiplier); their names are re-exported here, where `ecomac approx` looks them up.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from synth import approx_library as library
from synth.approx_library import (FAMILIES, JSON_KEYS, MODES, best_points, export_table,  # noqa: F401 (re-exports)
                                  load_table, pareto, params_text)
from synth.cache import atomic_write
from synth.characterize import (CHAR_MAX_BITS, characterize_verilog, read_verilog_table,  # noqa: F401
                                signed_metrics)
from synth.multipliers import _row, characterize, netlist_table, sweep_points  # noqa: F401 (re-exports)

from .plot import save_png
from .table import Progress

__all__ = ["FAMILIES", "sweep_points", "characterize", "sweep", "pareto", "best_points", "write_sweep",
           "plot_pareto", "netlist_table", "export_table", "load_table", "read_verilog_table", "characterize_verilog",
           "params_text", "JSON_KEYS", "MODES", "CHAR_MAX_BITS"]


def sweep(points, workers: int = 2, progress: bool = True) -> list[dict]:
    """synth.approx_library.sweep with its progress bar on stderr (progress=False: quiet)."""
    from synth.pool import check_workers
    check_workers(workers)                 # refused before the bar starts
    points = list(points)
    if not progress:
        return library.sweep(points, workers)
    with Progress(len(points), "approx sweep") as prog:
        return library.sweep(points, workers, progress=lambda note: prog.step(note=note))


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
