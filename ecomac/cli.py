"""The `ecomac` command. Subcommands live here and in `ecomac/cmd_*.py` modules, each
of which defines `add_parser(subparsers)` (and may define `report_sections()`)."""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys

from rtl.registry import all_designs, get_design, parse_params
from synth.yosys import SynthError, TARGETS

from . import designs
from .table import format_table

__all__ = ["main", "UsageError", "command_modules"]


class UsageError(Exception):
    """A user mistake: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def command_modules():
    import ecomac
    mods = []
    for m in sorted(pkgutil.iter_modules(ecomac.__path__), key=lambda m: m.name):
        if m.name.startswith("cmd_"):
            mods.append(importlib.import_module(f"ecomac.{m.name}"))
    return mods


def design_params(args) -> tuple:
    """(Design, params dict) from `args.design` and `args.param`."""
    d = get_design(args.design)
    return d, parse_params(d, args.param)


def add_design_args(p, optional: bool = False) -> None:
    p.add_argument("design", nargs="?" if optional else None, help="design name (see `ecomac list`)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE",
                   help="set a design parameter (repeatable)")


def _cmd_list(args) -> int:
    ds = all_designs()
    if args.json:
        print(json.dumps([d.to_json() for d in ds], indent=2))
        return 0
    rows = [[d.name, d.family, ", ".join(f"{p.name}={p.default if not isinstance(p.default, tuple) else ','.join(map(str, p.default))} ({p.allowed})"
                                        for p in d.params), d.description] for d in ds]
    print(format_table(rows, ["design", "family", "parameters (default, allowed)", "description"]))
    return 0


def _need_design(args) -> None:
    if args.all and args.design:
        raise UsageError("give a design or --all, not both")
    if not args.all and not args.design:
        raise UsageError("a design name is required (or --all for every default design)")


def _cmd_verilog(args) -> int:
    _need_design(args)
    if args.all:
        for d in designs.default_designs():
            designs.write_verilog(d.name, {}, f"{args.output}/{d.module}.v")
        print(f"wrote {len(designs.default_designs())} designs into {args.output}/")
        return 0
    d, params = design_params(args)
    sheet = designs.write_verilog(d.name, params, args.output)
    print(f"wrote {args.output} and {args.output.rsplit('.', 1)[0]}.json (module {sheet['module']})")
    return 0


def _cmd_synth(args) -> int:
    _need_design(args)
    if args.all:
        rows = designs.synth_defaults(args.output, target=args.target, liberty=args.liberty)
        print(designs.summary_table(rows))
        return 0
    d, params = design_params(args)
    res = designs.synth_design(d.name, params, target=args.target, liberty=args.liberty)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    rows = [[c, n] for c, n in sorted(res["cells"].items())]
    print(format_table(rows, ["cell", "count"], title=f"{d.name} {res['params']} ({res['target']})"))
    keys = ["cells_total", "transistors", "area_um2", "flip_flops", "depth",
            "luts", "carry", "dsp", "bram", "lutram"]
    for k in keys:
        if k in res:
            print(f"{k:12} {res[k]}")
    return 0


def _cmd_report(args) -> int:
    from .report import write_report
    print(write_report(args.output))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="ecomac", description="RTL for energy-efficient DNN arithmetic, proven against golden models")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="list designs and parameters")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("verilog", help="write a design's Verilog and datasheet (FILE.json)")
    add_design_args(p, optional=True)
    p.add_argument("-o", "--output", required=True, metavar="FILE.v",
                   help="output file (a folder with --all)")
    p.add_argument("--all", action="store_true", help="every default design into folder -o")
    p.set_defaults(func=_cmd_verilog)

    p = sub.add_parser("synth", help="Yosys statistics: cells, transistors (or FPGA resources)")
    add_design_args(p, optional=True)
    p.add_argument("--all", action="store_true", help="every default design; JSON per design into -o")
    p.add_argument("-o", "--output", default="build/synth", metavar="DIR")
    p.add_argument("--target", default="generic", choices=TARGETS)
    p.add_argument("--liberty", metavar="FILE", help="map to this cell library (area in um^2)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("report", help="synthesize the default designs and print every report section")
    p.add_argument("-o", "--output", default="build/report", metavar="DIR",
                   help="where report.md, tables and plots go")
    p.set_defaults(func=_cmd_report)

    for mod in command_modules():
        mod.add_parser(sub)
    return ap


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args) or 0
    except (UsageError, ValueError, TypeError, SynthError, FileNotFoundError) as e:
        print(f"ecomac: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
