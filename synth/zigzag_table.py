"""Network energy on ecomac's tile accelerators (synth/zigzag.py) for many nets x datapaths x tiles x
batches: the table of docs/accelerators.md (`ecomac energy accelerators`, a `make experiments` step).

  accelerator_table(nets, ...)   rows {net, datapath, arch, batch, energy_pj, arithmetic_pj, memory_pj,
                                 levels, arithmetic_share_pct, in_vs_vn_pct, vs_int8_pct, seconds}
  hades_goal(rows)               tile-in against tile-vn per net/datapath/batch (HADES: > 50%)
  zigzag_example(net, yaml)      ZigZag's own figure for one of its example accelerators next to the
                                 same accelerator re-priced by ecomac
"""
from __future__ import annotations

import time

__all__ = ["DATAPATHS", "ARCHS", "BATCHES", "accelerator_table", "hades_goal", "zigzag_example"]

# fp32, int8, MF-MAC, ASM {1} and {1,3} (index storage, the tiles' default), two approximate multipliers
DATAPATHS = ("fp32", "int8", "mfmac", "asm,alphabet=1", "asm,alphabet=1/3", "approx:mul-drum,k=6",
             "approx:mul-trunc,k=6")
ARCHS = ("tile-vn", "tile-near", "tile-in")
BATCHES = (1, 16)
HADES_DATAPATHS = ("int8", "asm,alphabet=1", "asm,alphabet=1/3")


def accelerator_table(nets, datapaths=DATAPATHS, archs=ARCHS, batches=BATCHES, stream: bool = True,
                      progress=None) -> list[dict]:
    """Every net x datapath x arch x batch (plus the stream model at batch 1 when `stream`);
    progress(done, total, note) after each. `nets`: synth.network.Net objects."""
    from .zigzag import network_energy
    jobs = [(n, d, a, b) for n in nets for d in datapaths for a in archs for b in batches]
    if stream:
        jobs += [(n, d, "stream", 1) for n in nets for d in datapaths]
    rows = []
    if progress is not None:
        progress(0, len(jobs), "")
    for net, dp, arch, b in jobs:
        t0 = time.perf_counter()
        r = network_energy(net, dp, arch, b)
        rows.append({"net": net.name, "datapath": dp, "arch": arch, "batch": b, "macs": r["macs"],
                     "energy_pj": r["energy_pj"], "arithmetic_pj": r["arithmetic_pj"], "memory_pj": r["memory_pj"],
                     "levels": r.get("levels", {"sram": r["sram_pj"], "dram": r["dram_pj"]}),
                     "weights_resident": r.get("weights_resident"), "tiles": r.get("tiles"),
                     "weight_load_pj": r.get("weight_load_pj", 0.0),
                     "arithmetic_share_pct": 100.0 * r["arithmetic_pj"] / r["energy_pj"],
                     "seconds": time.perf_counter() - t0})
        if progress is not None:
            progress(len(rows), len(jobs), f"{net.name} {dp} {arch} b{b}")
    by = {(r["net"], r["datapath"], r["arch"], r["batch"]): r for r in rows}
    for r in rows:
        vn = by.get((r["net"], r["datapath"], "tile-vn", r["batch"]))
        r["in_vs_vn_pct"] = (100.0 * (1 - r["energy_pj"] / vn["energy_pj"])
                             if vn is not None and r["arch"] in ARCHS else None)
        i8 = by.get((r["net"], "int8", r["arch"], r["batch"]))
        r["vs_int8_pct"] = 100.0 * (1 - r["energy_pj"] / i8["energy_pj"]) if i8 is not None else None
    return rows


def hades_goal(rows, nets=("resnet18", "mobilenetv2"), datapaths=HADES_DATAPATHS) -> list[dict]:
    """tile-in's saving against tile-vn for the goal's nets and datapaths, each batch: met = > 50%."""
    out = []
    for r in rows:
        if r["arch"] == "tile-in" and r["net"] in nets and r["datapath"] in datapaths:
            out.append({"net": r["net"], "datapath": r["datapath"], "batch": r["batch"],
                        "saving_pct": r["in_vs_vn_pct"], "met": r["in_vs_vn_pct"] > 50.0})
    return out


def zigzag_example(net, yaml_path: str, datapath: str = "int8,acc_bits=16") -> dict:
    """One of ZigZag's example accelerators on `net`: ZigZag's own energy (the file's per-access costs
    and MAC energy, ZigZag's mapping) next to the same mapping's accesses priced by ecomac. 16-bit
    partial sums: ZigZag's examples hold one 16-bit partial sum per PE register."""
    from .zigzag import zigzag_own_energy
    return {"net": net.name, "accelerator": yaml_path, "datapath": datapath,
            **zigzag_own_energy(net, yaml_path, datapath)}
