"""Models -> the layer list of synth.network (parse_net's JSON object), by tracing shapes.

    from_torch(model, input_shape)   a torch.nn.Module: one forward pass on zeros of `input_shape`
                                     (batch first, e.g. (1, 1, 28, 28)) with forward hooks on every
                                     nn.Linear / nn.Conv2d (and emulated layer) recording its input
                                     shape; TorchScript modules go through ONNX (legacy exporter)
    from_onnx(path_or_proto, input_shape=None)
                                     an ONNX graph: Conv, Gemm and MatMul (with a constant operand)
                                     with shapes from onnx.shape_inference (input_shape fixes a
                                     symbolic batch/size first)
    load(path, input_shape=None)     by file: .onnx, else a model file (net.models.load)

Each returns an `Imported`: `net` (the dict parse_net takes: {"name", "batch", "layers"}),
`unsupported` ([(name, op)]: operators with multiply-accumulates that no layer kind covers —
BatchNorm, ConvTranspose, grouped/dilated Conv, recurrent cells, MatMul of two activations ...;
listed, never dropped silently) and `no_macs` ([(name, op)]: operators with no products —
activations, pooling, reshapes — which the energy model does not charge).

Layer kinds: linear {in, out, tokens} (tokens = the product of the input's leading dimensions
over the batch), conv {in_ch, out_ch, kernel [kh, kw], H, W, stride, padding} (one stride and
padding for both axes: the net format's). Functional calls inside forward (F.linear, torch.matmul)
are invisible to module hooks: import such models from ONNX.
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

__all__ = ["Imported", "from_torch", "from_onnx", "load", "parse_input_shape"]

# ONNX operators that perform no multiply-accumulate work the energy model counts
_ONNX_NO_MACS = {
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Clip", "Elu", "Selu", "Gelu", "HardSigmoid",
    "HardSwish", "Erf", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Reshape",
    "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Gather", "Shape", "Constant", "Identity",
    "Dropout", "Add", "Sub", "Mul", "Div", "Cast", "Pad", "ConstantOfShape", "Expand", "Pow", "Sqrt", "Neg",
    "Exp", "Log", "Abs", "ReduceMean", "ReduceMax", "ReduceSum", "Equal", "Where", "Less", "Greater", "Not",
    "Range", "Floor", "Ceil", "Resize", "Upsample", "ArgMax", "TopK",
}
# torch leaf modules with no products (reported as no_macs, not as unsupported)
_TORCH_NO_MACS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU, nn.ELU, nn.Softmax,
                  nn.LogSoftmax, nn.Hardswish, nn.Hardsigmoid, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d,
                  nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Unflatten,
                  nn.Identity, nn.Dropout, nn.Dropout2d)


@dataclass
class Imported:
    net: dict
    unsupported: list = field(default_factory=list)
    no_macs: list = field(default_factory=list)


def parse_input_shape(text) -> tuple:
    """'1,1,28,28' (or a sequence) -> (1, 1, 28, 28); one-line ValueError otherwise."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        shape = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        raise ValueError(f"input shape must be comma-separated positive integers (batch first, e.g. 1,1,28,28), "
                         f"got {text!r}") from None
    if len(shape) < 2 or any(d < 1 for d in shape):
        raise ValueError(f"input shape must be at least 2 positive integers, batch first (e.g. 1,1,28,28 or 1,784), "
                         f"got {text!r}")
    return shape


def _conv_entry(name, cin, cout, kh, kw, H, W, stride, pad) -> dict:
    return {"kind": "conv", "name": name, "in_ch": int(cin), "out_ch": int(cout), "kernel": [int(kh), int(kw)],
            "H": int(H), "W": int(W), "stride": int(stride), "padding": int(pad)}


def _linear_entry(name, n_in, n_out, tokens) -> dict:
    return {"kind": "linear", "name": name, "in": int(n_in), "out": int(n_out), "tokens": int(tokens)}


def from_torch(model: nn.Module, input_shape, name: str = "model") -> Imported:
    """Trace `model` on zeros of `input_shape` (batch first) and list its Linear/Conv2d layers."""
    shape = parse_input_shape(input_shape)
    if isinstance(model, torch.jit.ScriptModule):
        return _torchscript(model, shape, name)
    from .layers import EmuConv2d, EmuLinear
    batch = shape[0]
    found, unsupported, no_macs = {}, [], []
    hooks = []

    def hook(mod_name, mod):
        def fn(_m, inputs, _out):
            x = inputs[0]
            if isinstance(mod, (nn.Conv2d, EmuConv2d)):
                kh, kw = mod.kernel_size
                st = (mod.stride, mod.stride) if isinstance(mod.stride, int) else tuple(mod.stride)
                pd = mod.padding
                pd = (pd, pd) if isinstance(pd, int) else pd
                groups = getattr(mod, "groups", 1)
                dil = tuple(getattr(mod, "dilation", (1, 1)))
                if isinstance(pd, str) or st[0] != st[1] or pd[0] != pd[1] or groups != 1 or dil != (1, 1) \
                        or x.ndim != 4:
                    unsupported.append((mod_name, f"Conv2d(groups={groups}, dilation={dil}, stride={st}, "
                                                  f"padding={pd})"))
                    return
                found.setdefault(mod_name, _conv_entry(mod_name, mod.in_channels, mod.out_channels, kh, kw,
                                                       x.shape[2], x.shape[3], st[0], pd[0]))
            else:
                tokens = int(np.prod(x.shape[:-1])) // batch if x.ndim > 1 else 1
                found.setdefault(mod_name, _linear_entry(mod_name, mod.in_features, mod.out_features, max(1, tokens)))
        return fn

    for n, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, EmuLinear, EmuConv2d)):
            hooks.append(m.register_forward_hook(hook(n, m)))
        elif n and not any(True for _ in m.children()) and not n.endswith("observer"):
            (no_macs if isinstance(m, _TORCH_NO_MACS) else unsupported).append((n, type(m).__name__))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(shape))
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        raise ValueError(f"model {name}: does not run on input shape {','.join(map(str, shape))} "
                         f"({str(e).splitlines()[0][:160]})") from None
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    # unsupported modules that never ran (unused) are not part of the network
    order = [n for n, _ in model.named_modules() if n in found]
    layers = [found[n] for n in order]
    if not layers:
        raise ValueError(f"model {name}: no Linear or Conv2d layer ran on input {','.join(map(str, shape))} "
                         f"(unsupported: {', '.join(f'{n} {op}' for n, op in unsupported) or 'none'})")
    return Imported({"name": name, "batch": batch, "layers": layers}, unsupported, no_macs)


def _torchscript(model, shape, name) -> Imported:
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(shape),), buf, dynamo=False)
    except Exception as e:     # the exporter raises many kinds
        raise ValueError(f"model {name}: TorchScript could not be traced through ONNX on input "
                         f"{','.join(map(str, shape))} ({str(e).splitlines()[0][:160]})") from None
    import onnx
    return from_onnx(onnx.load_from_string(buf.getvalue()), shape, name)


def _dims(vi) -> list | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    out = []
    for d in t.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None)
    return out


def from_onnx(model, input_shape=None, name: str | None = None) -> Imported:
    """An ONNX ModelProto (or a path) -> Imported. input_shape (batch first) fixes the first graph
    input's shape before shape inference (needed where the file's shape is symbolic)."""
    import onnx
    from onnx import shape_inference
    if isinstance(model, (str, os.PathLike)):
        name = name or os.path.basename(os.fspath(model))
        model = _load_onnx(model)
    name = name or (model.graph.name or "onnx")
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if not inputs:
        raise ValueError(f"ONNX {name}: the graph has no input")
    model = _with_input_shape(model, input_shape)
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as e:
        raise ValueError(f"ONNX {name}: shape inference failed ({str(e).splitlines()[0][:160]})") from None
    g = inferred.graph
    shapes = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        shapes[vi.name] = _dims(vi)
    for i in g.initializer:
        shapes[i.name] = list(i.dims)
    first = [i for i in g.input if i.name not in inits][0]
    batch = (shapes.get(first.name) or [1])[0] or 1
    consts = set(inits)
    for n in g.node:
        if n.op_type == "Constant":
            consts.update(n.output)
    layers, unsupported, no_macs = [], [], []
    for k, n in enumerate(g.node):
        lname = n.name or f"{n.op_type.lower()}{k}"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Conv":
            xs, ws = shapes.get(n.input[0]), shapes.get(n.input[1])
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            strides = list(attrs.get("strides", [1, 1]))
            dil = list(attrs.get("dilations", [1, 1]))
            ok = (xs is not None and ws is not None and len(xs) == 4 and len(ws) == 4 and None not in xs[1:]
                  and attrs.get("group", 1) == 1 and set(dil) == {1} and len(set(pads)) == 1
                  and len(set(strides)) == 1 and attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET"))
            if not ok:
                unsupported.append((lname, f"Conv(group={attrs.get('group', 1)}, dilations={dil}, pads={pads}, "
                                           f"strides={strides}, input {xs})"))
                continue
            layers.append(_conv_entry(lname, ws[1], ws[0], ws[2], ws[3], xs[2], xs[3], strides[0], pads[0]))
        elif n.op_type in ("Gemm", "MatMul"):
            a, b = shapes.get(n.input[0]), shapes.get(n.input[1])
            if n.input[1] not in consts or a is None or b is None or len(b) != 2 or None in a[1:]:
                unsupported.append((lname, f"{n.op_type} (needs a constant 2-D weight and a known input shape)"))
                continue
            if n.op_type == "Gemm":
                if attrs.get("transA", 0):
                    unsupported.append((lname, "Gemm(transA=1)"))
                    continue
                n_out, n_in = (b[0], b[1]) if attrs.get("transB", 0) else (b[1], b[0])
            else:
                n_in, n_out = b
            lead = [d if d is not None else batch for d in a[:-1]] or [1]
            tokens = max(1, int(np.prod(lead)) // batch)
            layers.append(_linear_entry(lname, n_in, n_out, tokens))
        elif n.op_type in _ONNX_NO_MACS:
            no_macs.append((lname, n.op_type))
        else:
            unsupported.append((lname, n.op_type))
    if not layers:
        raise ValueError(f"ONNX {name}: no Conv, Gemm or MatMul layer with known shapes "
                         f"(unsupported: {', '.join(f'{a} {b}' for a, b in unsupported[:5]) or 'none'})")
    return Imported({"name": name, "batch": int(batch), "layers": layers}, unsupported, no_macs)


def _with_input_shape(model, input_shape):
    """A copy of `model` whose first graph input has the fixed `input_shape` (None: unchanged)."""
    if input_shape is None:
        return model
    import onnx
    shape = parse_input_shape(input_shape)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {i.name for i in m.graph.initializer}
    first = [i for i in m.graph.input if i.name not in inits][0]
    dims = first.type.tensor_type.shape.dim
    if len(dims) and len(dims) != len(shape):
        raise ValueError(f"ONNX input {first.name!r} has {len(dims)} dimensions, --input-shape gives {len(shape)}")
    del dims[:]
    for d in shape:
        dims.add().dim_value = d
    # shapes recorded for intermediate values may hold the old sizes: let inference redo them
    del m.graph.value_info[:]
    return m


def load(path, input_shape=None) -> Imported:
    """Import a model file: .onnx through from_onnx, anything else through net.models.load."""
    path = os.fspath(path)
    if path.endswith(".onnx"):
        return from_onnx(path, input_shape)
    from .models import input_shape_of
    from .models import load as load_model
    model, meta = load_model(path)
    if input_shape is None:
        per = input_shape_of(model, meta)
        if per is None:
            raise ValueError(f"model {path}: its input shape is not recorded; give --input-shape (batch first, "
                             f"e.g. 1,1,28,28)")
        input_shape = (1, *per)
    return from_torch(model, input_shape, os.path.basename(path))


def load_net_file(path, input_shape=None):
    """(synth.network.Net, Imported or None) from a net file: FILE.json (the layer-list format),
    FILE.onnx, or a PyTorch model file (.pt/.pth/...). For `ecomac energy net --net` and `net show`."""
    from synth.network import load_net, parse_net
    path = os.fspath(path)
    if path.endswith(".json"):
        if input_shape is not None:
            raise ValueError("--input-shape applies to model files (.pt, .onnx), not to a JSON layer list")
        return load_net(path), None
    imp = load(path, input_shape)
    return parse_net(imp.net, path), imp


# ---- ONNX graphs as torch modules (so `nn eval` runs them on datapaths) ----------------------------
_ONNX_EVAL_OPS = ("Conv", "Gemm", "MatMul", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Clip",
                  "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Add", "Sub", "Mul", "Div",
                  "Identity", "Dropout", "Constant", "BatchNormalization", "Transpose", "Concat", "Squeeze",
                  "Unsqueeze")


def _module_name(node_name: str, k: int, op: str) -> str:
    import re
    base = re.sub(r"[^0-9A-Za-z_]+", "_", node_name).strip("_") or f"{op.lower()}{k}"
    return base if not base[0].isdigit() else f"n{base}"


class OnnxModule(nn.Module):
    """An ONNX graph run node by node in torch. Conv (group 1, one stride/padding) and Gemm /
    MatMul with a constant weight are real nn.Conv2d / nn.Linear modules (named after the ONNX
    node, '/' -> '_', under `layers.`: e.g. layers.conv1_Conv, the names a per-layer mapping uses); the other
    supported operators (_ONNX_EVAL_OPS) run as torch functions in float32."""

    def __init__(self, model, name: str = "onnx"):
        super().__init__()
        import onnx
        from onnx import numpy_helper
        g = model.graph
        self.onnx_name = name
        self.consts = {i.name: torch.from_numpy(np.array(numpy_helper.to_array(i))) for i in g.initializer}
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise ValueError(f"ONNX {name}: evaluation needs a graph with one input, got {len(inputs)}")
        self.input_name = inputs[0].name
        dims = _dims(inputs[0]) or []
        self.input_shape = tuple(dims[1:]) if len(dims) > 1 and None not in dims[1:] else None
        self.outputs = [o.name for o in g.output]
        self.layers = nn.ModuleDict()
        self.steps = []
        for k, n in enumerate(g.node):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            if n.op_type not in _ONNX_EVAL_OPS:
                raise ValueError(f"ONNX {name}: operator {n.op_type} (node {n.name or k}) cannot be evaluated "
                                 f"(evaluated operators: {', '.join(_ONNX_EVAL_OPS)})")
            mod = self._layer(n, attrs, name)
            key = None
            if mod is not None:
                key = _module_name(n.name, k, n.op_type)
                while key in self.layers:
                    key += "_"
                self.layers[key] = mod
            if n.op_type == "Constant":
                self.consts[n.output[0]] = torch.from_numpy(np.array(numpy_helper.to_array(attrs["value"])))
                continue
            self.steps.append((n.op_type, list(n.input), list(n.output), attrs, key))

    def _layer(self, n, attrs, name):
        w = self.consts.get(n.input[1]) if len(n.input) > 1 else None
        b = self.consts.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
        if n.op_type == "Conv" and w is not None and w.ndim == 4:
            pads, strides = list(attrs.get("pads", [0] * 4)), list(attrs.get("strides", [1, 1]))
            if attrs.get("group", 1) == 1 and len(set(pads)) == 1 and len(set(strides)) == 1 \
                    and set(attrs.get("dilations", [1, 1])) == {1}:
                conv = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=strides[0], padding=pads[0],
                                 bias=b is not None)
                with torch.no_grad():
                    conv.weight.copy_(w.float())
                    if b is not None:
                        conv.bias.copy_(b.float())
                return conv
        if n.op_type in ("Gemm", "MatMul") and w is not None and w.ndim == 2 and not attrs.get("transA", 0) \
                and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0:
            wt = w.float() if attrs.get("transB", 0) else w.float().t()     # out x in
            lin = nn.Linear(wt.shape[1], wt.shape[0], bias=b is not None and b.ndim <= 1)
            with torch.no_grad():
                lin.weight.copy_(wt)
                if lin.bias is not None:
                    lin.bias.copy_(b.float().expand(wt.shape[0]))
            return lin
        return None

    def float_ops(self) -> list[tuple[str, str]]:
        """(node output, op) of the computing operators that run as float32 functions (for the report)."""
        shape_only = ("Identity", "Dropout", "Flatten", "Reshape", "Transpose", "Concat", "Squeeze", "Unsqueeze")
        return [(outs[0], op) for op, _, outs, _, key in self.steps if key is None and op not in shape_only]

    def forward(self, x):
        import torch.nn.functional as F
        env = dict(self.consts)
        env[self.input_name] = x
        for op, ins, outs, a, key in self.steps:
            v = [env[i] if i else None for i in ins]
            if key is not None:
                y = self.layers[key](v[0])
            elif op == "Conv":
                pads, strides = a.get("pads", [0] * 4), a.get("strides", [1, 1])
                y = F.conv2d(F.pad(v[0], (pads[1], pads[3], pads[0], pads[2])), v[1],
                             v[2] if len(v) > 2 else None, tuple(strides), 0, tuple(a.get("dilations", [1, 1])),
                             a.get("group", 1))
            elif op in ("Gemm", "MatMul"):
                A, B = v[0], v[1]
                if op == "Gemm":
                    A = A.t() if a.get("transA", 0) else A
                    B = B.t() if a.get("transB", 0) else B
                    y = a.get("alpha", 1.0) * (A @ B)
                    if len(v) > 2 and v[2] is not None:
                        y = y + a.get("beta", 1.0) * v[2]
                else:
                    y = A @ B
            elif op in ("Relu", "Identity", "Dropout"):
                y = F.relu(v[0]) if op == "Relu" else v[0]
            elif op == "LeakyRelu":
                y = F.leaky_relu(v[0], a.get("alpha", 0.01))
            elif op in ("Sigmoid", "Tanh"):
                y = torch.sigmoid(v[0]) if op == "Sigmoid" else torch.tanh(v[0])
            elif op in ("Softmax", "LogSoftmax"):
                y = (F.softmax if op == "Softmax" else F.log_softmax)(v[0], dim=a.get("axis", -1))
            elif op == "Clip":
                y = torch.clamp(v[0], *(float(t) if t is not None else None for t in (v[1:] + [None, None])[:2]))
            elif op in ("MaxPool", "AveragePool"):
                k, st = a["kernel_shape"], a.get("strides", a["kernel_shape"])
                pads = a.get("pads", [0] * 4)
                fn = F.max_pool2d if op == "MaxPool" else F.avg_pool2d
                y = fn(v[0], tuple(k), tuple(st), (pads[0], pads[1]), ceil_mode=bool(a.get("ceil_mode", 0)))
            elif op == "GlobalAveragePool":
                y = v[0].mean(dim=(2, 3), keepdim=True)
            elif op == "Flatten":
                ax = a.get("axis", 1)
                y = v[0].reshape(int(np.prod(v[0].shape[:ax])), -1)
            elif op == "Reshape":
                shape = [int(s) for s in v[1].tolist()]
                shape[0] = v[0].shape[0] if shape and shape[0] in (0, 1) else shape[0]    # keep the batch
                y = v[0].reshape([v[0].shape[i] if s == 0 else s for i, s in enumerate(shape)])
            elif op in ("Add", "Sub", "Mul", "Div"):
                y = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}[op](v[0], v[1])
            elif op == "BatchNormalization":
                y = F.batch_norm(v[0], v[3], v[4], v[1], v[2], False, 0.0, a.get("epsilon", 1e-5))
            elif op == "Transpose":
                y = v[0].permute(*a["perm"]) if "perm" in a else v[0].permute(*reversed(range(v[0].ndim)))
            elif op == "Concat":
                y = torch.cat(v, dim=a["axis"])
            elif op == "Squeeze":
                axes = a.get("axes") or (v[1].tolist() if len(v) > 1 and v[1] is not None else None)
                y = v[0].squeeze() if axes is None else v[0].squeeze(tuple(axes))
            else:   # Unsqueeze
                axes = a.get("axes") or v[1].tolist()
                y = v[0]
                for ax in sorted(axes):
                    y = y.unsqueeze(ax)
            env[outs[0]] = y
        out = [env[o] for o in self.outputs]
        return out[0] if len(out) == 1 else tuple(out)


def onnx_module(path) -> nn.Module:
    """An ONNX file as an OnnxModule in eval mode (one-line ValueError for files it cannot run)."""
    return OnnxModule(_load_onnx(path), os.path.basename(os.fspath(path))).eval()


def _load_onnx(path):
    """onnx.load with one-line errors for a missing or unreadable file."""
    import onnx
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"ONNX file {path} does not exist")
    try:
        return onnx.load(path)
    except Exception as e:      # DecodeError and friends
        raise ValueError(f"ONNX file {path}: not a readable ONNX model ({type(e).__name__})") from None
