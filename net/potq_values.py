"""The MF-MAC products of an ALS-POTQ step on PoT *values* (net/potq_core.py's hot path): each
operand is the float32 tensor of its codes' integer values (+-2^(e-1), 0), so a product is one
ordinary float product on the device - a matmul, a batched matmul, a direct convolution - with
no code gathers, no int64 partial sums and no second overflow pass. Equal, bit for bit, to the
code kernels (net/potq_products.py over net.kernels, proven against
Datapath.matmul_definition) because every product of two PoT values is a power of two and a
float sum of integers is exact while every partial sum stays inside the float's exact range:

    K * 2^(2 max_exp) < min(2^(acc_bits-1), 2^24)   float32, nothing wraps: the float result is
                                                     the accumulation (any summation order)
    K * 2^(2 max_exp) < 2^53                         float64, then wrapped at acc_bits in int64;
                                                     the outputs that wrapped are counted
    otherwise (wide exponents, e.g. exp_bits=5)      the code kernels (net/potq_products.py)

(K: the products summed per output; 2^max_exp: the largest |value| of the datapath's codes.)
The float products must not be transforms (Winograd, FFT) or reduced precision (TF32): the CPU
convolutions call oneDNN's direct convolution (as net.kernels does) and TF32 is off
(net.kernels.exact_floats); on other devices the convolutions take the code kernels.

    mm(dp, A, B, stats)                A (M x K) . B (K x N)                 -> float (exact ints)
    bmm(dp, A, B, stats)               batched, broadcast
    conv_forward(dp, X, W, geo, stats)
    conv_backward_data(dp, E, W, geo, in_hw, stats)
    conv_weight_grad(dp, E, X, kh, kw, geo, stats)
    values(codes, exp_bits) / codes(values, exp_bits)

Each returns the accumulations: a float tensor (float32 or float64) of exact integers, or the
int64 accumulations where they wrapped or came from the code kernels (`.to(torch.int64)` gives
the MAC's int64 accumulations either way).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from golden import pot

from . import kernels
from . import potq_products as P
from .potq_quant import code_values, lookup

__all__ = ["values", "codes", "mm", "bmm", "conv_forward", "conv_backward_data", "conv_weight_grad", "path", "full_conv",
           "conv_direct", "DIRECT_CONV"]

_F32, _F64 = 1 << 24, 1 << 53
DIRECT_CONV = torch.backends.mkldnn.is_available()


def values(codes: torch.Tensor, exp_bits: int) -> torch.Tensor:
    """float32 integer values of PoT codes."""
    return lookup(code_values(exp_bits, codes.device), codes)


def codes(vals: torch.Tensor, exp_bits: int) -> torch.Tensor:
    """uint8 codes of PoT integer values (+-2^(e-1) -> exponent field e, sign on nonzero; 0 -> 0)."""
    m, e = torch.frexp(vals)                     # |v| = 2^(e-1) exactly: m = +-1/2
    e = torch.where(m != 0, e, 0).to(torch.uint8)
    return e | ((vals < 0).to(torch.uint8) << exp_bits)


def path(dp, K: int) -> str:
    """"f32", "f64" or "codes": how a product of K terms per output runs exactly on dp."""
    bound = int(K) << (2 * pot.max_exp(dp.params["exp_bits"]))
    if bound < min(1 << (dp.acc_bits - 1), _F32):
        return "f32"
    return "f64" if bound < _F64 else "codes"


def _finish(dp, y: torch.Tensor, K: int, stats) -> torch.Tensor:
    """Exact float sums -> the accumulations the MAC holds (wrapped at acc_bits; wraps counted)."""
    if int(K) << (2 * pot.max_exp(dp.params["exp_bits"])) < 1 << (dp.acc_bits - 1):
        return y
    yi = y.to(torch.int64)
    h = 1 << (dp.acc_bits - 1)
    w = ((yi + h) & ((1 << dp.acc_bits) - 1)) - h
    if stats is not None:
        stats.add("overflows", (w != yi).sum())
    return w


def _dtype(how):
    return torch.float32 if how == "f32" else torch.float64


def _as(t, dt):
    return t if t.dtype == dt else t.to(dt)


def _codes_path(dp, fn, *operands):
    E = dp.params["exp_bits"]
    return fn(*[codes(o, E) for o in operands])


def _product(dp, A, B, stats, on_codes, on_floats):
    K = A.shape[-1]
    how = path(dp, K)
    if how == "codes":
        return _codes_path(dp, lambda a, b: on_codes(dp, a, b, stats), A, B)
    dt = _dtype(how)
    kernels.exact_floats()
    return _finish(dp, on_floats(_as(A, dt), _as(B, dt)), K, stats)


def mm(dp, A, B, stats=None):
    """A (M x K values) . B (K x N values) on dp."""
    return _product(dp, A, B, stats, P.mm, torch.mm)


def bmm(dp, A, B, stats=None):
    """Batched A (... x M x K values) . B (... x K x N values) on dp."""
    return _product(dp, A, B, stats, P.bmm, torch.matmul)


def conv_direct(X, W, stride, padding, dilation, groups):
    """oneDNN's direct convolution (float32, CPU)."""
    return torch.ops.aten.mkldnn_convolution(X.contiguous(), W.contiguous(), None, list(padding), list(stride),
                                             list(dilation), int(groups))


def _pair(v):
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _fast_conv(dp, X, K):
    return X.device.type == "cpu" and DIRECT_CONV and path(dp, K) == "f32"


def conv_forward(dp, X, W, stride, padding, dilation=1, groups=1, stats=None):
    """conv2d of value tensors X (N x C x H x W) and W (Cout x C/G x kh x kw) on dp."""
    K = W[0].numel()
    st, pd, dl = _pair(stride), _pair(padding), _pair(dilation)
    if _fast_conv(dp, X, K):
        return conv_direct(_as(X, torch.float32), _as(W, torch.float32), st, pd, dl, groups)
    return _codes_path(dp, lambda x, w: P.conv_forward(dp, x, w, st, pd, dl, groups, stats), X, W)


def full_conv(E, W, stride, padding, in_hw, dilation=(1, 1), groups=1):
    """The input-gradient form of a convolution: the transposed convolution of E (N x Cout x Ho x
    Wo) with W (Cout x C/G x kh x kw) -> N x C x H x W, each input position the sum of the
    products of the (co, i, j) whose window covers it (potq_products.conv_backward_data's sums),
    float32 on the CPU, by whichever exact form is fastest there (measured on the seeds' layers):
    non-overlapping windows (stride = kernel: a patch embedding) one matmul (Cout products per
    input); stride 1 into few channels (a stem) the direct convolution of the padded errors with
    the flipped, transposed weights; otherwise oneDNN's direct transposed convolution."""
    st, pd, dl = _pair(stride), _pair(padding), _pair(dilation)
    n, cout, ho, wo = E.shape
    _, cg, kh, kw = W.shape
    G = int(groups)
    H, Wd = in_hw
    if G == 1 and st == (kh, kw) and dl == (1, 1):
        Y = torch.mm(E.permute(0, 2, 3, 1).reshape(-1, cout), W.reshape(cout, -1))
        Y = Y.reshape(n, ho, wo, cg, kh, kw).permute(0, 3, 1, 4, 2, 5).reshape(n, cg, ho * kh, wo * kw)
        return F.pad(Y, (-pd[1], Wd + pd[1] - wo * kw, -pd[0], H + pd[0] - ho * kh))
    if G == 1 and st == (1, 1) and cg < 8:
        lo_h, lo_w = dl[0] * (kh - 1) - pd[0], dl[1] * (kw - 1) - pd[1]
        Ep = F.pad(E, (lo_w, Wd + dl[1] * (kw - 1) - lo_w - wo, lo_h, H + dl[0] * (kh - 1) - lo_h - ho))
        return conv_direct(Ep, W.flip(2, 3).transpose(0, 1), (1, 1), (0, 0), dl, 1)
    op = (H - ((ho - 1) * st[0] - 2 * pd[0] + dl[0] * (kh - 1) + 1),
          Wd - ((wo - 1) * st[1] - 2 * pd[1] + dl[1] * (kw - 1) + 1))
    return F.conv_transpose2d(E, W, None, st, pd, op, G, dl)


def conv_backward_data(dp, E, W, stride, padding, in_hw, stats=None, dilation=1, groups=1):
    """dX (N x C x H x W) of value tensors E (N x Cout x Ho x Wo), W (Cout x C/G x kh x kw)."""
    st, pd, dl = _pair(stride), _pair(padding), _pair(dilation)
    _, cout, _, _ = E.shape
    _, _, kh, kw = W.shape
    G = int(groups)
    if not _fast_conv(dp, E, (cout // G) * kh * kw):
        return _codes_path(dp, lambda e, w: P.conv_backward_data(dp, e, w, st, pd, in_hw, stats, dl, G), E, W)
    return full_conv(_as(E, torch.float32), _as(W, torch.float32), st, pd, in_hw, dl, G)


def _batch_chunks(E, X, limit):
    """Consecutive sample ranges whose weight-gradient sums stay below `limit` (each output's sum
    over a range is at most the sum over its samples of max_co sum |E[n, co]| * max |X[n]|), and
    the bound of the whole batch; None when one sample alone may reach the limit."""
    b = (E.abs().sum(dim=(2, 3)).amax(1) * X.abs().flatten(1).amax(1)).tolist()
    out, lo, acc = [], 0, 0.0
    for i, v in enumerate(b):
        if v >= limit:
            return None, None
        if acc + v >= limit:
            out.append((lo, i))
            lo, acc = i, 0.0
        acc += v
    out.append((lo, len(b)))
    return out, sum(b)


def conv_weight_grad(dp, E, X, kh, kw, stride, padding, stats=None, dilation=1, groups=1):
    """dW (Cout x C/G x kh x kw) = sum over n, ho, wo of E[n, co, ho, wo] X[n, c, window]: torch's
    convolution weight gradient (oneDNN's direct one in float32) over ranges of the batch whose
    data bound keeps every float32 partial sum exact (each range's sum: integers below 2^24, added
    in float64), then wrapped at acc_bits when the bound allows a wrap; float64 (im2col + matmul,
    exact below 2^53) when a single sample may pass 2^24."""
    st, pd, dl = _pair(stride), _pair(padding), _pair(dilation)
    n, cout, ho, wo = E.shape
    G = int(groups)
    K = n * ho * wo
    how = path(dp, K)
    if how == "codes" or E.device.type != "cpu":
        return _codes_path(dp, lambda e, x: P.conv_weight_grad(dp, e, x, kh, kw, st, pd, stats, dl, G), E, X)
    wshape = (cout, X.shape[1] // G, kh, kw)
    kw_ = dict(stride=st, padding=pd, dilation=dl, groups=G)
    if how == "f32":
        return torch.nn.grad.conv2d_weight(_as(X, torch.float32), wshape, _as(E, torch.float32), **kw_)
    ranges, bound = _batch_chunks(E, X, _F32)
    if ranges is None:
        y = torch.nn.grad.conv2d_weight(_as(X, torch.float64), wshape, _as(E, torch.float64), **kw_)
        return _finish(dp, y, K, stats)
    X32, E32 = _as(X, torch.float32), _as(E, torch.float32)
    y = None
    for a, b in ranges:
        part = torch.nn.grad.conv2d_weight(X32[a:b], wshape, E32[a:b], **kw_)
        y = part if y is None and len(ranges) == 1 else (part.double() if y is None else y.add_(part))
    if bound < 1 << (dp.acc_bits - 1):
        return y
    return _finish(dp, y.double(), K, stats)
