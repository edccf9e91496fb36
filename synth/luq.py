"""Energy of ALS-POTQ's stochastic error quantizer (rtl/luq.py's `luq-quant`, LUQ) per quantized
element, and per training step of a network.

Per element: the unit with its LFSR (rng=lfsr, one element and one fresh random word per clock)
synthesized and simulated in activity mode (synth/energy.py) on an error-like stream: each lane a
tensor of Gaussian errors at the accumulator's width (in_bits, sigma 2^(in_bits-12)), kmax the
lane's ceil(log2 max|x|) (the scale every element of a tensor shares), valid high.

Per training step: every product's output error is quantized once, so a layer adds its output
elements (batch and repeats included, synth.network.Layer.outputs) quantizations; the loss
gradient entering the last layer is one of them. The max pass that finds kmax is the same per
tensor reduction every adaptive scale already needs and is not priced here.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["QUANTIZER_PARAMS", "quantizer_energy", "net_quantizer_energy"]

QUANTIZER_PARAMS = {"in_bits": 24, "rand_bits": 16, "rng": "lfsr", "lfsr_bits": 24}
_LANES, _CYCLES = 1024, 33


def _stream(in_bits: int) -> dict:
    rng = np.random.default_rng(45)
    sigma = 2.0 ** max(in_bits - 12, 0)
    lim = (1 << (in_bits - 1)) - 1
    x = np.clip(np.round(rng.standard_normal((_LANES, _CYCLES)) * sigma), -lim, lim).astype(np.int64)
    amax = np.maximum(np.abs(x).max(axis=1, keepdims=True), 1)
    kmax = np.ceil(np.log2(amax)).astype(np.int64) * np.ones((1, _CYCLES), np.int64)
    return {"x": x, "kmax": kmax, "valid": np.ones_like(x)}


def quantizer_energy(exp_bits: int = 3, mode: str = "activity", **params) -> dict:
    """{energy_pj (per quantized element), transistors, design, params} of luq-quant."""
    from .energy import design_energy
    p = {**QUANTIZER_PARAMS, **params, "exp_bits": exp_bits}
    e = design_energy("luq-quant", p, mode=mode, stream=_stream(p["in_bits"]) if mode != "static" else None)
    return {"energy_pj": e["energy_pj"], "transistors": e["transistors"], "design": "luq-quant", "params": e["params"],
            "mode": mode}


def net_quantizer_energy(net, exp_bits: int = 3, mode: str = "activity") -> dict:
    """Per training step of `net` (synth.network.Net at its batch): {elements, per_element_pj,
    energy_pj, layers: {name: elements}}."""
    per = quantizer_energy(exp_bits, mode)
    layers = {layer.name: layer.outputs for layer in net.layers}
    n = sum(layers.values())
    return {"elements": n, "per_element_pj": per["energy_pj"], "energy_pj": math.fsum([n * per["energy_pj"]]),
            "design": per["design"], "params": per["params"], "layers": layers}
