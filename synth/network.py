"""Layer and network energy: MAC counts of linear/conv/matmul layers x the per-MAC energy of a
synthesized datapath (synth/energy.py), plus a memory-traffic model from the 45 nm table.

The net file (JSON) format, Layer and Net: synth/net_spec.py.

Inference = one matrix product per layer (forward); training = three, each with the
forward's MAC count: forward Y = W X, backward-data dX = W^T dY, weight-gradient
dW = dY X^T.

Datapaths: any spec of golden/datapath.py's grammar (the one parser; `parse_spec`), priced
on the RTL unit `Datapath.mac_design` names: fp32 (fp32-mac), int8[,acc_bits=N] (int-mac
bits=8), mfmac[,exp_bits=E][,acc_bits=N] (mfmac-pe), asm[,alphabet=1/3/5/7][,w_bits=W]
[,x_bits=X][,lanes=L][,acc_bits=N] (asm-pe-row, `lanes` lanes sharing one pre-computer bank;
default alphabet {1,3,5,7}, 8-bit x and w, 16 lanes), approx:FAMILY[,NAME=VALUE...]
[,acc_bits=N] (approx-mac bits=8 on the named unsigned multiplier family of rtl/approx.py,
e.g. approx:mul-drum,k=6; the family's parameters not given take approx-mac's defaults) and
lut:FILE.v[,top=NAME] (approx-mac's sign-magnitude shell around the given unsigned 8x8
multiplier circuit: the shell's mul-array is swapped for the circuit, both priced alone
under uniform random operands in the same mode). A bare table (lut:FILE.bin/.npy) has no
circuit and is refused here (emulation runs it). acc_bits defaults to 24.

Arithmetic per MAC (activity or static mode of synth/energy.py): the datapath's fused MAC
unit (accumulator register and clock included) per operation (asm-pe-row: per cycle / 16
lanes); its `multiply` share is the energy of the multiplier part synthesized alone,
`accumulate` is the rest (adder, register, clock). Multiplier parts: fp32-mul; int8's signed
`*`; the PoT product; for asm one select-shift-add lane (AsmLane, fed the bank's multiples of
x) plus 1/16 of the pre-computer bank (AsmPrecomputeBank); for approx the signed
sign-magnitude multiply of approx-mac alone (ApproxSignedMul). Operand streams in activity
mode: "gaussian" (default) draws N(0, 1) operands and encodes them in the datapath's format
(float32 bits; int8 at 3 sigma = 127 for int8, approx and the asm activations; PoT codes by
golden.pot.quantize; asm weights quantized onto the alphabet's set by golden.asm.quantize,
one power-of-two scale per tensor, then encoded, an independent weight per lane), "uniform"
uses uniform random port values (asm: uniform x and weights uniform over the representable
signed weights, since random encoded words are undefined).

Memory traffic (per matrix product; energies from synth.reference, Horowitz 45 nm):
  * DRAM: each of the product's three tensors (two operands, one result) crosses DRAM
    once: elements x operand bits / 64 accesses x DRAM_USED_PJ (1.3 nJ, the low end of
    the reference's 1.3-2.6 nJ per 64-bit access);
  * SRAM: operands stream from an on-chip buffer of `sram_bytes` (default 32 KB: 20 pJ
    per 64-bit access, sram_access_pj) into a pe_rows x pe_cols outer-product array
    (default 16 x 16, the mfmac-array organisation): each MAC reads 1/pe_rows +
    1/pe_cols operands; each tensor is also written into and read out of the buffer
    once (2 x elements).
  Tensors are stored in the datapath's operand format (fp32: 32 bits, int8: 8 bits,
  mfmac: 1 + exp_bits bits; ALS-POTQ quantizes weights, activations and errors alike;
  asm and approx: 8 bits, the asm weights' sign + 8-bit magnitude charged as 8 bits);
  the cost of requantizing results and of the weight update is not counted. Training runs
  all three products on the same datapath.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from golden import datapath as golden_datapath

from . import reference
from .net_spec import Layer, Net, conv_geometry, load_net, parse_net  # noqa: F401  (the API)

__all__ = ["Layer", "Net", "Datapath", "DATAPATHS", "datapath", "parse_spec", "load_net", "parse_net", "conv_geometry",
           "mac_energy",
           "net_energy", "reduction", "PAPER_ALS_POTQ_REDUCTION"]

PAPER_ALS_POTQ_REDUCTION = 95.8   # % of linear-layer training energy, the ALS-POTQ paper's own figure
APPROX_PREFIX = "approx:"
DATAPATH_SPECS = golden_datapath.ALL_SPECS


def parse_spec(spec) -> golden_datapath.Datapath:
    """A datapath spec -> golden.datapath.Datapath (a `lut:FILE.v` circuit is characterized by
    synth.characterize into its table); one-line ValueError otherwise."""
    return golden_datapath.parse(spec, table_loader=_verilog_table)


def _verilog_table(path: str, top: str | None):
    try:
        from .characterize import characterize_verilog
    except ImportError:
        raise ValueError("characterizing a Verilog multiplier needs synth/characterize.py, which this "
                         "checkout lacks") from None
    return characterize_verilog([path], top=top)["table"]


def _int_mul_verilog(bits: int):
    """The multiply of int-mac alone: the same signed `*` Yosys maps inside int-mac."""
    return (f"module int_mul(input signed [{bits - 1}:0] x, input signed [{bits - 1}:0] w,\n"
            f"               output signed [{2 * bits - 1}:0] p);\n  assign p = x * w;\nendmodule\n",
            "int_mul")


def _pot_product_verilog(exp_bits: int):
    """The PoT product of mfmac-pe alone (sign XOR, exponent adder, one-hot decode)."""
    from amaranth.back import verilog
    from rtl.pot import PotProduct
    return verilog.convert(PotProduct(exp_bits), name="pot_product", emit_src=False), "pot_product"


def _design_verilog(name: str, params: dict):
    from .energy import _design_verilog as cached
    text, top, _, _ = cached(name, params)
    return text, top


def _gaussian_fp32(rng, shape):
    from golden.fp32 import to_bits
    return to_bits(rng.standard_normal(shape)).astype(np.int64)


def _gaussian_int(bits):
    def gen(rng, shape):
        top = (1 << (bits - 1)) - 1
        return np.clip(np.round(rng.standard_normal(shape) * top / 3), -top - 1, top).astype(np.int64)
    return gen


def _gaussian_pot(exp_bits):
    def gen(rng, shape):
        from golden.pot import quantize
        codes, _ = quantize(rng.standard_normal(shape), exp_bits)   # one scale per tensor
        return codes.astype(np.int64)
    return gen


@dataclass(frozen=True)
class Datapath:
    """The energy recipe of one datapath: a fused MAC design and its multiplier part alone.

    mac: (registered design, params), ports x, w (+ valid, clear); op_count MACs per cycle.
    multiply: () -> (verilog_text, top) of the multiplier part, or (design, params).
    operand: (rng, shape) -> operand port values with N(0, 1) statistics in this format.
    mul_ports: the multiplier part's two operand port names.
    Optional, for datapaths whose weights are not plain operand words:
    weight: (rng, shape) -> weights (default: `operand`); may add trailing axes (one per lane).
    uniform: (rng, shape) -> (x, w) uniformly distributed over the valid operand values
      (default: None = synth.energy's uniform random port bits).
    mac_stream: (x, w) -> the MAC design's port stream (default {"x": x, "w": w}).
    multiply_parts: () -> [(verilog_text, top, weight, (x, w) -> stream)]: the multiply share
      as a weighted sum of units (default: `multiply` once, fed mul_ports from x and w).
    swap_multiplier: () -> (old_text, old_top, new_text, new_top): the MAC is `mac` with its
      unsigned multiplier `old` replaced by the circuit `new` (lut:FILE.v): both the MAC and
      the multiply share change by E(new) - E(old), each under uniform random operands.
    """
    name: str
    description: str
    operand_bits: int
    mac: tuple[str, dict]
    multiply: Callable[[], tuple[str, str]] | tuple[str, dict] | None
    operand: Callable
    mul_ports: tuple[str, str] = ("x", "w")
    weight: Callable | None = None
    uniform: Callable | None = None
    mac_stream: Callable | None = None
    multiply_parts: Callable | None = None
    swap_multiplier: Callable | None = None


# ---- asm: asm-pe-row, `lanes` lanes sharing one pre-computer bank --------------------------
ASM_ALPHABET = (1, 3, 5, 7)
ASM_LANES = 16
ASM_PARAMS = {"x_bits": 8, "w_bits": 8, "alphabet": ASM_ALPHABET, "lanes": ASM_LANES, "acc_bits": 24}


def _asm_weights(rng, shape, p=ASM_PARAMS):
    """N(0, 1) weights for every lane, quantized onto the alphabet's set (golden.asm.quantize,
    one power-of-two scale per tensor): signed integers, shape + (lanes,)."""
    from golden.asm import quantize
    q, _ = quantize(rng.standard_normal((*shape, p["lanes"])), p["alphabet"], p["w_bits"])
    return q.astype(np.int64)


def _asm_uniform(rng, shape, p=ASM_PARAMS):
    """x uniform over its x_bits, each lane's weight uniform over the representable signed weights."""
    from golden.asm import representable
    reps = representable(p["alphabet"], p["w_bits"])
    signed_w = np.concatenate([-reps[:0:-1], reps])
    half = 1 << (p["x_bits"] - 1)
    x = rng.integers(-half, half, shape)
    return x, signed_w[rng.integers(0, signed_w.size, (*shape, p["lanes"]))]


def _asm_encode(w, p=ASM_PARAMS):
    from golden.asm import encode
    return encode(w, p["alphabet"], p["w_bits"]).astype(np.int64)


def _asm_mac_stream(x, w, p=ASM_PARAMS):
    """x broadcast to the row; w = the lanes' encoded words concatenated (16 x 11 = 176 bits
    at the defaults: Python ints), lane i at bits i * encoded_bits."""
    from golden.asm import encoded_bits
    eb = encoded_bits(p["alphabet"], p["w_bits"])
    enc = _asm_encode(w, p)
    word = np.zeros(x.shape, dtype=object)
    for i in range(p["lanes"]):
        word = word + (enc[..., i].astype(object) << (i * eb))
    return {"x": x, "w": word}


def _asm_multiply_parts(p=ASM_PARAMS):
    """Multiply share of one MAC: one select-shift-add lane (AsmLane, fed the bank's multiples
    of x and lane 0's encoded weight) + 1/lanes of the pre-computer bank (AsmPrecomputeBank,
    fed x). Everything else in asm-pe-row (the sign-folding accumulator adder, registers,
    clock) is the accumulate share."""
    from amaranth.back import verilog

    from rtl.asm import AsmLane, AsmPrecomputeBank, bank_width
    xb, wb, alphabet = p["x_bits"], p["w_bits"], tuple(p["alphabet"])
    bank_v = verilog.convert(AsmPrecomputeBank(xb, alphabet), name="asm_bank", emit_src=False)
    lane_v = verilog.convert(AsmLane(xb, wb, alphabet), name="asm_lane", emit_src=False)
    bw = bank_width(xb)

    def lane_stream(x, w):
        x = x.reshape(-1).astype(object)
        bank = np.zeros(x.shape, dtype=object)
        for i, a in enumerate(alphabet):           # bank element i = a_i * x, bw-bit two's complement
            bank = bank + (((a * x) % (1 << bw)) << (i * bw))
        return {"bank": bank, "w": _asm_encode(w[..., 0], p).reshape(-1)}
    return [(lane_v, "asm_lane", 1.0, lane_stream),
            (bank_v, "asm_bank", 1.0 / p["lanes"], lambda x, w: {"x": x.reshape(-1)})]


# ---- approx:<family>[,name=value...] and lut:FILE.v: approx-mac, int8 operands --------------
def _approx_signed_mul_verilog(params: dict):
    """The multiply part of approx-mac alone: magnitudes, the family multiplier, conditional negate."""
    from amaranth.back import verilog
    from rtl.approx_mac import ApproxSignedMul
    own = {k: v for k, v in params.items() if k not in ("multiplier", "bits", "acc_bits")}
    unit = ApproxSignedMul(params["multiplier"], params["bits"], **own)
    return verilog.convert(unit, name="approx_signed_mul", emit_src=False), "approx_signed_mul"


def _lut_circuit(dp) -> tuple[str, str]:
    """(verilog text, top) of a lut:FILE.v datapath's unsigned 8x8 multiplier circuit."""
    import re
    path, top = Path(dp.params["file"]), dp.params["top"]
    text = path.read_text()
    if top is None:
        names = re.findall(r"^\s*module\s+([A-Za-z_][A-Za-z0-9_$]*)", text, re.M)
        if len(names) != 1:
            raise ValueError(f"datapath {dp.spec!r}: {path} defines {len(names)} modules "
                             f"({', '.join(names) or 'none'}); name the multiplier with top=NAME")
        top = names[0]
    return text, top


def _mul_array_verilog():
    return _design_verilog("mul-array", {"bits": 8})


def _recipe(dp: golden_datapath.Datapath) -> Datapath:
    """The energy recipe of a parsed datapath."""
    p = dp.params
    if dp.kind == "fp32":
        return Datapath(dp.spec, "IEEE binary32 MAC (fp32-mac; multiply = fp32-mul)", 32,
                        ("fp32-mac", {}), ("fp32-mul", {}), _gaussian_fp32, ("a", "b"))
    acc = p["acc_bits"]
    if dp.kind == "int8":
        return Datapath(dp.spec, f"exact signed 8-bit MAC, {acc}-bit accumulator (int-mac bits=8)", 8,
                        dp.mac_design, lambda: _int_mul_verilog(8), _gaussian_int(8))
    if dp.kind == "mfmac":
        e = p["exp_bits"]
        if p["accumulator"] != "serial":
            from .accumulators import mfmac_datapaths, spec
            if (e, acc) != (3, 24):
                raise ValueError(f"datapath {dp.spec!r}: the energy model prices accumulator={p['accumulator']} "
                                 f"at exp_bits=3, acc_bits=24 only")
            return mfmac_datapaths(Datapath, _pot_product_verilog, _gaussian_pot)[spec(p["accumulator"])]
        return Datapath(dp.spec, f"ALS-POTQ MF-MAC on {1 + e}-bit PoT codes (mfmac-pe exp_bits={e}, {acc}-bit acc)",
                        1 + e, dp.mac_design, lambda: _pot_product_verilog(e), _gaussian_pot(e))
    if dp.kind == "asm":
        ap = dict(dp.mac_design[1])
        alph = "{" + ",".join(map(str, ap["alphabet"])) + "}"
        return Datapath(dp.spec, f"ASM row, alphabet {alph}: {ap['lanes']} lanes share one pre-computer bank "
                                 f"(asm-pe-row x_bits={ap['x_bits']}, w_bits={ap['w_bits']}, {acc}-bit acc)",
                        max(ap["x_bits"], ap["w_bits"]), dp.mac_design, None, _gaussian_int(ap["x_bits"]),
                        weight=partial(_asm_weights, p=ap), uniform=partial(_asm_uniform, p=ap),
                        mac_stream=partial(_asm_mac_stream, p=ap), multiply_parts=partial(_asm_multiply_parts, p=ap))
    if dp.kind == "approx":
        mp = dp.mac_design[1]
        label = ",".join([p["family"]] + [f"{k}={int(v) if isinstance(v, bool) else v}"
                                          for k, v in dp.family_params.items()])
        return Datapath(dp.spec, f"signed 8-bit MAC on the {label} approximate multiplier (approx-mac, "
                                 f"sign-magnitude, {acc}-bit acc)", 8, dp.mac_design,
                        lambda: _approx_signed_mul_verilog(mp), _gaussian_int(8))
    # lut
    if Path(p["file"]).suffix not in (".v", ".sv"):
        raise ValueError(f"datapath {dp.spec!r}: a bare table has no circuit to price; energy needs the "
                         f"multiplier as Verilog (lut:FILE.v) - emulation runs tables as they are")
    shell = {"multiplier": "mul-array", "bits": 8, "acc_bits": acc}

    def swap():
        return (*_mul_array_verilog(), *_lut_circuit(dp))
    return Datapath(dp.spec, f"signed 8-bit MAC around the {p['file']} multiplier (approx-mac's sign-magnitude "
                             f"shell, {acc}-bit acc)", 8, ("approx-mac", shell),
                    lambda: _approx_signed_mul_verilog(shell), _gaussian_int(8), swap_multiplier=swap)


# recipes registered by name besides the specs golden.datapath parses (experiments, tests)
DATAPATHS: dict[str, Datapath] = {}
OPERANDS = ("gaussian", "uniform")
STREAM_LANES, STREAM_CYCLES = 256, 33


def datapath(spec) -> Datapath:
    """The energy recipe of a datapath spec (golden.datapath grammar) or of a name
    registered in DATAPATHS; one-line ValueError otherwise."""
    if isinstance(spec, str) and spec.strip() in DATAPATHS:
        return DATAPATHS[spec.strip()]
    return _recipe(parse_spec(spec))


def mac_energy(datapath_spec: str, mode: str = "activity", operands: str = "gaussian") -> dict:
    """Per-MAC energy of a datapath: {mac_pj, multiply_pj, accumulate_pj, mac_design, ...}."""
    from rtl.registry import all_designs, get_design

    from .energy import netlist_energy
    dp = datapath(datapath_spec)
    if operands not in OPERANDS:
        raise ValueError(f"operands must be one of {', '.join(OPERANDS)}, got {operands!r}")
    have = {d.name for d in all_designs()}
    needed = [dp.mac[0]] + ([dp.multiply[0]] if isinstance(dp.multiply, tuple) else [])
    for n in needed:
        if n not in have:
            raise ValueError(f"datapath {datapath_spec} needs design {n}, which is not registered")
    d = get_design(dp.mac[0])
    full = d.full_params(dp.mac[1])
    mac_text, mac_top = _design_verilog(dp.mac[0], full)
    if dp.multiply_parts is not None:
        parts = dp.multiply_parts()
    else:
        mul_text, mul_top = (_design_verilog(*dp.multiply) if isinstance(dp.multiply, tuple) else dp.multiply())
        p0, p1 = dp.mul_ports
        parts = [(mul_text, mul_top, 1.0, lambda x, w: {p0: x.reshape(-1), p1: w.reshape(-1)})]
    xs = ws = None
    if mode in ("activity", "timed"):         # the modes that simulate a stream
        rng = np.random.default_rng(45)
        shape = (STREAM_LANES, STREAM_CYCLES)
        if operands == "gaussian":
            xs = dp.operand(rng, shape)
            ws = (dp.weight or dp.operand)(rng, shape)
        elif dp.uniform is not None:
            xs, ws = dp.uniform(rng, shape)
    mac_stream = None
    if xs is not None:
        mac_stream = dp.mac_stream(xs, ws) if dp.mac_stream else {"x": xs, "w": ws}
    mac_e = netlist_energy(mac_text, mac_top, mode=mode, stream=mac_stream, ops_per_cycle=d.op_count(full))
    # the multiplier alone sees the same operands, one stream of consecutive cycles
    mul = [(weight, netlist_energy(text, top, mode=mode, stream=None if xs is None else feed(xs, ws)))
           for text, top, weight, feed in parts]
    mul_pj = math.fsum(wt * e["energy_pj"] for wt, e in mul)
    mac_pj, mac_tr = mac_e["energy_pj"], mac_e["transistors"]
    mul_tr = math.fsum(wt * e["transistors"] for wt, e in mul)
    extra = {}
    if dp.swap_multiplier is not None:      # lut:FILE.v: the circuit in place of the shell's multiplier
        old_text, old_top, new_text, new_top = dp.swap_multiplier()
        old = netlist_energy(old_text, old_top, mode=mode)
        new = netlist_energy(new_text, new_top, mode=mode)
        d_pj, d_tr = new["energy_pj"] - old["energy_pj"], new["transistors"] - old["transistors"]
        mac_pj, mul_pj, mac_tr, mul_tr = mac_pj + d_pj, mul_pj + d_pj, mac_tr + d_tr, mul_tr + d_tr
        extra = {"multiplier_circuit": new_top, "circuit_pj": new["energy_pj"]}
    return {"datapath": datapath_spec, "mode": mode, "operands": operands if mode in ("activity", "timed") else None,
            "mac_design": dp.mac[0], "mac_params": full,
            "mac_pj": mac_pj, "multiply_pj": mul_pj,
            "accumulate_pj": mac_pj - mul_pj,
            "mac_transistors": mac_tr,
            "multiply_transistors": mul_tr,
            "operand_bits": dp.operand_bits, **extra}


def _memory(layer: Layer, bits: int, mem: dict) -> tuple[float, float]:
    """(sram_pj, dram_pj) of one matrix product of `layer`."""
    tensors = layer.weights + layer.inputs + layer.outputs
    dram = tensors * bits / 64 * reference.DRAM_USED_PJ
    sram_bits = (layer.macs * (1 / mem["pe_rows"] + 1 / mem["pe_cols"]) + 2 * tensors) * bits
    sram = sram_bits / 64 * reference.sram_access_pj(mem["sram_bytes"], 64)
    return sram, dram


def net_energy(net: Net, datapath: str, training: bool = False, mode: str = "activity",
               operands: str = "gaussian") -> dict:
    """Energy of one inference (or one training step) of `net` on `datapath` (a spec of
    golden.datapath's grammar, or a name registered in DATAPATHS)."""
    per = mac_energy(datapath, mode, operands)
    fp32 = mac_energy("fp32", mode, operands) if any(layer.float for layer in net.layers) else None
    products = 3 if training else 1
    rows = []
    for layer in net.layers:
        n = layer.macs * products
        lp = fp32 if layer.float else per           # a product no datapath covers: float32
        sram, dram = _memory(layer, lp["operand_bits"], net.memory)
        sram, dram = sram * products, dram * products
        mul, acc = n * lp["multiply_pj"], n * lp["accumulate_pj"]
        rows.append({"name": layer.name, "kind": layer.kind, "shape": layer.shape, "macs": n,
                     "datapath": "fp32" if layer.float else datapath,
                     "multiply_pj": mul, "accumulate_pj": acc, "arithmetic_pj": mul + acc,
                     "sram_pj": sram, "dram_pj": dram, "memory_pj": sram + dram,
                     "energy_pj": mul + acc + sram + dram})

    def tot(k):
        return math.fsum(r[k] for r in rows)
    return {"net": net.name, "datapath": datapath, "training": training,
            "products_per_layer": products, "batch": net.batch, "memory_model": net.memory,
            "per_mac": per, "macs": sum(r["macs"] for r in rows),
            "energy_pj": tot("energy_pj"), "arithmetic_pj": tot("arithmetic_pj"),
            "multiply_pj": tot("multiply_pj"), "accumulate_pj": tot("accumulate_pj"),
            "memory_pj": tot("memory_pj"), "sram_pj": tot("sram_pj"), "dram_pj": tot("dram_pj"),
            "layers": rows}


def reduction(base: dict, new: dict) -> dict:
    """% energy saved by `new` against `base` (two net_energy results of the same net)."""
    return {"arithmetic_pct": 100.0 * (1 - new["arithmetic_pj"] / base["arithmetic_pj"]),
            "total_pct": 100.0 * (1 - new["energy_pj"] / base["energy_pj"])}
