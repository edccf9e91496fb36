"""Printing for network energy on accelerators (`ecomac energy net --arch`, `ecomac energy accelerators`):
tables only; the work is synth/zigzag.py and synth/zigzag_table.py."""
from __future__ import annotations

from pathlib import Path

from .energy_report import fmt_pj
from .table import format_table

__all__ = ["net_table", "nets", "tables", "DEFAULT_NETS"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NETS = ("examples/nets/resnet18.json", "examples/nets/mobilenetv2.json", "mlp:digits", "lenet:mnist")
LEVEL_ORDER = ("dram", "act", "wmem", "bus", "bank")


def _levels(res: dict) -> list[str]:
    """The memory levels of a result, in hierarchy order (a user's accelerator: its own names)."""
    have = list(res["levels"])
    return [k for k in LEVEL_ORDER if k in have] + [k for k in have if k not in LEVEL_ORDER and k != "acc"]


def net_table(res: dict, mode: str) -> str:
    """Per-layer energy of one inference on an accelerator, by memory level."""
    levels = _levels(res)
    rows = [[r["name"], r["shape"], int(r["macs"]), fmt_pj(r["arithmetic_pj"])]
            + [fmt_pj(r["levels"].get(k, 0.0)) for k in levels] + [fmt_pj(r["energy_pj"])] for r in res["layers"]]
    rows.append(["total", "", int(res["macs"]), fmt_pj(res["arithmetic_pj"])]
                + [fmt_pj(res["levels"].get(k, 0.0)) for k in levels] + [fmt_pj(res["energy_pj"])])
    per = res["per_mac"]
    where = (f"{res['tiles']} tiles hold the weights" if res.get("tiles") else "the accelerator's weight memories")
    title = (f"{res['net']} on {res['datapath']} ({per['mac_design']}, {per['mac_pj']:.4g} pJ/MAC, {mode}), "
             f"arch {res['arch']}, batch {res['batch']}: one inference")
    share = 100.0 * res["arithmetic_pj"] / res["energy_pj"] if res["energy_pj"] else 0.0
    resident = ("weights resident across inferences (" + where + f"; loaded once: {fmt_pj(res['weight_load_pj'])})"
                if res["weights_resident"] else f"weights do not fit ({where}): loaded per batch or per sample")
    return "\n".join([format_table(rows, ["layer", "shape", "MACs", "arithmetic"] + levels + ["total"], title=title),
                      f"arithmetic {fmt_pj(res['arithmetic_pj'])} ({share:.1f}%), memory {fmt_pj(res['memory_pj'])}, "
                      f"total {fmt_pj(res['energy_pj'])} per inference; {resident}"])


def nets(given=None) -> list:
    """synth.network.Net objects: net files (JSON, .pt, .onnx) or ARCH:DATA, e.g. `resnet:mnist` (a freshly
    built shipped model on that data set's input shape: the layer shapes do not depend on training)."""
    from net import ARCHS
    from net.loader import is_model_spec, load_net_file

    from .outputs import check_input_file
    shipped = {f"{a}:{d}" for a in ARCHS for d in ("digits", "mnist")}
    out = []
    for g in given or DEFAULT_NETS:
        if g in shipped:
            from net import models
            from net.evaluate import model_net
            arch, data = g.split(":")
            shape = (1, 8, 8) if data == "digits" else (1, 28, 28)
            out.append(model_net(models.build(arch, shape, 10), shape, f"{arch}-{data}"))
            continue
        path = g if Path(g).exists() or Path(g).is_absolute() else str(ROOT / g)
        if not is_model_spec(path):
            check_input_file(path, "net file")
        out.append(load_net_file(path)[0])
    return out


def _uj(v) -> str:
    return "" if v is None else f"{v / 1e6:.4g}"


def _pct(v) -> str:
    return "" if v is None else f"{v:.1f}"


def tables(rows: list[dict], goal: list[dict]) -> str:
    """One table per net: energy per inference (uJ) per datapath on the stream model and each tile at each
    batch; tile-in against tile-vn, its arithmetic share and each datapath against int8 (tile-in)."""
    by = {(r["net"], r["datapath"], r["arch"], r["batch"]): r for r in rows}
    batches = sorted({r["batch"] for r in rows if r["arch"] != "stream"})
    out = []
    for net in dict.fromkeys(r["net"] for r in rows):
        dps = list(dict.fromkeys(r["datapath"] for r in rows if r["net"] == net))
        head = ["datapath", "stream"]
        for b in batches:
            head += [f"vn b{b}", f"near b{b}", f"in b{b}", f"in vs vn % b{b}", f"in arith % b{b}",
                     f"in vs int8 % b{b}"]
        body = []
        for dp in dps:
            st = by.get((net, dp, "stream", 1))
            line = [dp, _uj(st["energy_pj"]) if st else ""]
            for b in batches:
                vn, near, tin = (by.get((net, dp, a, b)) for a in ("tile-vn", "tile-near", "tile-in"))
                line += [_uj(vn and vn["energy_pj"]), _uj(near and near["energy_pj"]), _uj(tin and tin["energy_pj"]),
                         _pct(tin and tin["in_vs_vn_pct"]), _pct(tin and tin["arithmetic_share_pct"]),
                         _pct(tin and tin["vs_int8_pct"])]
            body.append(line)
        out.append(format_table(body, head, title=f"{net}: energy per inference (uJ)"))
    if goal:
        met = sum(g["met"] for g in goal)
        out.append(f"HADES goal (tile-in >= 50% below tile-vn; ResNet-18 and MobileNet-v2, int8 and ASM): "
                   f"{met} of {len(goal)} met, savings "
                   + ", ".join(f"{g['net']}/{g['datapath']}/b{g['batch']} {g['saving_pct']:.1f}%" for g in goal))
    return "\n\n".join(out)
