"""The ASM measurement: alphabet-set shift-add rows (`asm-pe-row`) against `int-mac`, priced from
their own netlists (synth/energy.py), and the alphabets' weight statistics (golden/asm.py).

  measure(alphabets, lanes, workers, progress)   cells, transistors, static and activity energy
                                                 per MAC of every (alphabet, lanes) row, the
                                                 pre-computer banks alone and int-mac
  weight_stats(alphabet)    representable fraction and projection errors of N(0,1) weights
  asm_activity(params)      activity energy of asm-pe-row on valid encoded weights (cached); its
                            first run checks the gate netlist's accumulators (check_netlist)
  activity_stream(params)   that stream

`progress(done, total, note)`, when given, is called once with done = 0 after the arguments are
validated and before any work, then after each design point.
"""
from __future__ import annotations

import json

import numpy as np

from golden import asm

__all__ = ["measure", "weight_stats", "asm_activity", "activity_stream", "check_netlist",
           "X_BITS", "W_BITS", "ACC_BITS", "LANES", "SEED", "GAUSS_N", "SIM_LANES", "SIM_CYCLES"]

X_BITS = W_BITS = 8
ACC_BITS = 24
LANES = (1, 4, 16)
SEED = 4                      # energy streams and the Gaussian weights
GAUSS_N = 1 << 17
SIM_LANES, SIM_CYCLES = 1024, 33   # as synth.energy's defaults: independent streams x cycles
ACTIVITY_VERSION = "2"        # bump when the activity stream or the netlist check changes


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

    from .gatesim import ONES, GateNetlist, pack_values, unpack_values
    from .yosys import synthesize
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
    from . import cache, energy
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

    from .yosys import synthesize
    bank = AsmPrecomputeBank(X_BITS, alphabet)
    text = verilog.convert(bank, name="asm_bank", emit_src=False)
    s = synthesize(text, "asm_bank")
    return {"cells": s["cells_total"], "transistors": s["transistors"], "adders": bank.adders}


def _job(spec):
    from .energy import design_energy
    kind, params = spec
    if kind == "bank":
        return kind, params, _bank_stats(params["alphabet"])
    st = design_energy(kind, params, mode="static")
    act = (design_energy(kind, params, mode="activity") if kind == "int-mac" else asm_activity(params))
    ops = st["ops_per_cycle"]
    return kind, params, {"cells": st["cells_total"], "transistors": st["transistors"],
                          "flip_flops": st["flip_flops"], "depth": st["depth"], "ops": ops,
                          "static_pj": st["energy_pj"], "activity_pj": act["energy_pj"]}


def measure(alphabets=asm.ALPHABETS, lanes=LANES, workers: int = 2, progress=None) -> dict:
    """The ASM sweep: {"baseline": int-mac row, "rows": asm-pe-row rows, "weights": ...}, the
    design points synthesized and priced in `workers` processes."""
    from concurrent.futures import as_completed

    from .pool import check_workers, worker_pool
    check_workers(workers)
    specs = [("int-mac", {"bits": X_BITS, "acc_bits": ACC_BITS})]
    specs += [("asm-pe-row", {"x_bits": X_BITS, "w_bits": W_BITS, "alphabet": tuple(a), "lanes": n,
                              "acc_bits": ACC_BITS}) for a in alphabets for n in lanes]
    specs += [("bank", {"alphabet": tuple(a)}) for a in alphabets]
    # the largest netlists first so the two workers finish together
    order = sorted(range(len(specs)), key=lambda i: -specs[i][1].get("lanes", 0))
    results = [None] * len(specs)
    if progress is not None:
        progress(0, len(specs), "")
    with worker_pool(workers) as pool:
        futs = {pool.submit(_job, specs[i]): i for i in order}
        for done, f in enumerate(as_completed(futs), 1):
            results[futs[f]] = f.result()
            if progress is not None:
                progress(done, len(specs), specs[futs[f]][0])
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
