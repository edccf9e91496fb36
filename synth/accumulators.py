"""Energy per MAC of the MF-MAC accumulators (golden/pot_acc.py) over a K-step dot product,
and their datapaths for the network model (`mfmac,accumulator=treeC`); the table against the
FP32 MAC is synth.network_comparison.accumulator_table.

One dot product of K steps on mfmac-pe with `accumulator`: ceil(K / C) clocks (clear with
the first, the last chunk padded with zero codes), then the next dot product's first clock
(clear), so the accumulator's return from its full value to the new one is paid too. The
operands are N(0, 1) draws quantized to PoT codes (golden.pot.quantize, one scale per
tensor), an independent dot product per lane. energy per MAC = energy per clock x clocks / K:
whatever a variant spends once per output (the clear, a final combine) is amortized over K.
"""
from __future__ import annotations

import numpy as np

from golden import pot, pot_acc

__all__ = ["K_VALUES", "dot_energy", "mfmac_datapaths", "spec"]

K_VALUES = (64, 256, 1024)
LANES = 256
SEED = 64


def spec(accumulator: str) -> str:
    """The datapath name of a variant: `mfmac` for serial, `mfmac,accumulator=treeC` otherwise."""
    pot_acc.check_accumulator(accumulator)
    return "mfmac" if accumulator == "serial" else f"mfmac,accumulator={accumulator}"


def _pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """(..., C) codes -> port words, element j at bits j*bits (Python ints past 62 bits)."""
    c = codes.shape[-1]
    if c * bits <= 62:
        return sum(codes[..., j].astype(np.int64) << (j * bits) for j in range(c))
    out = np.zeros(codes.shape[:-1], dtype=object)
    for j in range(c):
        out = out + (codes[..., j].astype(object) << (j * bits))
    return out


def dot_energy(accumulator: str, k: int, mode: str = "activity", exp_bits: int = 3,
               acc_bits: int = 24) -> dict:
    """Energy per MAC of mfmac-pe(accumulator) over K-step dot products (see the module doc)."""
    from .energy import _design_verilog, netlist_energy
    c = pot_acc.chunk(accumulator)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"K must be a positive integer, got {k!r}")
    rng = np.random.default_rng(SEED)
    x, _ = pot.quantize(rng.standard_normal((LANES, k)), exp_bits)
    w, _ = pot.quantize(rng.standard_normal((LANES, k)), exp_bits)
    xc, wc = pot_acc.to_chunks(x, c), pot_acc.to_chunks(w, c)             # (lanes, n, C)
    n = xc.shape[1]
    nxt = lambda a: np.concatenate([a, a[:, :1]], axis=1)                  # noqa: E731  next tile's first clock
    clear = np.zeros((LANES, n + 1), np.int64)
    clear[:, 0] = clear[:, n] = 1
    stream = {"x": _pack(nxt(xc), exp_bits + 1), "w": _pack(nxt(wc), exp_bits + 1),
              "valid": np.ones((LANES, n + 1), np.int64), "clear": clear}
    params = {"exp_bits": exp_bits, "acc_bits": acc_bits, "accumulator": accumulator}
    text, top, _, full = _design_verilog("mfmac-pe", params)
    e = netlist_energy(text, top, mode=mode, stream=stream)
    per_clock = e["energy_per_cycle_pj"]
    return {"accumulator": accumulator, "k": k, "mode": mode, "chunk": c, "clocks": n,
            "pj_per_mac": per_clock * n / k, "pj_per_clock": per_clock,
            "transistors": e["transistors"], "flip_flops": e["flip_flops"], "depth": e["depth"],
            "clock_pj_per_mac": e["clock_units_per_cycle"] * e["pj_per_unit"] * n / k, "params": full}


def mfmac_datapaths(Datapath, product_verilog, gaussian_pot) -> dict:
    """The network model's `mfmac,accumulator=treeC` datapaths (synth/network.py adds them):
    the MAC design is mfmac-pe with the tree, one operand draw per product (a trailing axis
    of C codes per clock), the multiply share one PoT product per MAC."""
    out = {}
    for acc in pot_acc.ACCUMULATORS[1:]:
        c = pot_acc.chunk(acc)

        def operand(rng, shape, c=c):
            return gaussian_pot(3)(rng, (*shape, c))

        def mac_stream(x, w):
            return {"x": _pack(x, 4), "w": _pack(w, 4)}
        name = spec(acc)
        out[name] = Datapath(
            name, f"ALS-POTQ MF-MAC on 4-bit PoT codes, {c} products per clock in sign-split one-hot "
                  f"trees and one 24-bit add (mfmac-pe accumulator={acc})", 4,
            ("mfmac-pe", {"exp_bits": 3, "acc_bits": 24, "accumulator": acc}), lambda: product_verilog(3),
            operand, mac_stream=mac_stream)
    return out
