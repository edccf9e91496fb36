"""`ecomac prove`: formal equivalence of a design with a behavioural reference (Yosys SAT);
the proofs and references are synth/prove.py."""
from __future__ import annotations

import json
from pathlib import Path

from synth import prove as lib
from synth.cache import atomic_write

from .table import Progress, format_table

__all__ = ["add_parser"]

_EXIT = {"proven": 0, "counterexample": 1, "undecided": 3}


def _params_text(p: dict) -> str:
    return " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else (int(v) if isinstance(v, bool) else v)}"
                    for k, v in p.items()) or "-"


def _print_one(r) -> None:
    for p in r["proofs"]:
        line = f"{p['result']}: {p['property']} ({p['time_s']:.1f} s)"
        if p["result"] == "counterexample":
            line += "\n  inputs: " + ", ".join(f"{k}={v}" for k, v in p["inputs"].items())
        elif p["result"] == "undecided":
            line += f"\n  {p['note']}"
        print(line)
    print(r["result"])


def _cmd_prove(args) -> int:
    from .cli import UsageError, design_params
    if args.all and args.design:
        raise UsageError("give a design or --all, not both")
    if not args.all and not args.design:
        raise UsageError(f"a design name is required (one of {', '.join(lib.PROVABLE)}; or --all)")
    if args.all:
        pts = lib.suite()
        rows = []
        with Progress(len(pts), "prove") as prog:
            for name, params in pts:
                rows.append(lib.prove(name, params, timeout=args.timeout))
                prog.step(note=f"{name} {rows[-1]['result']}")
        atomic_write(Path(args.output) / "prove.json", json.dumps(rows, indent=2) + "\n")
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print(format_table([[r["design"], _params_text({k: v for k, v in r["params"].items() if k != "accumulator"}),
                                 p["property"], p["result"], f"{p['time_s']:.1f}"] for r in rows for p in r["proofs"]],
                               ["design", "params", "property", "result", "time s"],
                               title=f"formal proofs (Yosys SAT, {args.timeout:g} s limit each)"))
            print(f"\nwrote {args.output}/prove.json")
        worst = max((_EXIT[r["result"]] for r in rows), default=0)
        return worst
    if args.design not in lib.PROVABLE:
        raise UsageError(f"no formal proof for {args.design} (provable: {', '.join(lib.PROVABLE)})")
    d, params = design_params(args)
    r = lib.prove(d.name, params, timeout=args.timeout)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        _print_one(r)
    return _EXIT[r["result"]]


def add_parser(sub) -> None:
    from .args import add_design_args, float_range
    p = sub.add_parser("prove", help="formal proof (Yosys SAT) against a behavioural reference: "
                                     "prints proven (exit 0) or counterexample with the inputs (exit 1)")
    add_design_args(p, optional=True)
    p.add_argument("--all", action="store_true", help="the `make prove` suite (exact units up to 16 bits, "
                                                      "PoT products E=1..5, approximate families at N=8 and 12)")
    p.add_argument("--timeout", type=float_range(0, lo_open=True), default=lib.DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"per proof; past it the result is `undecided`, exit 3 (default {lib.DEFAULT_TIMEOUT_S:g})")
    p.add_argument("-o", "--output", default="build/prove", metavar="DIR", help="with --all: where prove.json goes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_prove)
