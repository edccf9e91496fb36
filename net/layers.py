"""PyTorch layers whose products run on an ecomac datapath, bit-exactly.

    EmuLinear(linear, datapath)      EmuConv2d(conv, datapath)      (from float layers)
    convert(model, spec_or_mapping, calib=x)  -> a deep copy with nn.Linear/nn.Conv2d swapped
    calibrate(model, x)              (re)calibrate every emulated layer's activation scale
    emulated_layers(model)           {name: layer}       uncovered_layers(model) -> [(name, type)]

Forward of an emulated layer (datapath dp = net.datapath.parse(spec)):

  1. weights -> codes: dp.quantize(W, "w", axis=0) — one scale per output channel (default,
     `per_channel=True`) or one per tensor. Per-channel scales are legal on EVERY integer
     datapath (int8, asm, mfmac, approx, lut) because scales never enter the MAC: they multiply
     the integer accumulations afterwards. mfmac and asm-w scales are powers of two, per channel
     as per tensor (golden.datapath's quantizers);
  2. activations -> codes with the layer's calibrated scale: the golden quantizer
     (dp.quantize(., "x")) applied to the input clipped to the observer's max-abs, with that
     max-abs appended so the quantizer's per-tensor scale is the calibrated one (int8/approx/lut/
     asm-x: amax/127 (asm: amax/(2^(x_bits-1)-1)); mfmac: 2^(round(log2 amax) - max_exp));
  3. integer accumulations: net.kernels.matmul / conv2d on the codes (wrapped at acc_bits, as
     the RTL's register) — kept in `layer.last_accumulations` (int64, the kernel's output) with
     the codes in `last_x_codes` / `last_w_codes` (K x N / Cout x C x kh x kw);
  4. dequantize: acc * s_x * s_w (s_w per output channel), then + bias in float32.

The activation scale state lives in an `ActObserver` (like torch.ao's observers): explicit
buffers `amax` and `scale`, set by calibration (max |input| over the calibration batch, with
the float forward: calibration runs the layer in float while observing, so every layer's scale
is that of the float model's activations) and frozen afterwards. An uncalibrated layer refuses to
run (one line).

Backward is the straight-through estimator (`_STE`, a torch.autograd.Function): gradients are
those of the float layer whose weights are the dequantized quantized weights (dL/dx = g . Wq,
dL/dW = g^T . x, dL/db = sum g), i.e. the quantizers and the datapath's product errors are
treated as identity. The float weights receive the gradient, so the same layers serve
fine-tuning (quantization-aware training).

The fp32 datapath keeps the plain float layer. Layers the datapaths do not cover (pooling,
normalization, activations, ...) stay float32; `uncovered_layers` lists those with
computation or parameters for the report.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import kernels
from .datapath import parse

__all__ = ["ActObserver", "EmuLinear", "EmuConv2d", "convert", "calibrate", "emulated_layers",
           "uncovered_layers", "quantize_activation", "COVERED"]

COVERED = (nn.Linear, nn.Conv2d)
# containers and shape-only modules: nothing to emulate, nothing to report
_STRUCTURAL = (nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.Flatten, nn.Identity, nn.Unflatten, nn.Dropout)


def quantize_activation(dp, t: np.ndarray, amax: float):
    """(codes, scale) of t with the per-tensor scale that dp's golden quantizer gives a tensor whose
    max |value| is `amax` (t is clipped to [-amax, amax] first)."""
    flat = np.clip(np.asarray(t, np.float64).reshape(-1), -amax, amax)
    codes, scale = dp.quantize(np.append(flat, amax), "x")
    return codes[:-1].reshape(np.shape(t)), float(scale)


class ActObserver(nn.Module):
    """Max-abs observer with explicit scale state (buffers `amax`, `scale`, `calibrated`)."""

    def __init__(self, dp):
        super().__init__()
        self.dp = dp
        self.register_buffer("amax", torch.zeros((), dtype=torch.float64))
        self.register_buffer("scale", torch.ones((), dtype=torch.float64))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))
        self.observing = False

    def reset(self) -> None:
        self.amax.zero_()
        self.scale.fill_(1.0)
        self.calibrated.fill_(False)

    def observe(self, x: torch.Tensor) -> None:
        m = float(x.detach().abs().max()) if x.numel() else 0.0
        if not np.isfinite(m):
            raise ValueError("calibration: the layer input holds NaN or Inf")
        self.amax.fill_(max(float(self.amax), m))

    def freeze(self) -> None:
        """Fix the scale from the observed max-abs (a zero max-abs keeps scale 1: all codes 0)."""
        amax = float(self.amax)
        if amax > 0:
            _, scale = quantize_activation(self.dp, np.zeros(1), amax)
            self.scale.fill_(scale)
        self.calibrated.fill_(True)
        self.observing = False

    def extra_repr(self) -> str:
        return f"amax={float(self.amax):.4g}, scale={float(self.scale):.4g}, calibrated={bool(self.calibrated)}"


class _STE(torch.autograd.Function):
    """Forward: the emulated product; backward: the float layer with the quantized weights."""

    @staticmethod
    def forward(ctx, x, weight, bias, layer):
        y, wq = layer._emulate(x)
        ctx.layer = layer
        ctx.save_for_backward(x, wq)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, g):
        x, wq = ctx.saved_tensors
        gx, gw = ctx.layer._float_grads(x, wq, g, ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        gb = None
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g.sum(dim=(0, 2, 3)) if g.ndim == 4 else g.reshape(-1, g.shape[-1]).sum(0)
        return gx, gw, gb, None


class _EmuBase(nn.Module):
    def _setup(self, float_layer, datapath, per_channel: bool):
        dp = parse(datapath)
        if dp.is_float:
            raise ValueError("the fp32 datapath keeps the plain float layer (convert does so); "
                             "an emulated layer needs an integer datapath")
        self.dp = dp
        self.spec = dp.spec
        self.per_channel = bool(per_channel)
        self.weight = nn.Parameter(float_layer.weight.detach().clone())
        self.bias = None if float_layer.bias is None else nn.Parameter(float_layer.bias.detach().clone())
        self.observer = ActObserver(dp)
        self.last_accumulations = None
        self.last_x_codes = None
        self.last_w_codes = None
        self._wcache = None

    def _weight_codes(self):
        """(codes, scale per output channel as float64 vector) of the current weights; cached
        until the weights change (the tensor's version counter moves on every in-place update)."""
        key = (self.weight.data_ptr(), self.weight._version)
        if self._wcache is not None and self._wcache[0] == key:
            return self._wcache[1], self._wcache[2]
        w = self.weight.detach().cpu().numpy().astype(np.float64)
        if self.per_channel:
            codes, scale = self.dp.quantize(w, "w", axis=0)
            scale = np.asarray(scale, np.float64).reshape(-1)
        else:
            codes, s = self.dp.quantize(w, "w")
            scale = np.full(w.shape[0], float(s))
        self._wcache = (key, codes, scale)
        return codes, scale

    def quantized_weight(self) -> torch.Tensor:
        """The dequantized quantized weights values(codes) * s_w (float32): what the MAC multiplies."""
        codes, scale = self._weight_codes()
        v = self.dp.values(codes, "w").astype(np.float64)
        return torch.from_numpy((v * scale.reshape((-1,) + (1,) * (v.ndim - 1))).astype(np.float32))

    def _x_codes(self, x: torch.Tensor):
        if not bool(self.observer.calibrated):
            raise ValueError(f"emulated layer on {self.spec} is not calibrated: pass calib= to convert "
                             f"(or run net.layers.calibrate) before running it")
        return quantize_activation(self.dp, x.detach().cpu().numpy(), float(self.observer.amax))

    def forward(self, x):
        if self.observer.observing:
            self.observer.observe(x)
            return self._float(x, self.weight)
        return _STE.apply(x, self.weight, self.bias, self)

    def extra_repr(self) -> str:
        return f"datapath={self.spec!r}, per_channel={self.per_channel}"


class EmuLinear(_EmuBase):
    """nn.Linear on a datapath (see the module docstring)."""

    def __init__(self, linear: nn.Linear, datapath, per_channel: bool = True):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"EmuLinear wraps an nn.Linear, got {type(linear).__name__}")
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self._setup(linear, datapath, per_channel)

    def _float(self, x, w):
        return F.linear(x, w, self.bias)

    def _emulate(self, x):
        wc, sw = self._weight_codes()
        lead = x.shape[:-1]
        xc, sx = self._x_codes(x.reshape(-1, x.shape[-1]))
        acc = kernels.matmul(self.dp, xc, wc.T)
        self.last_x_codes, self.last_w_codes, self.last_accumulations = xc, wc.T, acc
        y = torch.from_numpy((acc.astype(np.float64) * (sx * sw)[None, :]).astype(np.float32))
        if self.bias is not None:
            y = y + self.bias.detach()
        return y.reshape(*lead, self.out_features), self.quantized_weight()

    def _float_grads(self, x, wq, g, need_x, need_w):
        g2 = g.reshape(-1, g.shape[-1])
        gx = (g2 @ wq).reshape(x.shape) if need_x else None
        gw = g2.t() @ x.reshape(-1, x.shape[-1]) if need_w else None
        return gx, gw


class EmuConv2d(_EmuBase):
    """nn.Conv2d (groups 1, dilation 1, zero padding) on a datapath."""

    def __init__(self, conv: nn.Conv2d, datapath, per_channel: bool = True):
        super().__init__()
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"EmuConv2d wraps an nn.Conv2d, got {type(conv).__name__}")
        if conv.groups != 1 or tuple(conv.dilation) != (1, 1) or conv.padding_mode != "zeros":
            raise ValueError(f"emulated conv supports groups=1, dilation=1 and zero padding, got groups="
                             f"{conv.groups}, dilation={tuple(conv.dilation)}, padding_mode={conv.padding_mode!r}")
        if isinstance(conv.padding, str) or len(set(conv.padding)) != 1 or len(set(conv.stride)) != 1:
            raise ValueError(f"emulated conv needs one integer stride and padding for both axes, got "
                             f"stride={conv.stride}, padding={conv.padding}")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size = tuple(conv.kernel_size)
        self.stride, self.padding = int(conv.stride[0]), int(conv.padding[0])
        self._setup(conv, datapath, per_channel)

    def _float(self, x, w):
        return F.conv2d(x, w, self.bias, self.stride, self.padding)

    def _emulate(self, x):
        wc, sw = self._weight_codes()
        xc, sx = self._x_codes(x)
        acc = kernels.conv2d(self.dp, xc, wc, self.stride, self.padding)
        self.last_x_codes, self.last_w_codes, self.last_accumulations = xc, wc, acc
        y = torch.from_numpy((acc.astype(np.float64) * (sx * sw)[None, :, None, None]).astype(np.float32))
        if self.bias is not None:
            y = y + self.bias.detach()[None, :, None, None]
        return y, self.quantized_weight()

    def _float_grads(self, x, wq, g, need_x, need_w):
        gx = torch.nn.grad.conv2d_input(x.shape, wq, g, self.stride, self.padding) if need_x else None
        gw = torch.nn.grad.conv2d_weight(x, wq.shape, g, self.stride, self.padding) if need_w else None
        return gx, gw


def emulated_layers(model: nn.Module) -> dict:
    return {n: m for n, m in model.named_modules() if isinstance(m, _EmuBase)}


def uncovered_layers(model: nn.Module) -> list[tuple[str, str]]:
    """(name, type) of the leaf modules that stay float32: everything but Linear/Conv2d (float or
    emulated), observers and shape-only modules (Flatten, Identity, Dropout, containers)."""
    out = []
    for n, m in model.named_modules():
        if not n or isinstance(m, COVERED + (_EmuBase, ActObserver) + _STRUCTURAL):
            continue
        if any(True for _ in m.children()):
            continue            # a container: its leaves are listed
        if any(n.startswith(e + ".") for e in emulated_layers(model)):
            continue
        out.append((n, type(m).__name__))
    float_ops = getattr(model, "float_ops", None)       # graph models (net.importer.OnnxModule)
    return out + (list(float_ops()) if callable(float_ops) else [])


def calibrate(model: nn.Module, x, batch_size: int = 256) -> nn.Module:
    """Observe every emulated layer's input max-abs over `x` (float forward), then freeze the scales."""
    emu = emulated_layers(model)
    if not emu:
        return model
    x = torch.as_tensor(np.asarray(x, np.float32))
    if len(x) == 0:
        raise ValueError("calibration batch is empty")
    was = model.training
    model.eval()
    for m in emu.values():
        m.observer.reset()
        m.observer.observing = True
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                model(x[i:i + batch_size])
    finally:
        for m in emu.values():
            m.observer.freeze()
        model.train(was)
    return model


def _targets(model: nn.Module) -> dict:
    return {n: m for n, m in model.named_modules() if isinstance(m, COVERED)}


def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def convert(model: nn.Module, datapath, calib=None, per_channel: bool = True) -> nn.Module:
    """A deep copy of `model` whose nn.Linear/nn.Conv2d layers run on datapaths.

    datapath: one spec for every covered layer, or a mapping {layer name: spec} (names from
    model.named_modules(); layers not named stay float32). calib: a float input batch (N x ...)
    to calibrate activation scales on (required unless every datapath is fp32). The original
    model is not modified."""
    if isinstance(model, torch.jit.ScriptModule):
        raise ValueError("a TorchScript model cannot be converted (its layers are compiled); "
                         "save the model as a checkpoint or a whole nn.Module")
    targets = _targets(model)
    if isinstance(datapath, dict):
        unknown = sorted(set(datapath) - set(targets))
        if unknown:
            raise ValueError(f"mapping names unknown layer(s) {', '.join(map(repr, unknown[:5]))} "
                             f"(Linear/Conv2d layers: {', '.join(targets) or 'none'})")
        mapping = {}
        for n, spec in datapath.items():
            try:
                mapping[n] = parse(spec)
            except (ValueError, TypeError) as e:
                raise ValueError(f"mapping layer {n!r}: {e}") from None
    else:
        dp = parse(datapath)
        mapping = {n: dp for n in targets}
    new = copy.deepcopy(model)
    swapped = False
    for name, dp in mapping.items():
        if dp.is_float:
            continue
        old = new.get_submodule(name)
        emu = (EmuLinear if isinstance(old, nn.Linear) else EmuConv2d)(old, dp, per_channel=per_channel)
        emu.train(old.training)
        _set(new, name, emu)
        swapped = True
    if swapped:
        if calib is None:
            raise ValueError("convert: integer datapaths need a calibration batch (calib=) for activation scales")
        calibrate(new, calib)
    return new
