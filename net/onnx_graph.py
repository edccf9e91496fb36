"""ONNX graphs run in torch (what `nn eval`, `nn train` and `alwann` run for an .onnx model).

    OnnxModule(model_proto, name)   the graph node by node: constant subgraphs folded (onnx.reference),
                                    Conv / Gemm / MatMul with a constant weight as nn.Conv2d / nn.Linear
                                    (a BatchNormalization after a Conv folded in), MatMul of two
                                    activations as net.products.Matmul, ONNX_EVAL_OPS as float32 functions
    onnx_module(path)               an ONNX file as an OnnxModule (external weights must be present)
    load_onnx(path, need_data)      (ModelProto, why its weights are missing or None), one-line errors
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from .products import Matmul

__all__ = ["ONNX_EVAL_OPS", "OnnxModule", "onnx_module", "load_onnx", "value_dims", "node_attrs"]


def value_dims(vi) -> list | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    out = []
    for d in t.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None)
    return out


def node_attrs(n) -> dict:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}


ONNX_EVAL_OPS = ("Conv", "Gemm", "MatMul", "BatchNormalization", "LayerNormalization", "Relu", "LeakyRelu", "Sigmoid",
                 "Tanh", "Gelu", "Erf", "Softmax", "LogSoftmax", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool",
                 "GlobalMaxPool", "LRN", "Flatten", "Reshape", "Add", "Sub", "Mul", "Div", "Sum", "Pow", "Sqrt",
                 "Neg", "Exp", "ReduceMean", "Identity", "Dropout", "Constant", "Transpose", "Concat", "Squeeze",
                 "Unsqueeze", "Shape", "Gather", "Cast")
_SHAPE_ONLY = ("Identity", "Dropout", "Flatten", "Reshape", "Transpose", "Concat", "Squeeze", "Unsqueeze", "Shape",
               "Gather", "Cast")


def _module_name(node_name: str, k: int, op: str) -> str:
    import re
    base = re.sub(r"[^0-9A-Za-z_]+", "_", node_name).strip("_") or f"{op.lower()}{k}"
    return base if not base[0].isdigit() else f"n{base}"


def _fold_constants(model, consts: dict) -> dict:
    """Values of the constant subgraphs (onnx.reference evaluates their nodes), added to `consts`."""
    from onnx.reference import ReferenceEvaluator
    g = model.graph
    known = set(consts)
    for n in g.node:
        if n.op_type == "Constant" or not n.input or not all((not i) or i in known for i in n.input):
            continue
        if n.op_type in ("RandomNormal", "RandomUniform"):
            continue
        try:
            import onnx
            sub = onnx.helper.make_model(
                onnx.helper.make_graph([n], "fold", [], [onnx.helper.make_tensor_value_info(o, 0, None)
                                                         for o in n.output]), opset_imports=model.opset_import)
            feeds = {i: consts[i].numpy() for i in n.input if i}
            for i in feeds:
                sub.graph.input.append(onnx.helper.make_tensor_value_info(
                    i, onnx.helper.np_dtype_to_tensor_dtype(feeds[i].dtype), feeds[i].shape))
            outs = ReferenceEvaluator(sub).run(None, feeds)
        except Exception:       # an op the reference cannot fold: it runs at inference
            continue
        for o, v in zip(n.output, outs):
            consts[o] = torch.from_numpy(np.array(v))
            known.add(o)
    return consts


class OnnxModule(nn.Module):
    """An ONNX graph run node by node in torch. Constant subgraphs are folded when it is built; Conv
    (any group, dilation, pads; a following BatchNormalization folded in) and Gemm / MatMul with a
    constant weight are nn.Conv2d / nn.Linear, MatMul of two activations a net.graph.Matmul (named
    after the ONNX node, '/' -> '_', under `layers.`: e.g. layers.conv1_Conv, the names a per-layer
    mapping uses); the other operators of ONNX_EVAL_OPS run as torch functions in float32."""
    canonical = True        # net.graph.lift leaves it as it is: its products are modules already

    def __init__(self, model, name: str = "onnx"):
        super().__init__()
        from onnx import numpy_helper
        g = model.graph
        self.onnx_name = name
        self.consts = {i.name: torch.from_numpy(np.array(numpy_helper.to_array(i))) for i in g.initializer}
        for n in g.node:
            if n.op_type == "Constant":
                self.consts[n.output[0]] = torch.from_numpy(np.array(numpy_helper.to_array(node_attrs(n)["value"])))
        _fold_constants(model, self.consts)
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise ValueError(f"ONNX {name}: evaluation needs a graph with one input, got {len(inputs)}")
        self.input_name = inputs[0].name
        dims = value_dims(inputs[0]) or []
        self.input_shape = tuple(dims[1:]) if len(dims) > 1 and None not in dims[1:] else None
        self.outputs = [o.name for o in g.output]
        self.layers = nn.ModuleDict()
        self.steps = []
        users = {}
        for n in g.node:
            for i in n.input:
                users[i] = users.get(i, 0) + 1
        alias = {}
        nodes = [n for n in g.node if not (n.output and all(o in self.consts for o in n.output))]
        for k, n in enumerate(nodes):
            attrs = node_attrs(n)
            ins = [alias.get(i, i) for i in n.input]
            if n.op_type not in ONNX_EVAL_OPS:
                raise ValueError(f"ONNX {name}: operator {n.op_type} (node {n.name or k}) cannot be evaluated "
                                 f"(evaluated operators: {', '.join(ONNX_EVAL_OPS)})")
            if n.op_type == "BatchNormalization" and self.steps and self.steps[-1][4] is not None \
                    and self.steps[-1][0] == "Conv" and self.steps[-1][2][0] == ins[0] and users.get(n.input[0]) == 1 \
                    and all(i in self.consts for i in n.input[1:5]):
                self._fold_bn(self.steps[-1][4], ins, attrs)
                alias[n.output[0]] = ins[0]
                continue
            mod, pre = self._layer(n, attrs, ins)
            key = None
            if mod is not None:
                key = _module_name(n.name, k, n.op_type)
                while key in self.layers:
                    key += "_"
                self.layers[key] = mod
            self.steps.append((n.op_type, ins, list(n.output), {**attrs, "_pre_pad": pre}, key))

    def _fold_bn(self, key, ins, attrs):
        from torch.nn.utils.fusion import fuse_conv_bn_eval
        conv = self.layers[key]
        scale, bias, mean, var = (self.consts[i].float() for i in ins[1:5])
        bn = nn.BatchNorm2d(scale.numel(), eps=float(attrs.get("epsilon", 1e-5)))
        with torch.no_grad():
            bn.weight.copy_(scale)
            bn.bias.copy_(bias)
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
        self.layers[key] = fuse_conv_bn_eval(conv.eval(), bn.eval())

    def _layer(self, n, attrs, ins):
        """(module or None, asymmetric pads to apply first or None) for a product node."""
        w = self.consts.get(ins[1]) if len(ins) > 1 else None
        b = self.consts.get(ins[2]) if len(ins) > 2 and ins[2] else None
        if n.op_type == "Conv" and w is not None and w.ndim == 4 and attrs.get("auto_pad", b"NOTSET") in \
                (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            p = list(attrs.get("pads", [0] * 4))
            sym = p[0] == p[2] and p[1] == p[3]
            conv = nn.Conv2d(w.shape[1] * attrs.get("group", 1), w.shape[0], tuple(w.shape[2:]),
                             stride=tuple(attrs.get("strides", [1, 1])), padding=(p[0], p[1]) if sym else 0,
                             dilation=tuple(attrs.get("dilations", [1, 1])), groups=attrs.get("group", 1),
                             bias=b is not None)
            with torch.no_grad():
                conv.weight.copy_(w.float())
                if b is not None:
                    conv.bias.copy_(b.float())
            return conv, (None if sym else (p[1], p[3], p[0], p[2]))
        if n.op_type in ("Gemm", "MatMul") and w is not None and w.ndim == 2 and not attrs.get("transA", 0):
            alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
            wt = (w.float() if attrs.get("transB", 0) else w.float().t()) * alpha    # out x in
            lin = nn.Linear(wt.shape[1], wt.shape[0], bias=b is not None and b.ndim <= 1)
            with torch.no_grad():
                lin.weight.copy_(wt)
                if lin.bias is not None:
                    lin.bias.copy_((beta * b.float()).expand(wt.shape[0]))
            return lin, None
        if n.op_type == "MatMul" and w is None and ins[0] not in self.consts:
            return Matmul(), None
        return None, None

    def float_ops(self) -> list[tuple[str, str]]:
        """(node output, op) of the computing operators that run as float32 functions (for the report)."""
        return [(outs[0], op) for op, _, outs, _, key in self.steps if key is None and op not in _SHAPE_ONLY]

    def forward(self, x):
        env = dict(self.consts)
        env[self.input_name] = x
        for op, ins, outs, a, key in self.steps:
            v = [env[i] if i else None for i in ins]
            if key is not None:
                if op == "MatMul" and isinstance(self.layers[key], nn.Module) and len(v) > 1 \
                        and ins[1] not in self.consts:
                    y = self.layers[key](v[0], v[1])
                else:
                    xin = v[0] if a["_pre_pad"] is None else torch.nn.functional.pad(v[0], a["_pre_pad"])
                    y = self.layers[key](xin)
            else:
                y = _run(op, v, a)
            env[outs[0]] = y
        out = [env[o] for o in self.outputs]
        return out[0] if len(out) == 1 else tuple(out)


def _pool(op, v, a):
    import torch.nn.functional as F
    k = a["kernel_shape"]
    st, p = a.get("strides", k), list(a.get("pads", [0] * 4))
    x = v[0]
    if p[0] != p[2] or p[1] != p[3] or p[0] > k[0] // 2 or p[1] > k[1] // 2:
        x = F.pad(x, (p[1], p[3], p[0], p[2]), value=float("-inf") if op == "MaxPool" else 0.0)
        p = [0, 0]
    if op == "MaxPool":
        return F.max_pool2d(x, tuple(k), tuple(st), (p[0], p[1]), ceil_mode=bool(a.get("ceil_mode", 0)))
    return F.avg_pool2d(x, tuple(k), tuple(st), (p[0], p[1]), ceil_mode=bool(a.get("ceil_mode", 0)),
                        count_include_pad=bool(a.get("count_include_pad", 0)))


def _run(op, v, a):
    """One float32 ONNX operator in torch."""
    import torch.nn.functional as F
    if op == "Conv":
        p = a.get("pads", [0] * 4)
        return F.conv2d(F.pad(v[0], (p[1], p[3], p[0], p[2])), v[1], v[2] if len(v) > 2 else None,
                        tuple(a.get("strides", [1, 1])), 0, tuple(a.get("dilations", [1, 1])), a.get("group", 1))
    if op in ("Gemm", "MatMul"):
        A, B = v[0], v[1]
        if op == "MatMul":
            return A @ B
        A = A.t() if a.get("transA", 0) else A
        B = B.t() if a.get("transB", 0) else B
        y = a.get("alpha", 1.0) * (A @ B)
        return y + a.get("beta", 1.0) * v[2] if len(v) > 2 and v[2] is not None else y
    simple = {"Relu": F.relu, "Identity": lambda t: t, "Dropout": lambda t: t, "Sigmoid": torch.sigmoid,
              "Tanh": torch.tanh, "Erf": torch.erf, "Sqrt": torch.sqrt, "Neg": torch.neg, "Exp": torch.exp}
    if op in simple:
        return simple[op](v[0])
    if op == "LeakyRelu":
        return F.leaky_relu(v[0], a.get("alpha", 0.01))
    if op == "Gelu":
        return F.gelu(v[0], approximate="tanh" if a.get("approximate", b"none") in (b"tanh", "tanh") else "none")
    if op in ("Softmax", "LogSoftmax"):
        return (F.softmax if op == "Softmax" else F.log_softmax)(v[0], dim=a.get("axis", -1))
    if op == "Clip":
        lo = a.get("min", float(v[1]) if len(v) > 1 and v[1] is not None else None)
        hi = a.get("max", float(v[2]) if len(v) > 2 and v[2] is not None else None)
        return torch.clamp(v[0], lo, hi)
    if op in ("MaxPool", "AveragePool"):
        return _pool(op, v, a)
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        return v[0].mean(dim=(2, 3), keepdim=True) if op == "GlobalAveragePool" else v[0].amax(dim=(2, 3), keepdim=True)
    if op == "LRN":
        return F.local_response_norm(v[0], a["size"], a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("bias", 1.0))
    if op == "Flatten":
        ax = a.get("axis", 1)
        return v[0].reshape(int(np.prod(v[0].shape[:ax])), -1)
    if op == "Reshape":
        shape = [int(s) for s in v[1].tolist()]
        shape[0] = v[0].shape[0] if shape and shape[0] in (0, 1) else shape[0]    # keep the batch
        return v[0].reshape([v[0].shape[i] if s == 0 else s for i, s in enumerate(shape)])
    if op in ("Add", "Sub", "Mul", "Div", "Pow"):
        return {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div, "Pow": torch.pow}[op](v[0], v[1])
    if op == "Sum":
        y = v[0]
        for t in v[1:]:
            y = y + t
        return y
    if op == "BatchNormalization":
        return F.batch_norm(v[0], v[3], v[4], v[1], v[2], False, 0.0, a.get("epsilon", 1e-5))
    if op == "LayerNormalization":
        ax = a.get("axis", -1)
        ax = ax if ax >= 0 else v[0].ndim + ax
        return F.layer_norm(v[0], tuple(v[0].shape[ax:]), v[1] if len(v) > 1 else None, v[2] if len(v) > 2 else None,
                            a.get("epsilon", 1e-5))
    if op == "ReduceMean":
        axes = a.get("axes") or (v[1].tolist() if len(v) > 1 and v[1] is not None else None)
        keep = bool(a.get("keepdims", 1))
        return v[0].mean() if axes is None else v[0].mean(dim=tuple(axes), keepdim=keep)
    if op == "Transpose":
        return v[0].permute(*a["perm"]) if "perm" in a else v[0].permute(*reversed(range(v[0].ndim)))
    if op == "Concat":
        return torch.cat(v, dim=a["axis"])
    if op == "Shape":
        return torch.tensor(v[0].shape, dtype=torch.int64)
    if op == "Gather":
        idx = v[1].long()
        return torch.index_select(v[0], a.get("axis", 0), idx.reshape(-1)).reshape(
            *v[0].shape[:a.get("axis", 0)], *idx.shape, *v[0].shape[a.get("axis", 0) + 1:])
    if op == "Cast":
        return v[0].float() if v[0].is_floating_point() else v[0]
    if op == "Squeeze":
        axes = a.get("axes") or (v[1].tolist() if len(v) > 1 and v[1] is not None else None)
        return v[0].squeeze() if axes is None else v[0].squeeze(tuple(axes))
    axes = a.get("axes") or v[1].tolist()     # Unsqueeze
    y = v[0]
    for ax in sorted(axes):
        y = y.unsqueeze(ax)
    return y


def onnx_module(path) -> nn.Module:
    """An ONNX file as an OnnxModule in eval mode (one-line ValueError for files it cannot run,
    among them graphs whose external weight files are absent)."""
    model, needs = load_onnx(path, need_data=True)
    return OnnxModule(model, os.path.basename(os.fspath(path))).eval()


def load_onnx(path, need_data: bool = True):
    """(onnx.ModelProto, None or why the weights are missing) with one-line errors for a missing or
    unreadable file. need_data: external weight files must be present (else a ValueError saying that
    accuracy needs them); without, an absent external file leaves its tensors shape-only."""
    import onnx
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"ONNX file {path} does not exist")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:      # DecodeError and friends
        raise ValueError(f"ONNX file {path}: not a readable ONNX model ({type(e).__name__})") from None
    ext = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if not ext:
        return model, None
    base = os.path.dirname(os.path.abspath(path))
    files = sorted({e.value for t in ext for e in t.external_data if e.key == "location"})
    absent = [f for f in files if not os.path.isfile(os.path.join(base, f))]
    if absent:
        why = (f"ONNX {os.path.basename(path)}: its weights are in external file(s) that are absent "
               f"({', '.join(absent[:3])}); shapes, MACs and energy need only the graph, accuracy needs the weights")
        if need_data:
            raise ValueError(why)
        return model, why
    try:
        from onnx.external_data_helper import load_external_data_for_model
        load_external_data_for_model(model, base)
    except Exception as e:
        raise ValueError(f"ONNX file {path}: its external weights do not load ({type(e).__name__})") from None
    return model, None
