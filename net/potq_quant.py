"""ALS-POTQ's quantizers on torch tensors (any device, no host round trip): float tensor -> PoT
codes (golden/pot.py's layout, int64) and the power-of-two scale exponent k, each equal to its
golden model on the same input (tests/test_potq_luq.py):

    pot_codes(t, E, "log")     golden.pot.quantize: k = round(log2 max) - top, log-domain nearest
    pot_codes(t, E, "linear")  golden.luq.nearest: linear-domain nearest (threshold 1.5 * 2^n)
    sr_codes(t, E, r, R, k)    stochastic rounding in the linear domain with underflow, given
                               R-bit random words r (golden.luq.luq_fixed's rule on floats):
        scale "luq"   k = golden.luq.luq_scale (ceil: nothing clipped)  -> golden.luq.luq
        scale "log"   k = golden.pot.quantize's (the top may clip: magnitudes past the top
                      power keep the top code) -> the former err_rounding="stochastic"

k is a tensor (0-d per tensor; per slice with `axis`) so a step never waits on the host. Under a
distributed step (net.distributed) a per-tensor activation or error max is the global batch's
(sync=True); the random words are drawn per process, so stochastic errors there are not the
single-process run's. Every
element is split exactly, u = 2^n (1 + f), by frexp (never a rounded log2): the comparisons are
the golden ones, bit for bit, on float32 inputs.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from golden import pot

from .distributed import sync_max

__all__ = ["ROUNDINGS", "ERR_ROUNDINGS", "pot_codes", "pot_values", "sr_codes", "scale_exp", "code_values", "recode_table", "lookup",
           "random_words", "stochastic_codes"]

ROUNDINGS = ("log", "linear", "fp32")         # the forward quantizers (fp32: none, the loss split's error half)
ERR_ROUNDINGS = ("nearest", "stochastic", "luq")
# the smallest float32 above sqrt(2) (float32(sqrt(2)) itself lies below it: golden.pot rounds that
# value down, log2 of it being under 1/2), so m >= _SQRT2_F32 <=> m > sqrt(2) on float32 inputs
_SQRT2_F32 = float(np.nextafter(np.float32(math.sqrt(2.0)), np.float32(np.inf)))


def _split(u: torch.Tensor):
    """u > 0 -> (n, 1 + f) with u = 2^n (1 + f), 1 + f in [1, 2), exactly."""
    m, e = torch.frexp(u)
    return e.to(torch.int64) - 1, m * 2.0


def _amax(t: torch.Tensor, axis, sync: bool = False):
    a = t                                              # already |t|
    if axis is None:
        m = a.amax() if a.numel() else torch.zeros((), dtype=t.dtype, device=t.device)
        return sync_max(m) if sync else m
    dims = tuple(d for d in range(t.ndim) if d != axis % t.ndim)
    return a.amax(dim=dims, keepdim=True)


def scale_exp(amax: torch.Tensor, exp_bits: int, how: str) -> torch.Tensor:
    """The per-tensor exponent k (int64 tensor of amax's shape; 0 where amax == 0):
    "log"  round(log2 amax) - top (golden.pot.quantize), "luq" ceil(log2 amax) - top,
    "linear" the exponent of amax's nearest power in the linear domain - top."""
    top = pot.max_exp(exp_bits)
    pos = amax > 0
    n, m = _split(torch.where(pos, amax, torch.ones_like(amax)))
    if how == "log":
        k = n + (m >= _SQRT2_F32 if amax.dtype == torch.float32 else m >= math.sqrt(2.0))
    elif how == "luq":
        k = n + (m > 1.0)
    elif how == "linear":
        k = n + (m >= 1.5)
    else:
        raise ValueError(f"scale must be log, luq or linear, got {how!r}")
    return torch.where(pos, k.to(torch.int64) - top, torch.zeros_like(k, dtype=torch.int64))


def _encode(neg, e, exp_bits):
    """uint8 codes: the exponent field e, the sign bit on nonzero fields."""
    e = e.to(torch.uint8)
    return e | ((neg & (e != 0)).to(torch.uint8) << exp_bits)


def _exponents(a, k):
    """|t| = m 2^ex (frexp, m in [0.5, 1), exact for every float): (2m in [1, 2), n with
    |t| / 2^k = 2^n * 2m); zeros give m = 0."""
    m, ex = torch.frexp(a)
    return m, ex - 1 - k.to(torch.int32)


def pot_codes(t: torch.Tensor, exp_bits: int = 3, rounding: str = "log", axis: int | None = None,
              sync: bool = False):
    """(codes, k) by nearest rounding ("log": golden.pot.quantize; "linear": golden.luq.nearest);
    axis: one scale per slice along it (k then has t's ndim, size 1 elsewhere). Codes are uint8.
    sync: a per-tensor max is the global batch's under a distributed step (net.distributed)."""
    top = pot.max_exp(exp_bits)
    a = t.abs()
    k = scale_exp(_amax(a, axis, sync), exp_bits, "log" if rounding == "log" else "linear")
    m, n = _exponents(a, k)
    thr = (_SQRT2_F32 if t.dtype == torch.float32 else math.sqrt(2.0)) if rounding == "log" else 1.5
    e = (n + (m >= thr / 2)).clamp_(0, top).add_(1)             # 2m >= thr: the upper power
    e = torch.where((n >= -1) & (m > 0), e, 0)                 # u = |t| / 2^k < 1/2: the zero code
    return _encode(t < 0, e, exp_bits), k


_MANT = {"log": int(np.float32(_SQRT2_F32).view(np.int32)) & 0x7FFFFF, "linear": 0x400000}
_K_MIN = -100            # the bit path's exponent range: every nonzero code's input is a normal float32


def _host_scale_exp(amax: float, exp_bits: int, rounding: str) -> int:
    """scale_exp(amax) for one float32 amax (a Python float: exact) on the host: no tensor ops."""
    if not amax > 0 or math.isinf(amax):
        return int(scale_exp(torch.tensor(amax, dtype=torch.float32), exp_bits, rounding))
    m, e = math.frexp(amax)                           # amax = m 2^e, m in [0.5, 1)
    return e - 1 + (2 * m >= (_SQRT2_F32 if rounding == "log" else 1.5)) - pot.max_exp(exp_bits)


def pot_values(t: torch.Tensor, exp_bits: int = 3, rounding: str = "log", sync: bool = False):
    """(values, k): pot_codes(t, exp_bits, rounding, sync=sync) (per tensor) as the codes' float32
    integer values (+-2^(e-1), 0) - net/potq_values.py's operands. On a float32 CPU tensor with
    k >= -100, by the float's bits: u = |t| / 2^k (exact where u >= 1/2), whose mantissa plus
    (2^23 - the threshold's mantissa) carries into the exponent exactly when pot_codes rounds up,
    so clearing the mantissa leaves the rounded power r; the value is r clamped to [1, 2^top], 0
    where u < 1/2, with t's sign. Otherwise pot_codes and a lookup (tests/test_potq_values.py: equal on edge cases)."""
    if t.dtype != torch.float32 or t.device.type != "cpu" or rounding not in _MANT:
        q, k = pot_codes(t, exp_bits, rounding, sync=sync)
        return lookup(code_values(exp_bits, t.device), q), k
    top = pot.max_exp(exp_bits)
    a = t.abs()
    ki = _host_scale_exp(float(_amax(a, None, sync)), exp_bits, rounding)      # on the CPU: no device wait
    k = torch.tensor(ki)
    if ki < _K_MIN:
        q, k = pot_codes(t, exp_bits, rounding, sync=sync)
        return lookup(code_values(exp_bits, t.device), q), k
    u = a.mul_(2.0 ** -ki)                           # |t| / 2^k: exact wherever u >= 1/2
    keep = u.mul(2.0).clamp_(max=1.0).floor_()      # 1 where u >= 1/2, else 0 (no bool passes: slow)
    r = u.view(torch.int32).add_(0x800000 - _MANT[rounding]).bitwise_and_(0x7F800000).view(torch.float32)
    v = r.clamp_(1.0, float(1 << top)).mul_(keep).mul_(torch.sign(t))
    return v.add_(0.0), k                             # + 0.0: no negative zeros


def sr_codes(t: torch.Tensor, exp_bits: int, r: torch.Tensor, rand_bits: int, scale: str = "luq",
             axis: int | None = None, sync: bool = False):
    """(codes, k) by stochastic rounding in the linear domain with stochastic underflow, given the
    random words r (integers, t's shape, 0 .. 2^rand_bits - 1): u = |t| / 2^k; u >= 1: up from 2^n
    to 2^(n+1) iff r < floor(f 2^R); u < 1: the code 1 iff r < floor(u 2^R); past the top power the
    top code. scale "luq" (ceil, nothing clipped: golden.luq.luq) or "log" (golden.pot's). uint8."""
    top = pot.max_exp(exp_bits)
    a = t.abs()
    k = scale_exp(_amax(a, axis, sync), exp_bits, scale)
    m, n = _exponents(a, k)
    inside = (n >= 0) & (m > 0)
    g = torch.where(inside, (m * 2.0 - 1.0) * float(1 << rand_bits), torch.ldexp(a, rand_bits - k))
    up = (r < torch.floor(g)).to(torch.int32)
    e = torch.where(inside, n + 1 + up, up)
    e = torch.where((n >= top) & (m > 0), top + 1, e)
    return _encode(t < 0, e, exp_bits), k


def random_words(shape, rand_bits: int, generator: torch.Generator, device) -> torch.Tensor:
    return torch.randint(0, 1 << rand_bits, tuple(shape), generator=generator, device=device, dtype=torch.int64)


_TABLES: dict = {}


def code_values(exp_bits: int, device, dtype=torch.float32) -> torch.Tensor:
    """value(code) for every code (a gather table on `device`)."""
    key = ("v", exp_bits, str(device), dtype)
    if key not in _TABLES:
        _TABLES[key] = torch.as_tensor(pot.decode(np.arange(1 << (exp_bits + 1)), exp_bits).astype(np.float64)
                                       ).to(device=device, dtype=dtype)
    return _TABLES[key]


def lookup(table: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """table[codes] by index_select (several times faster than advanced indexing on the CPU)."""
    return table.index_select(0, codes.reshape(-1).to(torch.int32)).reshape(codes.shape)


def recode_table(exp_from: int, exp_to: int, device) -> torch.Tensor:
    """code of exp_bits exp_from -> the code of exp_bits exp_to holding the same value."""
    key = ("r", exp_from, exp_to, str(device))
    if key not in _TABLES:
        v = pot.decode(np.arange(1 << (exp_from + 1)), exp_from)
        mag = np.abs(v)
        e = np.where(mag == 0, 0, np.log2(np.maximum(mag, 1)).astype(np.int64) + 1)
        _TABLES[key] = torch.as_tensor(pot.encode((v < 0).astype(np.int64), e, exp_to)).to(device)
    return _TABLES[key]


def stochastic_codes(t, scale: float, exp_bits: int, rng) -> np.ndarray:
    """NumPy reference of the stochastic rounding (float draws from `rng`): PoT codes of t / scale, a
    magnitude u in [2^n, 2^(n+1)) becomes 2^(n+1) with probability (u - 2^n) / 2^n, else 2^n;
    u < 1 becomes 1 with probability u, else 0; u at or above the top power keeps the top code."""
    top = pot.max_exp(exp_bits)
    u = np.abs(np.asarray(t, np.float64)) / scale
    r = rng.random(u.shape)
    with np.errstate(divide="ignore"):
        n = np.floor(np.log2(np.where(u > 0, u, 1.0)))
    n = np.clip(n, 0, top)
    low = np.exp2(n)
    up = (r < (u - low) / low) & (n < top)
    e = np.where(u < 1.0, (r < u).astype(np.int64), n.astype(np.int64) + 1 + up)
    e = np.where(u >= np.exp2(top), top + 1, e).astype(np.int64)
    s = ((np.asarray(t) < 0) & (e != 0)).astype(np.int64)
    return pot.encode(s, e, exp_bits)
