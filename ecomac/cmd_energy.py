"""`ecomac energy ...` (energy per operation, calibration table, network energy) and
`ecomac netlist ...` (statistics and energy of any Verilog file)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from synth import energy as E
from synth import network as N
from synth import network_comparison as NC
from synth import reference
from synth.cache import atomic_write

from .plot import check_plot_path, figure_bytes, png_bytes
from .table import Heartbeat, format_table

__all__ = ["add_parser", "report_sections", "heavy_report_sections"]

_ACCUMULATORS = ("serial", "tree2", "tree4", "tree8", "tree16")   # golden.pot_acc.ACCUMULATORS
_ROOT = Path(__file__).resolve().parent.parent


def _mode_arg(p, default="activity"):
    p.add_argument("--mode", default=default, choices=E.MODES,
                   help=f"static: energy ~ transistors; activity: simulated zero-delay toggles; "
                        f"timed: unit-delay toggles, glitches included (default {default})")


def add_parser(sub) -> None:
    from .cli import add_design_args
    pe = sub.add_parser("energy", help="energy per operation and per network (calibrated 45 nm model)")
    es = pe.add_subparsers(dest="energy_command", required=True, parser_class=type(pe))

    p = es.add_parser("calibration", help="the model's predictions next to the 45 nm reference table")
    _mode_arg(p)
    p.add_argument("--json", action="store_true", help="list of {op, predicted_pj, reference_pj, ratio, ...}")
    p.set_defaults(func=_cmd_calibration)

    p = es.add_parser("op", help="energy per operation of one design")
    add_design_args(p)
    _mode_arg(p)
    p.add_argument("--stream", metavar="FILE.npz",
                   help="activity mode: operand stream, one integer array per input port "
                        "(1-D: cycles, 2-D: lanes x cycles)")
    p.add_argument("--liberty", metavar="FILE",
                   help="also the energy from this cell library (.lib/.lib.gz): its power tables on "
                        "the mapped netlist's toggles, in pJ at its node")
    p.add_argument("--clock-mhz", type=float, default=None, metavar="F",
                   help="clock for the library's leakage per cycle (default 100 MHz)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_op)

    p = es.add_parser("liberty-correlation",
                      help="Spearman rank correlation: calibrated model vs a cell library's energy, "
                           "every default design and the approximate-multiplier sweep")
    p.add_argument("--liberty", required=True, metavar="FILE", help="cell library (.lib or .lib.gz)")
    _mode_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_liberty_correlation)

    p = es.add_parser("net", help="energy of every matrix product of a network on a datapath")
    p.add_argument("--net", required=True, metavar="MODEL",
                   help="layer list (.json, see README), or a model: checkpoint, .pt2, ONNX, TorchScript, FILE.py:NAME "
                        "(imported: `ecomac net show`)")
    p.add_argument("--weights", metavar="W.pt", help="state_dict for a FILE.py:NAME (or .pt2) model")
    p.add_argument("--input-shape", metavar="N,C,H,W",
                   help="model files: input shape, batch first (default: what the file records)")
    p.add_argument("--datapath", required=True, type=_datapath_arg, metavar="DATAPATH",
                   help=f"a datapath spec: {' | '.join(N.DATAPATH_SPECS)} (e.g. mfmac,exp_bits=2; "
                        "asm,alphabet=1/3; approx:mul-drum,k=6; lut:mul.v; grammar: golden/datapath.py)")
    p.add_argument("--training", action="store_true",
                   help="forward + backward-data + weight-gradient products (3 per layer)")
    _mode_arg(p)
    p.add_argument("--operands", default="gaussian", choices=N.OPERANDS,
                   help="activity mode operand statistics (default gaussian)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="FILE.png", help="bar chart of the per-layer breakdown (.png, .pdf or .svg)")
    p.set_defaults(func=_cmd_net)

    p = es.add_parser("headline", help="ALS-POTQ: linear-layer training energy, MF-MAC vs FP32")
    p.add_argument("--net", action="append", metavar="FILE.json",
                   help="net file (repeatable; default: the two example nets)")
    _mode_arg(p)
    p.add_argument("--accumulator", action="append", choices=_ACCUMULATORS, metavar="ACC",
                   help="MF-MAC accumulator (repeatable; default serial): " + ", ".join(_ACCUMULATORS))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_headline)

    p = es.add_parser("accumulators", help="MF-MAC accumulator variants: energy per MAC over K-step dot products")
    p.add_argument("--k", type=int, nargs="+", default=None, metavar="K",
                   help="dot-product lengths (default 64 256 1024)")
    _mode_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_accumulators)

    pn = sub.add_parser("netlist", help="statistics and energy of any Verilog module")
    ns = pn.add_subparsers(dest="netlist_command", required=True, parser_class=type(pn))
    p = ns.add_parser("stats", help="cells by type, transistors, depth, flip-flops (or area with --liberty)")
    _verilog_args(p)
    p.add_argument("--liberty", metavar="FILE", help="map to this cell library (.lib or .lib.gz)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_netlist_stats)
    p = ns.add_parser("energy", help="energy per operation of a Verilog module")
    _verilog_args(p)
    _mode_arg(p)
    p.add_argument("--ops-per-cycle", type=float, default=1.0, metavar="N",
                   help="operations the module completes per clock (default 1)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_netlist_energy)


def _datapath_arg(text: str) -> str:
    """argparse type: a datapath spec golden.datapath parses and the energy model can price
    (one-line error otherwise)."""
    import argparse
    try:
        N.datapath(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _verilog_args(p):
    p.add_argument("--verilog", required=True, metavar="FILE.v")
    p.add_argument("--top", required=True, metavar="NAME", help="top module")


# ---- handlers ---------------------------------------------------------------------------
def _cmd_calibration(args) -> int:
    with Heartbeat("calibrating the energy model (synthesizes the reference designs once; cached afterwards)"):
        rows = E.calibration_table(args.mode)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cal = E.calibration(args.mode)
    timed = args.mode == "timed"
    print(format_table([[r["op"], _dname(r), r["predicted_pj"], r["reference_pj"], r["ratio"]]
                        + ([f"{100 * r['glitch_share']:.1f}%"] if timed else []) for r in rows],
                       ["op", "design", "predicted pJ", "reference pJ", "ratio"] + (["glitch share"] if timed else []),
                       title=f"energy per operation, {args.mode} mode, one constant "
                             f"({cal['pj_per_unit']:.4g} pJ/unit) from {cal['design']} bits=8 = "
                             f"{cal['reference_pj']} pJ; reference: {reference.SOURCE}"))
    return 0


def _dname(r) -> str:
    p = ",".join(f"{k}={v}" for k, v in r["params"].items())
    return f"{r['design']} {p}".strip()


def _load_stream(path: str) -> dict:
    import numpy as np
    from .outputs import check_input_file
    p = check_input_file(path, "stream file")       # a folder is named as one, not as missing
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise ValueError(f"stream file {path}: not a NumPy .npz archive ({e})") from None


def _operands_text(res: dict, stream_path: str | None) -> str:
    if res.get("mode") == "static":
        return "none (static mode: energy ~ transistors)"
    if stream_path:
        return f"the caller's stream {stream_path}"
    return (f"uniform random over each data input's range, {res.get('lanes', 1)} streams x "
            f"{res.get('cycles', 0)} cycles (not the N(0,1) operands of `energy net`)")


def _cmd_op(args) -> int:
    from .cli import design_params
    d, params = design_params(args)
    stream = _load_stream(args.stream) if args.stream else None
    if stream is not None and args.mode not in E.STREAM_MODES:
        raise ValueError("--stream needs --mode activity or --mode timed")
    if stream is not None:
        E.check_stream(d.name, params, stream, f"stream file {args.stream}")
    if args.clock_mhz is not None and not args.liberty:
        raise ValueError("--clock-mhz applies with --liberty only")
    with Heartbeat(f"energy of {d.name}: synthesizing and simulating (cached afterwards)"):
        res = E.design_energy(d.name, params, mode=args.mode, stream=stream)
        if args.liberty:
            res["liberty"] = E.design_liberty_energy(d.name, params, args.liberty, args.clock_mhz,
                                                     timed=args.mode == "timed")
    res["operands"] = _operands_text(res, args.stream)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    _print_energy(res, f"{d.name} {res['params']}")
    if args.liberty:
        lib = res["liberty"]
        how = ("every transition with the library's cell delays" if lib.get("timed") else "zero-delay toggles")
        print(f"cell library {Path(args.liberty).name} ({how} of the mapped netlist, "
              f"{lib['slew_ns']} ns input slew, {lib['voltage']} V, leakage at {lib['clock_mhz']:g} MHz)")
        for k in ("energy_pj", "internal_pj", "switching_pj", "input_pin_pj", "clock_pj", "leakage_pj"):
            v = lib[k] if k == "energy_pj" else lib[k] / lib["ops_per_cycle"]
            print(f"  {k:18} {v:.4g}" + ("  (pJ per operation)" if k == "energy_pj" else ""))
        print(f"  {'cells_total':18} {lib['cells_total']}")
    return 0


def _cmd_liberty_correlation(args) -> int:
    from .approx_lib import sweep_points
    from rtl.registry import all_designs
    points = [(d.name, {}) for d in all_designs() if d.default] + sweep_points()
    with Heartbeat(f"liberty correlation: mapping {len(points)} designs to {Path(args.liberty).name} "
                   "(cached afterwards)"):
        res = E.liberty_correlation(points, args.liberty, args.mode)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(_liberty_table(res, Path(args.liberty).name))
    return 0


def _liberty_table(res: dict, lib_name: str) -> str:
    rows = sorted(res["points"], key=lambda r: r["model_pj"])
    body = [[_dname(r), f"{r['model_pj']:.4g}", f"{r['liberty_pj']:.4g}", f"{r['liberty_pj'] / r['model_pj']:.3g}"]
            for r in rows]
    return format_table(body, ["design", f"model pJ ({res['mode']}, 45 nm)", f"{lib_name} pJ", "ratio"],
                        title=f"{len(rows)} designs: Spearman rank correlation {res['spearman']:.3f}")


def _print_energy(res: dict, title: str) -> None:
    print(f"{title} ({res['mode']} mode)")
    keys = ["energy_pj", "energy_per_cycle_pj", "ops_per_cycle", "transistors", "cells_total",
            "flip_flops", "depth", "toggles_per_cycle", "zero_delay_toggles_per_cycle", "glitch_share",
            "cycles", "lanes", "stream", "operands"]
    for k in keys:
        if k in res:
            v = res[k]
            print(f"{k:20} {v:.4g}" if isinstance(v, float) else f"{k:20} {v}")


def _fmt_pj(v: float) -> str:
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.4g} {unit}"
    return f"{v:.4g} pJ"


def _cmd_net(args) -> int:
    if args.plot:
        check_plot_path(args.plot)                 # before the work, not after
    from net.importer import parse_input_shape
    from net.loader import load_net_file

    from .outputs import check_input_file
    from net.loader import is_model_spec
    if not is_model_spec(args.net):
        check_input_file(args.net, "net file")      # a folder is named as one, not as missing
    net, imp = load_net_file(args.net, parse_input_shape(args.input_shape) if args.input_shape else None,
                             args.weights)
    if imp is not None and imp.unsupported:         # listed, never dropped silently
        print("note: MACs of unsupported operators not counted: "
              + ", ".join(f"{n} {op}" for n, op in imp.unsupported), file=sys.stderr)
    floats = [layer.name for layer in net.layers if layer.float]
    if floats:
        print(f"note: products no datapath covers, priced at fp32: {', '.join(floats)}", file=sys.stderr)
    with Heartbeat(f"energy of {net.name} on {args.datapath} (synthesizes its MAC once; cached afterwards)"):
        res = N.net_energy(net, args.datapath, training=args.training, mode=args.mode, operands=args.operands)
    if args.plot:
        atomic_write(args.plot, _plot_layers(res, Path(args.plot).suffix.lower().lstrip(".")))
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    rows = [[r["name"], r["shape"], r["macs"], _fmt_pj(r["multiply_pj"]), _fmt_pj(r["accumulate_pj"]),
             _fmt_pj(r["sram_pj"]), _fmt_pj(r["dram_pj"]), _fmt_pj(r["energy_pj"])] for r in res["layers"]]
    rows.append(["total", "", res["macs"], _fmt_pj(res["multiply_pj"]), _fmt_pj(res["accumulate_pj"]),
                 _fmt_pj(res["sram_pj"]), _fmt_pj(res["dram_pj"]), _fmt_pj(res["energy_pj"])])
    per = res["per_mac"]
    print(format_table(rows, ["layer", "shape", "MACs", "multiply", "accumulate", "SRAM", "DRAM", "total"],
                       title=f"{res['net']} on {res['datapath']} ({per['mac_design']}, "
                             f"{per['mac_pj']:.4g} pJ/MAC, {args.mode}), "
                             f"{'training (3 products/layer)' if args.training else 'inference'}"))
    print(f"arithmetic {_fmt_pj(res['arithmetic_pj'])}, memory {_fmt_pj(res['memory_pj'])}, "
          f"total {_fmt_pj(res['energy_pj'])}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def _plot_layers(res: dict, fmt: str = "png") -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    layers = res["layers"]
    names = [r["name"] for r in layers]
    parts = [("multiply", "multiply_pj", "#d62728"), ("accumulate", "accumulate_pj", "#ff7f0e"),
             ("SRAM", "sram_pj", "#1f77b4"), ("DRAM", "dram_pj", "#7f7f7f")]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(names) + 2), 4.5))
    bottom = [0.0] * len(names)
    for label, key, color in parts:
        vals = [r[key] / 1e6 for r in layers]
        ax.bar(names, vals, bottom=bottom, label=label, color=color)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("energy (µJ)")
    kind = "training step" if res["training"] else "inference"
    ax.set_title(f"{res['net']}: {res['datapath']} datapath, one {kind} "
                 f"(total {_fmt_pj(res['energy_pj'])})")
    ax.tick_params(axis="x", labelrotation=60, labelsize=8)
    ax.legend()
    fig.tight_layout()
    return figure_bytes(fig, fmt)


def _headline_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        e = r["energy"]
        body.append([r["net"], _fmt_pj(e["fp32"]["arithmetic_pj"]), _fmt_pj(e["mfmac"]["arithmetic_pj"]),
                     f"{r['mfmac_vs_fp32_arithmetic_pct']:.1f}%", _fmt_pj(e["fp32"]["energy_pj"]),
                     _fmt_pj(e["mfmac"]["energy_pj"]), f"{r['mfmac_vs_fp32_total_pct']:.1f}%",
                     f"{r['paper_arithmetic_pct']}%"])
    return format_table(body, ["net", "FP32 arith", "MF-MAC arith", "arith saved", "FP32 total",
                               "MF-MAC total", "total saved", "paper (arith)"])


def _cmd_headline(args) -> int:
    from synth.accumulators import spec
    accs = args.accumulator or ["serial"]
    with Heartbeat("ALS-POTQ headline: pricing fp32, int8 and mfmac (cached after the first run)"):
        per = {a: NC.headline(args.net, args.mode, spec(a)) for a in accs}
    if args.json:
        print(json.dumps(per["serial"] if accs == ["serial"] else per, indent=2))
        return 0
    for a, rows in per.items():
        print("linear-layer energy of one training step (forward, backward-data, weight-gradient), "
              f"MF-MAC ({spec(a)}) vs FP32 MAC, {args.mode} mode; 'paper' is ALS-POTQ's own reported figure")
        print(_headline_table(rows))
    return 0


def _cmd_accumulators(args) -> int:
    from synth.accumulators import K_VALUES, accumulator_table
    for k in args.k or ():
        if k < 1:
            raise ValueError(f"--k must be a positive integer, got {k}")
    with Heartbeat("MF-MAC accumulators: simulating K-step dot products (cached after the first run)"):
        rows = accumulator_table(tuple(args.k or K_VALUES), mode=args.mode)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(_accumulator_table(rows, args.mode))
    return 0


def _accumulator_table(rows: list[dict], mode: str) -> str:
    body = [[r["accumulator"], r["chunk"], r["k"], r["clocks"], r["transistors"], r["flip_flops"],
             f"{r['pj_per_mac']:.4f}", f"{r['clock_pj_per_mac']:.4f}", f"{r['saving_vs_fp32_pct']:.2f}%"]
            for r in rows]
    return format_table(body, ["accumulator", "MACs/clock", "K", "clocks", "transistors", "flip-flops",
                               "pJ/MAC", "of it clock", "saved vs FP32 MAC"],
                        title=f"mfmac-pe (exp_bits=3, acc_bits=24) per MAC over one K-step dot product, {mode} mode; "
                              f"FP32 MAC (fp32-mac) {rows[0]['fp32_mac_pj']:.4g} pJ")


def _read_verilog(path: str) -> str:
    from .outputs import check_input_file
    p = check_input_file(path, "Verilog file")       # a folder is named as one, not as missing
    try:
        return p.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"Verilog file {path} is not a text file") from None


def _user_error(e: Exception, path: str, top: str):
    """Name the file a Yosys error is about (Yosys only sees temporary copies)."""
    from synth.yosys import SynthError
    msg = str(e)
    if msg.startswith("liberty file "):
        return e
    if "not found" in msg and top in msg:
        return SynthError(f"{path}: top module {top!r} not found")
    return SynthError(f"{path}: {msg}")


def _synth_user(path: str, top: str, liberty: str | None = None) -> dict:
    from synth.yosys import SynthError, synthesize
    text = _read_verilog(path)
    try:
        return synthesize(text, top, liberty=liberty)
    except SynthError as e:
        raise _user_error(e, path, top) from None


def _cmd_netlist_stats(args) -> int:
    res = dict(_synth_user(args.verilog, args.top, liberty=args.liberty))
    if args.liberty:
        from synth.liberty import energy_summary
        from synth.yosys import _read_liberty
        res["library"] = energy_summary(_read_liberty(args.liberty), res["cells"])
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    if args.liberty:
        lib = res["library"]
        rows = [[c["cell"], c["count"], c["area_um2"] if c["area_um2"] is not None else "-",
                 c["internal_pj"] if c["internal_pj"] is not None else "-",
                 c["leakage"] if c["leakage"] is not None else "-"] for c in lib["cells"]]
        u = lib["units"]
        print(format_table(rows, ["cell", "count", "area um2", "internal pJ/transition (mean)",
                                  f"leakage ({u.get('leakage_power_unit', '?')})"],
                           title=f"{args.top} mapped to {Path(args.liberty).name}"))
    else:
        print(format_table([[c, n] for c, n in sorted(res["cells"].items())], ["cell", "count"],
                           title=f"{args.top} (Yosys generic gates)"))
    for k in ("cells_total", "transistors", "area_um2", "sequential_area_um2", "flip_flops", "depth"):
        if k in res:
            print(f"{k:20} {res[k]}")
    if args.liberty and res["library"]["internal_pj_all_toggle"] is not None:
        print(f"{'internal_pj_all_toggle':20} {res['library']['internal_pj_all_toggle']:.4g}"
              "  (library tables: every cell output toggling once)")
    return 0


def _cmd_netlist_energy(args) -> int:
    from synth.yosys import SynthError
    text = _read_verilog(args.verilog)
    try:
        res = E.netlist_energy(text, args.top, mode=args.mode, ops_per_cycle=args.ops_per_cycle)
    except SynthError as e:
        raise _user_error(e, args.verilog, args.top) from None
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    _print_energy(res, f"{args.top} from {args.verilog}")
    return 0


# ---- report -----------------------------------------------------------------------------
def _calibration_section() -> str:
    static = {r["op"]: r for r in E.calibration_table("static")}
    timed = {r["op"]: r for r in E.calibration_table("timed")}
    act = E.calibration_table("activity")
    rows = [[r["op"], _dname(r), r["reference_pj"], static[r["op"]]["predicted_pj"], static[r["op"]]["ratio"],
             r["predicted_pj"], r["ratio"], timed[r["op"]]["predicted_pj"], timed[r["op"]]["ratio"],
             f"{100 * timed[r['op']]['glitch_share']:.1f}%"] for r in act]
    cs, ca, ct = E.calibration("static"), E.calibration("activity"), E.calibration("timed")
    missing = [op for op, name, _, _ in E.CALIBRATION_POINTS if op not in static]
    text = [
        f"One constant per mode, set so that `{cs['design']}` bits=8 (exact unsigned 8x8 array multiplier) "
        f"costs {reference.MUL8_PJ} pJ per operation ({reference.SOURCE}); every other row is a prediction "
        "(ratio = predicted / reference). Static: energy proportional to the netlist's CMOS transistors. "
        "Activity: zero-delay toggles of every cell output on uniform random operands, weighted by the "
        "cell's transistors, plus flip-flop clock energy. Timed: the same streams swept with a unit delay "
        "per gate, every transition counted (glitches included); glitch share = the part of the timed "
        "toggle energy that zero-delay simulation does not see. "
        f"Constants: static {cs['pj_per_unit']:.4g} pJ/transistor, activity {ca['pj_per_unit']:.4g} "
        f"pJ/transistor-toggle, timed {ct['pj_per_unit']:.4g} pJ/transistor-toggle.",
        "", "```",
        format_table(rows, ["op", "design", "reference pJ", "static pJ", "static ratio",
                            "activity pJ", "activity ratio", "timed pJ", "timed ratio", "glitch share"]), "```"]
    if missing:
        text.append(f"\nNot available (design not registered): {', '.join(missing)}.")
    return "\n".join(text)


def _plot_headline(rows: list[dict]) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    dps = ("fp32", "int8", "mfmac")
    parts = [("multiply", "multiply_pj", "#d62728"), ("accumulate", "accumulate_pj", "#ff7f0e"),
             ("SRAM", "sram_pj", "#1f77b4"), ("DRAM", "dram_pj", "#7f7f7f")]
    fig, axes = plt.subplots(1, len(rows), figsize=(5.2 * len(rows), 4.4), squeeze=False)
    for ax, r in zip(axes[0], rows):
        bottom = [0.0] * len(dps)
        for label, key, color in parts:
            vals = [r["energy"][dp][key] / 1e9 for dp in dps]
            ax.bar(dps, vals, bottom=bottom, label=label, color=color)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_ylabel("energy per training step (mJ)")
        ax.set_title(f"{r['net']}: MF-MAC saves {r['mfmac_vs_fp32_arithmetic_pct']:.1f}% of arithmetic,\n"
                     f"{r['mfmac_vs_fp32_total_pct']:.1f}% of the total (paper: "
                     f"{r['paper_arithmetic_pct']}% arithmetic)", fontsize=9)
        for i, dp in enumerate(dps):
            e = r["energy"][dp]
            ax.annotate(f"arith {_fmt_pj(e['arithmetic_pj'])}\ntotal {_fmt_pj(e['energy_pj'])}",
                        (i, e["energy_pj"] / 1e9), ha="center", va="bottom", fontsize=7.5)
        ax.margins(y=0.15)
    axes[0][0].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return png_bytes(fig)


SIGN_MAGNITUDE_REF = "approx:mul-array"      # approx-mac with the exact array: sign-magnitude alone


def _comparison_table(rows: list[dict]) -> str:
    def pct(v):
        return f"{v:+.1f}%" if v is not None else "-"
    body = [[r["datapath"], r["mac_design"], f"{r['mac_pj']:.4f}", f"{r['multiply_pj']:.4f}",
             f"{r['accumulate_pj']:.4f}", pct(r["mac_vs_fp32_pct"]), pct(r["mac_vs_int8_pct"]),
             "exact" if r["product_mre_pct"] is None else f"{r['product_mre_pct']:.2f}%",
             _fmt_pj(r["arithmetic_pj"]), _fmt_pj(r["energy_pj"]), pct(r["total_vs_fp32_pct"]),
             pct(r["total_vs_int8_pct"])] for r in rows]
    return format_table(body, ["datapath", "MAC unit", "pJ/MAC", "multiply", "accumulate", "MAC saved vs FP32",
                               "vs int8", "product MRE", "step arith", "step total", "total saved vs FP32",
                               "vs int8"])


def _sign_magnitude_note(rows: list[dict]) -> str:
    """What sign-magnitude alone buys, and what the approximate multipliers add to it."""
    by = {r["datapath"]: r for r in rows}
    ref = by.get(SIGN_MAGNITUDE_REF)
    if ref is None or "int8" not in by:
        return ""
    approx = [r for r in rows if r["datapath"].startswith(N.APPROX_PREFIX) and r is not ref]
    parts = [f"{r['datapath']} {100 * (1 - r['mac_pj'] / ref['mac_pj']):+.1f}%" for r in approx]
    return (f"`{SIGN_MAGNITUDE_REF}` is approx-mac with the exact array multiplier: sign-magnitude alone saves "
            f"{ref['mac_vs_int8_pct']:.1f}% per MAC against int-mac's two's-complement multiply on these N(0,1) "
            "operands (a small negative value has few 1 bits as a magnitude, but all its high bits set in two's complement), so the approximate "
            "multipliers' own saving is measured against it: " + ", ".join(parts) + " per MAC (negative = "
            "costs more).")


def _headline_section(outdir: Path) -> str:
    rows = NC.headline(mode="activity")
    static = {r["net"]: r for r in NC.headline(mode="static")}
    png = outdir / "energy_training.png"
    atomic_write(png, _plot_headline(rows))
    compare = NC.datapath_comparison(mode="activity")
    body = [
        "Linear and conv layers of the two example nets (`examples/nets/`), one training step = "
        "forward, backward-data and weight-gradient products (3 x the forward MACs). Arithmetic = "
        "multiplies + accumulations on ecomac's synthesized MAC units (activity mode, N(0,1) operands "
        "in each format); memory = SRAM + DRAM traffic of the model in `synth/network.py` "
        f"(DRAM {reference.DRAM_USED_PJ:g} pJ and 32 KB SRAM "
        f"{reference.sram_access_pj(32 * 1024):g} pJ per 64-bit access, {reference.SOURCE}).",
        "", f"Per MAC (pJ) and one {compare[0]['net']} training step on each datapath (saved = positive):",
        "", "```", _comparison_table(compare), "```", "",
        "asm = `asm-pe-row` (alphabet {1,3,5,7}, 16 lanes sharing one pre-computer bank, x_bits = w_bits = 8); "
        "its weights are N(0,1) quantized onto the alphabet's set (`golden.asm.quantize`) and encoded, its "
        "multiply share = one select-shift-add lane + 1/16 of the bank. approx:FAMILY,... = `approx-mac` "
        "(signed 8-bit, the family's unsigned 8x8 multiplier on |x|, |w|, conditional negate); its multiply "
        "share = that signed multiply unit alone. Product MRE = mean |error| / |exact product| of the "
        "datapath's products on its own N(0,1) int8 operand stream (pairs with a non-zero product); the "
        "asm product is exact on its projected weights (weight error: see the ASM section). int8, asm and "
        "approx store every tensor at 8 bits (the asm weights' sign + 8-bit magnitude is charged as 8 bits).",
        "", _sign_magnitude_note(compare),
        "", "Training step, MF-MAC vs FP32 MAC:", "", "```", _headline_table(rows), "```", "",
        "The last column is the ALS-POTQ paper's own figure (arithmetic of linear layers in training), "
        "a reference, not a measurement. Static mode (energy ~ transistors) gives "
        + ", ".join(f"{n}: {static[n]['mfmac_vs_fp32_arithmetic_pct']:.1f}% arithmetic, "
                    f"{static[n]['mfmac_vs_fp32_total_pct']:.1f}% total" for n in static) + ".",
        "", f"![training energy breakdown]({png.name})"]
    return "\n".join(body)


def _accumulator_section() -> str:
    from golden.pot_acc import ACCUMULATORS
    from synth.accumulators import accumulator_table, spec
    rows = accumulator_table(mode="activity")
    body = []
    for a in ACCUMULATORS:
        for r in NC.headline(mode="activity", mfmac=spec(a)):
            body.append([spec(a), r["net"], _fmt_pj(r["energy"]["mfmac"]["arithmetic_pj"]),
                         f"{r['mfmac_vs_fp32_arithmetic_pct']:.1f}%", f"{r['mfmac_vs_fp32_total_pct']:.1f}%"])
    return "\n".join([
        "The serial MF-MAC adds each product to its 24-bit register: the register's clock alone is "
        "most of its energy per MAC, and a sign-extended addend flips the high bits of the adder whenever "
        "the product's sign changes. `accumulator=treeC` (golden/pot_acc.py, rtl/pot_acc.py) takes C "
        "products per clock (C consecutive steps of K), routes each one-hot magnitude by its sign into "
        "one of two unsigned adder trees, and adds their narrow difference to the register once per clock: "
        "bit-exact with the serial sum (cocotb: every chunk where there are at most 2^16, random wrap streams). "
        "Energy per MAC over one K-step dot product (N(0,1) PoT operands, the clear of the next one included):",
        "", "```", _accumulator_table(rows, "activity"), "```", "",
        "Training step of the example nets with each accumulator (arithmetic and total saved vs the FP32 MAC; "
        "network per-MAC figures from the 33-clock stream of `synth/network.py`):",
        "", "```", format_table(body, ["datapath", "net", "MF-MAC arith", "arith saved", "total saved"]), "```"])


def report_liberty() -> str | None:
    """The cell library the report prices with: $ECOMAC_LIBERTY, else the sky130 typical corner
    in ../shared/pdk when it is there; None otherwise."""
    import os
    env = os.environ.get("ECOMAC_LIBERTY")
    if env:
        return env
    p = _ROOT.parent / "shared/pdk/sky130_fd_sc_hd__tt_025C_1v80.lib.gz"
    return str(p) if p.is_file() else None


def _glitch_section() -> str:
    """Glitch share of every default design (timed mode, its default uniform random streams)."""
    from rtl.registry import all_designs
    rows = []
    for d in all_designs():
        if d.default:
            r = E.design_energy(d.name, {}, mode="timed")
            rows.append([d.name, f"{r['zero_delay_toggles_per_cycle']:.1f}", f"{r['toggles_per_cycle']:.1f}",
                         f"{100 * r['glitch_share']:.1f}%", f"{r['energy_pj']:.4g}"])
    return "\n".join([
        "Timed mode (unit delay per generic gate) on every default design: cell-output transitions per cycle "
        "without and with glitches, the glitch share of the toggle energy, and the timed energy per operation "
        "(one constant: `mul-array` bits=8 = 0.2 pJ).", "", "```",
        format_table(rows, ["design", "zero-delay toggles", "timed toggles", "glitch share", "timed pJ/op"]), "```"])


def _liberty_section() -> str:
    import sys

    from rtl.registry import all_designs

    from .approx_lib import sweep_points
    lib = report_liberty()
    if lib is None:
        return ("No cell library: set ECOMAC_LIBERTY to a .lib/.lib.gz (the sky130 typical corner in "
                "../shared/pdk is used when present). ecomac ships no PDK and downloads none.")
    name = Path(lib).name
    cal = [[r["op"], _dname(r), r["reference_pj"], r["predicted_pj"],
            E.design_liberty_energy(r["design"], r["params"], lib)["energy_pj"]]
           for r in E.calibration_table("activity")]
    points = [(d.name, {}) for d in all_designs() if d.default] + sweep_points()
    res = E.liberty_correlation(points, lib, "activity",
                                progress=lambda t: print(f"liberty energy {t}", file=sys.stderr))
    timed = E.liberty_correlation(points, lib, "timed")
    static = E.liberty_correlation(points, lib, "static")
    return "\n".join([
        f"`{name}` mapped by Yosys (`dfflibmap`, `abc -liberty`), the mapped netlist simulated bit-parallel "
        "from the cells' Liberty functions (zero-delay, the same uniform random streams as activity mode). "
        "Energy per operation = for every cell output transition the library's internal energy (mean of its "
        "rise and fall tables over the related pins, read at a 0.05 ns input slew and the net's actual load: "
        "the fan-out's pin capacitances) + 1/2 C V^2 of that load, + the input pins' internal energy, + both "
        "clock edges of every flip-flop's clock pin, + leakage x one cycle at 100 MHz. pJ at the library's "
        "node and voltage (sky130: 130 nm, 1.8 V), not 45 nm: compare ranks, not values.",
        "", "Calibration points:", "", "```",
        format_table(cal, ["op", "design", "45 nm reference pJ", "model pJ (activity)", f"{name} pJ"]), "```", "",
        f"Rank correlation (Spearman) between the calibrated transistor model and the library's energy over "
        f"{len(res['points'])} designs (every default design and the approximate-multiplier sweep): activity "
        f"{res['spearman']:.3f}, timed {timed['spearman']:.3f}, static {static['spearman']:.3f}.",
        "", "```", _liberty_table(res, name), "```"])


def heavy_report_sections():
    """The cell-library energy of ~45 designs: about 20 minutes cold (ecomac/report.py)."""
    return [(22, "Energy from a real cell library", 20, lambda outdir: _liberty_section())]


def report_sections(outdir) -> list[tuple[int, str, str]]:
    outdir = Path(outdir)
    return [(20, "Energy model calibration (45 nm reference table)", _calibration_section()),
            (21, "Glitches: timed activity per design", _glitch_section()),
            (30, "ALS-POTQ headline: MF-MAC vs FP32 training energy", _headline_section(outdir)),
            (31, "MF-MAC accumulators beyond the paper", _accumulator_section())]
