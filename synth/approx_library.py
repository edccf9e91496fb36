"""The approximate-multiplier library as a service, below the CLI: sweeps of design points
(synth/multipliers.py characterizes each one), Pareto fronts, each family's best point within
an error limit, and the product tables as files (tf-approximate's .bin, NumPy's .npy).

    sweep(points, workers=2, progress=None)   characterize every point, in worker processes
    pareto(rows, err_key)                     the points no other beats on error and energy
    best_points(rows, limits=(2.0, 5.0))      per family and MRE% limit, the lowest-energy point
    export_table(design, params, path, fmt)   write a design's product table
    load_table(path)                          read one back (or tf-approximate's)
    params_text(params)                       `k=4 correction=1` (what tables and files print)
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from golden import approx

from .cache import atomic_write
from .multipliers import characterize

__all__ = ["FAMILIES", "MODES", "JSON_KEYS", "params_text", "sweep", "pareto", "best_points", "export_table",
           "load_table"]

FAMILIES = approx.FAMILIES
MODES = ("activity", "static")
JSON_KEYS = ("design", "params", "mae", "mae_pct", "wce", "wce_pct", "mre_pct", "ep_pct", "mse", "bias",
             "cells", "transistors", "energy_pj")


def params_text(params: dict) -> str:
    """`k=4 correction=1` (bits left out when 8); `-` when empty."""
    items = [f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in params.items()
             if not (k == "bits" and v == 8)]
    return " ".join(items) or "-"


def _characterize_one(args):
    return characterize(*args)


def sweep(points, workers: int = 2, progress=None) -> list[dict]:
    """Characterize every (design, params) point in `workers` processes, in order;
    progress(note) after each point when given."""
    from .pool import check_workers, worker_pool
    check_workers(workers)
    points = list(points)
    rows = []
    if workers <= 1:
        for p in points:
            rows.append(characterize(*p))
            if progress is not None:
                progress(p[0])
    else:
        with worker_pool(workers) as pool:       # Ctrl-C: workers stopped, none left behind
            for row in pool.map(_characterize_one, points):
                rows.append(row)
                if progress is not None:
                    progress(f"{row['design']} {params_text(row['params'])}")
    return rows


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
