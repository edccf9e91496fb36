"""Tile energy tables: energy per MVM of tile-vn, tile-near and tile-in (golden/tile.py) for each
datapath, split into arithmetic (the synthesized compute row) and data movement (synth/movement.py).

  tile_table(...)     every tile kind x datapath (int, mfmac, asm), saving against tile-vn/int
  storage_table(...)  ASM tiles over the alphabets {1}, {1,3}, {1,3,5,7} with weights stored as
                      control words or compact indices, next to the int tiles
  half_saving_bus_mm(rows)  the tile-vn bus length at which tile-near/int saves 50%
  vn_decoder_placement(rows)  tile-vn index storage: decoders per lane vs at the memory

A row synthesizes and simulates a compute row of `lanes` lanes the first time (minutes at 64
lanes); rows are cached by their parameters and the sources they depend on, so a repeated run
only reads them back. `progress(done, total, note)`, when given, is called once with done = 0
after the arguments are validated and before any work, then after each row.
"""
from __future__ import annotations

import json
from pathlib import Path

from golden import tile as gtile

__all__ = ["tile_table", "storage_table", "storage_label", "half_saving_bus_mm", "vn_decoder_placement", "DATAPATH_PARAMS", "KIND_NAMES",
           "STORAGE_ALPHABETS", "HADES_REFERENCE"]

KIND_NAMES = {"vn": "tile-vn", "near": "tile-near", "in": "tile-in"}
# "8-bit data" per datapath: int 8x8; asm 8-bit activations and 8-bit sign-magnitude weights
# over {1,3,5,7}; mfmac the 4-bit PoT codes of ALS-POTQ (magnitudes 1..64, 7 octaves)
DATAPATH_PARAMS = {
    "int": {"datapath": "int", "x_bits": 8, "w_bits": 8},
    "mfmac": {"datapath": "mfmac", "exp_bits": 3},
    "asm": {"datapath": "asm", "x_bits": 8, "w_bits": 8, "alphabet": (1, 3, 5, 7)},
}
HADES_REFERENCE = ">50% energy benefit of in-/near-memory tiles vs a von Neumann design (HADES paper; a reference, not measured here)"
STORAGE_ALPHABETS = ((1,), (1, 3), (1, 3, 5, 7))


_CACHE_VERSION = "1"      # bump when a row's contents change
_SOURCES = ("rtl/tile.py", "rtl/asm.py", "rtl/pot.py", "rtl/pot_product.py", "rtl/pot_acc.py", "rtl/intmac.py", "golden/tile.py", "golden/asm.py",
            "golden/pot.py", "synth/movement.py", "synth/energy.py", "synth/gatesim.py", "synth/yosys.py",
            "synth/reference.py", "synth/tiles.py")


def _sources_digest() -> str:
    """Hash of the code a row depends on: a cached row is reused only while that code is unchanged."""
    import hashlib

    import amaranth
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(amaranth.__version__.encode())
    for rel in _SOURCES:
        try:
            h.update((root / rel).read_bytes())
        except OSError:
            h.update(rel.encode())
    return h.hexdigest()


def _one(job):
    """One tile x datapath row, cached by its parameters and the sources (repeated runs are instant)."""
    from . import cache
    k = cache.key("tile-energy", _CACHE_VERSION, json.dumps(list(job)), _sources_digest())
    hit = cache.load("tile-energy", k)
    if hit is not None:
        return hit
    row = _compute(job)
    cache.store("tile-energy", k, row)
    return row


def storage_label(alphabet, storage: str) -> str:
    """The datapath label of an ASM storage row, e.g. asm{1,3}/index."""
    return "asm{" + ",".join(map(str, alphabet)) + "}/" + storage


def _datapath_params(dp: str) -> dict:
    """DATAPATH_PARAMS, or an ASM storage row `asm{...}/control|index` (8-bit x and w)."""
    if dp in DATAPATH_PARAMS:
        return DATAPATH_PARAMS[dp]
    alpha, storage = dp[len("asm{"):].split("}/")
    return {"datapath": "asm", "x_bits": 8, "w_bits": 8, "alphabet": tuple(int(a) for a in alpha.split(",")),
            "weight_storage": storage}


def _compute(job):
    kind, dp, lanes, depth, bus_bits, acc_bits, mode, bus_mm, min_sram = job
    from .movement import MovementModel, mvm_energy
    s = gtile.spec(kind, lanes, depth, acc_bits=acc_bits, bus_bits=bus_bits, **_datapath_params(dp))
    e = mvm_energy(s, mode, MovementModel(bus_mm=bus_mm, min_sram_bytes=min_sram))
    return {"tile": KIND_NAMES[kind], "datapath": dp, "lanes": lanes, "depth": depth,
            "stored_weight_bits": s.w_width, "bus_bits": s.bus_bits or None,
            "arithmetic_pj": e["arithmetic_pj"], "movement_pj": e["movement_pj"], "total_pj": e["total_pj"],
            "movement_parts_pj": e["movement"]["parts"], "counts": e["movement"]["counts"],
            "per_access_pj": e["movement"]["per_access"], "pj_per_mac_arithmetic": e["arithmetic"]["pj_per_mac"],
            "compute_row_cells": e["arithmetic"]["cells"], "compute_row_transistors": e["arithmetic"]["transistors"],
            "weight_load_pj": e["weight_load_pj"], "mode": mode, "bus_mm": bus_mm,
            "min_sram_bytes": min_sram}


def _check_tile(lanes: int, depth: int, bus_bits: int, acc_bits: int, mode: str) -> None:
    """The tile arguments both tables share, validated before any work (one line each)."""
    from .energy import MODES
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    gtile.spec("vn", lanes, depth, bus_bits=bus_bits, acc_bits=acc_bits)


def tile_table(lanes: int = 64, depth: int = 256, bus_bits: int = 64, acc_bits: int = 24,
               mode: str = "activity", bus_mm: float | None = None, min_sram_bytes: float = 0.0,
               workers: int = 2, progress=None) -> list[dict]:
    """Every tile kind x datapath; `saving_pct` is against tile-vn with the int datapath."""
    from .movement import BUS_MM
    from .pool import check_workers
    _check_tile(lanes, depth, bus_bits, acc_bits, mode)
    bus_mm = BUS_MM if bus_mm is None else float(bus_mm)
    if not bus_mm >= 0:
        raise ValueError(f"bus length must be >= 0 mm, got {bus_mm}")
    if not min_sram_bytes >= 0:
        raise ValueError(f"min_sram_bytes must be >= 0, got {min_sram_bytes}")
    check_workers(workers)
    jobs = [(k, dp, lanes, depth, bus_bits, acc_bits, mode, bus_mm, float(min_sram_bytes))
            for dp in DATAPATH_PARAMS for k in KIND_NAMES]
    rows = _run_rows(jobs, workers, progress)
    base = next(r for r in rows if r["tile"] == "tile-vn" and r["datapath"] == "int")["total_pj"]
    for r in rows:
        r["saving_pct"] = 100.0 * (1.0 - r["total_pj"] / base)
    return rows


def _run_rows(jobs: list[tuple], workers: int, progress=None) -> list[dict]:
    """Every tile row job (`_one`), in worker processes when workers > 1."""
    from .pool import worker_pool
    rows = []

    def done(row):
        rows.append(row)
        if progress is not None:
            progress(len(rows), len(jobs), f"{row['tile']}/{row['datapath']}")
    if progress is not None:
        progress(0, len(jobs), "")
    if workers > 1:
        with worker_pool(workers) as pool:
            for row in pool.map(_one, jobs):
                done(row)
    else:
        for j in jobs:
            done(_one(j))
    return rows


def storage_table(lanes: int = 64, depth: int = 256, bus_bits: int = 64, acc_bits: int = 24,
                  mode: str = "activity", workers: int = 2, progress=None,
                  storages=gtile.WEIGHT_STORAGES) -> list[dict]:
    """ASM tiles with the alphabets {1}, {1,3}, {1,3,5,7}, weights stored as control words or
    compact indices, next to the int tiles; saving_pct against tile-vn/int, vs_int_pct against
    the same tile kind with int. `storages`: the weight formats to price (default both)."""
    from .movement import BUS_MM
    from .pool import check_workers
    _check_tile(lanes, depth, bus_bits, acc_bits, mode)
    check_workers(workers)
    bad = [s for s in storages if s not in gtile.WEIGHT_STORAGES]
    if bad or not storages:
        raise ValueError(f"weight storage must be among {', '.join(gtile.WEIGHT_STORAGES)}, got {bad or storages}")
    dps = ["int"] + [storage_label(a, st) for a in STORAGE_ALPHABETS for st in storages]
    # asm{1,3,5,7}/control is tile_table's "asm" row: the same job, so its cached row is reused
    same = {storage_label(DATAPATH_PARAMS["asm"]["alphabet"], "control"): "asm"}
    jobs = [(k, same.get(dp, dp), lanes, depth, bus_bits, acc_bits, mode, BUS_MM, 0.0)
            for dp in dps for k in KIND_NAMES]
    rows = _run_rows(jobs, workers, progress)
    back = {v: k for k, v in same.items()}
    rows = [{**r, "datapath": back.get(r["datapath"], r["datapath"])} for r in rows]
    base = next(r for r in rows if r["tile"] == "tile-vn" and r["datapath"] == "int")["total_pj"]
    ints = {r["tile"]: r["total_pj"] for r in rows if r["datapath"] == "int"}
    for r in rows:
        r["saving_pct"] = 100.0 * (1.0 - r["total_pj"] / base)
        r["vs_int_pct"] = 100.0 * (1.0 - r["total_pj"] / ints[r["tile"]])
    return rows


def half_saving_bus_mm(rows) -> float:
    """Bus length at which tile-near/int is 50% below tile-vn/int (vn total = 2 x near total), from
    tile_table rows: the bus energy is linear in its length."""
    vn = next(r for r in rows if r["tile"] == "tile-vn" and r["datapath"] == "int")
    near = next(r for r in rows if r["tile"] == "tile-near" and r["datapath"] == "int")
    per_mm = vn["movement_parts_pj"]["bus_pj"] / vn["bus_mm"]
    rest = vn["total_pj"] - vn["movement_parts_pj"]["bus_pj"]
    return (2 * near["total_pj"] - rest) / per_mm


def vn_decoder_placement(rows) -> list[dict]:
    """tile-vn with index storage (storage_table rows), per alphabet: the decoders per lane after the
    bus (`per_lane_pj`, measured) against the same decoders at the memory, the bus then carrying
    control words (`at_memory_pj` = index arithmetic and reads + the control row's bus energy),
    and the control-storage row's total (`control_pj`)."""
    by = {(r["tile"], r["datapath"]): r for r in rows}
    out = []
    for a in STORAGE_ALPHABETS:
        c, i = by[("tile-vn", storage_label(a, "control"))], by[("tile-vn", storage_label(a, "index"))]
        at_mem = i["arithmetic_pj"] + i["movement_parts_pj"]["weight_reads_pj"] + c["movement_parts_pj"]["bus_pj"]
        out.append({"alphabet": a, "per_lane_pj": i["total_pj"], "at_memory_pj": at_mem, "control_pj": c["total_pj"]})
    return out
