"""Models -> the layer list of synth.network (parse_net's JSON object), and ONNX graphs as torch modules.

    from_torch(model, input_shape)   a torch.nn.Module (or torch.export graph module, TorchScript):
                                     net.graph.lift, then net.graph.census on one sample of
                                     `input_shape` (batch first, e.g. (1, 1, 28, 28)): every product
                                     (linear, conv with groups/dilation, activation x activation
                                     matmul), products no datapath covers marked `float`
    from_onnx(path_or_proto, input_shape=None)
                                     an ONNX graph by onnx.shape_inference (with data propagation:
                                     weights computed by constant subgraphs such as ConstantOfShape
                                     have shapes), so graphs whose external weight files are absent
                                     still give shapes and MACs; input_shape fixes a symbolic
                                     batch/size first
    OnnxModule / onnx_module(path)   an ONNX graph run in torch (nn eval): constant subgraphs folded
                                     (onnx.reference), Conv (any group, dilation, pads) and Gemm /
                                     MatMul with a constant weight as nn.Conv2d / nn.Linear (a
                                     BatchNormalization after a Conv folded into it), MatMul of two
                                     activations as net.graph.Matmul; the other operators of
                                     ONNX_EVAL_OPS as float32 torch functions
    torchscript_module(script, shape)  TorchScript through ONNX (dynamic batch) as an OnnxModule

Each import returns an `Imported`: `net` (the dict parse_net takes: {"name", "batch", "layers"}),
`unsupported` ([(name, op)]: operators with multiply-accumulates no layer kind covers —
ConvTranspose, recurrent cells, ...; listed, never dropped silently), `no_macs` ([(name, op)]: ONNX
operators without products — activations, pooling, normalization, reshapes and the folded constant
subgraphs) and `ops` ({op: {"count", "elements"}}: the same grouped by operator, with the elements
they produce, for summaries like `ConstantOfShape ×239`).

Layer kinds: linear {in, out, tokens} (tokens = the product of the input's leading dimensions
over the batch), conv {in_ch, out_ch, kernel, H, W, stride, padding [top, left, bottom, right],
groups, dilation}, matmul {M, K, N, count} (two activations).
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import graph
from .census import matmul_entry
from .onnx_graph import ONNX_EVAL_OPS, OnnxModule, load_onnx, node_attrs, onnx_module, value_dims  # noqa: F401

__all__ = ["Imported", "from_torch", "from_onnx", "parse_input_shape", "OnnxModule", "onnx_module",
           "torchscript_module", "ONNX_EVAL_OPS", "group_ops"]

# ONNX operators that perform no matrix-product work (normalizations and LRN are element-wise here;
# BatchNormalization is folded into the convolution before it)
_ONNX_NO_MACS = {
    "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Clip", "Elu", "Selu", "Gelu",
    "HardSigmoid", "HardSwish", "Softplus", "Erf", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice", "Gather", "Shape",
    "Constant", "Identity", "Dropout", "Add", "Sub", "Mul", "Div", "Sum", "Mean", "Max", "Min", "Cast", "Pad",
    "ConstantOfShape", "Expand", "Pow", "Sqrt", "Reciprocal", "Neg", "Exp", "Log", "Abs", "ReduceMean",
    "ReduceMax", "ReduceSum", "ReduceMin", "Equal", "Where", "Less", "Greater", "Not", "Range", "Floor", "Ceil",
    "Resize", "Upsample", "ArgMax", "TopK", "BatchNormalization", "LayerNormalization", "InstanceNormalization",
    "LRN", "Tile", "CumSum", "Trilu", "Sign", "Round", "And", "Or",
}


@dataclass
class Imported:
    net: dict
    unsupported: list = field(default_factory=list)
    no_macs: list = field(default_factory=list)
    ops: dict = field(default_factory=dict)
    needs_weights: str | None = None       # why accuracy cannot be measured (absent external weights)


def group_ops(items, limit: int = 10) -> str:
    """'ConstantOfShape ×239, Relu ×49, ...' of [(name, op)] or {op: {count}}: grouped, largest first."""
    if isinstance(items, dict):
        counts = {op: v["count"] for op, v in items.items()}
    else:
        counts = {}
        for _n, op in items:
            counts[op] = counts.get(op, 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [f"{op} ×{c}" if c > 1 else op for op, c in top[:limit]]
    if len(top) > limit:
        parts.append(f"{len(top) - limit} more kinds")
    return ", ".join(parts) or "none"


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


def _conv_entry(name, cin, cout, kh, kw, H, W, stride, pads, groups=1, dil=(1, 1)) -> dict:
    e = {"kind": "conv", "name": name, "in_ch": int(cin), "out_ch": int(cout), "kernel": [int(kh), int(kw)],
         "H": int(H), "W": int(W), "stride": [int(s) for s in stride], "padding": [int(p) for p in pads]}
    if groups != 1:
        e["groups"] = int(groups)
    if tuple(dil) != (1, 1):
        e["dilation"] = [int(d) for d in dil]
    return e


def _linear_entry(name, n_in, n_out, tokens) -> dict:
    return {"kind": "linear", "name": name, "in": int(n_in), "out": int(n_out), "tokens": int(tokens)}


def from_torch(model: nn.Module, input_shape, name: str = "model") -> Imported:
    """Every product of `model` traced on one sample of `input_shape` (batch first)."""
    shape = parse_input_shape(input_shape)
    if isinstance(model, torch.jit.ScriptModule):
        model = torchscript_module(model, shape)
    canon = graph.lift(model, torch.zeros(shape))
    cen = graph.census(canon, shape[1:], name)
    return Imported({"name": name, "batch": shape[0], "layers": cen.layers}, cen.unsupported, cen.no_macs, cen.ops)


def torchscript_module(model, shape) -> "OnnxModule":
    """A TorchScript module exported to ONNX (legacy exporter, dynamic batch) and run as an OnnxModule."""
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.zeros(shape),), buf, dynamo=False, input_names=["input"],
                              dynamic_axes={"input": {0: "batch"}})
    except Exception as e:     # the exporter raises many kinds
        raise ValueError(f"TorchScript could not be traced through ONNX on input {','.join(map(str, shape))} "
                         f"({str(e).splitlines()[0][:160]})") from None
    import onnx
    m = OnnxModule(onnx.load_from_string(buf.getvalue()), "torchscript").eval()
    if m.input_shape is None:
        m.input_shape = tuple(shape[1:])
    return m


def _const_names(g) -> set:
    """Names of the values fixed before any input arrives: initializers, Constant outputs and every
    output of a node whose inputs are all such values (constant subgraphs: ConstantOfShape, Reshape of
    initializers, Shape of known shapes is not folded)."""
    consts = {i.name for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" or (n.op_type not in ("RandomNormal", "RandomUniform", "Shape")
                                       and n.input and all((not i) or i in consts for i in n.input)):
            consts.update(n.output)
    return consts


def _conv_pads(attrs, xs, ws, ys) -> list:
    """[top, left, bottom, right] of a 2-D Conv: its pads, or (auto_pad) the padding that gives the
    inferred output size."""
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", "VALID") or ys is None or None in ys[2:]:
        return [pads[0], pads[1], pads[2], pads[3]]
    st, dl = list(attrs.get("strides", [1, 1])), list(attrs.get("dilations", [1, 1]))
    tot = [max(0, (ys[2 + i] - 1) * st[i] + dl[i] * (ws[2 + i] - 1) + 1 - xs[2 + i]) for i in range(2)]
    lo = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in tot]
    return [lo[0], lo[1], tot[0] - lo[0], tot[1] - lo[1]]


def from_onnx(model, input_shape=None, name: str | None = None) -> Imported:
    """An ONNX ModelProto (or a path) -> Imported, by shape inference alone (no weight values needed).
    input_shape (batch first) fixes the first graph input's shape first."""
    from onnx import shape_inference
    needs = None
    if isinstance(model, (str, os.PathLike)):
        name = name or os.path.basename(os.fspath(model))
        model, needs = load_onnx(model, need_data=False)
    name = name or (model.graph.name or "onnx")
    g = model.graph
    inits = {i.name for i in g.initializer}
    if not [i for i in g.input if i.name not in inits]:
        raise ValueError(f"ONNX {name}: the graph has no input")
    model = _with_input_shape(model, input_shape)
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as e:
        raise ValueError(f"ONNX {name}: shape inference failed ({str(e).splitlines()[0][:160]})") from None
    g = inferred.graph
    shapes = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        shapes[vi.name] = value_dims(vi)
    for i in g.initializer:
        shapes[i.name] = list(i.dims)
    first = [i for i in g.input if i.name not in inits][0]
    batch = (shapes.get(first.name) or [1])[0] or 1
    consts = _const_names(g)
    layers, unsupported, no_macs, ops = [], [], [], {}

    def plain(lname, op, out):
        no_macs.append((lname, op))
        rec = ops.setdefault(op, {"count": 0, "elements": 0})
        rec["count"] += 1
        ys = shapes.get(out)
        if ys is not None and None not in ys:
            rec["elements"] += int(np.prod(ys)) if ys else 1
    for k, n in enumerate(g.node):
        lname = n.name or f"{n.op_type.lower()}{k}"
        attrs = node_attrs(n)
        if n.output and all(o in consts for o in n.output) and n.op_type not in ("Conv", "Gemm", "MatMul"):
            plain(lname, n.op_type, n.output[0])            # a folded constant subgraph
            continue
        if n.op_type == "Conv":
            xs, ws, ys = shapes.get(n.input[0]), shapes.get(n.input[1]), shapes.get(n.output[0])
            if xs is None or ws is None or len(xs) != len(ws) or len(xs) not in (3, 4) or None in xs[1:] \
                    or None in ws or n.input[1] not in consts:
                unsupported.append((lname, f"Conv (needs a constant weight and known shapes; input {xs})"))
                continue
            if len(xs) == 3:                                # Conv1d: a 1 x k conv2d
                xs, ws = xs[:2] + [1] + xs[2:], ws[:2] + [1] + ws[2:]
                ys = None if ys is None else ys[:2] + [1] + ys[2:]
                a1 = dict(attrs)
                for key, one in (("pads", None), ("strides", 1), ("dilations", 1)):
                    if key in a1:
                        v = list(a1[key])
                        a1[key] = [0, v[0], 0, v[1]] if key == "pads" else [one, v[0]]
                attrs = a1
            g_ = attrs.get("group", 1)
            layers.append(_conv_entry(lname, ws[1] * g_, ws[0], ws[2], ws[3], xs[2], xs[3],
                                      list(attrs.get("strides", [1, 1])), _conv_pads(attrs, xs, ws, ys), g_,
                                      list(attrs.get("dilations", [1, 1]))))
        elif n.op_type in ("Gemm", "MatMul"):
            a, b = shapes.get(n.input[0]), shapes.get(n.input[1])
            if a is None or b is None or None in a[1:] or None in b:
                unsupported.append((lname, f"{n.op_type} (needs known input shapes)"))
                continue
            if n.op_type == "Gemm":
                m_, k_ = (a[1], a[0]) if attrs.get("transA", 0) else (a[0], a[1])
                n_out = b[0] if attrs.get("transB", 0) else b[1]
                if n.input[1] in consts:
                    layers.append(_linear_entry(lname, k_, n_out, max(1, (m_ or batch) // batch)))
                else:
                    layers.append({"kind": "matmul", "name": lname, "M": int(m_ or batch), "K": int(k_),
                                   "N": int(n_out), "count": 1})
            elif n.input[1] in consts and len(b) == 2:
                lead = [d if d is not None else batch for d in a[:-1]] or [1]
                layers.append(_linear_entry(lname, b[0], b[1], max(1, int(np.prod(lead)) // batch)))
            else:                                           # two activations
                e = matmul_entry(lname, [d if d is not None else batch for d in a], b)
                e["count"] = max(1, e["count"] // batch) if a and a[0] in (None, batch) and len(a) > 2 else e["count"]
                layers.append(e)
        elif n.op_type in _ONNX_NO_MACS:
            plain(lname, n.op_type, n.output[0] if n.output else "")
        else:
            unsupported.append((lname, n.op_type))
    if not layers:
        raise ValueError(f"ONNX {name}: no Conv, Gemm or MatMul layer with known shapes "
                         f"(unsupported: {', '.join(f'{a} {b}' for a, b in unsupported[:5]) or 'none'})")
    return Imported({"name": name, "batch": int(batch), "layers": layers}, unsupported, no_macs, ops, needs)


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
