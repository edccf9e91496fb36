"""Layer and network energy: MAC counts of linear/conv layers x the per-MAC energy of a
synthesized datapath (synth/energy.py), plus a memory-traffic model from the 45 nm table.

Net file (JSON)::

    {"name": "resnet18", "batch": 1,
     "memory": {"sram_bytes": 32768, "pe_rows": 16, "pe_cols": 16},      (optional)
     "layers": [
       {"kind": "conv", "name": "conv1", "in_ch": 3, "out_ch": 64, "kernel": 7,
        "H": 224, "W": 224, "stride": 2, "padding": 3, "repeat": 1},
       {"kind": "linear", "name": "fc", "in": 512, "out": 1000, "tokens": 1, "repeat": 1}]}

  linear: y = W x for `tokens` vectors: MACs = in x out x tokens x batch.
  conv:   kernel (int or [kh, kw]), stride and padding (default 1 and 0) give
          Ho = (H + 2 padding - kh) // stride + 1 (same for Wo); MACs =
          out_ch x in_ch x kh x kw x Ho x Wo x batch. No groups.
  repeat: the layer occurs that many times (identical blocks, attention heads).
Inference = one matrix product per layer (forward); training = three, each with the
forward's MAC count: forward Y = W X, backward-data dX = W^T dY, weight-gradient
dW = dY X^T.

Datapaths: fp32 (fp32-mac), int8 (int-mac bits=8), mfmac (mfmac-pe exp_bits=3), asm
(asm-pe-row x_bits = w_bits = 8, alphabet {1,3,5,7}, 16 lanes sharing one pre-computer bank,
24-bit accumulators) and `approx:FAMILY[,NAME=VALUE...]` (approx-mac bits=8, acc_bits=24 on
the named unsigned multiplier family of rtl/approx.py with its own parameters, e.g.
approx:mul-drum,k=6; the family's parameters not given take approx-mac's defaults).

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

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import reference

__all__ = ["Layer", "Net", "Datapath", "DATAPATHS", "datapath", "approx_datapath", "load_net", "parse_net",
           "mac_energy",
           "net_energy", "reduction", "PAPER_ALS_POTQ_REDUCTION"]

PAPER_ALS_POTQ_REDUCTION = 95.8   # % of linear-layer training energy, the ALS-POTQ paper's own figure
MEMORY_DEFAULTS = {"sram_bytes": 32 * 1024, "pe_rows": 16, "pe_cols": 16}

_KINDS = {
    "linear": {"required": ("in", "out"), "optional": {"tokens": 1, "repeat": 1}},
    "conv": {"required": ("in_ch", "out_ch", "kernel", "H", "W"),
             "optional": {"stride": 1, "padding": 0, "repeat": 1}},
}
_NON_SHAPE = {"kind", "name"}


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str
    shape: str          # human-readable
    macs: int           # per matrix product, all repeats and the batch included
    weights: int        # elements (all repeats)
    inputs: int
    outputs: int


@dataclass
class Net:
    name: str
    layers: list[Layer]
    batch: int = 1
    memory: dict = field(default_factory=lambda: dict(MEMORY_DEFAULTS))

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


def _pos_int(where: str, key: str, v, zero_ok: bool = False) -> int:
    lo = 0 if zero_ok else 1
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        want = "a non-negative integer" if zero_ok else "a positive integer"
        raise ValueError(f"{where}: {key} must be {want}, got {json.dumps(v)}")
    return v


def _layer(i: int, spec, batch: int) -> Layer:
    if not isinstance(spec, dict):
        raise ValueError(f"layer {i}: must be a JSON object, got {json.dumps(spec)[:40]}")
    name = str(spec.get("name", f"layer{i}"))
    where = f"layer {i} ({name})"
    kind = spec.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"{where}: unknown kind {json.dumps(kind)} (kinds: {', '.join(sorted(_KINDS))})")
    rule = _KINDS[kind]
    for k in spec:
        if k not in _NON_SHAPE and k not in rule["required"] and k not in rule["optional"]:
            allowed = ", ".join(list(rule["required"]) + list(rule["optional"]))
            raise ValueError(f"{where}: unknown key {k!r} for a {kind} layer (keys: {allowed})")
    for k in rule["required"]:
        if k not in spec:
            raise ValueError(f"{where}: {kind} layer needs {k!r}")
    v = {**rule["optional"], **{k: spec[k] for k in spec if k not in _NON_SHAPE}}
    rep = _pos_int(where, "repeat", v["repeat"])
    if kind == "linear":
        n_in, n_out, tok = (_pos_int(where, k, v[k]) for k in ("in", "out", "tokens"))
        t = tok * batch
        return Layer(name, kind, f"{n_in}->{n_out} x{tok} tokens" + (f" x{rep}" if rep > 1 else ""),
                     rep * n_in * n_out * t, rep * n_in * n_out, rep * n_in * t, rep * n_out * t)
    cin, cout, H, W = (_pos_int(where, k, v[k]) for k in ("in_ch", "out_ch", "H", "W"))
    kern = v["kernel"]
    if isinstance(kern, list) and len(kern) == 2:
        kh, kw = (_pos_int(where, "kernel", x) for x in kern)
    elif isinstance(kern, list):
        raise ValueError(f"{where}: kernel must be an integer or [kh, kw], got {json.dumps(kern)}")
    else:
        kh = kw = _pos_int(where, "kernel", kern)
    stride = _pos_int(where, "stride", v["stride"])
    pad = _pos_int(where, "padding", v["padding"], zero_ok=True)
    Ho, Wo = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"{where}: kernel {kh}x{kw} does not fit the {H}x{W} input with padding {pad}")
    return Layer(name, kind, f"{cin}->{cout} k{kh}x{kw} s{stride} {H}x{W}->{Ho}x{Wo}" + (f" x{rep}" if rep > 1 else ""),
                 rep * cout * cin * kh * kw * Ho * Wo * batch, rep * cout * cin * kh * kw,
                 rep * cin * H * W * batch, rep * cout * Ho * Wo * batch)


def parse_net(obj, source: str = "net") -> Net:
    """Validate a net description (the JSON object) into a Net; one-line ValueError otherwise."""
    try:
        if not isinstance(obj, dict):
            raise ValueError("the top level must be a JSON object with a \"layers\" list")
        for k in obj:
            if k not in ("name", "description", "batch", "memory", "layers"):
                raise ValueError(f"unknown key {k!r} (keys: name, description, batch, memory, layers)")
        layers = obj.get("layers")
        if not isinstance(layers, list) or not layers:
            raise ValueError("\"layers\" must be a non-empty list")
        batch = _pos_int("net", "batch", obj.get("batch", 1))
        mem = dict(MEMORY_DEFAULTS)
        m = obj.get("memory", {})
        if not isinstance(m, dict):
            raise ValueError("\"memory\" must be an object")
        for k, val in m.items():
            if k not in MEMORY_DEFAULTS:
                raise ValueError(f"memory: unknown key {k!r} (keys: {', '.join(MEMORY_DEFAULTS)})")
            mem[k] = _pos_int("memory", k, val)
        return Net(str(obj.get("name", source)), [_layer(i, s, batch) for i, s in enumerate(layers)],
                   batch, mem)
    except ValueError as e:
        raise ValueError(f"net file {source}: {e}") from None


def load_net(path) -> Net:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"net file {path} does not exist")
    try:
        obj = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"net file {path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"net file {path}: not a text file") from None
    return parse_net(obj, str(path))


# ---- datapaths --------------------------------------------------------------------------
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
    """How to get one MAC's energy: a fused MAC design and its multiplier part alone.

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


# ---- asm: asm-pe-row, 16 lanes sharing one pre-computer bank --------------------------------
ASM_ALPHABET = (1, 3, 5, 7)
ASM_LANES = 16
ASM_PARAMS = {"x_bits": 8, "w_bits": 8, "alphabet": ASM_ALPHABET, "lanes": ASM_LANES, "acc_bits": 24}


def _asm_weights(rng, shape):
    """N(0, 1) weights for every lane, quantized onto the alphabet's set (golden.asm.quantize,
    one power-of-two scale per tensor): signed integers, shape + (lanes,)."""
    from golden.asm import quantize
    q, _ = quantize(rng.standard_normal((*shape, ASM_LANES)), ASM_ALPHABET, ASM_PARAMS["w_bits"])
    return q.astype(np.int64)


def _asm_uniform(rng, shape):
    """x uniform over int8, each lane's weight uniform over the representable signed weights."""
    from golden.asm import representable
    reps = representable(ASM_ALPHABET, ASM_PARAMS["w_bits"])
    signed_w = np.concatenate([-reps[:0:-1], reps])
    x = rng.integers(-128, 128, shape)
    return x, signed_w[rng.integers(0, signed_w.size, (*shape, ASM_LANES))]


def _asm_encode(w):
    from golden.asm import encode
    return encode(w, ASM_ALPHABET, ASM_PARAMS["w_bits"]).astype(np.int64)


def _asm_mac_stream(x, w):
    """x broadcast to the row; w = the 16 lanes' encoded words concatenated (16 x 11 = 176 bits:
    Python ints), lane i at bits i * encoded_bits."""
    from golden.asm import encoded_bits
    eb = encoded_bits(ASM_ALPHABET, ASM_PARAMS["w_bits"])
    enc = _asm_encode(w)
    word = np.zeros(x.shape, dtype=object)
    for i in range(ASM_LANES):
        word = word + (enc[..., i].astype(object) << (i * eb))
    return {"x": x, "w": word}


def _asm_multiply_parts():
    """Multiply share of one MAC: one select-shift-add lane (AsmLane, fed the bank's multiples
    of x and lane 0's encoded weight) + 1/lanes of the pre-computer bank (AsmPrecomputeBank,
    fed x). Everything else in asm-pe-row (the sign-folding accumulator adder, registers,
    clock) is the accumulate share."""
    from amaranth.back import verilog

    from rtl.asm import AsmLane, AsmPrecomputeBank, bank_width
    xb, wb = ASM_PARAMS["x_bits"], ASM_PARAMS["w_bits"]
    bank_v = verilog.convert(AsmPrecomputeBank(xb, ASM_ALPHABET), name="asm_bank", emit_src=False)
    lane_v = verilog.convert(AsmLane(xb, wb, ASM_ALPHABET), name="asm_lane", emit_src=False)
    bw = bank_width(xb)

    def lane_stream(x, w):
        x = x.reshape(-1).astype(object)
        bank = np.zeros(x.shape, dtype=object)
        for i, a in enumerate(ASM_ALPHABET):       # bank element i = a_i * x, bw-bit two's complement
            bank = bank + (((a * x) % (1 << bw)) << (i * bw))
        return {"bank": bank, "w": _asm_encode(w[..., 0]).reshape(-1)}
    return [(lane_v, "asm_lane", 1.0, lane_stream),
            (bank_v, "asm_bank", 1.0 / ASM_LANES, lambda x, w: {"x": x.reshape(-1)})]


# ---- approx:<family>[,name=value...]: approx-mac, int8 operands --------------------------
APPROX_PREFIX = "approx:"
APPROX_FIXED = {"bits": 8, "acc_bits": 24}


def _approx_signed_mul_verilog(params: dict):
    """The multiply part of approx-mac alone: magnitudes, the family multiplier, conditional negate."""
    from amaranth.back import verilog
    from rtl.approx_mac import ApproxSignedMul
    own = {k: v for k, v in params.items() if k not in ("multiplier", "bits", "acc_bits")}
    unit = ApproxSignedMul(params["multiplier"], params["bits"], **own)
    return verilog.convert(unit, name="approx_signed_mul", emit_src=False), "approx_signed_mul"


def approx_datapath(spec: str) -> Datapath:
    """`approx:FAMILY[,NAME=VALUE...]` -> the approx-mac datapath; one-line ValueError otherwise."""
    from rtl.registry import get_design, parse_params
    body = spec[len(APPROX_PREFIX):]
    family, *items = [t.strip() for t in body.split(",")]
    try:
        if not family:
            raise ValueError("needs a multiplier family after 'approx:'")
        from golden.approx_mac import FAMILY_PARAMS, family_params
        if family not in FAMILY_PARAMS:
            raise ValueError(f"unknown multiplier family {family!r} (families: {', '.join(FAMILY_PARAMS)})")
        d = get_design("approx-mac")
        for it in items:
            name, sep, _ = it.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"expected NAME=VALUE after the family, got {it!r}")
            name = name.strip()
            if name in ("multiplier", *APPROX_FIXED):
                raise ValueError(f"{name} is fixed by the datapath (int8 operands: multiplier from the "
                                 f"family name, bits=8, acc_bits=24)")
        given = parse_params(d, items)
        for name in given:
            if name not in family_params(family, given):
                takes = ", ".join(FAMILY_PARAMS[family]) or "none"
                raise ValueError(f"{name} does not apply to multiplier {family} (its parameters: {takes})")
        params = d.full_params({"multiplier": family, **given, **APPROX_FIXED})
        unit = d.build(params)                   # the family's own range checks
        unit._MustUse__silence = True            # built only to validate
    except (ValueError, TypeError) as e:
        raise ValueError(f"datapath {spec!r}: {e}") from None
    own = {k: params[k] for k in FAMILY_PARAMS[family]}
    label = ",".join([family] + [f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in own.items()])
    return Datapath(spec, f"signed 8-bit MAC on the {label} approximate multiplier (approx-mac, sign-magnitude, "
                          "24-bit acc)", 8, ("approx-mac", params), lambda: _approx_signed_mul_verilog(params),
                    _gaussian_int(8))


DATAPATHS: dict[str, Datapath] = {
    "fp32": Datapath("fp32", "IEEE binary32 MAC (fp32-mac; multiply = fp32-mul)", 32,
                     ("fp32-mac", {}), ("fp32-mul", {}), _gaussian_fp32, ("a", "b")),
    "int8": Datapath("int8", "exact signed 8-bit MAC, 24-bit accumulator (int-mac bits=8)", 8,
                     ("int-mac", {"bits": 8, "acc_bits": 24}), lambda: _int_mul_verilog(8),
                     _gaussian_int(8)),
    "mfmac": Datapath("mfmac", "ALS-POTQ MF-MAC on 4-bit PoT codes (mfmac-pe exp_bits=3, 24-bit acc)", 4,
                      ("mfmac-pe", {"exp_bits": 3, "acc_bits": 24}), lambda: _pot_product_verilog(3),
                      _gaussian_pot(3)),
    "asm": Datapath("asm", "ASM row, alphabet {1,3,5,7}: 16 lanes share one pre-computer bank (asm-pe-row "
                           "x_bits=w_bits=8, 24-bit acc)", 8,
                    ("asm-pe-row", ASM_PARAMS), None, _gaussian_int(8), weight=_asm_weights,
                    uniform=_asm_uniform, mac_stream=_asm_mac_stream, multiply_parts=_asm_multiply_parts),
}
OPERANDS = ("gaussian", "uniform")
STREAM_LANES, STREAM_CYCLES = 256, 33


def datapath(spec: str) -> Datapath:
    """A datapath by name (DATAPATHS) or by an `approx:FAMILY[,NAME=VALUE...]` spec."""
    if isinstance(spec, str) and spec.startswith(APPROX_PREFIX):
        return approx_datapath(spec)
    if spec not in DATAPATHS:
        raise ValueError(f"unknown datapath {spec!r} (datapaths: {', '.join(DATAPATHS)}, "
                         f"{APPROX_PREFIX}FAMILY[,NAME=VALUE...])")
    return DATAPATHS[spec]


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
    if mode == "activity":
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
    return {"datapath": datapath_spec, "mode": mode, "operands": operands if mode == "activity" else None,
            "mac_design": dp.mac[0], "mac_params": full,
            "mac_pj": mac_e["energy_pj"], "multiply_pj": mul_pj,
            "accumulate_pj": mac_e["energy_pj"] - mul_pj,
            "mac_transistors": mac_e["transistors"],
            "multiply_transistors": math.fsum(wt * e["transistors"] for wt, e in mul),
            "operand_bits": dp.operand_bits}


def _memory(layer: Layer, bits: int, mem: dict) -> tuple[float, float]:
    """(sram_pj, dram_pj) of one matrix product of `layer`."""
    tensors = layer.weights + layer.inputs + layer.outputs
    dram = tensors * bits / 64 * reference.DRAM_USED_PJ
    sram_bits = (layer.macs * (1 / mem["pe_rows"] + 1 / mem["pe_cols"]) + 2 * tensors) * bits
    sram = sram_bits / 64 * reference.sram_access_pj(mem["sram_bytes"], 64)
    return sram, dram


def net_energy(net: Net, datapath: str, training: bool = False, mode: str = "activity",
               operands: str = "gaussian") -> dict:
    """Energy of one inference (or one training step) of `net` on `datapath` (a name of
    DATAPATHS or an `approx:FAMILY[,NAME=VALUE...]` spec)."""
    per = mac_energy(datapath, mode, operands)
    products = 3 if training else 1
    rows = []
    for layer in net.layers:
        n = layer.macs * products
        sram, dram = _memory(layer, per["operand_bits"], net.memory)
        sram, dram = sram * products, dram * products
        mul, acc = n * per["multiply_pj"], n * per["accumulate_pj"]
        rows.append({"name": layer.name, "kind": layer.kind, "shape": layer.shape, "macs": n,
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
