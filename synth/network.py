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

Arithmetic per MAC (activity or static mode of synth/energy.py): the datapath's fused MAC
unit (accumulator register and clock included) per operation; its `multiply` share is the
energy of the multiplier part synthesized alone, `accumulate` is the rest (adder, register,
clock). Operand streams in activity mode: "gaussian" (default) draws N(0, 1) operands
and encodes them in the datapath's format (float32 bits; int8 at 3 sigma = 127; PoT codes
by golden.pot.quantize), "uniform" uses uniform random port values.

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
  mfmac: 1 + exp_bits bits; ALS-POTQ quantizes weights, activations and errors alike);
  the cost of requantizing results and of the weight update is not counted.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import reference

__all__ = ["Layer", "Net", "Datapath", "DATAPATHS", "load_net", "parse_net", "mac_energy",
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
    """
    name: str
    description: str
    operand_bits: int
    mac: tuple[str, dict]
    multiply: Callable[[], tuple[str, str]] | tuple[str, dict]
    operand: Callable
    mul_ports: tuple[str, str] = ("x", "w")


DATAPATHS: dict[str, Datapath] = {
    "fp32": Datapath("fp32", "IEEE binary32 MAC (fp32-mac; multiply = fp32-mul)", 32,
                     ("fp32-mac", {}), ("fp32-mul", {}), _gaussian_fp32, ("a", "b")),
    "int8": Datapath("int8", "exact signed 8-bit MAC, 24-bit accumulator (int-mac bits=8)", 8,
                     ("int-mac", {"bits": 8, "acc_bits": 24}), lambda: _int_mul_verilog(8),
                     _gaussian_int(8)),
    "mfmac": Datapath("mfmac", "ALS-POTQ MF-MAC on 4-bit PoT codes (mfmac-pe exp_bits=3, 24-bit acc)", 4,
                      ("mfmac-pe", {"exp_bits": 3, "acc_bits": 24}), lambda: _pot_product_verilog(3),
                      _gaussian_pot(3)),
}
OPERANDS = ("gaussian", "uniform")
STREAM_LANES, STREAM_CYCLES = 256, 33


def mac_energy(datapath: str, mode: str = "activity", operands: str = "gaussian") -> dict:
    """Per-MAC energy of `datapath`: {mac_pj, multiply_pj, accumulate_pj, mac_design, ...}."""
    from rtl.registry import all_designs, get_design

    from .energy import netlist_energy
    if datapath not in DATAPATHS:
        raise ValueError(f"unknown datapath {datapath!r} (datapaths: {', '.join(DATAPATHS)})")
    if operands not in OPERANDS:
        raise ValueError(f"operands must be one of {', '.join(OPERANDS)}, got {operands!r}")
    dp = DATAPATHS[datapath]
    have = {d.name for d in all_designs()}
    needed = [dp.mac[0]] + ([dp.multiply[0]] if isinstance(dp.multiply, tuple) else [])
    for n in needed:
        if n not in have:
            raise ValueError(f"datapath {datapath} needs design {n}, which is not registered")
    d = get_design(dp.mac[0])
    full = d.full_params(dp.mac[1])
    mac_text, mac_top = _design_verilog(dp.mac[0], full)
    mul_text, mul_top = (_design_verilog(*dp.multiply) if isinstance(dp.multiply, tuple) else dp.multiply())
    mac_stream = mul_stream = None
    if mode == "activity" and operands == "gaussian":
        rng = np.random.default_rng(45)
        xs = dp.operand(rng, (STREAM_LANES, STREAM_CYCLES))
        ws = dp.operand(rng, (STREAM_LANES, STREAM_CYCLES))
        mac_stream = {"x": xs, "w": ws}
        # the multiplier alone sees the same operands, one stream of consecutive cycles
        mul_stream = {dp.mul_ports[0]: xs.reshape(-1), dp.mul_ports[1]: ws.reshape(-1)}
    mac_e = netlist_energy(mac_text, mac_top, mode=mode, stream=mac_stream, ops_per_cycle=d.op_count(full))
    mul_e = netlist_energy(mul_text, mul_top, mode=mode, stream=mul_stream)
    return {"datapath": datapath, "mode": mode, "operands": operands if mode == "activity" else None,
            "mac_design": dp.mac[0], "mac_params": full,
            "mac_pj": mac_e["energy_pj"], "multiply_pj": mul_e["energy_pj"],
            "accumulate_pj": mac_e["energy_pj"] - mul_e["energy_pj"],
            "mac_transistors": mac_e["transistors"], "multiply_transistors": mul_e["transistors"],
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
    """Energy of one inference (or one training step) of `net` on `datapath`."""
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
