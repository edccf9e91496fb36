"""ALS-POTQ training: weights, activations and errors as power-of-two codes, all three products
of every linear layer on the bit-exact MF-MAC kernel (net.kernels.matmul / conv2d).

Per Linear layer (Y = X W^T + b; X: B x K, W: N x K) and per Conv2d layer (the same through
im2col / a full convolution):

    forward        Y_int  = MAC(Xq, Wq^T)         Y  = Y_int * sx * sw + b
    backward-data  dX_int = MAC(Eq, Wq)           dX = dX_int * se * sw
    weight-grad    dW_int = MAC(Eq^T, Xq)         dW = dW_int * se * sx

Xq, Wq, Eq are PoT codes of Datapath.quantize (golden/pot.py) and MAC is net.kernels on the
mfmac datapath (sign XOR, exponent add, shift, accumulate wrapped at acc_bits). The error
datapath (`errors`) defaults to the forward one; "fp32" keeps float errors (forward-only PoT);
an mfmac spec with a larger exp_bits widens the errors' range: the backward products then run on
that MF-MAC, with W and X recoded to its exp_bits (same values, same scales).

Adaptive layer-wise scaling: every tensor gets one power-of-two scale 2^k per layer and per
step, from the tensor's current maximum (the quantizer's k = round(log2 max) - (2^E - 2), the
largest magnitude on the top code). With PRC the maximum is replaced by the clipping threshold.

Per-sample error scales (err_scale="sample"): the error gets one power-of-two scale se_b = 2^k_b
per sample b (per row of a Linear layer's B x N error, per C x H x W slice of a conv error), each
row quantized by the same golden quantizer on its own maximum, so a confidently classified
sample's small errors keep their codes instead of underflowing against the batch's largest row.

    backward-data  dX_int = MAC(Eq, Wq)           dX_b = dX_int_b * se_b * sw
    weight-grad    dW_int = MAC(Ew^T, Xw)         dW   = dW_int * 2^k_ref * sx

Backward-data: the scale of row b factors out of row b's accumulations, so the MAC is the
tensor-scale one and only the epilogue's per-row power of two changes. Weight gradient: the sum
runs over b, so the rows must share one scale inside the MAC: rescale_rows rewrites every row's
codes to the common scale 2^k_ref by an exponent add (e + k_b - k_ref, an adder on the code's
exponent field, no multiplication) into the codes of a wider MF-MAC (wgrad_exp_bits, default 5),
whose larger exponent range holds the rows' spread: k_ref = max(min k_b, max k_b - slack), slack =
max_exp(wgrad_exp_bits) - max_exp(error exp_bits), so the largest row's top code still fits and a
row more than `slack` octaves below the largest loses only its codes that fall under the smallest
power (flushed to the zero code and counted). X is recoded to the wider exp_bits (same values).

Weight Bias Correction (wbc): PoT rounding in the log domain and the underflow of small weights
shift each output channel's weight mean. WBC measures the shift per output channel
delta_c = mean(W_c) - mean(Wq_c * sw) and adds delta_c * sum_k x_k to the output (and
sum_c delta_c * e_c to every input error): the effective weights Wq*sw + delta have exactly the
float weights' channel means. The term is computed outside the MAC array, in the float epilogue
that already applies the scales and the bias (one row sum of the layer's input + one
multiplication per output, against K multiplication-free MACs per output).

Parameterized Ratio Clipping (prc): the activations entering each layer are clipped to
+-alpha * max|x| before quantization, alpha a learned per-layer parameter (PACT-like: the
gradient reaching alpha is the sum of the clipped elements' errors times sign(x) * max|x|),
kept in [prc_min, 1]. The scale stays a power of two (it comes from the quantizer on the clipped
tensor); the clip is a comparison outside the MAC.

Statistics per epoch (history): per layer, the percentage of nonzero error elements that
underflow to the zero code, and the number of accumulations that wrapped at acc_bits; with
per-sample scales also the percentage of nonzero error elements the weight gradient loses
(underflow at quantization plus the flush at the common scale).
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from golden import pot

from . import kernels
from .datapath import parse

__all__ = ["PotqMode", "PotLinear", "PotConv2d", "recode", "rescale_rows", "ptq", "record", "conv_backward_data",
           "conv_weight_grad", "ERR_SCALES"]

_NO_WRAP_BITS = 62
ERR_ROUNDING = ("nearest", "stochastic")
ERR_SCALES = ("tensor", "sample")
DEFAULT_WGRAD_EXP_BITS = 5


def recode(codes, exp_from: int, exp_to: int) -> np.ndarray:
    """PoT codes of exp_bits exp_from as codes of exp_bits exp_to >= exp_from (same values)."""
    v = pot.decode(codes, exp_from)
    mag = np.abs(v)
    e = np.where(mag == 0, 0, np.log2(np.maximum(mag, 1)).astype(np.int64) + 1)
    return pot.encode((v < 0).astype(np.int64), e, exp_to)


def rescale_rows(codes, ks, exp_from: int, exp_to: int):
    """Rows of PoT codes (row b: codes of exp_bits exp_from with scale 2^ks[b]) as codes of exp_bits
    exp_to >= exp_from sharing one scale 2^k_ref: each nonzero exponent field e becomes
    e + ks[b] - k_ref (an exponent add), with k_ref = max(min ks, max ks - slack), slack =
    max_exp(exp_to) - max_exp(exp_from), so no field passes the top; fields that fall below 1 (under
    the smallest power at the common scale) become the zero code.

    codes: B x ... (row b = codes[b]); ks: B integers. Returns (codes B x ..., k_ref, number of
    nonzero codes flushed to zero). value(out) * 2^k_ref == value(codes[b]) * 2^ks[b] for every
    code not flushed."""
    c = np.asarray(codes, np.int64)
    ks = np.asarray(ks, np.int64).reshape(-1)
    if c.shape[0] != ks.size:
        raise ValueError(f"rescale_rows: {c.shape[0]} rows but {ks.size} scales")
    if exp_to < exp_from:
        raise ValueError(f"rescale_rows: exp_to must be at least exp_from ({exp_from}), got {exp_to}")
    if ks.size == 0:
        return c.copy(), 0, 0
    slack = pot.max_exp(exp_to) - pot.max_exp(exp_from)
    k_ref = int(max(ks.min(), ks.max() - slack))
    shift = (ks - k_ref).reshape((-1,) + (1,) * (c.ndim - 1))
    e = c & ((1 << exp_from) - 1)
    s = (c >> exp_from) & 1
    e2 = np.where(e == 0, 0, e + shift)
    flushed = int(((e != 0) & (e2 < 1)).sum())
    e2 = np.where(e2 < 1, 0, e2)
    return pot.encode(s & (e2 != 0), e2, exp_to), k_ref, flushed


def stochastic_codes(t, scale: float, exp_bits: int, rng) -> np.ndarray:
    """PoT codes of t / scale (scale = 2^k from Datapath.quantize) by unbiased stochastic rounding:
    a magnitude u in [2^n, 2^(n+1)) becomes 2^(n+1) with probability (u - 2^n) / 2^n, else 2^n;
    u < 1 becomes 1 with probability u, else 0 (zero code); u at or above the top power keeps the
    top code. E[value(code) * scale] = t below the top code, so small errors survive on average."""
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


class _LayerStats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.err_nonzero = 0
        self.err_underflow = 0
        self.wgrad_flushed = 0     # per-sample scales: nonzero codes flushed at the common scale
        self.overflows = 0

    def summary(self):
        pct = 100.0 * self.err_underflow / self.err_nonzero if self.err_nonzero else 0.0
        return pct, self.overflows

    def wgrad_lost_pct(self):
        """Percentage of nonzero errors that add nothing to the weight gradient."""
        lost = self.err_underflow + self.wgrad_flushed
        return 100.0 * lost / self.err_nonzero if self.err_nonzero else 0.0


_VALUE_TABLES = {}


def _vals(dp, codes) -> np.ndarray:
    """dp.values(codes) by a lookup in the table of every code's value (one gather)."""
    e = dp.params["exp_bits"]
    t = _VALUE_TABLES.get(e)
    if t is None:
        t = _VALUE_TABLES[e] = dp.values(np.arange(1 << (e + 1)))
    return t[codes]


def _mm(dp, A, B, stats: _LayerStats | None) -> np.ndarray:
    """kernels.matmul with wrap accounting: when a row of |A| sums times max|B| could pass
    the accumulator's range, the unwrapped sums are compared and differing outputs counted."""
    Y = kernels.matmul(dp, A, B)
    if stats is not None:
        lim = 1 << (dp.acc_bits - 1)
        bound = np.abs(_vals(dp, A)).sum(axis=1).max(initial=0) * np.abs(_vals(dp, B)).max(initial=0)
        if bound >= lim:
            wide = parse(f"mfmac,exp_bits={dp.params['exp_bits']},acc_bits={_NO_WRAP_BITS}")
            stats.overflows += int((kernels.matmul(wide, A, B) != Y).sum())
    return Y


def _f(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, np.float32))


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


class _PotCore:
    """What a PoT layer knows of its mode (not a Module: plain attributes)."""

    def __init__(self, dp, dp_err, wbc, err_rng=None, dp_wgrad=None):
        self.dp, self.dp_err, self.wbc = dp, dp_err, wbc
        self.err_rng = err_rng          # a Generator: stochastic rounding of the errors
        self.dp_wgrad = dp_wgrad        # per-sample error scales: the weight gradient's wider MF-MAC
        self.stats = _LayerStats()
        self.last = None        # the last step's codes and accumulations (for proofs)
        self.record = False

    def quantize_x(self, x):
        return self.dp.quantize(_np(x), "x")

    def quantize_w(self, w):
        q, s = self.dp.quantize(_np(w), "w")
        delta = None
        if self.wbc:
            wf = _np(w).astype(np.float64)
            axes = tuple(range(1, wf.ndim))
            delta = wf.mean(axis=axes) - (_vals(self.dp, q) * s).mean(axis=axes)
        return q, s, delta

    def quantize_err(self, g):
        """(codes, scale) of the error; counts underflow (nonzero -> zero code). Per-sample
        scales: scale is B x 1 (x 1 x 1), one power of two per sample from its own maximum."""
        gn = _np(g)
        q, s = self.dp_err.quantize(gn, "x", axis=0 if self.dp_wgrad is not None else None)
        if self.err_rng is not None:
            q = stochastic_codes(gn, s, self.dp_err.params["exp_bits"], self.err_rng)
        nz = gn != 0
        self.stats.err_nonzero += int(nz.sum())
        self.stats.err_underflow += int((nz & (_vals(self.dp_err, q) == 0)).sum())
        return q, s

    def backward_codes(self, q, dp=None):
        """Forward codes as codes of the error datapath (or `dp`; recoded when its exp_bits is wider)."""
        ef, ee = self.dp.params["exp_bits"], (dp or self.dp_err).params["exp_bits"]
        return q if ef == ee else recode(q, ef, ee)

    def wgrad_operands(self, eq, se, xq):
        """(datapath, error codes, activation codes, error scale) of the weight-gradient product:
        the error datapath's codes and scale, or (per-sample scales) every sample's error codes
        rescaled to one common scale on the wider MF-MAC (rescale_rows) and X recoded to it."""
        if self.dp_wgrad is None:
            return self.dp_err, eq, self.backward_codes(xq), se
        ks = np.round(np.log2(np.asarray(se, np.float64).reshape(-1))).astype(np.int64)
        ew, k_ref, flushed = rescale_rows(eq, ks, self.dp_err.params["exp_bits"], self.dp_wgrad.params["exp_bits"])
        self.stats.wgrad_flushed += flushed
        return self.dp_wgrad, ew, self.backward_codes(xq, self.dp_wgrad), float(np.ldexp(1.0, k_ref))


class _PotLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, core: _PotCore):
        xq, sx = core.quantize_x(x)
        wq, sw, delta = core.quantize_w(w)
        yi = _mm(core.dp, xq, wq.T, core.stats)
        y = yi * (sx * sw)
        xd = _vals(core.dp, xq) * sx
        if delta is not None:
            y = y + xd.sum(axis=1, keepdims=True) * delta[None, :]
        out = _f(y)
        if b is not None:
            out = out + b.detach()
        ctx.core = core
        ctx.saved = (xq, sx, wq, sw, delta, b is not None)
        if core.record:
            core.last = {"xq": xq, "wq": wq, "y_int": yi, "sx": sx, "sw": sw}
        return out

    @staticmethod
    def backward(ctx, gy):
        core = ctx.core
        xq, sx, wq, sw, delta, has_b = ctx.saved
        if core.dp_err is None:      # float errors: STE through the weight/activation quantizers
            wd = _vals(core.dp, wq) * sw + (delta[:, None] if delta is not None else 0.0)
            xd = _vals(core.dp, xq) * sx
            g = _np(gy).astype(np.float64)
            dx, dw, db = g @ wd, g.T @ xd, g.sum(axis=0)
        else:
            eq, se = core.quantize_err(gy)
            dpe = core.dp_err
            wqe = core.backward_codes(wq)
            # the first layer's input needs no error: its backward-data product is skipped
            dxi = _mm(dpe, eq, wqe, core.stats) if ctx.needs_input_grad[0] else np.zeros(xq.shape, np.int64)
            dpw, ew, xqw, sew = core.wgrad_operands(eq, se, xq)
            dwi = _mm(dpw, ew.T, xqw, core.stats)
            ed = _vals(dpe, eq) * se
            dx = dxi * (se * sw)
            if delta is not None:
                dx = dx + (ed @ delta)[:, None]
            dw = dwi * (sew * sx)
            db = ed.sum(axis=0)
            if core.record:
                core.last.update({"e_float": _np(gy), "eq": eq, "se": se, "wq_e": wqe, "xq_e": xqw, "ew": ew, "se_w": sew,
                                  "dp_wgrad": dpw, "dx_int": dxi, "dw_int": dwi})
        return _f(dx), _f(dw), (_f(db) if has_b else None), None


def _dilate_pad(a, stride, pad_lo, pad_hi_h, pad_hi_w):
    """Insert stride-1 zero codes between elements and pad (zero code 0); negative pads crop."""
    n, c, h, w = a.shape
    if stride > 1:
        d = np.zeros((n, c, (h - 1) * stride + 1, (w - 1) * stride + 1), a.dtype)
        d[:, :, ::stride, ::stride] = a
        a = d
    def _pads(lo, hi):
        return max(lo, 0), max(hi, 0)
    ph, pw = _pads(pad_lo, pad_hi_h), _pads(pad_lo, pad_hi_w)
    a = np.pad(a, ((0, 0), (0, 0), ph, pw))
    ch = slice(max(-pad_lo, 0), a.shape[2] - max(-pad_hi_h, 0))
    cw = slice(max(-pad_lo, 0), a.shape[3] - max(-pad_hi_w, 0))
    return a[:, :, ch, cw]


def conv_backward_data(dp, eq, wq, stride, padding, in_hw, stats=None):
    """dX_int (N x C x H x W) = the full convolution of the error codes with the flipped
    weight codes: each input position's accumulation runs on the MAC (K = Cout*kh*kw)."""
    cout, c, kh, kw = wq.shape
    H, W = in_hw
    ho, wo = eq.shape[2], eq.shape[3]
    lo = kh - 1 - padding
    # rows needed: H + kh - 1 in the dilated-padded error; extra rows at the bottom are zeros
    hi_h = H + kh - 1 - lo - ((ho - 1) * stride + 1)
    hi_w = W + kw - 1 - (kw - 1 - padding) - ((wo - 1) * stride + 1)
    if kh != kw:
        raise ValueError("PoT conv backward supports square kernels only")
    e = _dilate_pad(eq, stride, lo, hi_h, hi_w)
    wf = np.ascontiguousarray(wq[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))   # C x Cout x kh x kw
    cols = kernels.im2col(e, kh, kw, 1, 0)
    yi = _mm(dp, cols, wf.reshape(c, -1).T, stats)
    n = eq.shape[0]
    return yi.reshape(n, H, W, c).transpose(0, 3, 1, 2)


def conv_weight_grad(dp, eq, xq, kh, kw, stride, padding, stats=None):
    """dW_int (Cout x C x kh x kw) = E^T . im2col(X): one accumulation over N*Ho*Wo per weight."""
    n, cout, ho, wo = eq.shape
    cols = kernels.im2col(xq, kh, kw, stride, padding)                  # (N*Ho*Wo) x (C*kh*kw)
    emat = eq.transpose(0, 2, 3, 1).reshape(-1, cout)                    # (N*Ho*Wo) x Cout
    yi = _mm(dp, np.ascontiguousarray(emat.T), cols, stats)
    return yi.reshape(cout, -1, kh, kw)


class _PotConvFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, core: _PotCore, stride: int, padding: int):
        xq, sx = core.quantize_x(x)
        wq, sw, delta = core.quantize_w(w)
        cols = kernels.im2col(xq, w.shape[2], w.shape[3], stride, padding)
        yi_mat = _mm(core.dp, cols, wq.reshape(wq.shape[0], -1).T, core.stats)
        n = x.shape[0]
        ho = kernels.conv_out_size(x.shape[2], w.shape[2], stride, padding)
        wo = kernels.conv_out_size(x.shape[3], w.shape[3], stride, padding)
        yi = yi_mat.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)
        y = yi * (sx * sw)
        xd = _vals(core.dp, xq) * sx
        if delta is not None:
            box = F.conv2d(torch.from_numpy(xd.sum(axis=1, keepdims=True)),
                           torch.ones(1, 1, w.shape[2], w.shape[3], dtype=torch.float64),
                           stride=stride, padding=padding).numpy()
            y = y + box * delta[None, :, None, None]
        out = _f(y)
        if b is not None:
            out = out + b.detach()[None, :, None, None]
        ctx.core, ctx.stride, ctx.padding = core, stride, padding
        ctx.saved = (xq, sx, wq, sw, delta, b is not None, tuple(x.shape))
        if core.record:
            core.last = {"xq": xq, "wq": wq, "y_int": yi, "sx": sx, "sw": sw}
        return out

    @staticmethod
    def backward(ctx, gy):
        core, stride, padding = ctx.core, ctx.stride, ctx.padding
        xq, sx, wq, sw, delta, has_b, xshape = ctx.saved
        kh, kw = wq.shape[2], wq.shape[3]
        if core.dp_err is None:
            wd = _vals(core.dp, wq) * sw
            if delta is not None:
                wd = wd + delta[:, None, None, None]
            xd = torch.from_numpy(_vals(core.dp, xq) * sx)
            g = gy.detach().double()
            wt = torch.from_numpy(wd)
            dx = (torch.nn.grad.conv2d_input(xshape, wt, g, stride=stride, padding=padding).numpy()
                  if ctx.needs_input_grad[0] else np.zeros(xshape))
            dw = torch.nn.grad.conv2d_weight(xd, wt.shape, g, stride=stride, padding=padding).numpy()
            db = g.sum(dim=(0, 2, 3)).numpy()
        else:
            eq, se = core.quantize_err(gy)
            dpe = core.dp_err
            wqe = core.backward_codes(wq)
            dxi = (conv_backward_data(dpe, eq, wqe, stride, padding, xshape[2:], core.stats)
                   if ctx.needs_input_grad[0] else np.zeros(xshape, np.int64))
            dpw, ew, xqw, sew = core.wgrad_operands(eq, se, xq)
            dwi = conv_weight_grad(dpw, ew, xqw, kh, kw, stride, padding, core.stats)
            ed = _vals(dpe, eq) * se
            dx = dxi * (se * sw)
            if delta is not None:
                s = torch.from_numpy(np.einsum("nchw,c->nhw", ed, delta)[:, None])
                corr = torch.nn.grad.conv2d_input((xshape[0], 1) + tuple(xshape[2:]),
                                                  torch.ones(1, 1, kh, kw, dtype=torch.float64), s,
                                                  stride=stride, padding=padding).numpy()
                dx = dx + corr
            dw = dwi * (sew * sx)
            db = ed.sum(axis=(0, 2, 3))
            if core.record:
                core.last.update({"e_float": _np(gy), "eq": eq, "se": se, "wq_e": wqe, "xq_e": xqw, "ew": ew, "se_w": sew,
                                  "dp_wgrad": dpw, "dx_int": dxi, "dw_int": dwi})
        return _f(dx), _f(dw), (_f(db) if has_b else None), None, None, None


class _PotMixin:
    def _setup(self, core: _PotCore, prc: bool, prc_min: float):
        self.core = core
        self.prc = prc
        self.prc_min = prc_min
        if prc:
            self.prc_ratio = nn.Parameter(torch.ones(()))

    def _clip(self, x):
        if not self.prc:
            return x
        m = x.detach().abs().max()
        c = self.prc_ratio * m
        return torch.maximum(torch.minimum(x, c), -c)

    def clamp_ratio(self):
        if self.prc:
            with torch.no_grad():
                self.prc_ratio.clamp_(self.prc_min, 1.0)


class PotLinear(nn.Linear, _PotMixin):
    """nn.Linear whose three products run on the MF-MAC (see the module doc)."""

    @classmethod
    def from_linear(cls, lin: nn.Linear, core, prc, prc_min):
        m = cls(lin.in_features, lin.out_features, bias=lin.bias is not None)
        m.load_state_dict(lin.state_dict())
        m._setup(core, prc, prc_min)
        return m

    def forward(self, x):
        lead = x.shape[:-1]
        y = _PotLinearFn.apply(self._clip(x).reshape(-1, x.shape[-1]), self.weight, self.bias, self.core)
        return y.reshape(*lead, -1)

    def to_plain(self):
        m = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        m.weight.data.copy_(self.weight.data)
        if self.bias is not None:
            m.bias.data.copy_(self.bias.data)
        return m


class PotConv2d(nn.Conv2d, _PotMixin):
    """nn.Conv2d (groups 1, dilation 1, square kernel) on the MF-MAC through im2col."""

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, core, prc, prc_min):
        k = conv.kernel_size
        if conv.groups != 1 or conv.dilation != (1, 1) or k[0] != k[1] or conv.stride[0] != conv.stride[1] \
                or not isinstance(conv.padding, tuple) or conv.padding[0] != conv.padding[1] \
                or conv.padding_mode != "zeros":
            raise ValueError(f"ALS-POTQ supports Conv2d with groups=1, dilation=1, square kernel, equal "
                             f"stride/padding and zero padding; got {conv}")
        m = cls(conv.in_channels, conv.out_channels, k, stride=conv.stride, padding=conv.padding,
                bias=conv.bias is not None)
        m.load_state_dict(conv.state_dict())
        m._setup(core, prc, prc_min)
        return m

    def forward(self, x):
        return _PotConvFn.apply(self._clip(x), self.weight, self.bias, self.core,
                                self.stride[0], self.padding[0])

    def to_plain(self):
        m = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                      padding=self.padding, bias=self.bias is not None)
        m.weight.data.copy_(self.weight.data)
        if self.bias is not None:
            m.bias.data.copy_(self.bias.data)
        return m


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
    """The ALS-POTQ training mode (net.train calls convert, start_epoch, after_step, end_epoch).

    Options: wbc (Weight Bias Correction, default True), prc (Parameterized Ratio Clipping,
    default True), prc_min (the smallest clipping ratio, default 1/16), err_rounding (nearest or
    stochastic), err_scale ("tensor": one power-of-two error scale per tensor, the default;
    "sample": one per sample, the weight gradient on an MF-MAC of wgrad_exp_bits, default 5)."""

    def __init__(self, dp, errors=None, wbc: bool = True, prc: bool = True, prc_min: float = 1 / 16,
                 err_rounding: str = "nearest", err_scale: str = "tensor", wgrad_exp_bits: int | None = None):
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
        self.dp = dp
        self.dp_err = _error_datapath(dp, errors)
        if err_rounding == "stochastic" and self.dp_err is None:
            raise ValueError("err_rounding=stochastic rounds PoT errors: it needs an mfmac error datapath, not fp32")
        self.err_rounding = err_rounding
        self.err_scale = err_scale
        self.dp_wgrad = _wgrad_datapath(self.dp_err, err_scale, wgrad_exp_bits)
        self.wbc, self.prc, self.prc_min = wbc, prc, float(prc_min)
        self.layers = {}

    def describe(self) -> dict:
        return {"kind": "als-potq", "datapath": self.dp.canonical,
                "errors": self.dp_err.canonical if self.dp_err is not None else "fp32",
                "wbc": self.wbc, "prc": self.prc, "err_rounding": self.err_rounding, "err_scale": self.err_scale,
                "weight_grad_datapath": self.product_datapaths()["weight_grad"],
                "scale": "per tensor, per step: 2^(round(log2 max) - top)" + (
                    "; errors per sample, the weight gradient at one common scale" if self.dp_wgrad else "")}

    def product_datapaths(self) -> dict:
        """The canonical datapath of each product of a training step (fp32: float errors)."""
        back = self.dp_err.canonical if self.dp_err is not None else "fp32"
        return {"forward": self.dp.canonical, "backward_data": back,
                "weight_grad": self.dp_wgrad.canonical if self.dp_wgrad is not None else back}

    def convert(self, model: nn.Module) -> nn.Module:
        m = copy.deepcopy(model)
        self.layers = {}
        seed = torch.initial_seed() % (1 << 63)     # net.train seeds torch before converting
        for name, mod in list(m.named_modules()):
            if not name or type(mod) not in (nn.Linear, nn.Conv2d):
                continue
            rng = np.random.default_rng([seed, len(self.layers)]) if self.err_rounding == "stochastic" else None
            core = _PotCore(self.dp, self.dp_err, self.wbc, rng, self.dp_wgrad)
            new = (PotLinear.from_linear(mod, core, self.prc, self.prc_min) if type(mod) is nn.Linear
                   else PotConv2d.from_conv(mod, core, self.prc, self.prc_min))
            parent_name, _, attr = name.rpartition(".")
            setattr(m.get_submodule(parent_name) if parent_name else m, attr, new)
            self.layers[name] = new
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


def ptq(model: nn.Module, datapath="mfmac", wbc: bool = False) -> nn.Module:
    """Post-training PoT quantization (no training): a float model's layers as PoT layers."""
    return PotqMode(datapath, wbc=wbc, prc=False).convert(model)


def record(layer, on: bool = True) -> None:
    """Keep the codes and integer accumulations of a PoT layer's three products of every step in
    layer.core.last (proof tests; off by default)."""
    layer.core.record = on
