"""The MF-MAC products of an ALS-POTQ step on torch code tensors (any device): each runs on
net.kernels (bit-exact, wrapped at acc_bits) and, with a stats object, counts the outputs whose
accumulation wrapped (compared with a 62-bit accumulation when a bound says it could).

    mm(dp, A, B)                          A . B                       (Linear; weight gradient)
    bmm(dp, A, B)                         batched A . B               (activation x activation)
    conv_forward(dp, X, W, ...)           conv2d(X, W)
    conv_backward_data(dp, E, W, ...)     the full convolution of the stride-dilated, padded error
                                          codes with the flipped, transposed weight codes (per group):
                                          one MAC accumulation of Cout/G*kh*kw products per input
    conv_weight_grad(dp, E, X, ...)       E^T . im2col(X) per group: one accumulation of N*Ho*Wo
                                          products per weight
    rescale_rows(codes, ks, E0, E1)       rows of codes at scales 2^ks as codes of a wider MF-MAC
                                          at one common scale (an exponent add)

Public functions take NumPy arrays too (and then return NumPy), for the proofs.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from golden import pot

from . import kernels
from .datapath import parse
from .potq_quant import code_values, lookup, recode_table

__all__ = ["mm", "bmm", "conv_forward", "conv_backward_data", "conv_weight_grad", "rescale_rows", "recode"]

_NO_WRAP_BITS = 62
_WIDE: dict = {}


def _wide(dp):
    e = dp.params["exp_bits"]
    if e not in _WIDE:
        _WIDE[e] = parse(f"mfmac,exp_bits={e},acc_bits={_NO_WRAP_BITS}")
    return _WIDE[e]


def _t(a):
    return (torch.from_numpy(np.ascontiguousarray(np.asarray(a, np.int64))), True) if not isinstance(a, torch.Tensor) \
        else (a, False)


def _out(t, numpy_in):
    return t.cpu().numpy() if numpy_in else t


def _count(dp, stats, K, got, wide_fn, data_bound=None):
    """stats.overflows += outputs that wrapped: only when K * the largest product (or the data's
    tighter bound, a callable) reaches the accumulator's sign bit."""
    if stats is None or dp.acc_bits >= _NO_WRAP_BITS:
        return
    lim = 1 << (dp.acc_bits - 1)
    if K * (1 << (2 * pot.max_exp(dp.params["exp_bits"]))) < lim:
        return
    if data_bound is not None and float(data_bound()) < lim:
        return
    stats.add("overflows", (wide_fn(_wide(dp)) != got).sum())


def _absvals(dp, codes):
    return lookup(code_values(dp.params["exp_bits"], codes.device).abs(), codes)


def _maxabs(dp, codes):
    """The largest |value| of a code tensor: 2^(largest exponent field - 1) (no lookup)."""
    e = (codes & ((1 << dp.params["exp_bits"]) - 1)).max()
    return torch.where(e > 0, torch.ldexp(torch.ones((), dtype=torch.float64, device=codes.device), e.long() - 1), 0.0)


def mm(dp, A, B, stats=None):
    """A (M x K codes) . B (K x N codes) on dp."""
    Y = kernels.matmul(dp, A, B)
    _count(dp, stats, A.shape[1], Y, lambda w: kernels.matmul(w, A, B),
           lambda: _absvals(dp, A).sum(1).max() * _maxabs(dp, B))
    return Y


def bmm(dp, A, B, stats=None):
    Y = kernels.bmm(dp, A, B)
    _count(dp, stats, A.shape[-1], Y, lambda w: kernels.bmm(w, A, B),
           lambda: _absvals(dp, A).sum(-1).max() * _maxabs(dp, B))
    return Y


def conv_forward(dp, xq, wq, stride, padding, dilation=1, groups=1, stats=None):
    Y = kernels.conv2d(dp, xq, wq, stride, padding, dilation, groups)
    _count(dp, stats, wq[0].numel(), Y, lambda w: kernels.conv2d(w, xq, wq, stride, padding, dilation, groups))
    return Y


def _pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def conv_backward_data(dp, eq, wq, stride, padding, in_hw, stats=None, dilation=1, groups=1):
    """dX_int (N x C x H x W): dX[n, c, h, w] = sum over co of c's group, i, j with
    h = ho*s - p + i*d (and alike for w) of product(E[n, co, ho, wo], W[co, c mod C/G, i, j])."""
    (E, ni), (Wt, _) = _t(eq), _t(wq)
    st, pd, dl = _pair(stride), _pair(padding), _pair(dilation)
    n, cout, ho, wo = E.shape
    _, cg, kh, kw = Wt.shape
    G = int(groups)
    H, W = in_hw
    if st != (1, 1):
        z = torch.zeros((n, cout, (ho - 1) * st[0] + 1, (wo - 1) * st[1] + 1), dtype=E.dtype, device=E.device)
        z[:, :, ::st[0], ::st[1]] = E
        E = z
    lo_h, lo_w = dl[0] * (kh - 1) - pd[0], dl[1] * (kw - 1) - pd[1]
    hi_h = H + dl[0] * (kh - 1) - lo_h - E.shape[2]
    hi_w = W + dl[1] * (kw - 1) - lo_w - E.shape[3]
    E = F.pad(E, (lo_w, hi_w, lo_h, hi_h))           # the zero code; negative pads crop
    # transposed, flipped weights: C x Cout/G x kh x kw, group g's input channels from group g's outputs
    wf = Wt.flip(2, 3).reshape(G, cout // G, cg, kh, kw).transpose(1, 2).reshape(G * cg, cout // G, kh, kw)
    Y = kernels.conv2d(dp, E, wf.contiguous(), 1, 0, dl, G)
    _count(dp, stats, wf[0].numel(), Y, lambda w: kernels.conv2d(w, E, wf.contiguous(), 1, 0, dl, G))
    return _out(Y, ni)


def conv_weight_grad(dp, eq, xq, kh, kw, stride, padding, stats=None, dilation=1, groups=1):
    """dW_int (Cout x C/G x kh x kw) = E^T . im2col(X), per group."""
    (E, ni), (X, _) = _t(eq), _t(xq)
    n, cout, ho, wo = E.shape
    C = X.shape[1]
    G = int(groups)
    cols = kernels.im2col(X, kh, kw, stride, padding, dilation=dilation)          # L x C*kh*kw
    L = cols.shape[0]
    emat = E.permute(0, 2, 3, 1).reshape(L, cout)                                 # L x Cout
    if G == 1:
        A, B = emat.t(), cols
        Y = kernels.matmul(dp, A, B)
        _count(dp, stats, L, Y, lambda w: kernels.matmul(w, A, B),
               lambda: _absvals(dp, A).sum(1).max() * _maxabs(dp, B))
    else:
        A = emat.reshape(L, G, cout // G).permute(1, 2, 0)                        # G x Cout/G x L
        B = cols.reshape(L, G, (C // G) * kh * kw).permute(1, 0, 2)                # G x L x Kg
        Y = kernels.bmm(dp, A, B)
        _count(dp, stats, L, Y, lambda w: kernels.bmm(w, A, B),
               lambda: _absvals(dp, A).sum(-1).max() * _maxabs(dp, B))
    return _out(Y.reshape(cout, C // G, kh, kw), ni)


def recode(codes, exp_from: int, exp_to: int):
    """PoT codes of exp_bits exp_from as codes of exp_bits exp_to >= exp_from (same values)."""
    c, ni = _t(codes)
    if exp_from == exp_to:
        return _out(c, ni)
    return _out(lookup(recode_table(exp_from, exp_to, c.device), c), ni)


def rescale_rows(codes, ks, exp_from: int, exp_to: int):
    """Rows of PoT codes (row b: codes of exp_bits exp_from with scale 2^ks[b]) as codes of exp_bits
    exp_to >= exp_from sharing one scale 2^k_ref: each nonzero exponent field e becomes
    e + ks[b] - k_ref (an exponent add), with k_ref = max(min ks, max ks - slack), slack =
    max_exp(exp_to) - max_exp(exp_from), so no field passes the top; fields that fall below 1 (under
    the smallest power at the common scale) become the zero code.

    codes: B x ... (row b = codes[b]); ks: B integers. Returns (codes B x ..., k_ref, number of
    nonzero codes flushed to zero): ints and NumPy for NumPy input, 0-d tensors for tensors.
    value(out) * 2^k_ref == value(codes[b]) * 2^ks[b] for every code not flushed."""
    c, ni = _t(codes)
    k = ks if isinstance(ks, torch.Tensor) else torch.as_tensor(np.asarray(ks, np.int64))
    k = k.reshape(-1).to(device=c.device, dtype=torch.int64)
    if c.shape[0] != k.numel():
        raise ValueError(f"rescale_rows: {c.shape[0]} rows but {k.numel()} scales")
    if exp_to < exp_from:
        raise ValueError(f"rescale_rows: exp_to must be at least exp_from ({exp_from}), got {exp_to}")
    if k.numel() == 0:
        return (_out(c.clone(), ni), 0, 0)
    slack = pot.max_exp(exp_to) - pot.max_exp(exp_from)
    k_ref = torch.maximum(k.min(), k.max() - slack)
    c = c.long()
    shift = (k - k_ref).reshape((-1,) + (1,) * (c.ndim - 1))
    e = c & ((1 << exp_from) - 1)
    s = (c >> exp_from) & 1
    e2 = torch.where(e == 0, e, e + shift)
    lost = (e != 0) & (e2 < 1)
    e2 = torch.where(e2 < 1, torch.zeros_like(e2), e2)
    out = ((s & (e2 != 0).long()) << exp_to) | e2
    if ni:
        return out.numpy(), int(k_ref), int(lost.sum())
    return out, k_ref, lost.sum()
