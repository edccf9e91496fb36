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

from .datapath import parse
from .potq_core import ErrOnlyFn, PotConvFn, PotCore, PotLinearFn, PotMatmulFn, PrcClipFn
from .potq_products import conv_backward_data, conv_weight_grad, recode, rescale_rows
from .potq_quant import ERR_ROUNDINGS, ROUNDINGS, stochastic_codes

__all__ = ["PotqMode", "PotLinear", "PotConv2d", "PotMatmul", "recode", "rescale_rows", "ptq", "record",
           "conv_backward_data", "conv_weight_grad", "stochastic_codes", "ERR_SCALES", "ERR_ROUNDING",
           "FWD_ROUNDING", "KINDS"]

ERR_ROUNDING = ERR_ROUNDINGS
FWD_ROUNDING = ROUNDINGS
ERR_SCALES = ("tensor", "sample")
DEFAULT_WGRAD_EXP_BITS = 5
DEFAULT_RAND_BITS = 16
KINDS = ("linear", "conv2d", "matmul")


class _PotMixin:
    def _setup(self, core: PotCore, prc: bool, prc_min: float):
        self.core = core
        self.prc = prc
        self.prc_min = prc_min
        if prc:
            self.prc_ratio = nn.Parameter(torch.ones((), device=self.weight.device))

    def _clip(self, x):
        if not self.prc:
            return x
        c = self.prc_ratio * x.detach().abs().max()
        return PrcClipFn.apply(x, c)

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
            y = ErrOnlyFn.apply(x2, self.weight, self.bias, self.core, ("linear",))
        else:
            y = PotLinearFn.apply(x2, self.weight, self.bias, self.core)
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
            return ErrOnlyFn.apply(self._clip(x), self.weight, self.bias, self.core, ("conv2d", geo))
        return PotConvFn.apply(self._clip(x), self.weight, self.bias, self.core, geo)

    def to_plain(self):
        m = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride, padding=self.padding,
                      dilation=self.dilation, groups=self.groups, bias=self.bias is not None, device=self.weight.device)
        m.load_state_dict({k: v for k, v in self.state_dict().items() if k != "prc_ratio"})
        return m


class PotMatmul(nn.Module):
    """forward(a, b) = a @ b (batched, broadcast) with both operands PoT activations (each its own
    scale) and all three products on the MF-MAC. No weights: no WBC, no PRC."""
    prc = False

    def __init__(self, core: PotCore):
        super().__init__()
        self.core = core

    def forward(self, a, b):
        if self.core.fwd_rounding == "fp32":
            return ErrOnlyFn.apply(a, b, None, self.core, ("matmul",))
        return PotMatmulFn.apply(a, b, self.core)

    def clamp_ratio(self):
        pass

    def to_plain(self):
        from .products import Matmul          # the float product net.graph / net.census know
        return Matmul()


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
        core = PotCore(self, len(self.layers))
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
