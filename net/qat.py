"""Quantization-aware training on an integer datapath: int8, ASM (alphabet-aware, HADES-like) and
approximate products (approx:..., lut:...).

Every nn.Linear / nn.Conv2d becomes a layer whose forward runs on the datapath through
net.kernels (bit-exact integer accumulations, dequantized by the two per-tensor scales):

    xq, sx = dp.quantize(x, "x")          int8 / asm-x: symmetric, sx = max|x| / (2^(b-1) - 1)
    wq, sw = dp.quantize(w, "w")          int8 / approx / lut: symmetric, sw = max|w| / 127
                                          asm: the nearest magnitude the alphabet represents at
                                          w_bits (golden.asm.quantize), sw = 2^k
    y = kernels.matmul(dp, xq, wq^T) * sx * sw + b

The backward pass is float32 (errors are not quantized here; ALS-POTQ does that, net/potq.py):

grad="ste" (straight-through estimator): the quantizers' and the projection's gradient is taken
as the identity (d wq*sw / d w = 1, d xq*sx / d x = 1 inside the clipping range), and the
product as the exact one: dX = dY . (wq*sw), dW = dY^T . (xq*sx). For ASM this is the gradient
of the projection onto the alphabet's representable set: the master weight moves freely and
the forward sees its nearest representable value.

grad="table" (approx/lut only): the gradient of the approximate product itself. With
M(a, w) the signed product of codes a, w (Datapath.product) and Y[m,n] = sx*sw * sum_k
M(x[m,k], w[k,n]):

    dL/dx[m,k] = sw * sum_n dY[m,n] * Da(x[m,k], w[k,n])
    dL/dw[k,n] = sx * sum_m dY[m,n] * Dw(x[m,k], w[k,n])

where Da and Dw are the table's central finite differences along each operand code
(Da(a, w) = (M(a+, w) - M(a-, w)) / (a+ - a-), a+- = a +- 1 clipped to -127..127; Dw alike).
For the exact multiplier Da(a, w) = w and Dw = a, so the table gradient reduces to STE. The
per-pair sums are gathers from the two 255 x 255 derivative tables (compiled loops, the same
M*K*N work as the forward product).

annealing (asm, anneal=True): the forward weight is w + lam*(Q(w) - w) with lam rising
linearly from 1/epochs to 1 over the epochs, so early epochs see a partially projected weight;
the last epoch and evaluation run on the datapath exactly. Off by default.
"""
from __future__ import annotations

import copy

import numba
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import kernels
from .datapath import parse

__all__ = ["QatMode", "QatLinear", "QatConv2d", "derivative_tables", "table_grad_x", "table_grad_w",
           "GRADS", "ptq"]

GRADS = ("ste", "table")
_CODE_LO, _CODE_HI = -127, 127


def derivative_tables(dp):
    """(Da, Dw): 255 x 255 float64 tables indexed [a + 127, w + 127] of the signed product's
    central finite differences along the activation code a and the weight code w."""
    c = np.arange(_CODE_LO, _CODE_HI + 1)
    M = dp.product(c[:, None], c[None, :]).astype(np.float64)          # M[a, w]
    up = np.minimum(np.arange(len(c)) + 1, len(c) - 1)
    dn = np.maximum(np.arange(len(c)) - 1, 0)
    span = (up - dn).astype(np.float64)
    Da = (M[up, :] - M[dn, :]) / span[:, None]
    Dw = (M[:, up] - M[:, dn]) / span[None, :]
    return Da, Dw


@numba.njit(parallel=True, cache=True)
def _grad_x(G, Xi, Wi, D, out):
    """out[m, k] = sum_n G[m, n] * D[Xi[m, k], Wi[k, n]]."""
    M, K = Xi.shape
    N = Wi.shape[1]
    for m in numba.prange(M):
        for k in range(K):
            row = D[Xi[m, k]]
            s = 0.0
            for n in range(N):
                s += G[m, n] * row[Wi[k, n]]
            out[m, k] = s


@numba.njit(parallel=True, cache=True)
def _grad_w(G, Xi, Wi, D, out):
    """out[k, n] = sum_m G[m, n] * D[Xi[m, k], Wi[k, n]]."""
    M, K = Xi.shape
    N = Wi.shape[1]
    for k in numba.prange(K):
        for n in range(N):
            w = Wi[k, n]
            s = 0.0
            for m in range(M):
                s += G[m, n] * D[Xi[m, k], w]
            out[k, n] = s


def table_grad_x(Da, X, W, G) -> np.ndarray:
    """sum_n G[m,n] * Da(X[m,k], W[k,n]) for codes X (M x K), W (K x N), float G (M x N)."""
    out = np.empty(X.shape, np.float64)
    _grad_x(np.ascontiguousarray(G, np.float64), np.ascontiguousarray(X + 127, np.int64),
            np.ascontiguousarray(W + 127, np.int64), Da, out)
    return out


def table_grad_w(Dw, X, W, G) -> np.ndarray:
    """sum_m G[m,n] * Dw(X[m,k], W[k,n])."""
    out = np.empty(W.shape, np.float64)
    _grad_w(np.ascontiguousarray(G, np.float64), np.ascontiguousarray(X + 127, np.int64),
            np.ascontiguousarray(W + 127, np.int64), Dw, out)
    return out


def _np(t):
    return t.detach().cpu().numpy()


def _f(a):
    return torch.from_numpy(np.ascontiguousarray(a, np.float32))


class _QatCore:
    def __init__(self, dp, grad, tables):
        self.dp, self.grad, self.tables = dp, grad, tables
        self.lam = 1.0           # annealing: weight of the projection in the forward weight

    def weight_codes(self, w):
        wn = _np(w).astype(np.float64)
        q, s = self.dp.quantize(wn, "w")
        return q, s


class _QatMatmulFn(torch.autograd.Function):
    """Y = MAC(xq, wq) * sx * sw on 2-D operands (x: M x K float, w: K x N float)."""

    @staticmethod
    def forward(ctx, x, w, core: _QatCore):
        xq, sx = core.dp.quantize(_np(x), "x")
        wq, sw = core.weight_codes(w)
        y = kernels.matmul(core.dp, xq, wq) * (sx * sw)
        ctx.core = core
        ctx.saved = (xq, sx, wq, sw)
        return _f(y)

    @staticmethod
    def backward(ctx, gy):
        core = ctx.core
        xq, sx, wq, sw = ctx.saved
        g = _np(gy).astype(np.float64)
        need_x = ctx.needs_input_grad[0]
        if core.grad == "table":
            Da, Dw = core.tables
            dx = table_grad_x(Da, xq, wq, g) * sw if need_x else None
            dw = table_grad_w(Dw, xq, wq, g) * sx
        else:
            dx = g @ (core.dp.values(wq, "w") * sw).T if need_x else None
            dw = (core.dp.values(xq, "x") * sx).T @ g
        return (_f(dx) if need_x else None), _f(dw), None


def _anneal(w, core):
    """Forward weight under annealing: w + lam * (Q(w) - w), a float tensor (lam < 1 only)."""
    q, s = core.weight_codes(w)
    qw = torch.from_numpy((core.dp.values(q, "w") * s).astype(np.float32))
    return w + core.lam * (qw - w).detach()


class QatLinear(nn.Linear):
    @classmethod
    def from_linear(cls, lin, core):
        m = cls(lin.in_features, lin.out_features, bias=lin.bias is not None)
        m.load_state_dict(lin.state_dict())
        m.core = core
        return m

    def forward(self, x):
        if self.core.lam < 1.0:
            return F.linear(x, _anneal(self.weight, self.core), self.bias)
        lead = x.shape[:-1]
        y = _QatMatmulFn.apply(x.reshape(-1, x.shape[-1]), self.weight.t(), self.core)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, -1)

    def to_plain(self):
        m = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        m.load_state_dict({k: v for k, v in self.state_dict().items()})
        return m


class _Im2col(torch.autograd.Function):
    """Float im2col (N x C x H x W -> rows N*Ho*Wo x C*kh*kw) with its adjoint (fold)."""

    @staticmethod
    def forward(ctx, x, kh, kw, stride, padding):
        ctx.args = (tuple(x.shape), kh, kw, stride, padding)
        cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)       # N x (C*kh*kw) x L
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])

    @staticmethod
    def backward(ctx, g):
        shape, kh, kw, stride, padding = ctx.args
        n = shape[0]
        g = g.reshape(n, -1, g.shape[1]).transpose(1, 2)
        return F.fold(g, shape[2:], (kh, kw), padding=padding, stride=stride), None, None, None, None


class QatConv2d(nn.Conv2d):
    @classmethod
    def from_conv(cls, conv, core):
        if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros" \
                or not isinstance(conv.padding, tuple):
            raise ValueError(f"datapath training supports Conv2d with groups=1, dilation=1 and zero "
                             f"padding; got {conv}")
        m = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                padding=conv.padding, bias=conv.bias is not None)
        m.load_state_dict(conv.state_dict())
        m.core = core
        return m

    def forward(self, x):
        if self.core.lam < 1.0:
            return F.conv2d(x, _anneal(self.weight, self.core), self.bias, self.stride, self.padding)
        kh, kw = self.kernel_size
        n, _, h, w = x.shape
        ho = kernels.conv_out_size(h, kh, self.stride[0], self.padding[0])
        wo = kernels.conv_out_size(w, kw, self.stride[1], self.padding[1])
        # the kernels' im2col column order (c, i, j) is unfold's; rows (n, ho, wo)
        cols = _Im2col.apply(x, kh, kw, self.stride, self.padding)
        y = _QatMatmulFn.apply(cols, self.weight.reshape(self.out_channels, -1).t(), self.core)
        y = y.reshape(n, ho, wo, -1).permute(0, 3, 1, 2)
        if self.bias is not None:
            y = y + self.bias[None, :, None, None]
        return y.contiguous()

    def to_plain(self):
        m = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                      padding=self.padding, bias=self.bias is not None)
        m.load_state_dict(self.state_dict())
        return m


class QatMode:
    """Training mode for int8 / asm / approx / lut datapaths (see the module doc).

    Options: grad ("ste" | "table"; table only for approx/lut), anneal (asm only)."""

    def __init__(self, dp, errors=None, grad: str = "ste", anneal: bool = False):
        dp = parse(dp)
        if dp.kind not in ("int8", "asm", "approx", "lut"):
            raise ValueError(f"quantization-aware training takes int8, asm, approx:... or lut:... "
                             f"(mfmac trains with ALS-POTQ), got {dp.spec!r}")
        if errors is not None and parse(errors).kind != "fp32":
            raise ValueError(f"errors {errors!r}: on {dp.kind} the errors stay fp32 "
                             f"(quantized errors are ALS-POTQ's: --datapath mfmac)")
        if grad not in GRADS:
            raise ValueError(f"grad must be one of {', '.join(GRADS)}, got {grad!r}")
        if grad == "table" and dp.kind not in ("approx", "lut"):
            raise ValueError(f"grad=table is the gradient of an approximate product's table "
                             f"(approx:... or lut:...), not of {dp.kind}")
        if not isinstance(anneal, bool):
            raise ValueError(f"anneal must be True or False, got {anneal!r}")
        if anneal and dp.kind != "asm":
            raise ValueError("anneal applies to the alphabet projection (asm datapaths) only")
        self.dp, self.grad, self.anneal = dp, grad, anneal
        self.tables = derivative_tables(dp) if grad == "table" else None
        self.layers = {}
        self.epochs = None

    def describe(self) -> dict:
        return {"kind": "qat", "datapath": self.dp.canonical, "grad": self.grad, "anneal": self.anneal}

    def convert(self, model: nn.Module) -> nn.Module:
        m = copy.deepcopy(model)
        self.layers = {}
        for name, mod in list(m.named_modules()):
            if not name or type(mod) not in (nn.Linear, nn.Conv2d):
                continue
            core = _QatCore(self.dp, self.grad, self.tables)
            new = QatLinear.from_linear(mod, core) if type(mod) is nn.Linear else QatConv2d.from_conv(mod, core)
            parent_name, _, attr = name.rpartition(".")
            setattr(m.get_submodule(parent_name) if parent_name else m, attr, new)
            self.layers[name] = new
        if not self.layers:
            raise ValueError(f"{self.dp.spec}: the model has no nn.Linear or nn.Conv2d layer to run on the datapath")
        return m

    def set_epochs(self, epochs: int) -> None:
        self.epochs = epochs

    def start_epoch(self, epoch: int) -> None:
        lam = 1.0
        if self.anneal and self.epochs:
            lam = min(1.0, epoch / self.epochs)
        for layer in self.layers.values():
            layer.core.lam = lam

    def after_step(self, model) -> None:
        pass

    def end_epoch(self) -> dict:
        for layer in self.layers.values():
            layer.core.lam = 1.0          # evaluation always on the datapath
        return {}


def ptq(model: nn.Module, datapath) -> nn.Module:
    """Post-training quantization (no training): the model's layers on the datapath."""
    return QatMode(datapath).convert(model)
