"""`ecomac nn hwsim`: a whole network on the generated hardware, bit for bit, and its energy from
the network's own data. Logic: net/hwsim.py (the network) and synth/hwsim.py (the array)."""
from __future__ import annotations

import json
import sys

from .table import format_table, progress_bar

__all__ = ["add_parser", "add_nn_parser"]

RTL_DEFAULT_SAMPLES = 4


def add_parser(sub) -> None:
    """hwsim lives under `ecomac nn` (add_nn_parser); nothing at the top level."""


def add_nn_parser(ns) -> None:
    from .args import positive_int as _positive_int, seed
    p = ns.add_parser("hwsim", help="run a model's products on the datapath's generated hardware (gate netlist "
                      "or Verilog), compared with the emulator bit for bit; energy from the real operand stream",
                      description="Every product of the model on an output-stationary array of the datapath's RTL "
                      "unit, every accumulation compared with the emulator's (nn eval's); exit status 1 and one "
                      "line naming layer, sample, tile and values at the first difference. docs/hwsim.md")
    p.add_argument("--model", required=True, metavar="MODEL.pt",
                   help="any model nn eval takes: checkpoint (nn train), whole nn.Module, .pt2, ONNX, FILE.py:NAME")
    p.add_argument("--weights", metavar="W.pt", help="state_dict for FILE.py:NAME (or .pt2) models, as nn eval")
    p.add_argument("--data", required=True, metavar="digits|mnist|FILE.npz")
    p.add_argument("--datapath", required=True, metavar="SPEC",
                   help="int8, mfmac[,exp_bits=E], asm[,alphabet=1/3][,...] or approx:FAMILY[,...]")
    p.add_argument("--samples", type=_positive_int, metavar="N",
                   help=f"the first N test samples (default: all with --engine gates, {RTL_DEFAULT_SAMPLES} with rtl)")
    p.add_argument("--engine", choices=("gates", "rtl"), default="gates",
                   help="gates: the synthesized gate netlist, bit-parallel (default); rtl: the generated Verilog "
                        "under cocotb + Icarus (slow: a few samples)")
    p.add_argument("--array", default="4x4", metavar="RxC",
                   help="output-stationary array: R rows (product rows) x C columns (outputs), 1..64 each "
                        "(default 4x4)")
    p.add_argument("--batch", type=_positive_int, default=1, metavar="B",
                   help="samples stacked into the rows of one product (default 1: one inference at a time)")
    p.add_argument("--timed", action="store_true",
                   help="also the timed-mode energy: every cycle swept with a unit delay per gate, glitches "
                        "counted (gates engine; several times slower)")
    p.add_argument("--calib-size", type=_positive_int, default=512,
                   help="training samples for activation calibration (default 512, as nn eval)")
    p.add_argument("--seed", type=seed, default=0, help="calibration sample draw (default 0, as nn eval)")
    p.add_argument("--json", action="store_true",
                   help="{samples, compared_accumulations, mismatched_accumulations, mismatched_predictions, "
                        "cycles_per_inference, accuracy_pct, energy_pj_real_data, energy_pj_random_operands, "
                        "layers, ...}")
    p.set_defaults(func=_cmd_hwsim)


_HEAD = ["layer", "product", "MACs", "cycles", "util %", "compared", "mismatched", "real pJ", "random pJ",
         "real/random"]


def _row(r: dict) -> list:
    def pj(v):
        return "-" if v is None else round(v, 1)
    ratio = r.get("real_over_random")
    return [r["layer"], r["product"], r["macs_per_inference"], round(r["cycles_per_inference"], 1),
            round(r["utilization_pct"], 1), r["compared_accumulations"], r["mismatched_accumulations"],
            pj(r["energy_pj_real_data"]), pj(r.get("energy_pj_random_operands")),
            "-" if ratio is None else round(ratio, 3)]


def _check_args(args):
    """Every option validated before the model, the data or a synthesis loads (one line each)."""
    from net.datapath import parse
    from synth.hwsim import array_for, parse_array
    dp = parse(args.datapath)
    if dp.is_float:
        raise ValueError("--datapath fp32 has no integer array to run; give int8, mfmac, asm or approx:FAMILY")
    rows, cols = parse_array(args.array)
    array_for(dp, rows, cols)
    if args.timed and args.engine != "gates":
        raise ValueError("--timed needs --engine gates (the rtl engine counts no toggles)")
    return rows, cols


def _cmd_hwsim(args) -> int:
    rows, cols = _check_args(args)
    from net import data, hwsim, loader
    model, meta = loader.load(args.model, args.weights)
    ds = data.load(args.data, seed=0)
    samples = args.samples or (RTL_DEFAULT_SAMPLES if args.engine == "rtl" else len(ds.y_test))
    if samples > len(ds.y_test):
        raise ValueError(f"--samples {samples}: the test split of {ds.name} has {len(ds.y_test)} samples")
    try:
        with progress_bar(f"hwsim {args.engine}") as step:
            res = hwsim.run(model, ds, args.datapath, samples=samples, engine=args.engine, array=(rows, cols),
                            batch=args.batch, meta=meta, timed=args.timed, calib_size=args.calib_size, seed=args.seed,
                            progress=step)
    except hwsim.HwMismatch as e:
        if args.json:
            print(json.dumps(_json(e.result), indent=2))
        print(f"ecomac: hwsim: MISMATCH: {e.info['message']}", file=sys.stderr)
        return 1
    res.update(model=args.model, data=ds.name)
    if args.json:
        print(json.dumps(_json(res), indent=2))
        return 0
    _print(res, args, ds)
    return 0


def _json(res: dict) -> dict:
    keys = ("model", "data", "datapath", "engine", "array", "hardware", "unit", "samples", "batch", "compared_accumulations",
            "mismatched_accumulations", "compared_logits", "mismatched_logits", "mismatched_predictions",
            "cycles_per_inference", "utilization_pct", "macs_per_inference", "accuracy_pct",
            "emulator_accuracy_pct", "energy_pj_real_data", "energy_pj_random_operands", "energy_real_over_random",
            "memory_pj", "total_pj_real_data", "total_pj_random_operands", "energy_spec", "random_mac_pj",
            "energy_pj_real_data_timed", "energy_pj_random_operands_timed", "energy_real_over_random_timed",
            "glitch_share",
            "simulated_macs", "sim_s", "hardware_s", "emulator_s", "simulated_macs_per_s", "emulator_macs_per_s",
            "slowdown_vs_emulator", "mismatch")
    out = {k: res[k] for k in keys if k in res}
    out["layers"] = res.get("layers", [])
    return out


def _print(res: dict, args, ds) -> None:
    title = (f"{args.model} on {ds.name}: {res['samples']} test samples on {res['hardware']} "
             f"({args.engine} engine, batch {res['batch']}); per inference")
    print(format_table([_row(r) for r in res["layers"]], _HEAD, title=title))
    print(f"accumulations: {res['compared_accumulations']:,} compared, {res['mismatched_accumulations']} mismatched; "
          f"logits: {res['compared_logits']:,} compared, {res['mismatched_logits']} mismatched; predictions: "
          f"{res['mismatched_predictions']} mismatched")
    print(f"accuracy: {res['accuracy_pct']:.2f}% on the hardware, {res['emulator_accuracy_pct']:.2f}% emulated "
          f"(nn eval) on the same {res['samples']} samples")
    print(f"cycles per inference: {res['cycles_per_inference']:,.1f} on the {res['array']} array, utilization "
          f"{res['utilization_pct']:.1f}%")
    if res.get("energy_pj_real_data") is not None:
        print(f"arithmetic energy per inference: {res['energy_pj_real_data'] / 1e3:.3f} nJ from the real operand "
              f"stream's toggles (the whole array, idle PEs included) vs {res['energy_pj_random_operands'] / 1e3:.3f} "
              f"nJ on random operands ({res['energy_spec']}, as nn eval; ratio {res['energy_real_over_random']:.3f}); "
              + (f"memory traffic {res['memory_pj'] / 1e3:.1f} nJ in both" if res.get("memory_pj") is not None
                 else "no memory figure (synth.network cannot describe this model's layers)"))
        if res.get("energy_pj_real_data_timed") is not None:
            print(f"timed mode (unit delays, glitches included): {res['energy_pj_real_data_timed'] / 1e3:.3f} nJ per "
                  f"inference vs {res['energy_pj_random_operands_timed'] / 1e3:.3f} nJ on random operands (ratio "
                  f"{res['energy_real_over_random_timed']:.3f}); glitches: {100 * res['glitch_share']:.1f}% of the "
                  f"real stream's transistor-weighted transitions")
    else:
        print(f"energy: the rtl engine counts no toggles (use --engine gates); random-operand arithmetic "
              f"{res['energy_pj_random_operands'] / 1e3:.3f} nJ per inference")
    if res.get("simulated_macs_per_s"):
        print(f"speed: {res['simulated_macs']:,} MACs simulated in {res['sim_s']:.1f} s "
              f"({res['simulated_macs_per_s']:,.0f} MACs/s); the emulator ran them at "
              f"{res['emulator_macs_per_s']:,.0f} MACs/s; the hardware run took {res['slowdown_vs_emulator']:.0f}x the emulator's time")


_SUMMARY_HEAD = ["model", "datapath", "engine", "hardware", "samples", "compared", "mismatched", "pred. mism.",
                 "acc % hw", "acc % emu", "cycles/inf", "util %", "real nJ", "random nJ", "real/random", "sim s",
                 "MACs/s"]


def summary_table(results: list[dict]) -> str:
    """One row per `nn hwsim --json` result (what `make hwsim` prints at the end)."""
    import os

    def nj(v):
        return "-" if v is None else round(v / 1e3, 3)
    rows = []
    for r in results:
        ratio = r.get("energy_real_over_random")
        rows.append([f"{os.path.basename(str(r.get('model', '?')))} ({r.get('data', '?')})", r["datapath"], r["engine"],
                     f"{r['array']} {r['unit']}" + (f" batch {r['batch']}" if r.get("batch", 1) > 1 else ""),
                     r["samples"], r["compared_accumulations"], r["mismatched_accumulations"],
                     r.get("mismatched_predictions", "-"), round(r.get("accuracy_pct", float("nan")), 2),
                     round(r.get("emulator_accuracy_pct", float("nan")), 2), round(r["cycles_per_inference"], 1),
                     round(r["utilization_pct"], 1), nj(r.get("energy_pj_real_data")),
                     nj(r.get("energy_pj_random_operands")), "-" if ratio is None else round(ratio, 3),
                     round(r["sim_s"], 1), f"{r['simulated_macs_per_s']:,.0f}" if r.get("simulated_macs_per_s") else "-"])
    return format_table(rows, _SUMMARY_HEAD, title="ecomac nn hwsim: networks on the generated hardware "
                        "(energy: arithmetic per inference)")


if __name__ == "__main__":                 # make hwsim: python -m ecomac.cmd_hwsim build/hwsim/*.json
    from pathlib import Path
    print(summary_table([json.loads(Path(f).read_text()) for f in sys.argv[1:]]))
