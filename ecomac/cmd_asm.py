"""`ecomac asm`: alphabet-set weights (encode, values) and the ASM measurement table (computed by
synth/asm.py; printed, plotted and written here).

  ecomac asm encode --alphabet 1,3 --w-bits 8 [--json] W ...   encoded word of each weight
  ecomac asm values --alphabet 1,3 --w-bits 8 [--json]         every representable magnitude
  ecomac asm measure [--json] [-o DIR]                         cells / energy vs int-mac
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from golden import asm
from synth import asm as library
from synth.asm import LANES, X_BITS

from .plot import save_png
from .table import format_table, progress_bar

__all__ = ["add_parser", "report_sections", "measure", "tables"]


def _alpha_text(a) -> str:
    return "{" + ",".join(map(str, a)) + "}"


# ---------------------------------------------------------------- encode / values

def _parse_weights(items) -> np.ndarray:
    out = []
    for t in items:
        try:
            out.append(int(t, 0))
        except ValueError:
            raise ValueError(f"weight {t!r} is not an integer") from None
    return np.array(out, np.int64)


def _cmd_encode(args) -> int:
    alphabet = asm.parse_alphabet(args.alphabet)
    w = _parse_weights(args.weights)
    enc = asm.encode(w, alphabet, args.w_bits)
    width = asm.encoded_bits(alphabet, args.w_bits)
    if args.json:
        print(json.dumps({"alphabet": list(alphabet), "w_bits": args.w_bits, "encoded_bits": width,
                          "weights": [{"weight": int(a), "encoded": int(b)} for a, b in zip(w, enc)]},
                         indent=2))
        return 0
    rows = [[int(a), int(b), format(int(b), f"0{width}b")] for a, b in zip(w, enc)]
    print(format_table(rows, ["weight", "encoded", "bits"],
                       title=f"alphabet {_alpha_text(alphabet)}, w_bits={args.w_bits}: "
                             f"{width}-bit words (port w of asm-mul)"))
    return 0


def _cmd_values(args) -> int:
    alphabet = asm.parse_alphabet(args.alphabet)
    reps = asm.representable(alphabet, args.w_bits)
    if args.json:
        print(json.dumps({"alphabet": list(alphabet), "w_bits": args.w_bits, "count": int(reps.size),
                          "fraction": reps.size / (1 << args.w_bits),
                          "quartets": asm.quartet_values(alphabet).tolist(), "values": reps.tolist()}))
        return 0
    print(f"alphabet {_alpha_text(alphabet)}, w_bits={args.w_bits}: {reps.size} of {1 << args.w_bits} "
          f"magnitudes representable ({100 * reps.size / (1 << args.w_bits):.1f}%), "
          f"quartets {asm.quartet_values(alphabet).tolist()}")
    per_line = 16
    for i in range(0, reps.size, per_line):
        print(" ".join(f"{v:>4}" for v in reps[i:i + per_line]))
    return 0


# ---------------------------------------------------------------- measurement

def measure(alphabets=asm.ALPHABETS, lanes=LANES, workers: int = 2) -> dict:
    """synth.asm.measure with its bar on stderr."""
    with progress_bar("asm sweep") as step:
        return library.measure(alphabets, lanes, workers, progress=step)


_HW_HEAD = ["design", "alphabet", "lanes", "w port", "bank adders", "bank T", "cells", "transistors",
            "T/MAC", "static pJ/MAC", "activity pJ/MAC", "static vs int", "activity vs int"]
_W_HEAD = ["alphabet", "quartets", "representable", "fraction", "proj |err| LSB", "proj exact %",
           "quantize |err|/sigma"]


def tables(res: dict) -> tuple[str, str]:
    b = res["baseline"]
    hw = [["int-mac", "-", 1, X_BITS, "-", "-", b["cells"], b["transistors"], b["transistors"],
           round(b["static_pj"], 4), round(b["activity_pj"], 4), "-", "-"]]
    for r in res["rows"]:
        hw.append(["asm-pe-row", _alpha_text(r["alphabet"]), r["lanes"], r["encoded_bits"], r["bank_adders"],
                   r["bank_transistors"], r["cells"], r["transistors"], round(r["transistors_per_mac"]),
                   round(r["static_pj"], 4), round(r["activity_pj"], 4),
                   f"{r['static_vs_int_pct']:+.1f}%", f"{r['activity_vs_int_pct']:+.1f}%"])
    ws = [[_alpha_text(w["alphabet"]), w["quartets"], w["representable"], round(w["fraction"], 4),
           round(w["proj_lsb"], 3), round(w["proj_exact_pct"], 1), round(w["quant_sigma"], 5)]
          for w in res["weights"]]
    return format_table(hw, _HW_HEAD), format_table(ws, _W_HEAD)


def _plot(res: dict, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for a in sorted({tuple(r["alphabet"]) for r in res["rows"]}, key=len):
        pts = sorted((r["lanes"], r["activity_pj"]) for r in res["rows"] if tuple(r["alphabet"]) == a)
        ax.plot(*zip(*pts), marker="o", label=f"asm-pe-row {_alpha_text(a)}")
    ax.axhline(res["baseline"]["activity_pj"], color="k", ls="--", label="int-mac 8-bit")
    ax.set_xscale("log", base=2)
    ticks = sorted({r["lanes"] for r in res["rows"]})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("lanes sharing one pre-computer bank")
    ax.set_ylabel("activity energy per MAC (pJ)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_png(fig, path, dpi=120)
    return True


def _write(res: dict, outdir) -> Path:
    from synth.cache import atomic_write
    path = Path(outdir) / "asm.json"
    atomic_write(path, json.dumps(res, indent=2) + "\n")
    return path


_NOTES = (
    "x_bits = w_bits = 8 (weights sign + 8-bit magnitude), 24-bit accumulators, Yosys generic gates. "
    "Energy per MAC from synth.energy (calibrated on mul-array 8x8 = 0.2 pJ): static = transistor count; "
    "activity = toggles on 1024 random streams x 33 cycles. int-mac uses synth.energy's default stream "
    "(uniform random 8-bit x and w); asm-pe-row uses uniform random x and weights uniform over the "
    "representable signed weights (valid encoded words only; the same run checks the gate netlist's "
    "accumulators). Note the ASM weight range is +-255 (sign-magnitude) against int-mac's -128..127. "
    "`bank T` = transistors of the pre-computer bank alone, shared by all lanes of a row. "
    "Gaussian weights: 2^17 samples of N(0,1); `proj` = 8-bit uniform quantization then projection onto the "
    "alphabet's set (ties towards zero); `quantize` = alphabet-aware quantizer with its own power-of-two scale.")


def _cmd_measure(args) -> int:
    if args.output:
        from .outputs import check_output_dir
        check_output_dir(args.output)
    res = measure(workers=args.workers)
    if args.output:
        _write(res, args.output)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    hw, ws = tables(res)
    print(hw)
    print()
    print(ws)
    return 0


def report_sections(outdir):
    """Order 40: ASM units against int-mac (bank amortization over lanes) and weight statistics."""
    outdir = Path(outdir)
    res = measure()
    path = _write(res, outdir)
    hw, ws = tables(res)
    png = outdir / "asm_energy.png"
    body = [_NOTES, "", "```", hw, "```", "", "Alphabet-aware weights (8-bit):", "", "```", ws, "```"]
    if _plot(res, png):
        body += ["", f"![ASM energy per MAC vs lanes]({png.name})"]
    body += ["", f"Data: `{path.name}`. Reference for the direction (not an ecomac figure): multiplier-less "
                 "neuron papers report about 35% lower power for alphabet {1} at 8 bits."]
    return [(40, "ASM shift-add units: alphabet sets vs int-mac", "\n".join(body))]


def _w_bits(text: str) -> int:
    """argparse type: the weight magnitude width (golden.asm.check_w_bits: 4, 8 or 12)."""
    import argparse

    from golden.asm import check_w_bits
    try:
        return check_w_bits(int(text, 10))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"must be 4, 8 or 12, got {text!r}" if "int()" in str(e) else str(e)) from None


def add_parser(sub) -> None:
    from .args import positive_int
    p = sub.add_parser("asm", help="alphabet set multipliers: encode weights, list values, measure")
    asub = p.add_subparsers(dest="asm_command", required=True, parser_class=type(p))

    def common(q):
        q.add_argument("--alphabet", default="1,3,5,7", help="odd members of 1..15 including 1 (default 1,3,5,7)")
        q.add_argument("--w-bits", type=_w_bits, default=8, dest="w_bits", help="weight magnitude bits: 4, 8 or 12")
        q.add_argument("--json", action="store_true")

    q = asub.add_parser("encode", help="encoded word (asm-mul port w) of each signed weight")
    common(q)
    q.add_argument("weights", nargs="+", metavar="W", help="signed integer weights")
    q.set_defaults(func=_cmd_encode)

    q = asub.add_parser("values", help="every representable weight magnitude")
    common(q)
    q.set_defaults(func=_cmd_values)

    q = asub.add_parser("measure", help="cells and energy per MAC of asm-pe-row vs int-mac (synthesizes)")
    q.add_argument("--json", action="store_true")
    q.add_argument("-o", "--output", metavar="DIR", help="also write DIR/asm.json")
    q.add_argument("--workers", type=positive_int, default=2, help="parallel synthesis processes (default 2)")
    q.set_defaults(func=_cmd_measure)
