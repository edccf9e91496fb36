"""`ecomac energy ...` (energy per operation, calibration table, network energy) and
`ecomac netlist ...` (statistics and energy of any Verilog file): parsing and printing; the work
is synth/energy.py, synth/network.py, synth/network_comparison.py and synth/netlist.py, the
tables, plots and report sections ecomac/energy_report.py."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from golden.pot_acc import ACCUMULATORS as _ACCUMULATORS
from synth import energy as E
from synth import network as N
from synth import network_comparison as NC
from synth import reference
from synth.cache import atomic_write
from synth.netlist import netlist_energy, netlist_stats

from . import accelerator_report as A
from . import energy_report as R
from .args import add_design_args, design_params, float_range, input_file, int_range, positive_int
from .energy_report import heavy_report_sections, report_sections  # noqa: F401 (read by ecomac/report.py)
from .outputs import check_input_file
from .plot import check_plot_path
from .table import Heartbeat, format_table

__all__ = ["add_parser", "report_sections", "heavy_report_sections"]


def _mode_arg(p, default="activity"):
    p.add_argument("--mode", default=default, choices=E.MODES,
                   help=f"static: energy ~ transistors; activity: simulated zero-delay toggles; "
                        f"timed: unit-delay toggles, glitches included (default {default})")


def add_parser(sub) -> None:
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
    p.add_argument("--liberty", metavar="FILE", type=input_file("liberty file"),
                   help="also the energy from this cell library (.lib/.lib.gz): its power tables on "
                        "the mapped netlist's toggles, in pJ at its node")
    p.add_argument("--clock-mhz", type=float_range(0, lo_open=True), default=None, metavar="F",
                   help="clock for the library's leakage per cycle (default 100 MHz)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_op)

    p = es.add_parser("liberty-correlation",
                      help="Spearman rank correlation: calibrated model vs a cell library's energy, "
                           "every default design and the approximate-multiplier sweep")
    p.add_argument("--liberty", required=True, metavar="FILE", type=input_file("liberty file"),
                   help="cell library (.lib or .lib.gz)")
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
    p.add_argument("--arch", default="stream", metavar="ARCH",
                   help="stream (default: every tensor across DRAM and a 32 KB SRAM), tile-vn, tile-near, "
                        "tile-in[,NAME=VALUE...] (ecomac's tiles mapped by ZigZag) or a ZigZag accelerator "
                        "FILE.yaml (docs/accelerators.md)")
    p.add_argument("--batch", type=positive_int, default=None, metavar="B",
                   help="inferences per batch: weights not resident are loaded once per batch; energy per "
                        "inference (default: the net's batch)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="FILE.png", help="bar chart of the per-layer breakdown (.png, .pdf or .svg)")
    p.set_defaults(func=_cmd_net)

    p = es.add_parser("accelerators", help="nets x datapaths on tile-vn/near/in at batch 1 and 16 (ZigZag; "
                                           "docs/accelerators.md's tables)")
    p.add_argument("--net", action="append", metavar="FILE",
                   help="net file (repeatable; default ResNet-18, MobileNet-v2 and the shipped MLP and LeNet)")
    p.add_argument("--datapath", action="append", type=_datapath_arg, metavar="DATAPATH",
                   help="repeatable (default fp32, int8, mfmac, asm {1} and {1,3}, two approximate multipliers)")
    p.add_argument("--batch", action="append", type=positive_int, metavar="B", help="repeatable (default 1 and 16)")
    p.add_argument("-o", "--output", metavar="FILE.json", help="write the rows (and the timings) here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_accelerators)

    p = es.add_parser("headline", help="ALS-POTQ: linear-layer training energy, MF-MAC vs FP32")
    p.add_argument("--net", action="append", metavar="FILE.json",
                   help="net file (repeatable; default: the two example nets)")
    _mode_arg(p)
    p.add_argument("--accumulator", action="append", choices=_ACCUMULATORS, metavar="ACC",
                   help="MF-MAC accumulator (repeatable; default serial): " + ", ".join(_ACCUMULATORS))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_headline)

    p = es.add_parser("accumulators", help="MF-MAC accumulator variants: energy per MAC over K-step dot products")
    p.add_argument("--k", type=int_range(1), nargs="+", default=None, metavar="K",
                   help="dot-product lengths (default 64 256 1024)")
    _mode_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_accumulators)

    pn = sub.add_parser("netlist", help="statistics and energy of any Verilog module")
    ns = pn.add_subparsers(dest="netlist_command", required=True, parser_class=type(pn))
    p = ns.add_parser("stats", help="cells by type, transistors, depth, flip-flops (or area with --liberty)")
    _verilog_args(p)
    p.add_argument("--liberty", metavar="FILE", type=input_file("liberty file"),
                   help="map to this cell library (.lib or .lib.gz)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_netlist_stats)
    p = ns.add_parser("energy", help="energy per operation of a Verilog module")
    _verilog_args(p)
    _mode_arg(p)
    p.add_argument("--ops-per-cycle", type=float_range(0, lo_open=True), default=1.0, metavar="N",
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
    print(format_table([[r["op"], R.design_label(r), r["predicted_pj"], r["reference_pj"], r["ratio"]]
                        + ([f"{100 * r['glitch_share']:.1f}%"] if timed else []) for r in rows],
                       ["op", "design", "predicted pJ", "reference pJ", "ratio"] + (["glitch share"] if timed else []),
                       title=f"energy per operation, {args.mode} mode, one constant "
                             f"({cal['pj_per_unit']:.4g} pJ/unit) from {cal['design']} bits=8 = "
                             f"{cal['reference_pj']} pJ; reference: {reference.SOURCE}"))
    return 0


def _cmd_op(args) -> int:
    d, params = design_params(args)
    stream = E.read_stream(check_input_file(args.stream, "stream file")) if args.stream else None
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
    res["operands"] = E.operands_text(res, args.stream)
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
    points = E.liberty_points()
    with Heartbeat(f"liberty correlation: mapping {len(points)} designs to {Path(args.liberty).name} "
                   "(cached afterwards)"):
        res = E.liberty_correlation(points, args.liberty, args.mode)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(R.liberty_table(res, Path(args.liberty).name))
    return 0


def _print_energy(res: dict, title: str) -> None:
    print(f"{title} ({res['mode']} mode)")
    keys = ["energy_pj", "energy_per_cycle_pj", "ops_per_cycle", "transistors", "cells_total",
            "flip_flops", "depth", "toggles_per_cycle", "zero_delay_toggles_per_cycle", "glitch_share",
            "cycles", "lanes", "stream", "operands"]
    for k in keys:
        if k in res:
            v = res[k]
            print(f"{k:20} {v:.4g}" if isinstance(v, float) else f"{k:20} {v}")


def _cmd_net(args) -> int:
    if args.plot:
        check_plot_path(args.plot)                 # before the work, not after
    from net.importer import parse_input_shape
    from net.loader import load_net_file

    from synth.zigzag import check_arch, network_energy

    from .outputs import check_input_file
    from net.loader import is_model_spec
    if not is_model_spec(args.net):
        check_input_file(args.net, "net file")      # a folder is named as one, not as missing
    arch = check_arch(args.arch, args.batch)        # a bad architecture or batch before the work
    if args.training and arch.kind != "stream":
        raise ValueError(f"--training is priced on --arch stream only, not on {arch.label}")
    net, imp = load_net_file(args.net, parse_input_shape(args.input_shape) if args.input_shape else None,
                             args.weights)
    if imp is not None and imp.unsupported:         # listed, never dropped silently
        print("note: MACs of unsupported operators not counted: "
              + ", ".join(f"{n} {op}" for n, op in imp.unsupported), file=sys.stderr)
    floats = [layer.name for layer in net.layers if layer.float]
    if floats:
        print(f"note: products no datapath covers, priced at fp32: {', '.join(floats)}", file=sys.stderr)
    if arch.kind == "stream":
        with Heartbeat(f"energy of {net.name} on {args.datapath} (synthesizes its MAC once; cached afterwards)"):
            res = network_energy(net, args.datapath, arch, args.batch, training=args.training, mode=args.mode,
                                 operands=args.operands)
    else:
        from .table import progress_bar
        with progress_bar(f"{net.name} on {arch.label} (ZigZag; cached)") as step:
            res = network_energy(net, args.datapath, arch, args.batch, mode=args.mode, operands=args.operands,
                                 progress=step)
    if args.plot:
        atomic_write(args.plot, R.plot_layers(res, Path(args.plot).suffix.lower().lstrip(".")))
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    if arch.kind != "stream":
        print(A.net_table(res, args.mode))
        return 0
    rows = [[r["name"], r["shape"], r["macs"], R.fmt_pj(r["multiply_pj"]), R.fmt_pj(r["accumulate_pj"]),
             R.fmt_pj(r["sram_pj"]), R.fmt_pj(r["dram_pj"]), R.fmt_pj(r["energy_pj"])] for r in res["layers"]]
    rows.append(["total", "", res["macs"], R.fmt_pj(res["multiply_pj"]), R.fmt_pj(res["accumulate_pj"]),
                 R.fmt_pj(res["sram_pj"]), R.fmt_pj(res["dram_pj"]), R.fmt_pj(res["energy_pj"])])
    per = res["per_mac"]
    print(format_table(rows, ["layer", "shape", "MACs", "multiply", "accumulate", "SRAM", "DRAM", "total"],
                       title=f"{res['net']} on {res['datapath']} ({per['mac_design']}, "
                             f"{per['mac_pj']:.4g} pJ/MAC, {args.mode}), "
                             f"{'training (3 products/layer)' if args.training else 'inference'}, "
                             f"arch stream, batch {res['batch']}"))
    print(f"arithmetic {R.fmt_pj(res['arithmetic_pj'])}, memory {R.fmt_pj(res['memory_pj'])}, "
          f"total {R.fmt_pj(res['energy_pj'])}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def _cmd_accelerators(args) -> int:
    from synth.zigzag_table import ARCHS, BATCHES, DATAPATHS, accelerator_table, hades_goal
    from .outputs import check_output_file
    from .table import progress_bar
    if args.output:
        check_output_file(args.output, (".json",))
    nets = A.nets(args.net)
    with progress_bar("accelerators") as step:
        rows = accelerator_table(nets, args.datapath or DATAPATHS, ARCHS, args.batch or BATCHES, progress=step)
    goal = hades_goal(rows)
    if args.output:
        atomic_write(args.output, json.dumps({"rows": rows, "hades_goal": goal}, indent=2))
    if args.json:
        print(json.dumps({"rows": rows, "hades_goal": goal}, indent=2))
        return 0
    print(A.tables(rows, goal))
    if args.output:
        print(f"wrote {args.output}")
    return 0


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
        print(R.headline_table(rows))
    return 0


def _cmd_accumulators(args) -> int:
    from synth.accumulators import K_VALUES
    with Heartbeat("MF-MAC accumulators: simulating K-step dot products (cached after the first run)"):
        rows = NC.accumulator_table(tuple(args.k or K_VALUES), mode=args.mode)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(R.accumulator_table(rows, args.mode))
    return 0


def _read_verilog(path: str) -> str:
    p = check_input_file(path, "Verilog file")       # a folder is named as one, not as missing
    try:
        return p.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"Verilog file {path} is not a text file") from None


def _cmd_netlist_stats(args) -> int:
    res = netlist_stats(_read_verilog(args.verilog), args.verilog, args.top, liberty=args.liberty)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    if not res["cells"]:
        print(f"{args.top}: no cells (the module holds no logic: no gates, no flip-flops)")
    elif args.liberty:
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
    res = netlist_energy(_read_verilog(args.verilog), args.verilog, args.top, mode=args.mode,
                         ops_per_cycle=args.ops_per_cycle)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    _print_energy(res, f"{args.top} from {args.verilog}")
    return 0
