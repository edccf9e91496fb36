"""The `ecomac` command. Subcommands live here and in `ecomac/cmd_*.py` modules, each
of which defines `add_parser(subparsers)` (and may define `report_sections()`)."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

from rtl.registry import all_designs
from synth.proc import ToolError
from synth.yosys import SynthError, TARGETS

from . import designs
from .args import UsageError, add_design_args, design_params, input_file, positive_int
from .commands import command_modules
from .outputs import check_distinct, check_output_dir, check_output_file
from .table import TERMINAL_COLUMNS, format_table

# UsageError and the argument helpers live in ecomac/args.py, command_modules in ecomac/commands.py;
# they stay importable from here
__all__ = ["main", "build_parser", "UsageError", "command_modules", "positive_int", "add_design_args", "design_params"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # a type's refusal reads as one sentence: `--pop must be an integer >= 4, got 1`, and an input
        # file's names the file (`liberty file x.lib does not exist`), not argparse's `argument --liberty:`
        m = re.fullmatch(r"argument ([^:]+): (.*)", message, re.S)
        if m and m.group(2).startswith("must "):
            message = f"{m.group(1).split('/')[0]} {m.group(2)}"
        elif m and re.match(r"[a-zA-Z]+ file ", m.group(2)):
            message = m.group(2)
        raise UsageError(message)

    def _parse_known_args(self, arg_strings, namespace, *rest):
        # a single-valued option given twice is a mistake argparse would silently resolve
        # last-wins (`--target ice40 --target ecp5`); repeatable options use action="append"
        seen = {}
        for arg in arg_strings:
            if arg == "--":
                break
            if not arg.startswith("-"):
                continue
            found = self._parse_optional(arg)
            if isinstance(found, list):          # Python >= 3.12: a list of candidate tuples
                found = found[0] if len(found) == 1 else None
            action = found[0] if isinstance(found, tuple) else None
            if action is None or isinstance(action, (argparse._AppendAction, argparse._CountAction,
                                                     argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if action in seen:
                raise UsageError(f"option {'/'.join(action.option_strings)} given twice "
                                 f"({seen[action]}, {arg.split('=', 1)[0]}); give it once")
            seen[action] = arg.split("=", 1)[0]
        return super()._parse_known_args(arg_strings, namespace, *rest)


def _param_text(p) -> str:
    default = ",".join(map(str, p.default)) if isinstance(p.default, tuple) else p.default
    default = int(default) if isinstance(default, bool) else default
    rule = f"; default {p.follows_doc}" if p.follows is not None else ""
    return f"{p.name}={default} ({p.allowed}{rule})"


def _cmd_list(args) -> int:
    ds = all_designs()
    if args.json:
        print(json.dumps([d.to_json() for d in ds], indent=2))
        return 0
    rows = [[d.name, d.family, "\n".join(_param_text(p) for p in d.params) or "-", d.description] for d in ds]
    print(format_table(rows, ["design", "family", "parameters: default (allowed)", "description"],
                       max_width=TERMINAL_COLUMNS))
    print("(--json gives every field unwrapped)")
    return 0


def _need_design(args) -> None:
    if args.all and args.design:
        raise UsageError("give a design or --all, not both")
    if not args.all and not args.design:
        raise UsageError("a design name is required (or --all for every default design)")


def _cmd_verilog(args) -> int:
    _need_design(args)
    if args.all:
        if args.param:
            raise UsageError("--param applies to one design, not to --all")
        check_output_dir(args.output)
        for d in designs.default_designs():
            designs.write_verilog(d.name, {}, f"{args.output}/{d.module}.v")
        print(f"wrote {len(designs.default_designs())} designs into {args.output}/")
        return 0
    d, params = design_params(args)
    out = check_output_file(args.output, what="Verilog file")
    if out.suffix.lower() == ".json":
        raise UsageError(f"Verilog file {args.output} ends in .json, the datasheet's name; "
                         "give FILE.v (the datasheet goes to FILE.json)")
    sheet_path = out.with_suffix(".json")
    check_output_file(sheet_path, what="datasheet")
    check_distinct(out, sheet_path)
    d.validate(params)              # parameter errors before anything slow
    sheet = designs.write_verilog(d.name, params, out)
    print(f"wrote {out} and {sheet_path} (module {sheet['module']})")
    return 0


def _check_liberty_target(args) -> None:
    if args.liberty is not None and args.target != "generic":
        raise UsageError(f"--liberty maps to a cell library and applies to --target generic only, "
                         f"not {args.target}")


def _cmd_synth(args) -> int:
    _need_design(args)
    _check_liberty_target(args)
    if args.output is not None and not args.all:
        raise UsageError("-o applies to --all; one design's results go to stdout (--json for JSON)")
    if args.all:
        if args.param:
            raise UsageError("--param applies to one design, not to --all")
        args.output = args.output or "build/synth"
        check_output_dir(args.output)
        rows = designs.synth_defaults(args.output, target=args.target, liberty=args.liberty)
        print(designs.summary_table(rows))
        return 0
    d, params = design_params(args)
    d.validate(params)
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
    check_output_dir(args.output)
    print(write_report(args.output, heavy=args.heavy))
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
    p.add_argument("-o", "--output", default=None, metavar="DIR",
                   help="with --all: JSON per design (default build/synth)")
    p.add_argument("--target", default="generic", choices=TARGETS)
    p.add_argument("--liberty", metavar="FILE", type=input_file("liberty file"),
                   help="map to this cell library (area in um^2)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("report", help="synthesize the default designs and print every report section")
    p.add_argument("-o", "--output", default="build/report", metavar="DIR",
                   help="where report.md, tables and plots go")
    p.add_argument("--heavy", action="store_true",
                   help="also compute the slow sections (cell-library energy, 64-lane ASM storage tiles; "
                        "tens of minutes cold) and keep them in build/experiments/report_sections/")
    p.set_defaults(func=_cmd_report)

    for mod in command_modules():
        mod.add_parser(sub)
    return ap


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def _quiet_stdout() -> None:
    """After a closed pipe (`ecomac list | head -1`): point stdout at /dev/null so the
    interpreter's final flush does not print a BrokenPipeError of its own."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so worker pools and external tools are stopped on the way out."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def main(argv=None) -> int:
    import signal
    import threading
    old_term = None
    if threading.current_thread() is threading.main_thread():
        old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(argv)
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _main(argv) -> int:
    try:
        args = build_parser().parse_args(argv)
        code = args.func(args) or 0
        sys.stdout.flush()               # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return 141                       # 128 + SIGPIPE, what a shell reports for a closed pipe
    except (UsageError, ValueError, TypeError, SynthError, ToolError, OSError) as e:
        # OSError: the file system refused (a full disk, a file vanished mid-run); one line
        print(f"ecomac: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except _Terminated:
        print("ecomac: terminated", file=sys.stderr)
        return 143                       # 128 + SIGTERM
    except KeyboardInterrupt:
        print("ecomac: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
