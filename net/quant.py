"""The golden quantizers (golden.datapath.Datapath.quantize / values) in torch, on the tensor's
device: float tensor -> (int64 codes, float64 scale) with t ~= values(codes) * scale, equal code
for code and scale for scale to the NumPy definitions (tests/test_quant.py: random tensors, ties,
clipping, zeros, tiny and huge magnitudes, per-channel).

    quantize(dp, t, role="x", axis=None)       the golden quantizer (per tensor or per slice)
    quantize_calibrated(dp, t, amax, role)     the same with the scale of a tensor whose max |value|
                                               is `amax` (a calibrated observer's), t clipped to it
    scale_of(dp, amax, role)                   that scale alone
    values(dp, codes, role)                    integer value of each code (mfmac: +-2^(e-1))

Every step runs in float64 on the tensor's device, with the golden's operations: division and
round-half-even (integer codes), ldexp and log2 (PoT and the ASM alphabet's power-of-two scale);
torch.log2 and np.log2 agree on float64 (checked next to every rounding threshold by the tests;
`make gpu-check` repeats that on CUDA). Scales are tensors (0-d per tensor, or t's shape with 1
on every other axis), so nothing leaves the device; NaN or Inf in the input is refused.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .datapath import parse
from .distributed import sync_max

__all__ = ["quantize", "quantize_calibrated", "scale_of", "values", "dequantize", "check_finite"]


def check_finite(t: torch.Tensor, what: str) -> None:
    if t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{what}: cannot quantize a tensor holding NaN or Inf")


def _exp2(k: torch.Tensor) -> torch.Tensor:
    return torch.exp2(k.to(torch.float64))


def _ldexp(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """x * 2^k exactly (np.ldexp) for float64 x and integer k: two power-of-two steps so that
    2^k itself never overflows."""
    k1 = torch.div(k, 2, rounding_mode="floor")
    return x * _exp2(k1) * _exp2(k - k1)


@lru_cache(maxsize=None)
def _reps(alphabet: tuple, w_bits: int) -> np.ndarray:
    from golden.asm import representable
    return np.asarray(representable(alphabet, w_bits), np.float64)


def _reps_t(dp, device) -> torch.Tensor:
    return torch.as_tensor(_reps(dp.params["alphabet"], dp.params["w_bits"]), device=device)


def _amax(t: torch.Tensor, axis):
    if axis is None:
        return t.abs().amax() if t.numel() else torch.zeros((), dtype=torch.float64, device=t.device)
    dims = tuple(d for d in range(t.ndim) if d != axis)
    return t.abs().amax(dim=dims, keepdim=True) if dims else t.abs()


def _pot_k(dp, amax):
    top = (1 << dp.params["exp_bits"]) - 2
    pos = amax > 0
    k = torch.round(torch.log2(torch.where(pos, amax, torch.ones_like(amax)))).to(torch.int64) - top
    return torch.where(pos, k, torch.zeros_like(k))


def _asm_k(dp, amax):
    """golden.asm.quantize's k: the smallest with amax / 2^k <= the largest representable magnitude
    (log2 first, then corrected by exact comparisons)."""
    top = float(_reps(dp.params["alphabet"], dp.params["w_bits"])[-1])
    pos = amax > 0
    a = torch.where(pos, amax, torch.ones_like(amax))
    k = torch.ceil(torch.log2(a) - np.log2(top)).to(torch.int64)
    for _ in range(2):
        k = torch.where(_ldexp(a, -k) > top, k + 1, k)
    for _ in range(2):
        k = torch.where(_ldexp(a, -(k - 1)) <= top, k - 1, k)
    return torch.where(pos, k, torch.zeros_like(k))


def _int_hi(dp, role) -> int:
    return dp.code_range(role)[1]


def scale_of(dp, amax, role: str = "x") -> torch.Tensor:
    """The golden quantizer's scale of a tensor whose max |value| is amax (float64 tensor,
    any shape: one scale per element of amax)."""
    dp = parse(dp)
    amax = torch.as_tensor(amax, dtype=torch.float64)
    if dp.is_float:
        return torch.ones_like(amax)
    if dp.kind == "mfmac":
        return _exp2(_pot_k(dp, amax))
    if dp.kind == "asm" and role == "w":
        return _exp2(_asm_k(dp, amax))
    return torch.where(amax > 0, amax / _int_hi(dp, role), torch.ones_like(amax))


def _codes(dp, t, amax, role):
    """Codes of float64 t (|t| <= amax, broadcast) with the scale of amax; (codes, scale)."""
    if dp.kind == "mfmac":
        E = dp.params["exp_bits"]
        top = (1 << E) - 2
        k = _pot_k(dp, amax)
        x = _ldexp(t.abs(), -k)
        n = torch.round(torch.log2(torch.where(x > 0, x, torch.ones_like(x)))).clamp_(0, top).to(torch.int64)
        e = torch.where(x < 0.5, torch.zeros_like(n), n + 1)
        s = ((t < 0) & (e != 0)).to(torch.int64)
        return (s << E) | e, _exp2(k)
    if dp.kind == "asm" and role == "w":
        reps = _reps_t(dp, t.device)
        k = _asm_k(dp, amax)
        x = _ldexp(t.abs(), -k)
        hi = torch.searchsorted(reps, x.contiguous(), side="left").clamp_(0, reps.numel() - 1)
        up, down = reps[hi], reps[(hi - 1).clamp_(min=0)]
        mag = torch.where((up - x).abs() < (x - down).abs(), up, down).to(torch.int64)
        return torch.where(t < 0, -mag, mag), _exp2(k)
    hi = _int_hi(dp, role)
    scale = torch.where(amax > 0, amax / hi, torch.ones_like(amax))
    return torch.clamp(torch.round(t / scale), -hi, hi).to(torch.int64), scale


def quantize(dp, t: torch.Tensor, role: str = "x", axis: int | None = None, sync: bool | None = None):
    """golden Datapath.quantize in torch: (codes int64, scale float64 tensor) on t's device.
    axis None: one scale (0-d); an int: one per slice along it (t's shape, 1 elsewhere).
    sync (default: role "x", data-dependent): under a distributed training step the max |value|
    is the global batch's (net.distributed.sync_max); weights ("w") are the same on every process."""
    dp = parse(dp)
    if role not in ("x", "w"):
        raise ValueError(f"role must be 'x' or 'w', got {role!r}")
    t = torch.as_tensor(t)
    check_finite(t, f"datapath {dp.spec}")
    if dp.is_float:
        return t.to(torch.float32), torch.ones((), dtype=torch.float64, device=t.device)
    t = t.to(torch.float64)
    ax = None if axis is None else axis % max(t.ndim, 1)
    amax = _amax(t, ax)
    if (role == "x") if sync is None else sync:
        amax = sync_max(amax)
    return _codes(dp, t, amax, role)


def quantize_calibrated(dp, t: torch.Tensor, amax, role: str = "x"):
    """(codes, scale) of t with the per-tensor scale the golden quantizer gives a tensor whose max
    |value| is `amax` (t clipped to [-amax, amax] first): net.layers.quantize_activation's
    definition, on t's device. amax: a float or a 0-d tensor."""
    dp = parse(dp)
    t = torch.as_tensor(t)
    check_finite(t, f"datapath {dp.spec}")
    a = torch.as_tensor(amax, dtype=torch.float64, device=t.device)
    t = t.to(torch.float64)
    t = torch.minimum(torch.maximum(t, -a), a)
    return _codes(dp, t, a, role)


def values(dp, codes: torch.Tensor, role: str = "x") -> torch.Tensor:
    """Integer value of each code (golden Datapath.values): mfmac +-2^(e-1), others the code."""
    dp = parse(dp)
    if dp.is_float:
        return codes.to(torch.float32)
    if dp.kind != "mfmac":
        return codes.to(torch.int64)
    E = dp.params["exp_bits"]
    c = codes.to(torch.int64)
    e = c & ((1 << E) - 1)
    mag = torch.where(e == 0, torch.zeros_like(e), torch.ones_like(e) << (e - 1).clamp_(min=0))
    return torch.where(((c >> E) & 1) == 1, -mag, mag)


def dequantize(dp, codes: torch.Tensor, scale, role: str = "x") -> torch.Tensor:
    """values(codes) * scale as float32 (the products' operands: what the MAC multiplies)."""
    return (values(dp, codes, role).to(torch.float64) * scale).to(torch.float32)
