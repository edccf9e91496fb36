"""The ALS-POTQ step on torch tensors (net/potq.py's layers call these): PotCore (what a PoT layer
knows of its mode: quantizers, error datapath, statistics, the record of the last step) and the
autograd functions of the three products per kind - PotLinearFn, PotConvFn (any stride, padding,
dilation, groups; WBC per group), PotMatmulFn (batched, broadcast) and ErrOnlyFn (a float forward
with PoT errors: the loss split's error half). See net/potq.py for the arithmetic."""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from . import potq_values as V
from .potq_products import rescale_rows
from .potq_quant import code_values, lookup, pot_codes, pot_values, random_words, sr_codes

__all__ = ["PotCore", "LayerStats", "PotLinearFn", "PotConvFn", "PotMatmulFn", "ErrOnlyFn", "PrcClipFn"]

class LayerStats:
    """Counters summed on the device (tensors or ints), read as ints."""
    NAMES = ("err_nonzero", "err_underflow", "wgrad_flushed", "overflows")

    def __init__(self):
        self.reset()

    def reset(self):
        self._c = dict.fromkeys(self.NAMES, 0)

    def add(self, name, v):
        self._c[name] = self._c[name] + v

    def __getattr__(self, name):
        if name in LayerStats.NAMES:
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


def _nonzeros(t):
    """The number of nonzero elements (a 0-d tensor): |sign| summed in float64 (exact), several
    times faster on the CPU than a bool comparison or count_nonzero (torch.sign(NaN) is 0: a NaN
    error, a diverged step net.train rolls back, counts as zero)."""
    return torch.sign(t).abs_().sum(dtype=torch.float64).to(torch.int64)


def _pow2(k):
    return torch.ldexp(torch.ones(k.shape, dtype=torch.float64, device=k.device), k)


def _deq(acc, scale, dtype=torch.float32):
    """int64 accumulations x a power-of-two scale (float64 on the way: exact)."""
    return (acc.to(torch.float64) * scale).to(dtype)


class PotCore:
    """What a PoT layer knows of its mode (plain attributes)."""

    def __init__(self, mode, index: int):
        self.dp, self.dp_err, self.dp_wgrad, self.wbc = mode.dp, mode.dp_err, mode.dp_wgrad, mode.wbc
        self.fwd_rounding, self.err_rounding, self.rand_bits = mode.fwd_rounding, mode.err_rounding, mode.rand_bits
        self.seed = [mode.seed, index]
        self.gens = {}
        self.stats = LayerStats()
        self.last = None
        self.record = False

    def vals(self, codes, dp=None):
        return lookup(code_values((dp or self.dp).params["exp_bits"], codes.device), codes)

    def codes(self, vals, dp=None):
        return V.codes(vals, (dp or self.dp).params["exp_bits"])

    def quantize_x(self, x, sync: bool = True):
        """(values, scale): the PoT codes' integer values (net/potq_values.py's operands)."""
        v, k = pot_values(x.detach(), self.dp.params["exp_bits"], self.fwd_rounding, sync=sync)
        return v, _pow2(k)

    def quantize_w(self, w):
        v, s = self.quantize_x(w, sync=False)
        delta = None
        if self.wbc:
            axes = tuple(range(1, w.ndim))
            delta = w.detach().double().mean(dim=axes) - (v.double() * s).mean(dim=axes)
        return v, s, delta

    def _gen(self, device):
        g = self.gens.get(str(device))
        if g is None:
            g = self.gens[str(device)] = torch.Generator(device=device)
            g.manual_seed(int(np.random.SeedSequence(self.seed).generate_state(1, np.uint64)[0] >> 1))
        return g

    def quantize_err(self, g):
        """(values, scale, codes or None) of the error (scale B x 1... with per-sample scales);
        counts underflow."""
        g = g.detach()
        E = self.dp_err.params["exp_bits"]
        axis = 0 if self.dp_wgrad is not None else None
        r = q = None
        if self.err_rounding == "nearest" and axis is None:
            v, k = pot_values(g, E, "log", sync=True)
        else:
            if self.err_rounding == "nearest":
                q, k = pot_codes(g, E, "log", axis, sync=False)
            else:
                r = random_words(g.shape, self.rand_bits, self._gen(g.device), g.device)
                q, k = sr_codes(g, E, r, self.rand_bits, "luq" if self.err_rounding == "luq" else "log", axis,
                                sync=axis is None)
            q = q.to(torch.uint8)
            v = self.vals(q, self.dp_err)
        nz = _nonzeros(g)                                # a nonzero value has a nonzero error
        self.stats.add("err_nonzero", nz)
        self.stats.add("err_underflow", nz - _nonzeros(v))
        if self.record:
            self.last.update({"e_float": _np(g), "r_err": None if r is None else _np(r), "k_err": _np(k)})
        return v, _pow2(k), q

    def wgrad_operands(self, ev, se, eq, xv):
        """(datapath, error values, activation values, error scale, error codes or None) of the
        weight-gradient product (values: net/potq_values.py)."""
        if self.dp_wgrad is None:
            return self.dp_err, ev, xv, se, eq
        if eq is None:
            eq = self.codes(ev, self.dp_err)
        ks = torch.frexp(se.reshape(-1))[1].to(torch.int64) - 1
        ew, k_ref, flushed = rescale_rows(eq, ks, self.dp_err.params["exp_bits"], self.dp_wgrad.params["exp_bits"])
        self.stats.add("wgrad_flushed", flushed)
        return self.dp_wgrad, V.values(ew, self.dp_wgrad.params["exp_bits"]), xv, _pow2(k_ref), ew.to(torch.uint8)

    def keep(self, **kw):
        if self.record:
            self.last.update({k: (v if k == "dp_wgrad" else _np(v)) for k, v in kw.items()})

    def keep_forward(self, xv, wv, yi, sx, sw):
        """The record of a forward product (a fresh record: the backward adds to it)."""
        if self.record:
            self.last = {}
            self.keep(xq=self.codes(xv), wq=self.codes(wv), y_int=yi.to(torch.int64), sx=sx, sw=sw)

    def keep_backward(self, ev, eq, se, wv, xv, dpw, ewq, sew, dxi, dwi):
        """The record of a backward step (codes of the operands in each product's datapath)."""
        if self.record:
            eq = self.codes(ev, self.dp_err) if eq is None else eq
            self.keep(eq=eq, se=se, wq_e=V.codes(wv, self.dp_err.params["exp_bits"]),
                      xq_e=V.codes(xv, dpw.params["exp_bits"]), ew=eq if ewq is None else ewq, se_w=sew, dp_wgrad=dpw,
                      dx_int=dxi.to(torch.int64), dw_int=dwi.to(torch.int64))


class PotLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, core: PotCore):
        xv, sx = core.quantize_x(x)
        wv, sw, delta = core.quantize_w(w)
        yi = V.mm(core.dp, xv, wv.t(), core.stats)
        y = yi.to(torch.float64) * (sx * sw)
        if delta is not None:
            y = y + xv.sum(1, keepdim=True).double() * sx * delta[None, :]      # integer sums: exact
        out = y.to(x.dtype)
        if b is not None:
            out = out + b.detach()
        ctx.core, ctx.saved = core, (xv, sx, wv, sw, delta, b is not None)
        core.keep_forward(xv, wv, yi, sx, sw)
        return out

    @staticmethod
    def backward(ctx, gy):
        core = ctx.core
        xv, sx, wv, sw, delta, has_b = ctx.saved
        if core.dp_err is None:      # float errors: STE through the weight/activation quantizers
            wd = wv.double() * sw + (delta[:, None] if delta is not None else 0.0)
            g = gy.double()
            dx, dw, db = g @ wd, g.t() @ (xv.double() * sx), g.sum(0)
        else:
            ev, se, eq = core.quantize_err(gy)
            dpe = core.dp_err
            # the first layer's input needs no error: its backward-data product is skipped
            dxi = V.mm(dpe, ev, wv, core.stats) if ctx.needs_input_grad[0] else torch.zeros(xv.shape, device=xv.device)
            dpw, ew, xw, sew, ewq = core.wgrad_operands(ev, se, eq, xv)
            dwi = V.mm(dpw, ew.t(), xw, core.stats)
            ed = ev.double() * se
            dx = dxi.to(torch.float64) * (se * sw)
            if delta is not None:
                dx = dx + (ed @ delta)[:, None]
            dw = dwi.to(torch.float64) * (sew * sx)
            db = ed.sum(0)
            core.keep_backward(ev, eq, se, wv, xv, dpw, ewq, sew, dxi, dwi)
        f = gy.dtype
        return dx.to(f), dw.to(f), (db.to(f) if has_b else None), None


class PotConvFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, core: PotCore, geo):
        stride, padding, dilation, groups = geo
        xv, sx = core.quantize_x(x)
        wv, sw, delta = core.quantize_w(w)
        yi = V.conv_forward(core.dp, xv, wv, stride, padding, dilation, groups, core.stats)
        y = yi.to(torch.float64, copy=True).mul_(sx * sw)
        if delta is not None:
            y = _add_per_group(y, _box(xv, w.shape, geo).double() * sx, delta, geo[3])
        out = y.to(x.dtype)
        if b is not None:
            out = out + b.detach()[None, :, None, None]
        ctx.core, ctx.geo = core, geo
        ctx.saved = (xv, sx, wv, sw, delta, b is not None, tuple(x.shape))
        core.keep_forward(xv, wv, yi, sx, sw)
        return out

    @staticmethod
    def backward(ctx, gy):
        core, geo = ctx.core, ctx.geo
        stride, padding, dilation, groups = geo
        xv, sx, wv, sw, delta, has_b, xshape = ctx.saved
        kh, kw = wv.shape[2], wv.shape[3]
        if core.dp_err is None:
            wd = wv.double() * sw
            if delta is not None:
                wd = wd + delta[:, None, None, None]
            g = gy.double()
            kw_ = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
            dx = torch.nn.grad.conv2d_input(xshape, wd, g, **kw_) if ctx.needs_input_grad[0] else torch.zeros(xshape, device=g.device)
            dw = torch.nn.grad.conv2d_weight(xv.double() * sx, wd.shape, g, **kw_)
            db = g.sum(dim=(0, 2, 3))
        else:
            ev, se, eq = core.quantize_err(gy)
            dpe = core.dp_err
            dxi = (V.conv_backward_data(dpe, ev, wv, stride, padding, xshape[2:], core.stats, dilation, groups)
                   if ctx.needs_input_grad[0] else torch.zeros(xshape, device=ev.device))
            dpw, ew, xw, sew, ewq = core.wgrad_operands(ev, se, eq, xv)
            dwi = V.conv_weight_grad(dpw, ew, xw, kh, kw, stride, padding, core.stats, dilation, groups)
            dx = dxi.to(torch.float64, copy=True).mul_(se * sw)
            if delta is not None and ctx.needs_input_grad[0]:
                G = groups
                # (ev se) delta_c, each product rounded once either way (se: a power of two)
                s = (ev.double() * (se * delta[None, :, None, None])).reshape(ev.shape[0], G, -1, *ev.shape[2:]).sum(2)
                corr = _wbc_input_corr(s, xshape, kh, kw, geo)              # N x G x H x W, per group
                dx.view(xshape[0], G, xshape[1] // G, *xshape[2:]).add_(corr[:, :, None])
            dw = dwi.to(torch.float64) * (sew * sx)
            # integer sums, exact in float64: sum(ev) * se is sum(ev * se) bit for bit
            db = ev.sum(dim=(0, 2, 3), dtype=torch.float64) * se if se.numel() == 1 else \
                (ev.double() * se).sum(dim=(0, 2, 3))
            core.keep_backward(ev, eq, se, wv, xv, dpw, ewq, sew, dxi, dwi)
        f = gy.dtype
        return dx.to(f), dw.to(f), (db.to(f) if has_b else None), None, None


def _wbc_input_corr(s, xshape, kh, kw, geo):
    """WBC's share of the input gradient, N x G x H x W: the full convolution of s (per group, the
    errors times delta summed over the group's channels) with an all-ones kh x kw kernel, float64;
    grouped (depthwise) on the CPU in float32 by oneDNN's transposed convolution, 5-10x faster
    there than torch's float64 grouped one (a float part of the epilogue, not a MAC product: it
    rounds s and its sums to float32, ~1e-7 relative, before the float32 gradient is formed)."""
    stride, padding, dilation, G = geo
    if s.device.type == "cpu" and V.DIRECT_CONV and G > 1:
        ones = torch.ones(G, 1, kh, kw, dtype=torch.float32)
        return V.full_conv(s.float(), ones, stride, padding, xshape[2:], dilation, G)
    ones = torch.ones(G, 1, kh, kw, dtype=s.dtype, device=s.device)
    return torch.nn.grad.conv2d_input((xshape[0], G) + tuple(xshape[2:]), ones, s, stride=stride, padding=padding,
                                      dilation=dilation, groups=G)


def _box(xv, wshape, geo):
    """Per output position and group: the sum of the input code values under the kernel window of
    the group's channels, N x G x Ho x Wo (integers: exact in float32 below 2^24; WBC multiplies it
    by sx and the channel's delta_c)."""
    stride, padding, dilation, G = geo
    n, c, h, w = xv.shape
    s = xv.reshape(n, G, c // G, h, w).sum(2) if c != G else xv
    ones = torch.ones(G, 1, wshape[2], wshape[3], dtype=xv.dtype, device=xv.device)
    if xv.device.type == "cpu" and V.DIRECT_CONV and xv.dtype == torch.float32:     # direct: exact sums
        return V.conv_direct(s, ones, _pair2(stride), _pair2(padding), _pair2(dilation), G)
    return F.conv2d(s, ones, stride=stride, padding=padding, dilation=dilation, groups=G)


def _pair2(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _add_per_group(y, box, delta, G):
    """y (N x Cout x Ho x Wo) + box (N x G x Ho x Wo, group of channel c) * delta_c."""
    n, cout = y.shape[:2]
    y.view(n, G, cout // G, *y.shape[2:]).add_(box[:, :, None] * delta.reshape(1, G, cout // G, 1, 1))
    return y


class PotMatmulFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, core: PotCore):
        av, sa = core.quantize_x(a)
        bv, sb = core.quantize_x(b)
        yi = V.bmm(core.dp, av, bv, core.stats)
        ctx.core, ctx.saved = core, (av, sa, bv, sb, a.shape, b.shape)
        core.keep_forward(av, bv, yi, sa, sb)
        return _deq(yi, sa * sb, a.dtype)

    @staticmethod
    def backward(ctx, gy):
        core = ctx.core
        av, sa, bv, sb, ashape, bshape = ctx.saved
        if core.dp_err is None:
            g = gy.double()
            da = g @ (bv.double() * sb).transpose(-1, -2)
            db = (av.double() * sa).transpose(-1, -2) @ g
        else:
            ev, se, eq = core.quantize_err(gy)
            dpe = core.dp_err
            dai = V.bmm(dpe, ev, bv.transpose(-1, -2), core.stats)
            dbi = V.bmm(dpe, av.transpose(-1, -2), ev, core.stats)
            da, db = dai.to(torch.float64) * (se * sb), dbi.to(torch.float64) * (sa * se)
            core.keep(eq=core.codes(ev, dpe) if eq is None else eq, se=se, dx_int=dai.to(torch.int64),
                      dw_int=dbi.to(torch.int64))
        return da.sum_to_size(ashape).to(gy.dtype), db.sum_to_size(bshape).to(gy.dtype), None


class PrcClipFn(torch.autograd.Function):
    """PRC's clip max(min(x, c), -c) (c >= 0, 0-d) with the gradients torch's minimum / maximum give
    it, ties included (a tie halves the gradient between the two operands), computed with float
    passes instead of their bool masks (tests/test_potq_values.py: equal to the torch composite):
        fmin = [x < c] + [x == c]/2 = (1 + sign(c - x))/2,  fmax = (1 + sign(min(x, c) + c))/2
        dx = g fmax fmin,  dc = sum(g fmax (1 - fmin)) - sum(g (1 - fmax))."""

    @staticmethod
    def forward(ctx, x, c):
        ctx.save_for_backward(x, c)
        return torch.maximum(torch.minimum(x, c), -c)

    @staticmethod
    def backward(ctx, g):
        x, c = ctx.saved_tensors
        fmin = (c - x).sign_().add_(1.0).mul_(0.5)
        fmax = torch.minimum(x, c).add_(c).sign_().add_(1.0).mul_(0.5)
        gm = g * fmax
        gx = gm * fmin if ctx.needs_input_grad[0] else None
        gc = None
        if ctx.needs_input_grad[1]:
            gc = (gm * fmin.neg_().add_(1.0)).sum() - (g * fmax.neg_().add_(1.0)).sum()
        return gx, gc


class ErrOnlyFn(torch.autograd.Function):
    """fwd_rounding="fp32" (the error half of the loss split): the product in float, its error
    quantized to PoT (the mode's error quantizer) before the float backward products."""

    @staticmethod
    def forward(ctx, x, w, b, core: PotCore, op):
        ctx.core, ctx.op, ctx.has_b = core, op, b is not None
        ctx.save_for_backward(x, w, b if b is not None else torch.zeros(()))
        with torch.no_grad():
            return _float_op(op, x, w, b)

    @staticmethod
    def backward(ctx, gy):
        x, w, b = ctx.saved_tensors
        core = ctx.core
        ev, se, _ = core.quantize_err(gy)
        ed = (ev.double() * se).to(gy.dtype)
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

