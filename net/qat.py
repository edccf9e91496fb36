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
per-pair sums are gathers from the two 255 x 255 derivative tables, the same M*K*N work as the
forward product: on the CPU compiled numba loops (measured faster there than the torch
formulation), on any other device the torch formulation (chunks of K: one gather of the
M x c x N derivatives, then a sum against G); `table_grads(..., backend="torch")` runs the
latter on the CPU (the tests prove both equal).

Everything runs on the tensors' device (net.quant, net.kernels): quantization per tensor in
float64, the integer product, the dequantization; the STE backward is float32 on the device
(the float layer's gradient with the quantized operands). Convolutions of any groups, dilation,
stride and zero padding; the convolution's activation scale is that of its whole input.

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

from . import kernels, quant
from .datapath import parse

__all__ = ["QatMode", "QatLinear", "QatConv2d", "derivative_tables", "table_grad_x", "table_grad_w", "table_grads",
           "GRADS", "ptq"]

GRADS = ("ste", "table")
_CODE_LO, _CODE_HI = -127, 127
_SIDE = _CODE_HI - _CODE_LO + 1                 # 255 codes per table side


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


def _grad_x_impl(G, Xi, Wi, D, out):
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


def _grad_w_impl(G, Xi, Wi, D, out):
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


# small products serially (see net.kernels: a parallel region costs more than it saves there)
_PAR = (numba.njit(parallel=True, cache=True)(_grad_x_impl), numba.njit(parallel=True, cache=True)(_grad_w_impl))
_SER = (numba.njit(cache=True)(_grad_x_impl), numba.njit(cache=True)(_grad_w_impl))
_SERIAL_WORK = 1 << 20


def _kern(i, X, W):
    return (_SER if np.shape(X)[0] * np.shape(X)[1] * np.shape(W)[1] < _SERIAL_WORK else _PAR)[i]


def _np64(t):
    return np.ascontiguousarray(t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t, np.int64)


def table_grad_x(Da, X, W, G) -> np.ndarray:
    """sum_n G[m,n] * Da(X[m,k], W[k,n]) for codes X (M x K), W (K x N), float G (M x N) (NumPy)."""
    out = np.empty(np.shape(X), np.float64)
    _kern(0, X, W)(np.ascontiguousarray(G, np.float64), _np64(X) + 127, _np64(W) + 127, np.asarray(Da, np.float64), out)
    return out


def table_grad_w(Dw, X, W, G) -> np.ndarray:
    """sum_m G[m,n] * Dw(X[m,k], W[k,n]) (NumPy)."""
    out = np.empty(np.shape(W), np.float64)
    _kern(1, X, W)(np.ascontiguousarray(G, np.float64), _np64(X) + 127, _np64(W) + 127, np.asarray(Dw, np.float64), out)
    return out


_CHUNK_ELEMS = 1 << 22           # gathered derivatives per chunk of K (torch formulation)


def _table_grads_torch(Da, Dw, X, W, G, need_x, need_w):
    """The torch formulation on X's device: X (..., M, K), W (..., K, N), G (..., M, N) float64."""
    Mx, K, N = X.shape[-2], X.shape[-1], W.shape[-1]
    lead = int(np.prod(torch.broadcast_shapes(X.shape[:-2], W.shape[:-2]))) if X.ndim > 2 else 1
    c = max(1, min(K, _CHUNK_ELEMS // max(1, lead * Mx * N)))
    dx = torch.empty(X.shape, dtype=torch.float64, device=X.device) if need_x else None
    dw = torch.empty(W.shape, dtype=torch.float64, device=X.device) if need_w else None
    for k0 in range(0, K, c):
        k1 = min(K, k0 + c)
        idx = (X[..., k0:k1, None] + 127) * _SIDE + (W[..., None, k0:k1, :] + 127)     # (..., M, c, N)
        if need_x:
            dx[..., k0:k1] = torch.einsum("...mcn,...mn->...mc", Da.reshape(-1)[idx], G)
        if need_w:
            dw[..., k0:k1, :] = torch.einsum("...mcn,...mn->...cn", Dw.reshape(-1)[idx], G)
    return dx, dw


def table_grads(tables, X, W, G, need_x=True, need_w=True, backend: str = "auto"):
    """(dX, dW) of sum_{m,k,n} G[m,n] * M(X[m,k], W[k,n]) through the derivative tables: X, W
    int code tensors (M x K, K x N), G float (M x N) -> float64 tensors on X's device.
    backend: auto (numba on the CPU, torch elsewhere), numba or torch."""
    Da, Dw = tables
    if backend == "numba" or (backend == "auto" and X.device.type == "cpu"):
        g = G.detach().cpu().numpy()
        dx = torch.from_numpy(table_grad_x(Da, X, W, g)) if need_x else None
        dw = torch.from_numpy(table_grad_w(Dw, X, W, g)) if need_w else None
        return dx, dw
    dev = X.device
    Dat = torch.as_tensor(Da, dtype=torch.float64, device=dev)
    Dwt = torch.as_tensor(Dw, dtype=torch.float64, device=dev)
    return _table_grads_torch(Dat, Dwt, X.to(torch.int64), W.to(torch.int64), G.to(torch.float64), need_x, need_w)


class _QatCore:
    def __init__(self, dp, grad, tables):
        self.dp, self.grad, self.tables = dp, grad, tables
        self.lam = 1.0           # annealing: weight of the projection in the forward weight
        self.last_accumulations = None      # the last forward's integer accumulations (for proofs)

    def weight_codes(self, w):
        return quant.quantize(self.dp, w.detach(), "w")

    def deq(self, codes, scale, role):
        return quant.dequantize(self.dp, codes, scale, role)


class _QatMatmulFn(torch.autograd.Function):
    """Y = MAC(xq, wq) * sx * sw on 2-D operands (x: M x K float, w: K x N float)."""

    @staticmethod
    def forward(ctx, x, w, core: _QatCore):
        xq, sx = quant.quantize(core.dp, x.detach(), "x")
        wq, sw = core.weight_codes(w)
        acc = core.last_accumulations = kernels.matmul(core.dp, xq, wq)
        y = (acc.to(torch.float64) * (sx * sw)).to(torch.float32)
        ctx.core = core
        ctx.save_for_backward(xq, sx, wq, sw)
        return y

    @staticmethod
    def backward(ctx, gy):
        core = ctx.core
        xq, sx, wq, sw = ctx.saved_tensors
        need_x = ctx.needs_input_grad[0]
        if core.grad == "table":
            dx, dw = table_grads(core.tables, xq, wq, gy, need_x, True)
            return ((dx * sw).to(torch.float32) if need_x else None), (dw * sx).to(torch.float32), None
        dx = gy @ core.deq(wq, sw, "w").t() if need_x else None
        dw = core.deq(xq, sx, "x").t() @ gy
        return dx, dw, None


def _anneal(w, core):
    """Forward weight under annealing: w + lam * (Q(w) - w), a float tensor (lam < 1 only)."""
    q, s = core.weight_codes(w)
    return w + core.lam * (core.deq(q, s, "w") - w).detach()


class QatLinear(nn.Linear):
    @classmethod
    def from_linear(cls, lin, core):
        m = cls(lin.in_features, lin.out_features, bias=lin.bias is not None,
                device=lin.weight.device, dtype=lin.weight.dtype)
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
        m = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                      device=self.weight.device, dtype=self.weight.dtype)
        m.load_state_dict({k: v for k, v in self.state_dict().items()})
        return m


class _QatConvFn(torch.autograd.Function):
    """Y = conv_MAC(xq, wq) * sx * sw (one scale per tensor each); backward: the float conv's
    gradients with the dequantized operands (ste) or the derivative tables over the patches
    (table), folded back onto the input."""

    @staticmethod
    def forward(ctx, x, w, core: _QatCore, args):
        stride, padding, dilation, groups = args
        xq, sx = quant.quantize(core.dp, x.detach(), "x")
        wq, sw = core.weight_codes(w)
        acc = core.last_accumulations = kernels.conv2d(core.dp, xq, wq, stride, padding, dilation, groups)
        ctx.core, ctx.args, ctx.xshape = core, args, tuple(x.shape)
        ctx.save_for_backward(xq, sx, wq, sw)
        return (acc.to(torch.float64) * (sx * sw)).to(torch.float32)

    @staticmethod
    def backward(ctx, g):
        core, (stride, padding, dilation, groups) = ctx.core, ctx.args
        xq, sx, wq, sw = ctx.saved_tensors
        need_x = ctx.needs_input_grad[0]
        if core.grad != "table":
            xd, wd = core.deq(xq, sx, "x"), core.deq(wq, sw, "w")
            dx = torch.nn.grad.conv2d_input(ctx.xshape, wd, g, stride, padding, dilation, groups) if need_x else None
            dw = torch.nn.grad.conv2d_weight(xd, wq.shape, g, stride, padding, dilation, groups)
            return dx, dw, None, None
        n, c, h, wd_ = ctx.xshape
        cout, cg, kh, kw = wq.shape
        cols = kernels.im2col(xq, kh, kw, stride, padding, dilation=dilation)      # L x C*kh*kw
        L = cols.shape[0]
        kg = cg * kh * kw
        Xg = cols.reshape(L, groups, kg).permute(1, 0, 2)                         # G, L, Kg
        Wg = wq.reshape(groups, cout // groups, kg).transpose(1, 2)               # G, Kg, Cout/G
        Gg = g.permute(0, 2, 3, 1).reshape(L, groups, cout // groups).permute(1, 0, 2)
        parts = [table_grads(core.tables, Xg[i], Wg[i], Gg[i], need_x, True) for i in range(groups)] \
            if Xg.device.type == "cpu" else [table_grads(core.tables, Xg, Wg, Gg, need_x, True)]
        dcols = torch.stack([p[0] for p in parts]) if (need_x and len(parts) > 1) else (parts[0][0] if need_x else None)
        dwg = torch.stack([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        dw = (dwg.transpose(1, 2).reshape(cout, cg, kh, kw) * sx).to(torch.float32)
        dx = None
        if need_x:
            dcols = (dcols.reshape(groups, L, kg).permute(1, 0, 2).reshape(n, -1, c * kh * kw) * sw)
            dx = F.fold(dcols.transpose(1, 2).to(torch.float32), (h, wd_), (kh, kw), dilation=dilation,
                        padding=padding, stride=stride)
        return dx, dw, None, None


class QatConv2d(nn.Conv2d):
    @classmethod
    def from_conv(cls, conv, core):
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str) and conv.padding != "valid":
            raise ValueError(f"datapath training supports Conv2d with zero padding given as numbers "
                             f"(or 'valid'); got {conv}")
        m = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
                device=conv.weight.device, dtype=conv.weight.dtype)
        m.load_state_dict(conv.state_dict())
        m.core = core
        return m

    def _args(self):
        pad = (0, 0) if isinstance(self.padding, str) else tuple(self.padding)
        return tuple(self.stride), pad, tuple(self.dilation), self.groups

    def forward(self, x):
        stride, padding, dilation, groups = self._args()
        if self.core.lam < 1.0:
            return F.conv2d(x, _anneal(self.weight, self.core), self.bias, stride, padding, dilation, groups)
        y = _QatConvFn.apply(x, self.weight, self.core, self._args())
        if self.bias is not None:
            y = y + self.bias[None, :, None, None]
        return y

    def to_plain(self):
        m = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                      padding=self.padding, dilation=self.dilation, groups=self.groups, bias=self.bias is not None,
                      device=self.weight.device, dtype=self.weight.dtype)
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
