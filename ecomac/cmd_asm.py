"""`ecomac asm`: alphabet-set weights (encode, values) and the ASM measurement table.

  ecomac asm encode --alphabet 1,3 --w-bits 8 [--json] W ...   encoded word of each weight
  ecomac asm values --alphabet 1,3 --w-bits 8 [--json]         every representable magnitude
  ecomac asm measure [--json] [-o DIR]                         cells / energy vs int-mac
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from golden import asm

from .plot import save_png
from .table import Progress, format_table

__all__ = ["add_parser", "report_sections", "measure", "asm_activity", "activity_stream", "check_netlist",
           "weight_stats"]

X_BITS = W_BITS = 8
ACC_BITS = 24
LANES = (1, 4, 16)
SEED = 4                      # energy streams and the Gaussian weights
GAUSS_N = 1 << 17
SIM_LANES, SIM_CYCLES = 1024, 33   # as synth.energy's defaults: independent streams x cycles
ACTIVITY_VERSION = "2"        # bump when the activity stream or the netlist check changes


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

def weight_stats(alphabet, w_bits: int = W_BITS) -> dict:
    """Representable fraction and projection errors of N(0,1) weights (fixed seed).

    proj_lsb: weights first quantized to the uniform sign-magnitude w_bits grid (the
    full alphabet, scale from max|w|), then projected onto the alphabet's set: mean
    |delta| in LSBs of that grid. quant_sigma: the alphabet-aware quantizer (its own
    power-of-two scale), mean |w - dequantized| in units of sigma.
    """
    a = asm.parse_alphabet(alphabet)
    w = np.random.default_rng(SEED).standard_normal(GAUSS_N)
    reps = asm.representable(a, w_bits)
    w_int, _ = asm.quantize(w, asm.ALPHABETS[-1], w_bits)
    proj = asm.project(w_int, a, w_bits)
    q, k = asm.quantize(w, a, w_bits)
    return {"alphabet": list(a), "quartets": int(asm.quartet_values(a).size),
            "representable": int(reps.size), "fraction": reps.size / (1 << w_bits),
            "proj_lsb": float(np.mean(np.abs(w_int - proj))),
            "proj_exact_pct": 100.0 * float(np.mean(w_int == proj)),
            "quant_sigma": float(np.mean(np.abs(w - asm.dequantize(q, k)))), "quant_k": k}


def activity_stream(params: dict) -> dict:
    """The activity stream of `asm-pe-row` `params`: {"x", "w"} as (SIM_LANES, SIM_CYCLES) arrays
    (w: every lane's encoded word concatenated, lane i at bits i*encoded_bits, Python ints) plus
    the signed weights "weights" (SIM_LANES, SIM_CYCLES, lanes) they encode."""
    from rtl.registry import get_design
    p = get_design("asm-pe-row").full_params(params)
    A, xb, wb, lanes = asm.parse_alphabet(p["alphabet"]), p["x_bits"], p["w_bits"], p["lanes"]
    rng = np.random.default_rng(SEED)
    x = rng.integers(-(1 << (xb - 1)), 1 << (xb - 1), (SIM_LANES, SIM_CYCLES))
    reps = asm.representable(A, wb)
    signed_w = np.concatenate([-reps[:0:-1], reps])
    w = signed_w[rng.integers(0, signed_w.size, (SIM_LANES, SIM_CYCLES, lanes))]
    enc = asm.encode(w, A, wb)
    eb = asm.encoded_bits(A, wb)
    word = np.zeros((SIM_LANES, SIM_CYCLES), dtype=object)
    for i in range(lanes):
        word = word + (enc[:, :, i].astype(object) << (i * eb))
    return {"x": x, "w": word, "weights": w}


def check_netlist(params: dict, stream: dict | None = None) -> None:
    """Evaluate the synthesized gate netlist of `asm-pe-row` on its activity stream: every
    lane's accumulator at the last cycle must equal the integer sum of x*w of the earlier ones."""
    from rtl.export import generate
    from synth.gatesim import ONES, GateNetlist, pack_values, unpack_values
    from synth.yosys import synthesize
    text, sheet = generate("asm-pe-row", params)
    p, top = sheet["parameters"], sheet["module"]
    s = stream or activity_stream(p)
    g = GateNetlist(synthesize(text, top, netlist=True)["netlist"], top)
    W = -(-SIM_LANES // 64)
    const = {"valid": ONES, "clear": np.uint64(0), "rst": np.uint64(0)}
    unknown = set(g.inputs) - set(g.clock_ports) - set(const) - {"x", "w"}
    if unknown:
        raise ValueError(f"asm-pe-row netlist has unexpected inputs {sorted(unknown)}")

    def cycle_words(t):
        words = {n: np.full((1, W), v, np.uint64) for n, v in const.items() if n in g.inputs}
        words["x"] = pack_values(s["x"][:, t], len(g.inputs["x"]))
        words["w"] = pack_values(s["w"][:, t], len(g.inputs["w"]))
        return words
    res = g.run_lanes(cycle_words, SIM_CYCLES, SIM_LANES)
    acc_bits, x, w = p["acc_bits"], s["x"], s["weights"]
    acc_rows = res["outputs"]["acc"][:, -1, :]
    for i in range(p["lanes"]):
        got = unpack_values(acc_rows[i * acc_bits:(i + 1) * acc_bits], SIM_LANES, signed=True)
        want = (x[:, :-1] * w[:, :-1, i]).sum(axis=1)
        want = ((want + (1 << (acc_bits - 1))) % (1 << acc_bits)) - (1 << (acc_bits - 1))
        if not np.array_equal(got, want):
            bad = int(np.argmax(got != want))
            raise AssertionError(f"asm-pe-row {p}: gate netlist lane {i} stream {bad}: "
                                 f"acc {got[bad]}, expected {want[bad]}")


def asm_activity(params: dict) -> dict:
    """Activity energy per MAC of `asm-pe-row` on valid encoded weights (cached).

    synth.energy's default stream drives uniformly random bits, which for the
    encoded `w` port include words the hardware does not define; here x is
    uniform over its x_bits range and each lane's weight uniform over the
    representable signed weights (`activity_stream`), SIM_LANES independent
    streams of SIM_CYCLES cycles with valid=1, clear=0 (the same shape as
    synth.energy's default for int-mac), priced by synth.energy.design_energy.
    The first run also checks the gate-level netlist (`check_netlist`).
    """
    from synth import cache, energy
    s = activity_stream(params)
    res = energy.design_energy("asm-pe-row", params, mode="activity", stream={"x": s["x"], "w": s["w"]})
    k = cache.key("asm-netlist-check", ACTIVITY_VERSION, energy._sources_digest(),
                  json.dumps(res["params"], sort_keys=True, default=list), SEED, SIM_LANES, SIM_CYCLES)
    if cache.load("asm-netlist-check", k) is None:
        check_netlist(res["params"], s)
        cache.store("asm-netlist-check", k, {"checked": True})
    return {"units_per_cycle": res["units_per_cycle"], "toggle_units_per_cycle": res["toggle_units_per_cycle"],
            "netlist_checked": True, "lanes": res["lanes"], "cycles": res["cycles"],
            "energy_pj": res["energy_pj"]}


def _bank_stats(alphabet) -> dict:
    """Cells and transistors of the pre-computer bank alone (what lanes share)."""
    from amaranth.back import verilog

    from rtl.asm import AsmPrecomputeBank
    from synth.yosys import synthesize
    bank = AsmPrecomputeBank(X_BITS, alphabet)
    text = verilog.convert(bank, name="asm_bank", emit_src=False)
    s = synthesize(text, "asm_bank")
    return {"cells": s["cells_total"], "transistors": s["transistors"], "adders": bank.adders}


def _job(spec):
    from synth.energy import design_energy
    kind, params = spec
    if kind == "bank":
        return kind, params, _bank_stats(params["alphabet"])
    st = design_energy(kind, params, mode="static")
    act = (design_energy(kind, params, mode="activity") if kind == "int-mac" else asm_activity(params))
    ops = st["ops_per_cycle"]
    return kind, params, {"cells": st["cells_total"], "transistors": st["transistors"],
                          "flip_flops": st["flip_flops"], "depth": st["depth"], "ops": ops,
                          "static_pj": st["energy_pj"], "activity_pj": act["energy_pj"]}


def measure(alphabets=asm.ALPHABETS, lanes=LANES, workers: int = 2) -> dict:
    """The ASM sweep: {"baseline": int-mac row, "rows": asm-pe-row rows, "weights": ..., "banks": ...}."""
    from synth.pool import worker_pool
    specs = [("int-mac", {"bits": X_BITS, "acc_bits": ACC_BITS})]
    specs += [("asm-pe-row", {"x_bits": X_BITS, "w_bits": W_BITS, "alphabet": tuple(a), "lanes": n,
                              "acc_bits": ACC_BITS}) for a in alphabets for n in lanes]
    specs += [("bank", {"alphabet": tuple(a)}) for a in alphabets]
    # the largest netlists first so the two workers finish together
    order = sorted(range(len(specs)), key=lambda i: -specs[i][1].get("lanes", 0))
    results = [None] * len(specs)
    with Progress(len(specs), "asm sweep") as prog, worker_pool(workers) as pool:
        futs = {pool.submit(_job, specs[i]): i for i in order}
        from concurrent.futures import as_completed
        for f in as_completed(futs):
            results[futs[f]] = f.result()
            prog.step(note=specs[futs[f]][0])
    base = results[0][2]
    banks = {tuple(p["alphabet"]): r for kind, p, r in results if kind == "bank"}
    rows = []
    for kind, p, r in results[1:]:
        if kind != "asm-pe-row":
            continue
        a = tuple(p["alphabet"])
        rows.append({"alphabet": list(a), "lanes": p["lanes"], **r,
                     "encoded_bits": asm.encoded_bits(a, W_BITS), "bank_adders": banks[a]["adders"],
                     "bank_transistors": banks[a]["transistors"],
                     "transistors_per_mac": r["transistors"] / r["ops"],
                     "static_vs_int_pct": 100.0 * (r["static_pj"] / base["static_pj"] - 1),
                     "activity_vs_int_pct": 100.0 * (r["activity_pj"] / base["activity_pj"] - 1)})
    return {"x_bits": X_BITS, "w_bits": W_BITS, "acc_bits": ACC_BITS,
            "baseline": {"design": "int-mac", "bits": X_BITS, **base}, "rows": rows,
            "weights": [weight_stats(a) for a in alphabets]}


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


def add_parser(sub) -> None:
    from .cli import positive_int
    p = sub.add_parser("asm", help="alphabet set multipliers: encode weights, list values, measure")
    asub = p.add_subparsers(dest="asm_command", required=True, parser_class=type(p))

    def common(q):
        q.add_argument("--alphabet", default="1,3,5,7", help="odd members of 1..15 including 1 (default 1,3,5,7)")
        q.add_argument("--w-bits", type=int, default=8, dest="w_bits", help="weight magnitude bits: 4, 8 or 12")
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
