"""`ecomac approx`: the approximate-multiplier library (list, sweep, export, characterize)."""
from __future__ import annotations

import json
from pathlib import Path

from . import approx_lib as lib
from .outputs import check_output_dir, check_output_file
from .table import TERMINAL_COLUMNS, format_table

__all__ = ["add_parser", "report_sections"]

_HEAD = ["design", "params", "MAE%", "WCE%", "MRE%", "EP%", "bias", "cells", "transistors",
         "E static pJ", "E activity pJ"]


def _table_rows(rows):
    return [[r["design"], lib.params_text(r["params"]), round(r["mae_pct"], 4), round(r["wce_pct"], 3),
             round(r["mre_pct"], 3), round(r["ep_pct"], 2), round(r["bias"], 2), r["cells"], r["transistors"],
             round(r["energy_static_pj"], 4), round(r["energy_activity_pj"], 4)] for r in rows]


def _best_rows(rows):
    out = []
    for b in lib.best_points(rows):
        r = b["row"]
        if r is None:
            out.append([b["design"], f"<= {b['limit']:g}", "none", "", "", "", ""])
            continue
        out.append([b["design"], f"<= {b['limit']:g}", lib.params_text(r["params"]), round(r["mre_pct"], 3),
                    round(r["energy_activity_pj"], 4), f"{b.get('saving_static_pct', float('nan')):.1f}%",
                    f"{b.get('saving_activity_pct', float('nan')):.1f}%"])
    return out


_BEST_HEAD = ["family", "MRE% limit", "best point", "MRE%", "E activity pJ", "saving static", "saving activity"]


def _families(items):
    fams = []
    for item in items or []:
        for f in item.split(","):
            f = f.strip()
            if not f:
                raise ValueError(f"--family {item!r} has an empty name")
            if f in fams:
                raise ValueError(f"family {f} given twice; give each family once")
            fams.append(f)
    return fams or None


def _cmd_list(args) -> int:
    from rtl.registry import get_design
    rows = []
    for name in lib.FAMILIES:
        d = get_design(name)
        ps = ", ".join(f"{p.name}={int(p.default) if isinstance(p.default, bool) else p.default} ({p.allowed})"
                       for p in d.params)
        rows.append([name, ps, len(lib.sweep_points([name])), d.description])
    if args.json:
        print(json.dumps([{**get_design(n).to_json(), "sweep_points": len(lib.sweep_points([n]))}
                          for n in lib.FAMILIES], indent=2))
        return 0
    print(format_table(rows, ["design", "parameters (default, allowed)", "sweep points", "description"],
                       max_width=TERMINAL_COLUMNS))
    return 0


def _cmd_sweep(args) -> int:
    points = lib.sweep_points(_families(args.family), bits=args.bits)
    check_output_dir(args.output)                 # before minutes of work, not after
    rows = lib.sweep(points, workers=args.workers)
    paths = lib.write_sweep(rows, args.output)
    if args.json:
        print(json.dumps([{k: r[k] for k in lib.JSON_KEYS} | {"energy_static_pj": r["energy_static_pj"],
                                                            "energy_activity_pj": r["energy_activity_pj"]}
                          for r in rows], indent=2))
        return 0
    print(format_table(_table_rows(rows), _HEAD,
                       title=f"approximate multipliers, N={args.bits}: {len(rows)} design points "
                             f"(energy_pj = activity model)"))
    if any(r["design"] == "mul-array" for r in rows):
        print()
        print(format_table(_best_rows(rows), _BEST_HEAD, title="lowest-energy point per family within an MRE% limit "
                                                              "(saving vs mul-array)"))
    print(f"\nwrote {paths['csv']}, {paths['json']}, {paths['png']}")
    return 0


def _cmd_export(args) -> int:
    from rtl.registry import get_design, parse_params
    d = get_design(args.design)
    params = parse_params(d, args.param)
    # the format follows the name (.bin or .npy); another name needs an explicit --format
    out = check_output_file(args.output, suffixes=None if args.format else (".bin", ".npy"), what="table file")
    named = out.suffix.lower().lstrip(".")
    fmt = args.format or named
    if named in ("bin", "npy") and named != fmt:
        raise ValueError(f"--format {fmt} does not match the file name {args.output} (.{named})")
    t = lib.export_table(d.name, params, args.output, fmt)
    print(f"wrote {args.output} ({fmt}, {t.shape[0]}x{t.shape[1]} products of {d.name} "
          f"{lib.params_text(d.full_params(params))})")
    return 0


def _cmd_characterize(args) -> int:
    r = lib.characterize_verilog(args.verilog, args.top, signed=args.signed)
    r.pop("table")
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    kind = "signed" if args.signed else "unsigned"
    print(format_table(_table_rows([r]), _HEAD, title=f"{r['top']}: all {1 << (2 * r['params']['bits'])} pairs "
                                                      f"({kind} {r['params']['bits']}x{r['params']['bits']})"))
    print(f"mae {r['mae']:.4g}  wce {r['wce']}  mse {r['mse']:.6g}  energy_pj {r['energy_pj']:.4g} (activity)")
    return 0


def add_parser(sub) -> None:
    from golden.approx import MAX_TABLE_BITS

    from .args import int_range, positive_int
    p = sub.add_parser("approx", help="approximate multipliers: list, sweep, export tables, characterize Verilog")
    asub = p.add_subparsers(dest="approx_command", required=True, parser_class=type(p))

    q = asub.add_parser("list", help="the multiplier families and their parameters")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_list)

    q = asub.add_parser("sweep", help="characterize a parameter sweep (cached), write CSV/JSON and a Pareto plot")
    q.add_argument("--family", "-f", action="append", metavar="NAME[,NAME]",
                   help=f"families to sweep (repeatable; default all: {', '.join(lib.FAMILIES)})")
    q.add_argument("--bits", type=int_range(2, MAX_TABLE_BITS), default=8, help="operand width N (default 8)")
    q.add_argument("--workers", "-j", type=positive_int, default=2, help="worker processes (default 2)")
    q.add_argument("-o", "--output", default="build/approx", metavar="DIR")
    q.add_argument("--json", action="store_true", help="print the table as JSON")
    q.set_defaults(func=_cmd_sweep)

    q = asub.add_parser("export", help="write a product table (tf-approximate .bin or .npy)")
    q.add_argument("design", help=f"one of {', '.join(lib.FAMILIES)}")
    q.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE")
    q.add_argument("-o", "--output", required=True, metavar="FILE.bin")
    q.add_argument("--format", choices=("bin", "npy"),
                   help="bin: 65,536 little-endian uint16, index a*256+b (N=8); npy: 2^N x 2^N array "
                        "(default: from the file name)")
    q.set_defaults(func=_cmd_export)

    q = asub.add_parser("characterize", help="metrics and energy of your own N x N multiplier Verilog module")
    q.add_argument("--verilog", required=True, action="append", metavar="FILE.v",
                   help="Verilog file (repeatable: e.g. a mapped netlist and its cell library's models)")
    q.add_argument("--top", metavar="NAME", help="module with two N-bit inputs and a 2N-bit output "
                                                 "(default: the files' only top-level module)")
    q.add_argument("--signed", action="store_true",
                   help="two's-complement operands and product (metrics against the signed product)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_cmd_characterize)


def report_sections(outdir):
    """Order 50: the N = 8 sweep table, the Pareto plot and the best point per family."""
    outdir = Path(outdir)
    rows = lib.sweep(lib.sweep_points(bits=8), workers=2)
    paths = lib.write_sweep(rows, outdir)
    body = "\n".join([
        f"{len(rows)} design points, unsigned 8x8. Errors are exhaustive over all 65,536 pairs (golden "
        "tables, proven equal to the RTL by cocotb, and equal to the synthesized gate netlist, evaluated on "
        "all pairs for every point); energies come from that netlist with the "
        "model calibrated on mul-array 8x8 = 0.2 pJ (static: transistor count; activity: toggles of uniform "
        "random operands). MAE% and WCE% are of 2^16; MRE% is over pairs with a non-zero exact product.",
        "", "```", format_table(_table_rows(rows), _HEAD), "```", "",
        "Lowest-energy point of each family within an MRE% limit, saving against mul-array:", "",
        "```", format_table(_best_rows(rows), _BEST_HEAD), "```", "",
        f"![energy vs error]({paths['png'].name})",
        "", f"Data: `{paths['csv'].name}`, `{paths['json'].name}`.",
    ])
    return [(50, "Approximate multipliers: error vs energy", body)]
