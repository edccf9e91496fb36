"""Network energy compared across datapaths (on synth/network.py's net_energy):

  headline(nets, mode, mfmac)          the ALS-POTQ headline: one training step of each net on fp32,
                                       int8 and MF-MAC, and the MF-MAC reductions against FP32
  datapath_comparison(net_path, ...)   per datapath: energy per MAC and per training step of a net,
                                       saved against FP32 and int8, with the product error
  product_error_pct(spec)              mean relative error of an approx datapath's products
  accumulator_table(k_values, ...)     MF-MAC accumulators per MAC over K-step dot products vs the FP32 MAC

The nets default to the shipped examples (EXAMPLE_NETS, under the repository root).
"""
from __future__ import annotations

from pathlib import Path

from golden.pot_acc import ACCUMULATORS

from . import accumulators as A
from . import network as N

__all__ = ["headline", "datapath_comparison", "product_error_pct", "EXAMPLE_NETS", "COMPARE_DATAPATHS",
           "accumulator_table", "accumulator_headlines"]

_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_NETS = ("examples/nets/resnet18.json", "examples/nets/transformer_block.json")
# the datapaths of the report's comparison table (ResNet-18 training)
COMPARE_DATAPATHS = ("fp32", "int8", "mfmac", "asm", "approx:mul-array", "approx:mul-drum,k=6",
                     "approx:mul-drum,k=4", "approx:mul-mitchell,frac_bits=7")
_ENERGY_KEYS = ("arithmetic_pj", "multiply_pj", "accumulate_pj", "memory_pj", "sram_pj", "dram_pj", "energy_pj")


def headline(nets: list[str] | None = None, mode: str = "activity", mfmac: str = "mfmac") -> list[dict]:
    """Per net: training energy on fp32, int8 and mfmac and the MF-MAC reductions vs FP32
    (`mfmac`: the MF-MAC datapath, e.g. `mfmac,accumulator=tree8`; its figures stay under "mfmac")."""
    out = []
    for path in nets or [str(_ROOT / p) for p in EXAMPLE_NETS]:
        net = N.load_net(path)
        res = {dp: N.net_energy(net, dp, training=True, mode=mode) for dp in ("fp32", "int8")}
        res["mfmac"] = N.net_energy(net, mfmac, training=True, mode=mode)
        red = N.reduction(res["fp32"], res["mfmac"])
        out.append({"net": net.name, "macs_per_step": res["fp32"]["macs"], "mode": mode,
                    "energy": {dp: {k: r[k] for k in _ENERGY_KEYS} for dp, r in res.items()},
                    "mfmac_datapath": mfmac,
                    "mfmac_vs_fp32_arithmetic_pct": red["arithmetic_pct"],
                    "mfmac_vs_fp32_total_pct": red["total_pct"],
                    "paper_arithmetic_pct": N.PAPER_ALS_POTQ_REDUCTION})
    return out


def product_error_pct(spec: str) -> float | None:
    """Mean relative error (%) of an approx datapath's products on its own N(0,1) int8 operand
    stream (pairs with a non-zero exact product); None for exact multipliers."""
    import numpy as np

    from golden import approx_mac
    if not spec.startswith(N.APPROX_PREFIX):
        return None
    dp = N.datapath(spec)
    rng = np.random.default_rng(45)                # the same draw as synth.network.mac_energy
    shape = (N.STREAM_LANES, N.STREAM_CYCLES)
    x, w = dp.operand(rng, shape).ravel(), dp.operand(rng, shape).ravel()
    p = {k: v for k, v in dp.mac[1].items() if k != "acc_bits"}
    got, ex = approx_mac.product(x, w, **p), x * w
    nz = ex != 0
    return 100.0 * float(np.mean(np.abs(got - ex)[nz] / np.abs(ex[nz])))


def datapath_comparison(net_path: str | None = None, datapaths=COMPARE_DATAPATHS,
                        mode: str = "activity") -> list[dict]:
    """Per datapath: per-MAC energy and the training step of `net_path` (default ResNet-18),
    with % saved against FP32 and against int8 (per MAC, arithmetic and total)."""
    net = N.load_net(net_path or str(_ROOT / EXAMPLE_NETS[0]))
    res = {dp: N.net_energy(net, dp, training=True, mode=mode) for dp in datapaths}
    base = {b: res[b] if b in res else N.net_energy(net, b, training=True, mode=mode) for b in ("fp32", "int8")}
    out = []
    for dp, r in res.items():
        per = r["per_mac"]
        row = {"datapath": dp, "net": net.name, "mode": mode, "mac_design": per["mac_design"],
               "mac_pj": per["mac_pj"], "multiply_pj": per["multiply_pj"], "accumulate_pj": per["accumulate_pj"],
               "operand_bits": per["operand_bits"], "arithmetic_pj": r["arithmetic_pj"],
               "memory_pj": r["memory_pj"], "energy_pj": r["energy_pj"],
               "product_mre_pct": product_error_pct(dp)}
        for b, e in base.items():
            row[f"mac_vs_{b}_pct"] = 100.0 * (1 - per["mac_pj"] / e["per_mac"]["mac_pj"])
            row[f"total_vs_{b}_pct"] = 100.0 * (1 - r["energy_pj"] / e["energy_pj"])
        out.append(row)
    return out


def accumulator_table(k_values=A.K_VALUES, accumulators=ACCUMULATORS, mode: str = "activity",
                      progress=None) -> list[dict]:
    """dot_energy for every variant and K, with the FP32 MAC (fp32-mac, same mode, its own
    N(0, 1) stream) for the saving: saving_vs_fp32_pct = 1 - MF-MAC / FP32 per MAC."""
    fp32 = N.mac_energy("fp32", mode)["mac_pj"]
    rows = []
    for acc in accumulators:
        for k in k_values:
            if progress:
                progress(f"{acc} K={k}")
            r = A.dot_energy(acc, k, mode)
            r.update(fp32_mac_pj=fp32, saving_vs_fp32_pct=100.0 * (1 - r["pj_per_mac"] / fp32))
            rows.append(r)
    return rows


def accumulator_headlines(mode: str = "activity") -> dict:
    """headline() with every MF-MAC accumulator: {datapath spec: rows}."""
    return {A.spec(a): headline(mode=mode, mfmac=A.spec(a)) for a in ACCUMULATORS}
