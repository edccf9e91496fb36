"""ALS-POTQ training: weights, activations and errors as power-of-two codes, all three products
of every covered product on the bit-exact MF-MAC (net/potq_products.py over net.kernels), on
torch tensors on the model's device (quantization, products, dequantization and the
straight-through backward never leave it).

Per Linear layer (Y = X W^T + b; X: B x K, W: N x K), per Conv2d (any stride, padding, dilation,
groups: the same through convolutions on the MAC) and per activation x activation product
(PotMatmul, Y = A . B, batched):

    forward        Y_int  = MAC(Xq, Wq^T)         Y  = Y_int * sx * sw + b
    backward-data  dX_int = MAC(Eq, Wq)           dX = dX_int * se * sw
    weight-grad    dW_int = MAC(Eq^T, Xq)         dW = dW_int * se * sx
    (PotMatmul: dA = MAC(Eq, Bq^T) se sb, dB = MAC(Aq^T, Eq) sa se)

Forward quantizer (`fwd_rounding`): "log" (golden.pot.quantize: nearest power in the log domain,
threshold sqrt(2) 2^n; the default) or "linear" (golden.luq.nearest: threshold 1.5 2^n, the MSE
optimum). Error quantizer (`err_rounding`, net/potq_quant.py):
    nearest     golden.pot.quantize (the default)
    stochastic  golden.pot.quantize's scale (the top may clip) with linear-domain stochastic
                rounding and stochastic underflow
    luq         LUQ (golden.luq.luq, Chmiel et al. 2023): scale ceil(log2 max) - top (nothing
                clipped), linear-domain stochastic rounding, stochastic underflow: E[q(e)] = e
                (up to 2^-rand_bits of a level); the hardware unit is rtl/luq.py (luq-quant)
Stochastic modes draw rand_bits-bit words per element from a torch.Generator on the device,
seeded from the run's seed (torch.initial_seed() at convert) and the layer's index.

The error datapath (`errors`) defaults to the forward one; "fp32" keeps float errors (forward-only
PoT); an mfmac spec with a larger exp_bits widens the errors' range (W and X recoded to it).
Adaptive layer-wise scaling: one power-of-two scale per tensor and step from its current maximum
(per sample for the errors with err_scale="sample": the weight gradient then runs on a wider
MF-MAC, wgrad_exp_bits, with every row's codes rescaled to one common scale by an exponent add,
potq_products.rescale_rows). WBC (weight bias correction, in the float epilogue) and PRC
(learned clipping ratio of the activations) apply to the weight layers.

Statistics per epoch: per layer the % of nonzero errors quantized to the zero code, wrapped
accumulations, the PRC ratios, and with per-sample scales the % of errors the weight gradient
loses. They are summed on the device and read once per epoch.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from golden import pot

from . import potq_products as P
from .datapath import parse
from .potq_products import conv_backward_data, conv_weight_grad, recode, rescale_rows
from .potq_quant import (ERR_ROUNDINGS, ROUNDINGS, code_values, lookup, pot_codes, random_words, recode_table,
                         sr_codes, stochastic_codes)

__all__ = ["PotqMode", "PotLinear", "PotConv2d", "PotMatmul", "recode", "rescale_rows", "ptq", "record",
           "conv_backward_data", "conv_weight_grad", "stochastic_codes", "ERR_SCALES", "ERR_ROUNDING",
           "FWD_ROUNDING", "KINDS"]

ERR_ROUNDING = ERR_ROUNDINGS
FWD_ROUNDING = ROUNDINGS
ERR_SCALES = ("tensor", "sample")
DEFAULT_WGRAD_EXP_BITS = 5
DEFAULT_RAND_BITS = 16
KINDS = ("linear", "conv2d", "matmul")


class _LayerStats:
    """Counters summed on the device (tensors or ints), read as ints."""
    NAMES = ("err_nonzero", "err_underflow", "wgrad_flushed", "overflows")

    def __init__(self):
        self.reset()

    def reset(self):
        self._c = dict.fromkeys(self.NAMES, 0)

    def add(self, name, v):
        self._c[name] = self._c[name] + v

    def __getattr__(self, name):
        if name in _LayerStats.NAMES:
            return int(self.__dict__["_c"][name])
        raise AttributeError(name)

    def summary(self):
        nz = self.err_nonzero
        return (100.0 * self.err_underflow / nz if nz else 0.0), self.overflows

    def wgrad_lost_pct(self):
        nz = self.err_nonzero
        return 100.0 * (self.err_underflow + self.wgrad_flushed) / nz if nz else 0.0


def _np(v):
    if isinstance(v, torch.Tensor):
        return float(v) if v.ndim == 0 else v.detach().cpu().numpy().astype(
            np.int64 if not v.is_floating_point() else np.float64)
    return v


def _pow2(k):
    return torch.ldexp(torch.ones(k.shape, dtype=torch.float64, device=k.device), k)


def _deq(acc, scale, dtype=torch.float32):
    """int64 accumulations x a power-of-two scale (float64 on the way: exact)."""
    return (acc.to(torch.float64) * scale).to(dtype)


class _PotCore:
    """What a PoT layer knows of its mode (plain attributes)."""

    def __init__(self, mode, index: int):
        self.dp, self.dp_err, self.dp_wgrad, self.wbc = mode.dp, mode.dp_err, mode.dp_wgrad, mode.wbc
        self.fwd_rounding, self.err_rounding, self.rand_bits = mode.fwd_rounding, mode.err_rounding, mode.rand_bits
        self.seed = [mode.seed, index]
        self.gens = {}
        self.stats = _LayerStats()
        self.last = None
        self.record = False

    def vals(self, codes, dp=None):
        return lookup(code_values((dp or self.dp).params["exp_bits"], codes.device), codes)

    def quantize_x(self, x, sync: bool = True):
        q, k = pot_codes(x.detach(), self.dp.params["exp_bits"], self.fwd_rounding, sync=sync)
        return q, _pow2(k)

    def quantize_w(self, w):
        q, s = self.quantize_x(w, sync=False)
        delta = None
        if self.wbc:
            axes = tuple(range(1, w.ndim))
            delta = w.detach().double().mean(dim=axes) - (self.vals(q).double() * s).mean(dim=axes)
        return q, s, delta

    def _gen(self, device):
        g = self.gens.get(str(device))
        if g is None:
            g = self.gens[str(device)] = torch.Generator(device=device)
            g.manual_seed(int(np.random.SeedSequence(self.seed).generate_state(1, np.uint64)[0] >> 1))
        return g

    def quantize_err(self, g):
        """(codes, scale) of the error (scale B x 1... with per-sample scales); counts underflow."""
        g = g.detach()
        E = self.dp_err.params["exp_bits"]
        axis = 0 if self.dp_wgrad is not None else None
        r = None
        if self.err_rounding == "nearest":
            q, k = pot_codes(g, E, "log", axis, sync=axis is None)
        else:
            r = random_words(g.shape, self.rand_bits, self._gen(g.device), g.device)
            q, k = sr_codes(g, E, r, self.rand_bits, "luq" if self.err_rounding == "luq" else "log", axis,
                            sync=axis is None)
        nz = g != 0
        self.stats.add("err_nonzero", nz.sum())
        self.stats.add("err_underflow", (nz & ((q & ((1 << E) - 1)) == 0)).sum())
        if self.record:
            self.last.update({"e_float": _np(g), "r_err": None if r is None else _np(r), "k_err": _np(k)})
        return q.to(torch.uint8), _pow2(k)

    def backward_codes(self, q, dp=None):
        ef, ee = self.dp.params["exp_bits"], (dp or self.dp_err).params["exp_bits"]
        return q if ef == ee else lookup(recode_table(ef, ee, q.device), q).to(torch.uint8)

    def wgrad_operands(self, eq, se, xq):
        """(datapath, error codes, activation codes, error scale) of the weight-gradient product."""
        if self.dp_wgrad is None:
            return self.dp_err, eq, self.backward_codes(xq), se
        ks = torch.frexp(se.reshape(-1))[1].to(torch.int64) - 1
        ew, k_ref, flushed = rescale_rows(eq, ks, self.dp_err.params["exp_bits"], self.dp_wgrad.params["exp_bits"])
        self.stats.add("wgrad_flushed", flushed)
        return self.dp_wgrad, ew.to(torch.uint8), self.backward_codes(xq, self.dp_wgrad), _pow2(k_ref)

    def keep(self, **kw):
        if self.record:
            self.last.update({k: (v if k == "dp_wgrad" else _np(v)) for k, v in kw.items()})


class _PotLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, core: _PotCore):
        xq, sx = core.quantize_x(x)
        wq, sw, delta = core.quantize_w(w)
        yi = P.mm(core.dp, xq, wq.t(), core.stats)
        y = yi.to(torch.float64) * (sx * sw)
        if delta is not None:
            y = y + (core.vals(xq).double() * sx).sum(1, keepdim=True) * delta[None, :]
        out = y.to(x.dtype)
        if b is not None:
            out = out + b.detach()
        ctx.core, ctx.saved = core, (xq, sx, wq, sw, delta, b is not None)
        if core.record:
            core.last = {}
            core.keep(xq=xq, wq=wq, y_int=yi, sx=sx, sw=sw)
        return out

    @staticmethod
    def backward(ctx, gy):
        core = ctx.core
        xq, sx, wq, sw, delta, has_b = ctx.saved
        if core.dp_err is None:      # float errors: STE through the weight/activation quantizers
            wd = core.vals(wq).double() * sw + (delta[:, None] if delta is not None else 0.0)
            g = gy.double()
            dx, dw, db = g @ wd, g.t() @ (core.vals(xq).double() * sx), g.sum(0)
        else:
            eq, se = core.quantize_err(gy)
            dpe = core.dp_err
            wqe = core.backward_codes(wq)
            # the first layer's input needs no error: its backward-data product is skipped
            dxi = P.mm(dpe, eq, wqe, core.stats) if ctx.needs_input_grad[0] else torch.zeros(xq.shape, dtype=torch.int64, device=xq.device)
            dpw, ew, xqw, sew = core.wgrad_operands(eq, se, xq)
            dwi = P.mm(dpw, ew.t(), xqw, core.stats)
            ed = core.vals(eq, dpe).double() * se
            dx = dxi.to(torch.float64) * (se * sw)
            if delta is not None:
                dx = dx + (ed @ delta)[:, None]
            dw = dwi.to(torch.float64) * (sew * sx)
            db = ed.sum(0)
            core.keep(eq=eq, se=se, wq_e=wqe, xq_e=xqw, ew=ew, se_w=sew, dp_wgrad=dpw, dx_int=dxi, dw_int=dwi)
        f = gy.dtype
        return dx.to(f), dw.to(f), (db.to(f) if has_b else None), None


class _PotConvFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, core: _PotCore, geo):
        stride, padding, dilation, groups = geo
        xq, sx = core.quantize_x(x)
        wq, sw, delta = core.quantize_w(w)
        yi = P.conv_forward(core.dp, xq, wq, stride, padding, dilation, groups, core.stats)
        y = yi.to(torch.float64) * (sx * sw)
        if delta is not None:
            y = y + _box(core.vals(xq).double() * sx, w.shape, geo) * delta[None, :, None, None]
        out = y.to(x.dtype)
        if b is not None:
            out = out + b.detach()[None, :, None, None]
        ctx.core, ctx.geo = core, geo
        ctx.saved = (xq, sx, wq, sw, delta, b is not None, tuple(x.shape))
        if core.record:
            core.last = {}
            core.keep(xq=xq, wq=wq, y_int=yi, sx=sx, sw=sw)
        return out

    @staticmethod
    def backward(ctx, gy):
        core, geo = ctx.core, ctx.geo
        stride, padding, dilation, groups = geo
        xq, sx, wq, sw, delta, has_b, xshape = ctx.saved
        kh, kw = wq.shape[2], wq.shape[3]
        if core.dp_err is None:
            wd = core.vals(wq).double() * sw
            if delta is not None:
                wd = wd + delta[:, None, None, None]
            g = gy.double()
            kw_ = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
            dx = torch.nn.grad.conv2d_input(xshape, wd, g, **kw_) if ctx.needs_input_grad[0] else torch.zeros(xshape, device=g.device)
            dw = torch.nn.grad.conv2d_weight(core.vals(xq).double() * sx, wd.shape, g, **kw_)
            db = g.sum(dim=(0, 2, 3))
        else:
            eq, se = core.quantize_err(gy)
            dpe = core.dp_err
            wqe = core.backward_codes(wq)
            dxi = (conv_backward_data(dpe, eq, wqe, stride, padding, xshape[2:], core.stats, dilation, groups)
                   if ctx.needs_input_grad[0] else torch.zeros(xshape, dtype=torch.int64, device=eq.device))
            dpw, ew, xqw, sew = core.wgrad_operands(eq, se, xq)
            dwi = conv_weight_grad(dpw, ew, xqw, kh, kw, stride, padding, core.stats, dilation, groups)
            ed = core.vals(eq, dpe).double() * se
            dx = dxi.to(torch.float64) * (se * sw)
            if delta is not None and ctx.needs_input_grad[0]:
                G = groups
                s = (ed * delta[None, :, None, None]).reshape(ed.shape[0], G, -1, *ed.shape[2:]).sum(2)
                ones = torch.ones(G, 1, kh, kw, dtype=torch.float64, device=ed.device)
                corr = torch.nn.grad.conv2d_input((xshape[0], G) + tuple(xshape[2:]), ones, s, stride=stride,
                                                  padding=padding, dilation=dilation, groups=G)
                dx = dx + corr.repeat_interleave(xshape[1] // G, dim=1)
            dw = dwi.to(torch.float64) * (sew * sx)
            db = ed.sum(dim=(0, 2, 3))
            core.keep(eq=eq, se=se, wq_e=wqe, xq_e=xqw, ew=ew, se_w=sew, dp_wgrad=dpw, dx_int=dxi, dw_int=dwi)
        f = gy.dtype
        return dx.to(f), dw.to(f), (db.to(f) if has_b else None), None, None


def _box(xd, wshape, geo):
    """Per output position and channel: the sum of the dequantized inputs under the kernel window
    of the channel's group (WBC's delta_c multiplies it)."""
    stride, padding, dilation, G = geo
    cout, _, kh, kw = wshape
    n, c, h, w = xd.shape
    s = xd.reshape(n, G, c // G, h, w).sum(2)
    ones = torch.ones(G, 1, kh, kw, dtype=xd.dtype, device=xd.device)
    box = F.conv2d(s, ones, stride=stride, padding=padding, dilation=dilation, groups=G)
    return box.repeat_interleave(cout // G, dim=1)


class _PotMatmulFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, core: _PotCore):
        aq, sa = core.quantize_x(a)
        bq, sb = core.quantize_x(b)
        yi = P.bmm(core.dp, aq, bq, core.stats)
        ctx.core, ctx.saved = core, (aq, sa, bq, sb, a.shape, b.shape)
        if core.record:
            core.last = {}
            core.keep(xq=aq, wq=bq, y_int=yi, sx=sa, sw=sb)
        return _deq(yi, sa * sb, a.dtype)

    @staticmethod
    def backward(ctx, gy):
        core = ctx.core
        aq, sa, bq, sb, ashape, bshape = ctx.saved
        if core.dp_err is None:
            g = gy.double()
            da = g @ (core.vals(bq).double() * sb).transpose(-1, -2)
            db = (core.vals(aq).double() * sa).transpose(-1, -2) @ g
        else:
            eq, se = core.quantize_err(gy)
            dpe = core.dp_err
            bqe, aqe = core.backward_codes(bq), core.backward_codes(aq)
            dai = P.bmm(dpe, eq, bqe.transpose(-1, -2), core.stats)
            dbi = P.bmm(dpe, aqe.transpose(-1, -2), eq, core.stats)
            da, db = dai.to(torch.float64) * (se * sb), dbi.to(torch.float64) * (sa * se)
            core.keep(eq=eq, se=se, dx_int=dai, dw_int=dbi)
        return da.sum_to_size(ashape).to(gy.dtype), db.sum_to_size(bshape).to(gy.dtype), None


class _ErrOnlyFn(torch.autograd.Function):
    """fwd_rounding="fp32" (the error half of the loss split): the product in float, its error
    quantized to PoT (the mode's error quantizer) before the float backward products."""

    @staticmethod
    def forward(ctx, x, w, b, core: _PotCore, op):
        ctx.core, ctx.op, ctx.has_b = core, op, b is not None
        ctx.save_for_backward(x, w, b if b is not None else torch.zeros(()))
        with torch.no_grad():
            return _float_op(op, x, w, b)

    @staticmethod
    def backward(ctx, gy):
        x, w, b = ctx.saved_tensors
        core = ctx.core
        eq, se = core.quantize_err(gy)
        ed = (core.vals(eq, core.dp_err).double() * se).to(gy.dtype)
        ins = [t.detach().requires_grad_(True) for t in (x, w)] + ([b.detach().requires_grad_(True)] if ctx.has_b else [])
        with torch.enable_grad():
            y = _float_op(ctx.op, ins[0], ins[1], ins[2] if ctx.has_b else None)
            grads = torch.autograd.grad(y, ins, ed)
        return grads[0], grads[1], (grads[2] if ctx.has_b else None), None, None


def _float_op(op, x, w, b):
    if op[0] == "linear":
        return F.linear(x, w, b)
    if op[0] == "conv2d":
        stride, padding, dilation, groups = op[1]
        return F.conv2d(x, w, b, stride, padding, dilation, groups)
    return torch.matmul(x, w)


class _PotMixin:
    def _setup(self, core: _PotCore, prc: bool, prc_min: float):
        self.core = core
        self.prc = prc
        self.prc_min = prc_min
        if prc:
            self.prc_ratio = nn.Parameter(torch.ones((), device=self.weight.device))

    def _clip(self, x):
        if not self.prc:
            return x
        c = self.prc_ratio * x.detach().abs().max()
        return torch.maximum(torch.minimum(x, c), -c)

    def clamp_ratio(self):
        if self.prc:
            with torch.no_grad():
                self.prc_ratio.clamp_(self.prc_min, 1.0)


class PotLinear(nn.Linear, _PotMixin):
    """nn.Linear whose three products run on the MF-MAC (see the module doc)."""

    @classmethod
    def from_linear(cls, lin: nn.Linear, core, prc, prc_min):
        m = cls(lin.in_features, lin.out_features, bias=lin.bias is not None, device=lin.weight.device,
                dtype=lin.weight.dtype)
        m.load_state_dict(lin.state_dict())
        m._setup(core, prc, prc_min)
        return m

    def forward(self, x):
        lead = x.shape[:-1]
        x2 = self._clip(x).reshape(-1, x.shape[-1])
        if self.core.fwd_rounding == "fp32":
            y = _ErrOnlyFn.apply(x2, self.weight, self.bias, self.core, ("linear",))
        else:
            y = _PotLinearFn.apply(x2, self.weight, self.bias, self.core)
        return y.reshape(*lead, -1)

    def to_plain(self):
        m = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None, device=self.weight.device)
        m.load_state_dict({k: v for k, v in self.state_dict().items() if k != "prc_ratio"})
        return m


class PotConv2d(nn.Conv2d, _PotMixin):
    """nn.Conv2d (any stride, padding, dilation, groups; zero padding) on the MF-MAC."""

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, core, prc, prc_min):
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            if isinstance(conv.padding, str) and conv.padding == "valid":
                pass
            else:
                raise ValueError(f"ALS-POTQ supports Conv2d with zero padding given as numbers; got {conv}")
        pad = (0, 0) if isinstance(conv.padding, str) else conv.padding
        m = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=pad,
                dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None, device=conv.weight.device,
                dtype=conv.weight.dtype)
        m.load_state_dict(conv.state_dict())
        m._setup(core, prc, prc_min)
        return m

    def forward(self, x):
        geo = (tuple(self.stride), tuple(self.padding), tuple(self.dilation), self.groups)
        if self.core.fwd_rounding == "fp32":
            return _ErrOnlyFn.apply(self._clip(x), self.weight, self.bias, self.core, ("conv2d", geo))
        return _PotConvFn.apply(self._clip(x), self.weight, self.bias, self.core, geo)

    def to_plain(self):
        m = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride, padding=self.padding,
                      dilation=self.dilation, groups=self.groups, bias=self.bias is not None, device=self.weight.device)
        m.load_state_dict({k: v for k, v in self.state_dict().items() if k != "prc_ratio"})
        return m


class PotMatmul(nn.Module):
    """forward(a, b) = a @ b (batched, broadcast) with both operands PoT activations (each its own
    scale) and all three products on the MF-MAC. No weights: no WBC, no PRC."""
    prc = False

    def __init__(self, core: _PotCore):
        super().__init__()
        self.core = core

    def forward(self, a, b):
        if self.core.fwd_rounding == "fp32":
            return _ErrOnlyFn.apply(a, b, None, self.core, ("matmul",))
        return _PotMatmulFn.apply(a, b, self.core)

    def clamp_ratio(self):
        pass

    def to_plain(self):
        return _Matmul()


class _Matmul(nn.Module):
    def forward(self, a, b):
        return torch.matmul(a, b)


def _error_datapath(dp, errors):
    if errors is None:
        return dp
    if isinstance(errors, str) and errors.strip() == "fp32":
        return None
    de = parse(errors)
    if de.kind == "fp32":
        return None
    if de.kind != "mfmac":
        raise ValueError(f"errors {errors!r}: ALS-POTQ errors are fp32 or an mfmac datapath "
                         f"(mfmac[,exp_bits=E][,acc_bits=N]), got kind {de.kind}")
    if de.params["exp_bits"] < dp.params["exp_bits"]:
        raise ValueError(f"errors {errors!r}: exp_bits must be at least the forward datapath's "
                         f"({dp.params['exp_bits']}), got {de.params['exp_bits']}")
    return de


def _wgrad_datapath(dp_err, err_scale, wgrad_exp_bits):
    """The weight gradient's MF-MAC with per-sample error scales (None: the error datapath's)."""
    if err_scale not in ERR_SCALES:
        raise ValueError(f"err_scale must be one of {', '.join(ERR_SCALES)}, got {err_scale!r}")
    if err_scale == "tensor":
        if wgrad_exp_bits is not None:
            raise ValueError("wgrad_exp_bits applies to err_scale=sample only")
        return None
    if dp_err is None:
        raise ValueError("err_scale=sample scales PoT errors: it needs an mfmac error datapath, not fp32")
    ee = dp_err.params["exp_bits"]
    e = DEFAULT_WGRAD_EXP_BITS if wgrad_exp_bits is None else wgrad_exp_bits
    if isinstance(e, bool) or not isinstance(e, (int, np.integer)) or not ee <= e <= 5:
        raise ValueError(f"wgrad_exp_bits must be an integer in {ee}..5 (at least the errors' exp_bits), "
                         f"got {wgrad_exp_bits!r}")
    return parse(f"mfmac,exp_bits={int(e)}")


class PotqMode:
    """The ALS-POTQ training mode (net.train calls convert, start_epoch, after_step, end_epoch;
    graph conversion calls make).

    Options: wbc (default True), prc (default True), prc_min (default 1/16), fwd_rounding (log |
    linear | fp32: a float forward, only the errors PoT, the error half of the loss split), err_rounding (nearest | stochastic | luq), rand_bits (the stochastic modes' random
    word, default 16), err_scale (tensor | sample), wgrad_exp_bits (err_scale=sample)."""

    def __init__(self, dp, errors=None, wbc: bool = True, prc: bool = True, prc_min: float = 1 / 16,
                 err_rounding: str = "nearest", err_scale: str = "tensor", wgrad_exp_bits: int | None = None,
                 fwd_rounding: str = "log", rand_bits: int = DEFAULT_RAND_BITS):
        dp = parse(dp)
        if dp.kind != "mfmac":
            raise ValueError(f"ALS-POTQ needs an mfmac datapath, got {dp.spec!r}")
        for name, v in (("wbc", wbc), ("prc", prc)):
            if not isinstance(v, bool):
                raise ValueError(f"{name} must be True or False, got {v!r}")
        if not isinstance(prc_min, (int, float)) or isinstance(prc_min, bool) or not 0 < prc_min <= 1:
            raise ValueError(f"prc_min must be a number in (0, 1], got {prc_min!r}")
        if err_rounding not in ERR_ROUNDING:
            raise ValueError(f"err_rounding must be one of {', '.join(ERR_ROUNDING)}, got {err_rounding!r}")
        if fwd_rounding not in FWD_ROUNDING:
            raise ValueError(f"fwd_rounding must be one of {', '.join(FWD_ROUNDING)}, got {fwd_rounding!r}")
        if isinstance(rand_bits, bool) or not isinstance(rand_bits, (int, np.integer)) or not 1 <= rand_bits <= 30:
            raise ValueError(f"rand_bits must be an integer in 1..30, got {rand_bits!r}")
        self.dp = dp
        self.dp_err = _error_datapath(dp, errors)
        if fwd_rounding == "fp32" and self.dp_err is None:
            raise ValueError("fwd_rounding=fp32 (float forward) with float errors is FP32 training: give PoT errors")
        if err_rounding != "nearest" and self.dp_err is None:
            raise ValueError(f"err_rounding={err_rounding} rounds PoT errors: it needs an mfmac error datapath, not fp32")
        self.err_rounding, self.fwd_rounding, self.rand_bits = err_rounding, fwd_rounding, int(rand_bits)
        self.err_scale = err_scale
        self.dp_wgrad = _wgrad_datapath(self.dp_err, err_scale, wgrad_exp_bits)
        self.wbc, self.prc, self.prc_min = wbc, prc, float(prc_min)
        self.layers = {}
        self.seed = torch.initial_seed() % (1 << 63)

    def describe(self) -> dict:
        return {"kind": "als-potq", "datapath": self.dp.canonical,
                "errors": self.dp_err.canonical if self.dp_err is not None else "fp32",
                "wbc": self.wbc, "prc": self.prc, "err_rounding": self.err_rounding,
                "fwd_rounding": self.fwd_rounding, "rand_bits": self.rand_bits, "err_scale": self.err_scale,
                "weight_grad_datapath": self.product_datapaths()["weight_grad"],
                "scale": "per tensor, per step: 2^(round(log2 max) - top)" + (
                    "; errors 2^(ceil(log2 max) - top)" if self.err_rounding == "luq" else "") + (
                    "; errors per sample, the weight gradient at one common scale" if self.dp_wgrad else "")}

    def product_datapaths(self) -> dict:
        """The canonical datapath of each product of a training step (fp32: float errors)."""
        back = self.dp_err.canonical if self.dp_err is not None else "fp32"
        return {"forward": self.dp.canonical, "backward_data": back,
                "weight_grad": self.dp_wgrad.canonical if self.dp_wgrad is not None else back}

    def make(self, kind: str, module: nn.Module | None = None, name: str | None = None) -> nn.Module:
        """The ALS-POTQ module replacing one product of a model: kind "linear" (module: an
        nn.Linear), "conv2d" (an nn.Conv2d) or "matmul" (no module: a PotMatmul, forward(a, b)).
        Registered under `name` (default kindN) for the statistics."""
        if kind not in KINDS:
            raise ValueError(f"ALS-POTQ products are {', '.join(KINDS)}; got kind {kind!r}")
        core = _PotCore(self, len(self.layers))
        if kind == "matmul":
            new = PotMatmul(core)
        elif kind == "linear" and isinstance(module, nn.Linear):
            new = PotLinear.from_linear(module, core, self.prc, self.prc_min)
        elif kind == "conv2d" and isinstance(module, nn.Conv2d):
            new = PotConv2d.from_conv(module, core, self.prc, self.prc_min)
        else:
            raise ValueError(f"ALS-POTQ kind {kind} needs an nn.{'Linear' if kind == 'linear' else 'Conv2d'}, "
                             f"got {type(module).__name__}")
        self.layers[name or f"{kind}{len(self.layers)}"] = new
        return new

    def convert(self, model: nn.Module) -> nn.Module:
        m = copy.deepcopy(model)
        self.layers = {}
        self.seed = torch.initial_seed() % (1 << 63)     # net.train seeds torch before converting
        for name, mod in list(m.named_modules()):
            if not name or type(mod) not in (nn.Linear, nn.Conv2d):
                continue
            new = self.make("linear" if type(mod) is nn.Linear else "conv2d", mod, name)
            parent_name, _, attr = name.rpartition(".")
            setattr(m.get_submodule(parent_name) if parent_name else m, attr, new)
        if not self.layers:
            raise ValueError("ALS-POTQ: the model has no nn.Linear or nn.Conv2d layer to train on the MF-MAC")
        return m

    def set_epochs(self, epochs: int) -> None:
        pass

    def start_epoch(self, epoch: int) -> None:
        for layer in self.layers.values():
            layer.core.stats.reset()

    def after_step(self, model) -> None:
        for layer in self.layers.values():
            layer.clamp_ratio()

    def end_epoch(self) -> dict:
        under, over, ratio = {}, 0, {}
        for name, layer in self.layers.items():
            pct, ov = layer.core.stats.summary()
            under[name] = pct
            over += ov
            if layer.prc:
                ratio[name] = float(layer.prc_ratio.detach())
        rec = {"error_underflow_pct": under, "acc_overflows": over}
        if self.dp_wgrad is not None:
            rec["wgrad_error_lost_pct"] = {name: layer.core.stats.wgrad_lost_pct() for name, layer in self.layers.items()}
        if ratio:
            rec["prc_ratio"] = ratio
        return rec


def ptq(model: nn.Module, datapath="mfmac", wbc: bool = False, fwd_rounding: str = "log") -> nn.Module:
    """Post-training PoT quantization (no training): a float model's layers as PoT layers."""
    return PotqMode(datapath, wbc=wbc, prc=False, fwd_rounding=fwd_rounding).convert(model)


def record(layer, on: bool = True) -> None:
    """Keep the codes and integer accumulations of a PoT layer's three products of every step in
    layer.core.last as NumPy (proof tests; off by default: a host copy)."""
    layer.core.record = on
