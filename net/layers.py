"""PyTorch layers whose products run on an ecomac datapath, bit-exactly.

    EmuLinear(linear, datapath)      EmuConv2d(conv, datapath)      (from float layers)
    EmuMatmul(datapath)              a @ b of two activations (attention's q.k^T, a.v)
    convert(model, spec_or_mapping, calib=x)  -> a deep copy with nn.Linear/nn.Conv2d swapped
    calibrate(model, x)              (re)calibrate every emulated layer's activation scale
    emulated_layers(model)           {name: layer}       uncovered_layers(model) -> [(name, type)]

Forward of an emulated layer (datapath dp = net.datapath.parse(spec)):

Everything runs on the tensors' device (net.quant's torch quantizers, net.kernels' products): no
host round trip on the forward or the backward pass.

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
     the RTL's register) — kept in `layer.last_accumulations` (an int64 tensor on the layer's
     device, the kernel's output) with the codes in `last_x_codes` / `last_w_codes` (M x K and
     K x N / N x C x H x W and Cout x C/groups x kh x kw; convolutions of any groups, dilation,
     stride and zero padding);
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

EmuMatmul(dp) multiplies two activations (batched like torch.matmul for >= 2-D operands, batch dims
broadcast): a takes the datapath's "x" role and b the "w" role, each quantized with its own
calibrated observer (`observer_a`, `observer_b`; per_channel=True: b one scale per column, from b
itself, as weights are). On asm the alphabet constrains b: the alphabet is a property of the
stored operand, the one whose words the lanes decode against the pre-computer bank's multiples of
the other (golden/asm.py), and in attention the stored operand is k^T (for q.k^T) or v (for a.v),
written once and read by every query row, while q / a stream through the pre-computer bank like
a layer's activations. Backward: straight-through, grad_a = g . b_q^T, grad_b = a_q^T . g
(summed over broadcast batch dims).

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

from . import kernels, quant
from .datapath import parse
from .device import model_device

__all__ = ["ActObserver", "EmuLinear", "EmuConv2d", "EmuMatmul", "convert", "resolve_assignment", "calibrate", "emulated_layers",
           "uncovered_layers", "quantize_activation", "COVERED"]

COVERED = (nn.Linear, nn.Conv2d)
# containers and shape-only modules: nothing to emulate, nothing to report
_STRUCTURAL = (nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.Flatten, nn.Identity, nn.Unflatten, nn.Dropout)


def quantize_activation(dp, t, amax: float):
    """(codes, scale) of t with the per-tensor scale that dp's golden quantizer gives a tensor whose
    max |value| is `amax` (t is clipped to [-amax, amax] first). NumPy in: the golden quantizer
    itself (NumPy out); a tensor: net.quant.quantize_calibrated on its device (proven equal)."""
    if isinstance(t, torch.Tensor):
        return quant.quantize_calibrated(dp, t, amax, "x")
    flat = np.clip(np.asarray(t, np.float64).reshape(-1), -amax, amax)
    codes, scale = dp.quantize(np.append(flat, amax), "x")
    return codes[:-1].reshape(np.shape(t)), float(scale)


class ActObserver(nn.Module):
    """Max-abs observer with explicit scale state (buffers `amax`, `scale`, `calibrated`) for an
    operand quantized in `role` ("x"; EmuMatmul's b: "w")."""

    def __init__(self, dp, role: str = "x"):
        super().__init__()
        self.dp = dp
        self.role = role
        self.register_buffer("amax", torch.zeros((), dtype=torch.float64))
        self.register_buffer("scale", torch.ones((), dtype=torch.float64))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))
        self.observing = False
        self.ready = False           # calibrated, mirrored on the host (no device sync per forward)

    def reset(self) -> None:
        self.amax.zero_()
        self.scale.fill_(1.0)
        self.calibrated.fill_(False)
        self.ready = False

    def observe(self, x: torch.Tensor) -> None:
        if not x.numel():
            return
        m = x.detach().abs().amax().to(torch.float64)
        if not bool(torch.isfinite(m)):
            raise ValueError("calibration: the layer input holds NaN or Inf")
        self.amax.copy_(torch.maximum(self.amax, m.to(self.amax.device)))

    def freeze(self) -> None:
        """Fix the scale from the observed max-abs (a zero max-abs keeps scale 1: all codes 0)."""
        self.scale.copy_(quant.scale_of(self.dp, self.amax, self.role))
        self.calibrated.fill_(True)
        self.observing = False
        self.ready = True

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self.ready = bool(self.calibrated)

    def codes(self, x: torch.Tensor, what: str):
        if not self.ready:
            raise ValueError(f"{what} on {self.dp.spec} is not calibrated: pass calib= to convert "
                             f"(or run net.layers.calibrate) before running it")
        return quant.quantize_calibrated(self.dp, x.detach(), self.amax, self.role)

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


def _dequantize_acc(acc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """acc * scale in float64, rounded to float32 (the accumulations' dequantization)."""
    return (acc.to(torch.float64) * scale).to(torch.float32)


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

    def observers(self):
        return [self.observer]

    def _weight_codes(self):
        """(codes, scale per output channel: a float64 vector) of the current weights, on their
        device; cached until the weights change (the version counter moves on every in-place
        update)."""
        w = self.weight.detach()
        key = (w.data_ptr(), w._version, str(w.device))
        if self._wcache is not None and self._wcache[0] == key:
            return self._wcache[1], self._wcache[2]
        if self.per_channel:
            codes, scale = quant.quantize(self.dp, w, "w", axis=0)
            scale = scale.reshape(-1)
        else:
            codes, s = quant.quantize(self.dp, w, "w")
            scale = s.expand(w.shape[0]).clone()
        self._wcache = (key, codes, scale)
        return codes, scale

    def quantized_weight(self) -> torch.Tensor:
        """The dequantized quantized weights values(codes) * s_w (float32): what the MAC multiplies
        (cached with the codes)."""
        codes, scale = self._weight_codes()
        if len(self._wcache) == 3:
            wq = quant.dequantize(self.dp, codes, scale.reshape((-1,) + (1,) * (codes.ndim - 1)), "w")
            self._wcache = (*self._wcache, wq)
        return self._wcache[3]

    def _x_codes(self, x: torch.Tensor):
        return self.observer.codes(x, "emulated layer")

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
        acc = kernels.matmul(self.dp, xc, wc.t())
        self.last_x_codes, self.last_w_codes, self.last_accumulations = xc, wc.t(), acc
        y = _dequantize_acc(acc, sx * sw[None, :])
        if self.bias is not None:
            y = y + self.bias.detach()
        return y.reshape(*lead, self.out_features), self.quantized_weight()

    def _float_grads(self, x, wq, g, need_x, need_w):
        g2 = g.reshape(-1, g.shape[-1])
        gx = (g2 @ wq).reshape(x.shape) if need_x else None
        gw = g2.t() @ x.reshape(-1, x.shape[-1]) if need_w else None
        return gx, gw


def _conv_padding(conv: nn.Conv2d) -> tuple[int, int]:
    """nn.Conv2d's padding as a pair ('valid' = 0; 'same' where it is symmetric)."""
    if not isinstance(conv.padding, str):
        return tuple(int(p) for p in conv.padding)
    if conv.padding == "valid":
        return 0, 0
    total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
    if any(t % 2 for t in total):
        raise ValueError(f"emulated conv: padding='same' with kernel {tuple(conv.kernel_size)} and dilation "
                         f"{tuple(conv.dilation)} pads one side more than the other; give explicit padding")
    return total[0] // 2, total[1] // 2


class EmuConv2d(_EmuBase):
    """nn.Conv2d (any groups, dilation, stride and zero padding) on a datapath."""

    def __init__(self, conv: nn.Conv2d, datapath, per_channel: bool = True):
        super().__init__()
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"EmuConv2d wraps an nn.Conv2d, got {type(conv).__name__}")
        if conv.padding_mode != "zeros":
            raise ValueError(f"emulated conv pads with zeros (the zero code); got padding_mode={conv.padding_mode!r}")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size = tuple(conv.kernel_size)
        self.stride, self.padding = tuple(conv.stride), _conv_padding(conv)
        self.dilation, self.groups = tuple(conv.dilation), int(conv.groups)
        self._setup(conv, datapath, per_channel)

    def _float(self, x, w):
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def _emulate(self, x):
        wc, sw = self._weight_codes()
        xc, sx = self._x_codes(x)
        acc = kernels.conv2d(self.dp, xc, wc, self.stride, self.padding, self.dilation, self.groups)
        self.last_x_codes, self.last_w_codes, self.last_accumulations = xc, wc, acc
        y = _dequantize_acc(acc, sx * sw[None, :, None, None])
        if self.bias is not None:
            y = y + self.bias.detach()[None, :, None, None]
        return y, self.quantized_weight()

    def _float_grads(self, x, wq, g, need_x, need_w):
        args = (self.stride, self.padding, self.dilation, self.groups)
        gx = torch.nn.grad.conv2d_input(x.shape, wq, g, *args) if need_x else None
        gw = torch.nn.grad.conv2d_weight(x, wq.shape, g, *args) if need_w else None
        return gx, gw


def _unbroadcast(g: torch.Tensor, shape) -> torch.Tensor:
    """Sum a gradient over the batch dims its operand was broadcast along."""
    while g.ndim > len(shape):
        g = g.sum(0)
    dims = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1)
    return g.sum(dims, keepdim=True) if dims else g


class _MatmulSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, mod):
        y, aq, bq = mod._emulate(a, b)
        ctx.save_for_backward(aq, bq)
        ctx.shapes = (a.shape, b.shape)
        return y

    @staticmethod
    def backward(ctx, g):
        aq, bq = ctx.saved_tensors
        sa, sb = ctx.shapes
        ga = _unbroadcast(g @ bq.transpose(-1, -2), sa) if ctx.needs_input_grad[0] else None
        gb = _unbroadcast(aq.transpose(-1, -2) @ g, sb) if ctx.needs_input_grad[1] else None
        return ga, gb, None


class EmuMatmul(nn.Module):
    """a @ b of two activations on a datapath (see the module docstring): a (..., M, K) in the "x"
    role, b (..., K, N) in the "w" role, batch dims broadcast; calibrated like the other layers
    (net.layers.calibrate / convert's calib)."""

    def __init__(self, datapath, per_channel: bool = False):
        super().__init__()
        dp = parse(datapath)
        self.dp, self.spec, self.per_channel = dp, dp.spec, bool(per_channel)
        self.observer_a = ActObserver(dp, "x")
        self.observer_b = ActObserver(dp, "w")
        self.last_accumulations = self.last_x_codes = self.last_w_codes = None

    def observers(self):
        return [self.observer_a, self.observer_b]

    def forward(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"EmuMatmul multiplies (..., M, K) by (..., K, N) (both at least 2-D), got "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
        if self.dp.is_float:
            return torch.matmul(a, b)
        if self.observer_a.observing:
            self.observer_a.observe(a)
            self.observer_b.observe(b)
            return torch.matmul(a, b)
        return _MatmulSTE.apply(a, b, self)

    def _emulate(self, a, b):
        ac, sa = self.observer_a.codes(a, "EmuMatmul operand a")
        if self.per_channel:
            if not self.observer_b.ready:
                self.observer_b.codes(b, "EmuMatmul operand b")          # its one-line refusal
            bc, sb = quant.quantize(self.dp, b.detach(), "w", axis=-1, sync=True)
        else:
            bc, sb = self.observer_b.codes(b, "EmuMatmul operand b")
        acc = kernels.bmm(self.dp, ac, bc)
        self.last_x_codes, self.last_w_codes, self.last_accumulations = ac, bc, acc
        aq = quant.dequantize(self.dp, ac, sa, "x")
        bq = quant.dequantize(self.dp, bc, sb, "w")
        return _dequantize_acc(acc, sa * sb), aq, bq

    def extra_repr(self) -> str:
        return f"datapath={self.spec!r}, per_channel={self.per_channel}"


_EMULATED = (_EmuBase, EmuMatmul)


def emulated_layers(model: nn.Module) -> dict:
    return {n: m for n, m in model.named_modules() if isinstance(m, _EMULATED)}


def uncovered_layers(model: nn.Module) -> list[tuple[str, str]]:
    """(name, type) of the leaf modules that stay float32: everything but Linear/Conv2d (float or
    emulated), emulated matmuls, observers and shape-only modules (Flatten, Identity, Dropout,
    containers)."""
    out = []
    emu = emulated_layers(model)
    for n, m in model.named_modules():
        if not n or isinstance(m, COVERED + _EMULATED + (ActObserver,) + _STRUCTURAL):
            continue
        if any(True for _ in m.children()):
            continue            # a container: its leaves are listed
        if any(n.startswith(e + ".") for e in emu):
            continue
        out.append((n, type(m).__name__))
    float_ops = getattr(model, "float_ops", None)       # graph models (net.importer.OnnxModule)
    return out + (list(float_ops()) if callable(float_ops) else [])


def calibrate(model: nn.Module, x, batch_size: int = 256) -> nn.Module:
    """Observe every emulated layer's input max-abs over `x` (float forward on the model's
    device), then freeze the scales."""
    emu = emulated_layers(model)
    if not emu:
        return model
    x = x.to(torch.float32) if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, np.float32))
    if len(x) == 0:
        raise ValueError("calibration batch is empty")
    x = x.to(model_device(model))
    obs = [o for m in emu.values() for o in m.observers()]
    was = model.training
    model.eval()
    for o in obs:
        o.reset()
        o.observing = True
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                model(x[i:i + batch_size])
    finally:
        for o in obs:
            o.freeze()
        model.train(was)
    return model


def _targets(model: nn.Module) -> dict:
    return {n: m for n, m in model.named_modules() if isinstance(m, COVERED)}


def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def resolve_assignment(assignment, targets, what: str = "products") -> dict:
    """{layer name: Datapath} of `assignment` (one spec for every name in `targets`, or a mapping
    {name: spec} naming some of them), one-line ValueErrors for unknown names and bad specs."""
    if isinstance(assignment, dict):
        unknown = sorted(set(assignment) - set(targets))
        if unknown:
            raise ValueError(f"mapping names unknown layer(s) {', '.join(map(repr, unknown[:5]))} "
                             f"({what}: {', '.join(targets) or 'none'})")
        out = {}
        for n, spec in assignment.items():
            try:
                out[n] = parse(spec)
            except (ValueError, TypeError) as e:
                raise ValueError(f"mapping layer {n!r}: {e}") from None
        return out
    dp = parse(assignment)
    return {n: dp for n in targets}


def convert(model: nn.Module, datapath, calib=None, per_channel: bool = True) -> nn.Module:
    """A deep copy of `model` whose nn.Linear/nn.Conv2d layers run on datapaths.

    datapath: one spec for every covered layer, or a mapping {layer name: spec} (names from
    model.named_modules(); layers not named stay float32). calib: a float input batch (N x ...)
    to calibrate activation scales on (required unless every datapath is fp32). The original
    model is not modified."""
    if isinstance(model, torch.jit.ScriptModule):
        raise ValueError("a TorchScript model cannot be converted (its layers are compiled); "
                         "save the model as a checkpoint or a whole nn.Module")
    mapping = resolve_assignment(datapath, _targets(model), "Linear/Conv2d layers")
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
