"""Graph-level conversion: every matrix product of a model as a module a datapath can take
(the approach of torch.ao.quantization's FX graph mode and of Brevitas).

    lift(model, example=None, fold_bn=True)  -> the canonical model: a copy whose every product is a
                                               leaf module of one of three kinds (PRODUCT_KINDS)
    products(model)                          {name: (kind, module)} of a canonical model
    convert(model, assignment, calib=None, factories=None)
                                             a copy whose products run on datapaths (one spec, or
                                             {product name: spec}), by a factory per kind
    census(model, input_shape)               every product's shape and MACs (covered or float) and
                                             the element-wise operations, traced on one sample
                                             (net/census.py; the product modules: net/products.py)

Kinds of product (a "layer" for nn eval, ALWANN and the energy model):
  linear  nn.Linear: activation x weight (F.linear, `x @ W` with a 2-D parameter W, aten.linear)
  conv    nn.Conv1d / nn.Conv2d with any groups (depthwise included), dilation, stride, padding
          (F.conv1d/F.conv2d, aten.conv*/convolution with a parameter weight)
  matmul  Matmul: activation x activation, both operands quantized as activations
          (torch.matmul / @ / bmm / mm of two activations, two-operand einsum (Einsum),
          F.scaled_dot_product_attention (Attention: the scores and context products written out),
          nn.MultiheadAttention (MultiheadAttention: q/k/v/out projections + Attention))

lift traces the model with torch.fx (a torch.export program's graph module as it is), replaces
each functional product by its module (named after the module it runs in, e.g.
blocks.0.attn.matmul_1) and, with fold_bn, folds every BatchNorm that follows a convolution or a
linear layer into it (inference: the folded weights are what a datapath quantizes, as a deployed
accelerator holds them; for training, fold_bn=False keeps BatchNorm float). A model fx cannot
trace (data-dependent control flow) goes through torch.export with `example`; if that fails too,
only module-level products are lifted and census prices the rest as float products. Everything
else (LayerNorm, softmax, GELU, pooling, residual adds, embeddings) stays float32; census lists it
by operation with element counts.

A factory is `fn(module, datapath) -> module` for one kind: the default ones build
net.layers.EmuLinear / EmuConv2d / EmuMatmul (post-training emulation); a training mode passes its
own (net/potq.py, net/qat.py: the mode's `factories()`), so every mode converts the same products.
"""
from __future__ import annotations

import copy
import operator
import re
import warnings

import numpy as np
import torch
import torch.fx as fx
from torch import nn
from torch.nn import functional as F

# the product modules and the census are net/products.py's and net/census.py's; named here too, so that
# net.graph is the one entry (graph.lift, graph.convert, graph.census, graph.products)
from .census import Census, census, layer_macs, macs_by_kind, summarize_ops  # noqa: F401
from .products import (PRODUCT_KINDS, Attention, BatchNorm, Einsum, Matmul, MultiheadAttention,  # noqa: F401
                       keep, product_kind, products)

__all__ = ["lift", "convert", "convert_for_mode", "default_factories", "products", "product_kind", "keep",
           "census", "Census", "layer_macs", "macs_by_kind", "summarize_ops", "Matmul", "PRODUCT_KINDS"]

# deep copies of torch.export graph modules trip a deprecation inside torch itself (not the user's code)
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)


# ---- lifting -------------------------------------------------------------------------------------------
aten = torch.ops.aten
_LINEAR = {F.linear, aten.linear.default}
_CONV = {F.conv1d, F.conv2d, aten.conv1d.default, aten.conv2d.default, aten.convolution.default}
_MATMUL = {torch.matmul, operator.matmul, torch.bmm, torch.mm, aten.matmul.default, aten.bmm.default,
           aten.mm.default}
_MATMUL_METHODS = {"matmul", "bmm", "mm", "__matmul__"}
_EINSUM = {torch.einsum, aten.einsum.default}
_SDPA = {F.scaled_dot_product_attention, aten.scaled_dot_product_attention.default}
_ADD_PRODUCT = {aten.addmm.default, aten.baddbmm.default, torch.addmm, torch.baddbmm}
_BN = {aten.batch_norm.default, F.batch_norm}
_LEAVES = (Matmul, Einsum, Attention, MultiheadAttention)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m, qualname):
        return isinstance(m, _LEAVES) or super().is_leaf_module(m, qualname)

def _swap_modules(model: nn.Module) -> None:
    for name, m in list(model.named_modules()):
        if type(m) is nn.MultiheadAttention:
            parent, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, leaf, MultiheadAttention(m))


def lift(model: nn.Module, example=None, fold_bn: bool = True) -> nn.Module:
    """The canonical copy of `model` (see the module docstring); the model itself is not changed.
    example: one input batch (needed for torch.export when fx cannot trace, and for TorchScript)."""
    if getattr(model, "_ecomac_lifted", None) == fold_bn:
        return model
    if isinstance(model, torch.jit.ScriptModule):
        raise ValueError("a TorchScript model is run through ONNX (net.loader.load), not lifted")
    if getattr(model, "canonical", False):          # net.importer.OnnxModule: its products are modules
        return model
    was = model.training
    m = copy.deepcopy(model)
    _swap_modules(m)
    gm = None
    if isinstance(m, fx.GraphModule):      # a fresh GraphModule: torch.export's module refuses eval()
        gm = fx.GraphModule(m, m.graph, "Exported")
    else:
        try:
            gm = fx.GraphModule(m, _Tracer().trace(m), m.__class__.__name__)
        except Exception:       # fx raises many kinds on data-dependent Python
            gm = None
        if gm is None and example is not None:
            try:
                ex = torch.as_tensor(np.asarray(example, np.float32))
                gm = torch.export.export(m.eval(), (ex,)).module()
            except Exception:
                gm = None
    if gm is None:
        m.train(was)
        keep(m, "_ecomac_lifted", fold_bn)
        return m
    _rewrite(gm)
    if fold_bn:
        _fold_bn(gm)
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    gm.train(was)
    keep(gm, "_ecomac_lifted", fold_bn)
    if hasattr(model, "input_shape"):
        keep(gm, "input_shape", tuple(model.input_shape))
    return gm


def _attr(gm, node):
    """The tensor a get_attr node reads, else None."""
    if not isinstance(node, fx.Node) or node.op != "get_attr":
        return None
    obj = gm
    for part in node.target.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, torch.Tensor) else None


def _as_param(t):
    return t if isinstance(t, nn.Parameter) else nn.Parameter(t.detach().clone(), requires_grad=t.requires_grad)


def _module_path(node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    path = re.sub(r"^L\['self'\]\.?", "", str(path))
    path = re.sub(r"\[['\"]?([^\]'\"]+)['\"]?\]", r".\1", path).strip(".")
    return path if re.fullmatch(r"[A-Za-z0-9_.]*", path) else re.sub(r"[^A-Za-z0-9_.]", "_", path)


def _lookup(gm, name):
    obj = gm
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _add_module(gm, node, mod: nn.Module, op: str) -> str:
    """Register `mod` under the path of the module the node ran in: that path itself where it is an
    export graph's bare holder of exactly this product's parameters (so get_attr nodes still resolve),
    else PATH.OP (OP_2, ... when taken)."""
    path = _module_path(node)
    holder = _lookup(gm, path) if path else None
    if holder is not None and type(holder) is nn.Module and not any(True for _ in holder.children()):
        mine = {id(t) for t in list(mod.parameters()) + list(mod.buffers())}
        theirs = {id(t) for t in list(holder.parameters(recurse=False)) + list(holder.buffers(recurse=False))}
        if theirs and theirs <= mine:
            parent, _, leaf = path.rpartition(".")
            setattr(_lookup(gm, parent) if parent else gm, leaf, mod)
            return path
    base = f"{path}.{op}" if path else op
    name, k = base, 1
    while _lookup(gm, name) is not None:
        k += 1
        name = f"{base}_{k}"
    gm.add_submodule(name, mod)
    return name


def _arg(node, i, key, default=None):
    if len(node.args) > i:
        return node.args[i]
    return node.kwargs.get(key, default)


def _replace(gm, node, mod, op, args):
    name = _add_module(gm, node, mod, op)
    with gm.graph.inserting_before(node):
        new = gm.graph.call_module(name, tuple(args))
    new.meta = dict(node.meta)
    node.replace_all_uses_with(new)
    gm.graph.erase_node(node)
    return new


def _rewrite(gm) -> None:
    g = gm.graph
    for node in list(g.nodes):
        t = node.target
        is_fn = node.op == "call_function"
        if is_fn and t in _LINEAR:
            x, w, b = node.args[0], node.args[1], _arg(node, 2, "bias")
            W, B = _attr(gm, w), _attr(gm, b)
            if W is not None and W.dim() == 2 and (b is None or B is not None):
                lin = nn.Linear(W.shape[1], W.shape[0], bias=B is not None)
                lin.weight = _as_param(W)
                if B is not None:
                    lin.bias = _as_param(B)
                _replace(gm, node, lin, "linear", [x])
            else:                                           # an activation weight: x @ w^T (+ b)
                with g.inserting_before(node):
                    wt = g.call_method("transpose", (w, -2, -1))
                new = _replace(gm, node, Matmul(), "matmul", [x, wt])
                if b is not None:
                    with g.inserting_after(new):
                        add = g.call_function(torch.add, (new, b))
                    new.replace_all_uses_with(add)
                    add.args = (new, b)
        elif is_fn and t in _CONV:
            conv = _lift_conv(gm, node)
            if conv is not None:
                _replace(gm, node, conv, "conv", [node.args[0]])
        elif (is_fn and t in _MATMUL) or (node.op == "call_method" and t in _MATMUL_METHODS):
            a, b = node.args[0], node.args[1]
            W = _attr(gm, b)
            if W is not None and W.dim() == 2 and _attr(gm, a) is None:
                lin = nn.Linear(W.shape[0], W.shape[1], bias=False)
                lin.weight = nn.Parameter(W.detach().t().contiguous().clone(), requires_grad=W.requires_grad)
                _replace(gm, node, lin, "linear", [a])
            else:
                _replace(gm, node, Matmul(), "matmul", [a, b])
        elif is_fn and t in _EINSUM:
            ops = node.args[1] if isinstance(node.args[1], (list, tuple)) else node.args[1:]
            if len(ops) == 2:
                try:
                    _replace(gm, node, Einsum(node.args[0]), "einsum", list(ops))
                except ValueError:
                    pass
        elif is_fn and t in _SDPA:
            q, k, v = node.args[:3]
            mask = _arg(node, 3, "attn_mask")
            mod = Attention(_arg(node, 6, "scale"), bool(_arg(node, 5, "is_causal", False)),
                            float(_arg(node, 4, "dropout_p", 0.0)))
            _replace(gm, node, mod, "attention", [q, k, v] + ([mask] if mask is not None else []))
        elif is_fn and t in _BN and not _arg(node, 5, "training", False):
            w, b, mean, var = (_attr(gm, a) for a in node.args[1:5])
            if mean is None or var is None or (node.args[1] is not None and w is None):
                continue
            bn = BatchNorm(mean.numel(), eps=float(_arg(node, 7, "eps", 1e-5)),
                           momentum=float(_arg(node, 6, "momentum", 0.1)), affine=w is not None)
            if w is not None:
                bn.weight = _as_param(w)
                bn.bias = _as_param(b) if b is not None else nn.Parameter(torch.zeros_like(w))
            bn.running_mean, bn.running_var = mean, var
            bn.eval()
            _replace(gm, node, bn, "batch_norm", [node.args[0]])
        elif is_fn and t in _ADD_PRODUCT:
            inp, a, b = node.args[:3]
            beta, alpha = node.kwargs.get("beta", 1), node.kwargs.get("alpha", 1)
            new = _replace(gm, node, Matmul(), "matmul", [a, b])
            with g.inserting_after(new):
                scaled = g.call_function(operator.mul, (new, alpha)) if alpha != 1 else new
            with g.inserting_after(scaled):
                add = g.call_function(torch.add, (scaled, inp), {"alpha": beta} if beta != 1 else {})
            new.replace_all_uses_with(add)
            add.args = (scaled, inp)
            if scaled is not new:
                scaled.args = (new, alpha)


def _pair(v, n):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * n


def _lift_conv(gm, node):
    t = node.target
    x, w = node.args[0], node.args[1]
    W, bnode = _attr(gm, w), _arg(node, 2, "bias")
    B = _attr(gm, bnode)
    if W is None or W.dim() not in (3, 4) or (bnode is not None and B is None):
        return None
    if t is aten.convolution.default:
        stride, padding, dilation, transposed, _, groups = node.args[3:9]
        if transposed:
            return None
    else:
        stride, padding, dilation, groups = (_arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0),
                                             _arg(node, 5, "dilation", 1), _arg(node, 6, "groups", 1))
    if any(isinstance(v, fx.Node) for v in (stride, padding, dilation, groups)):
        return None
    nd = W.dim() - 2
    cls = nn.Conv1d if nd == 1 else nn.Conv2d
    conv = cls(W.shape[1] * groups, W.shape[0], tuple(W.shape[2:]), _pair(stride, nd),
               padding if isinstance(padding, str) else _pair(padding, nd), _pair(dilation, nd), groups,
               bias=B is not None)
    conv.weight = _as_param(W)
    if B is not None:
        conv.bias = _as_param(B)
    return conv


def _fold_bn(gm) -> None:
    """Fold BatchNorm (module or aten op, eval statistics) into the conv / linear module before it."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval
    g = gm.graph
    for node in list(g.nodes):
        prev = node.args[0] if node.args else None
        if not isinstance(prev, fx.Node) or prev.op != "call_module" or len(prev.users) != 1:
            continue
        pmod = gm.get_submodule(prev.target)
        if product_kind(pmod) not in ("linear", "conv"):
            continue
        if node.op == "call_module" and isinstance(gm.get_submodule(node.target), nn.modules.batchnorm._BatchNorm):
            bn = gm.get_submodule(node.target)
        elif node.op == "call_function" and node.target in _BN:
            vals = [_attr(gm, a) for a in node.args[1:5]]
            training = _arg(node, 5, "training", False)
            if any(v is None for v in vals[2:]) or training:
                continue
            eps = _arg(node, 7, "eps", 1e-5)
            bn = nn.BatchNorm2d(vals[2].numel(), eps=eps, affine=vals[0] is not None)
            with torch.no_grad():
                bn.running_mean.copy_(vals[2])
                bn.running_var.copy_(vals[3])
                if vals[0] is not None:
                    bn.weight.copy_(vals[0])
                    bn.bias.copy_(vals[1] if vals[1] is not None else torch.zeros_like(vals[0]))
        else:
            continue
        if bn.running_mean is None or (product_kind(pmod) == "linear" and not isinstance(bn, nn.BatchNorm1d)
                                       and node.op == "call_module"):
            continue
        bn = copy.deepcopy(bn).eval()
        fused = fuse_conv_bn_eval(pmod.eval(), bn) if product_kind(pmod) == "conv" else \
            fuse_linear_bn_eval(pmod.eval(), bn)
        fused.train(pmod.training)
        parent, _, leaf = prev.target.rpartition(".")
        setattr(gm.get_submodule(parent) if parent else gm, leaf, fused)
        node.replace_all_uses_with(prev)
        g.erase_node(node)


# ---- conversion by factories -----------------------------------------------------------------------
class _Conv1dVia2d(nn.Module):
    """A conv1d run by a 2-D conv module on (N, C, 1, L)."""

    def __init__(self, conv2d: nn.Module):
        super().__init__()
        self.conv = conv2d

    def forward(self, x):
        return self.conv(x.unsqueeze(2)).squeeze(2)


def _as_conv2d(c: nn.Conv1d) -> nn.Conv2d:
    pad = c.padding if isinstance(c.padding, str) else (0, c.padding[0])
    out = nn.Conv2d(c.in_channels, c.out_channels, (1, c.kernel_size[0]), (1, c.stride[0]), pad,
                    (1, c.dilation[0]), c.groups, bias=c.bias is not None)
    with torch.no_grad():
        out.weight.copy_(c.weight.unsqueeze(2))
        if c.bias is not None:
            out.bias.copy_(c.bias)
    return out


def default_factories() -> dict:
    """Post-training emulation: net.layers.EmuLinear / EmuConv2d / EmuMatmul."""
    from . import layers

    def conv(m, dp):
        if isinstance(m, nn.Conv1d):
            return _Conv1dVia2d(layers.EmuConv2d(_as_conv2d(m), dp))
        return layers.EmuConv2d(m, dp)

    def matmul(m, dp):
        cls = getattr(layers, "EmuMatmul", None)
        if cls is None:
            raise ValueError("activation x activation products need net.layers.EmuMatmul (not in this checkout)")
        return cls(dp)
    return {"linear": lambda m, dp: layers.EmuLinear(m, dp), "conv": conv, "matmul": matmul}


def _resolve(model, assignment) -> dict:
    from .layers import resolve_assignment
    return resolve_assignment(assignment, products(model))


def convert(model: nn.Module, assignment, calib=None, factories: dict | None = None, example=None) -> nn.Module:
    """A copy of the lifted `model` whose products run on datapaths: `assignment` is one spec for every
    product or {product name: spec} (products not named stay float32); `factories` {kind: fn(module,
    datapath) -> module} (default: default_factories()). calib: a float input batch to calibrate
    the activation scales on (needed unless every datapath is fp32)."""
    model = lift(model, example if example is not None else calib)
    mapping = _resolve(model, assignment)
    facts = {**default_factories(), **(factories or {})}
    new = copy.deepcopy(model)
    kinds = products(new)
    swapped = False
    for name, dp in mapping.items():
        if dp.is_float:
            continue
        kind, old = kinds[name]
        mod = facts[kind](old, dp)
        mod.train(old.training)
        parent, _, leaf = name.rpartition(".")
        setattr(new.get_submodule(parent) if parent else new, leaf, mod)
        swapped = True
    if swapped:
        if calib is None:
            raise ValueError("convert: integer datapaths need a calibration batch (calib=) for activation scales")
        from .layers import calibrate
        calibrate(new, calib)
    return new


def convert_for_mode(model: nn.Module, mode) -> nn.Module:
    """A training mode's model: mode.convert (its Linear / Conv2d layers), then mode.make(kind, module,
    name) (kinds "linear", "conv2d", "matmul": net/potq.py's protocol) for each product convert left
    float (Matmul, Conv1d). A mode without make leaves those float32; they are listed in
    `model._ecomac_float_products`."""
    new = mode.convert(model)
    make = getattr(mode, "make", None)
    left = []
    for name, (kind, mod) in products(new).items():
        rep = None
        if make is not None:
            if kind == "matmul":
                rep = make("matmul", None, name)
            elif isinstance(mod, nn.Conv1d):
                rep = _Conv1dVia2d(make("conv2d", _as_conv2d(mod), name))
        if rep is None:
            left.append(name)
            continue
        rep.train(mod.training)
        parent, _, leaf = name.rpartition(".")
        setattr(new.get_submodule(parent) if parent else new, leaf, rep)
    keep(new, "_ecomac_float_products", left)
    return new
