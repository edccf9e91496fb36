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
import math
import operator
import re
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
from torch import nn
from torch.nn import functional as F

__all__ = ["Matmul", "Einsum", "Attention", "MultiheadAttention", "PRODUCT_KINDS", "lift", "products",
           "product_kind", "convert", "default_factories", "census", "Census", "summarize_ops"]

PRODUCT_KINDS = ("linear", "conv", "matmul")


# ---- the canonical product modules -----------------------------------------------------------------
class Matmul(nn.Module):
    """a @ b of two activations (torch.matmul semantics: batched, broadcast)."""

    def forward(self, a, b):
        return torch.matmul(a, b)


class Einsum(nn.Module):
    """A two-operand einsum as one batched Matmul: indices in both operands and the output are the
    batch, in both operands only are contracted, in one operand and the output are its free
    dimensions (indices of one operand alone are summed first)."""

    def __init__(self, equation: str):
        super().__init__()
        eq = equation.replace(" ", "")
        if "->" not in eq or "..." in eq or eq.count(",") != 1:
            raise ValueError(f"einsum {equation!r}: only explicit two-operand equations without ... are lifted")
        self.equation = eq
        (self.ia, self.ib), self.io = eq.split("->")[0].split(","), eq.split("->")[1]
        self.matmul = Matmul()

    def forward(self, a, b):
        ia, ib, io = self.ia, self.ib, self.io
        for ops, other in ((0, ib), (1, ia)):           # sum indices only one operand has
            idx = ia if ops == 0 else ib
            lone = [c for c in idx if c not in other and c not in io]
            if lone:
                t = (a if ops == 0 else b).sum(dim=[idx.index(c) for c in lone])
                idx = "".join(c for c in idx if c not in lone)
                a, ia = (t, idx) if ops == 0 else (a, ia)
                b, ib = (b, ib) if ops == 0 else (t, idx)
        bat = [c for c in ia if c in ib and c in io]
        con = [c for c in ia if c in ib and c not in io]
        left = [c for c in ia if c not in ib]
        right = [c for c in ib if c not in ia]
        size = {**dict(zip(ia, a.shape)), **dict(zip(ib, b.shape))}
        A = a.permute(*[ia.index(c) for c in bat + left + con])
        B = b.permute(*[ib.index(c) for c in bat + con + right])
        nb, nl, nc, nr = (math.prod(size[c] for c in g) for g in (bat, left, con, right))
        Y = self.matmul(A.reshape(nb, nl, nc), B.reshape(nb, nc, nr))
        Y = Y.reshape([size[c] for c in bat + left + right])
        order = bat + left + right
        return Y.permute(*[order.index(c) for c in io])


class Attention(nn.Module):
    """F.scaled_dot_product_attention written out: softmax(q k^T * scale + mask) v, its two products
    as Matmul modules `scores` and `context` (the softmax stays float)."""

    def __init__(self, scale=None, is_causal: bool = False, dropout_p: float = 0.0):
        super().__init__()
        self.scale, self.is_causal, self.dropout_p = scale, bool(is_causal), float(dropout_p)
        self.scores = Matmul()
        self.context = Matmul()

    def forward(self, q, k, v, attn_mask=None):
        s = self.scale if self.scale is not None else q.shape[-1] ** -0.5
        a = self.scores(q, k.transpose(-2, -1)) * s
        if self.is_causal:
            L, S = a.shape[-2], a.shape[-1]
            a = a.masked_fill(~torch.ones(L, S, dtype=torch.bool, device=a.device).tril(), float("-inf"))
        if attn_mask is not None:
            a = a.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else a + attn_mask
        a = F.dropout(torch.softmax(a, dim=-1), self.dropout_p, self.training)
        return self.context(a, v)


class MultiheadAttention(nn.Module):
    """nn.MultiheadAttention with every product explicit: q_proj, k_proj, v_proj, out_proj (Linear)
    and `attention` (Attention: scores and context per head). Same arguments and outputs."""

    def __init__(self, mha: nn.MultiheadAttention):
        super().__init__()
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("nn.MultiheadAttention with add_bias_kv or add_zero_attn is not lifted")
        e, self.heads, self.batch_first = mha.embed_dim, mha.num_heads, mha.batch_first
        kd, vd = mha.kdim, mha.vdim
        bias = mha.in_proj_bias is not None
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(e, e, bias), nn.Linear(kd, e, bias), nn.Linear(vd, e, bias)
        with torch.no_grad():
            if mha._qkv_same_embed_dim:
                w = mha.in_proj_weight.detach()
                ws = (w[:e], w[e:2 * e], w[2 * e:])
            else:
                ws = (mha.q_proj_weight.detach(), mha.k_proj_weight.detach(), mha.v_proj_weight.detach())
            for lin, wi, j in zip((self.q_proj, self.k_proj, self.v_proj), ws, range(3)):
                lin.weight.copy_(wi)
                if bias:
                    lin.bias.copy_(mha.in_proj_bias.detach()[j * e:(j + 1) * e])
        self.out_proj = nn.Linear(e, e, mha.out_proj.bias is not None)
        self.out_proj.load_state_dict(mha.out_proj.state_dict())
        self.attention = Attention(dropout_p=mha.dropout)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        b, L, e = query.shape
        S, h = key.shape[1], self.heads

        def split(t, n):
            return t.reshape(b, n, h, e // h).transpose(1, 2)
        q, k, v = split(self.q_proj(query), L), split(self.k_proj(key), S), split(self.v_proj(value), S)
        mask = None
        if attn_mask is not None:
            mask = attn_mask if attn_mask.dtype != torch.bool else torch.zeros(attn_mask.shape).masked_fill(
                attn_mask, float("-inf"))
            mask = mask.reshape(b, h, L, S) if mask.dim() == 3 else mask
        if key_padding_mask is not None:
            kp = key_padding_mask.reshape(b, 1, 1, S)
            kp = torch.zeros(kp.shape).masked_fill(kp, float("-inf")) if kp.dtype == torch.bool else kp
            mask = kp if mask is None else mask + kp
        s = self.attention.scores(q, k.transpose(-2, -1)) * (e // h) ** -0.5
        if is_causal and mask is None:
            s = s.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf"))
        if mask is not None:
            s = s + mask
        a = F.dropout(torch.softmax(s, dim=-1), self.attention.dropout_p, self.training)
        y = self.out_proj(self.attention.context(a, v).transpose(1, 2).reshape(b, L, e))
        if not self.batch_first:
            y = y.transpose(0, 1)
        if not need_weights:
            return y, None
        return y, (a.mean(dim=1) if average_attn_weights else a)


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


def product_kind(module: nn.Module):
    """'linear', 'conv', 'matmul' for a float product module, else None."""
    if type(module) is nn.Linear:
        return "linear"
    if type(module) in (nn.Conv1d, nn.Conv2d):
        return "conv"
    if type(module) is Matmul:
        return "matmul"
    return None


def products(model: nn.Module) -> dict:
    """{name: (kind, module)} of the float product modules of a (lifted) model, in definition order."""
    return {n: (product_kind(m), m) for n, m in model.named_modules() if n and product_kind(m)}


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
    if isinstance(m, fx.GraphModule):
        gm = m
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
        m._ecomac_lifted = fold_bn
        return m
    _rewrite(gm)
    if fold_bn:
        _fold_bn(gm)
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    gm.train(was)
    gm._ecomac_lifted = fold_bn
    if hasattr(model, "input_shape"):
        gm.input_shape = model.input_shape
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
    from .datapath import parse
    targets = products(model)
    if isinstance(assignment, dict):
        unknown = sorted(set(assignment) - set(targets))
        if unknown:
            raise ValueError(f"mapping names unknown layer(s) {', '.join(map(repr, unknown[:5]))} "
                             f"(products: {', '.join(targets) or 'none'})")
        out = {}
        for n, spec in assignment.items():
            try:
                out[n] = parse(spec)
            except (ValueError, TypeError) as e:
                raise ValueError(f"mapping layer {n!r}: {e}") from None
        return out
    dp = parse(assignment)
    return {n: dp for n in targets}


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


# ---- census: every product and every element-wise operation, traced -------------------------------------
_SHAPE_ONLY = {n.strip("_") for n in {"view", "reshape", "permute", "transpose", "flatten", "unflatten", "squeeze", "unsqueeze",
               "contiguous", "expand", "expand_as", "size", "dim", "t", "clone", "to", "detach", "__getitem__",
               "cat", "stack", "split", "chunk", "unbind", "select", "narrow", "numel", "__get__", "__set__",
               "type_as", "float", "repeat", "tile", "movedim", "swapaxes", "view_as", "reshape_as", "flip",
               "dropout", "identity", "pad", "zeros_like", "ones_like", "zeros", "ones", "tensor", "arange",
               "__len__", "__iter__", "masked_fill", "tril", "triu", "getitem", "full", "new_zeros", "__bool__",
               "__index__", "__format__", "__hash__", "__eq__", "eq", "ne", "__ne__", "__invert__", "bool",
               "logical_not", "where", "__setitem__", "copy_", "fill_", "zero_", "requires_grad_", "element_size",
               "data_ptr", "is_floating_point", "stride", "storage_offset", "__repr__", "item", "tolist", "slice",
               "alias", "lift_fresh_copy", "empty", "empty_like"}}
_FLOAT_PRODUCTS = {F.linear: "linear", F.conv1d: "conv", F.conv2d: "conv", torch.conv1d: "conv",
                   torch.conv2d: "conv", torch.matmul: "matmul", torch.Tensor.matmul: "matmul",
                   torch.Tensor.__matmul__: "matmul", torch.Tensor.__rmatmul__: "matmul", torch.bmm: "matmul",
                   torch.Tensor.bmm: "matmul", torch.mm: "matmul", torch.Tensor.mm: "matmul",
                   torch.einsum: "einsum", F.scaled_dot_product_attention: "sdpa", torch.addmm: "matmul",
                   torch.baddbmm: "matmul"}


@dataclass
class Census:
    layers: list                    # synth.network layer entries (per sample), execution order
    ops: dict = field(default_factory=dict)     # {op: {"count", "elements"}} float element-wise work
    unsupported: list = field(default_factory=list)   # [(name, op)] products with MACs not counted
    no_macs: list = field(default_factory=list)       # [(module or op, type)] that ran float element-wise

    @property
    def net(self) -> dict:
        return {"name": "model", "batch": 1, "layers": [dict(e) for e in self.layers]}

    def macs_by_kind(self) -> dict:
        return macs_by_kind(self.layers)


def layer_macs(e: dict) -> int:
    """MACs of one synth.network layer entry (repeat included, batch 1)."""
    rep = e.get("repeat", 1)
    if e["kind"] == "linear":
        return rep * e["in"] * e["out"] * e.get("tokens", 1)
    if e["kind"] == "matmul":
        return rep * e.get("count", 1) * e["M"] * e["K"] * e["N"]
    from synth.network import conv_geometry
    kh, kw, ho, wo = conv_geometry(e)
    return rep * e["out_ch"] * (e["in_ch"] // e.get("groups", 1)) * kh * kw * ho * wo


def kind_of_entry(e: dict) -> str:
    """linear, conv, grouped_conv or matmul (activation x activation)."""
    if e["kind"] == "conv" and e.get("groups", 1) > 1:
        return "grouped_conv"
    return e["kind"]


def macs_by_kind(entries) -> dict:
    out = {"linear": 0, "conv": 0, "grouped_conv": 0, "matmul": 0}
    for e in entries:
        out[kind_of_entry(e)] += layer_macs(e)
    return out


def _conv_entry(name, x, w, out, stride, padding, dilation, groups) -> dict:
    nd = w.dim() - 2
    H, W_ = (1, x.shape[-1]) if nd == 1 else tuple(x.shape[-2:])
    kh, kw = (1, w.shape[-1]) if nd == 1 else tuple(w.shape[-2:])
    ho, wo = (1, out.shape[-1]) if nd == 1 else tuple(out.shape[-2:])
    st, dl = _pair(stride, nd), _pair(dilation, nd)
    st, dl = ((1, st[0]), (1, dl[0])) if nd == 1 else (st, dl)
    # the padding that gives the traced output size (string paddings and asymmetric ONNX pads included)
    ph = max(0, ((ho - 1) * st[0] + dl[0] * (kh - 1) + 1 - H))
    pw = max(0, ((wo - 1) * st[1] + dl[1] * (kw - 1) + 1 - W_))
    e = {"kind": "conv", "name": name, "in_ch": int(x.shape[1]), "out_ch": int(w.shape[0]),
         "kernel": [int(kh), int(kw)], "H": int(H), "W": int(W_), "stride": [int(s) for s in st],
         "padding": [ph // 2, pw // 2, ph - ph // 2, pw - pw // 2]}
    if groups != 1:
        e["groups"] = int(groups)
    if dl != (1, 1):
        e["dilation"] = [int(d) for d in dl]
    return e


def _matmul_entry(name, a_shape, b_shape) -> dict:
    a, b = list(a_shape), list(b_shape)
    a = [1] + a if len(a) == 1 else a
    b = b + [1] if len(b) == 1 else b
    M, K, N = a[-2], a[-1], b[-1]
    batch = torch.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
    return {"kind": "matmul", "name": name, "M": int(M), "K": int(K), "N": int(N), "count": int(math.prod(batch))}


def _op_name(func) -> str:
    n = getattr(func, "__name__", None) or str(func)
    n = n.split(".")[0].strip("_")          # aten overloads: relu.default -> relu
    if n.startswith("i") and n[1:] in ("add", "sub", "mul", "truediv"):
        n = n[1:]
    if n.startswith("r") and n[1:] in ("add", "sub", "mul", "truediv"):
        n = n[1:]
    return n.rstrip("_")


class _Recorder(torch.overrides.TorchFunctionMode):
    def __init__(self, names, stack):
        super().__init__()
        self.names, self.stack = names, stack
        self.entries, self.ops, self.uncovered, self.seen = [], {}, [], {}
        self.no_macs, self.no_macs_seen = [], set()

    def _name(self, op):
        owner = self.stack[-1] if self.stack else None
        if owner is not None and product_kind(owner[1]) is not None:
            return owner[0], True
        base = f"{owner[0]}.{op}" if owner and owner[0] else op
        k = self.seen.get(base, 0) + 1
        self.seen[base] = k
        return (base if k == 1 else f"{base}_{k}"), False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        kind = _FLOAT_PRODUCTS.get(func)
        try:
            if kind is not None:
                self._product(func, kind, args, kwargs, out)
            elif isinstance(out, torch.Tensor) and _op_name(func) not in _SHAPE_ONLY:
                op = _op_name(func)
                rec = self.ops.setdefault(op, {"count": 0, "elements": 0})
                rec["count"] += 1
                rec["elements"] += int(out.numel())
                owner = self.stack[-1] if self.stack else None
                if owner is not None and owner[0] and not any(True for _ in owner[1].children()):
                    item = (owner[0], type(owner[1]).__name__)
                else:
                    item = (f"{owner[0]}.{op}" if owner and owner[0] else op, op)
                if item not in self.no_macs_seen:
                    self.no_macs_seen.add(item)
                    self.no_macs.append(item)
        except Exception:       # counting never breaks the forward; an odd call is listed instead
            self.uncovered.append((self._name(_op_name(func))[0], _op_name(func)))
        return out

    def _product(self, func, kind, args, kwargs, out):
        name, covered = self._name(kind)
        entries = []
        if kind == "linear":
            x, w = args[0], args[1]
            entries.append({"kind": "linear", "name": name, "in": int(w.shape[1]), "out": int(w.shape[0]),
                            "tokens": int(x.numel() // x.shape[-1]) if x.dim() > 1 else 1})
        elif kind == "conv":
            x, w = args[0], args[1]
            get = (lambda i, k, d: args[i] if len(args) > i else kwargs.get(k, d))
            entries.append(_conv_entry(name, x, w, out, get(3, "stride", 1), get(4, "padding", 0),
                                       get(5, "dilation", 1), get(6, "groups", 1)))
        elif kind == "matmul":
            a, b = (args[1], args[2]) if func in (torch.addmm, torch.baddbmm) else (args[0], args[1])
            if func is torch.Tensor.__rmatmul__:
                a, b = b, a
            if isinstance(b, nn.Parameter) and b.dim() == 2 and not isinstance(a, nn.Parameter):
                entries.append({"kind": "linear", "name": name, "in": int(b.shape[0]), "out": int(b.shape[1]),
                                "tokens": int(a.numel() // a.shape[-1])})
            else:
                entries.append(_matmul_entry(name, a.shape, b.shape))
        elif kind == "einsum":
            ops = args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:]
            eq = args[0].replace(" ", "")
            if len(ops) != 2 or "->" not in eq:
                self.uncovered.append((name, f"einsum {eq}"))
                return
            ia, ib = eq.split("->")[0].split(",")
            size = {**dict(zip(ia, ops[0].shape)), **dict(zip(ib, ops[1].shape))}
            io = eq.split("->")[1]
            bat = math.prod(size[c] for c in ia if c in ib and c in io)
            con = math.prod(size[c] for c in ia if c in ib and c not in io)
            left = math.prod(size[c] for c in ia if c not in ib)
            right = math.prod(size[c] for c in ib if c not in ia)
            entries.append({"kind": "matmul", "name": name, "M": int(left), "K": int(con), "N": int(right),
                            "count": int(bat)})
        elif kind == "sdpa":
            q, k, v = args[:3]
            entries.append({**_matmul_entry(f"{name}.scores", q.shape, k.transpose(-2, -1).shape)})
            entries.append({**_matmul_entry(f"{name}.context", (*q.shape[:-1], k.shape[-2]), v.shape)})
        for e in entries:
            if not covered:
                e["float"] = True
            self.entries.append(e)


def census(model: nn.Module, input_shape, name: str = "model") -> Census:
    """Every product `model` runs on one zero sample of `input_shape` (per sample, without the batch):
    synth.network layer entries (kinds linear / conv (groups, dilation) / matmul; `float: true` for a
    product outside the product modules, which no datapath covers and the energy model prices at fp32),
    in execution order, a module run twice listed with `repeat`; and the float element-wise operations
    {op: {count, elements}}."""
    shape = tuple(int(d) for d in input_shape)
    names = {id(m): n for n, m in model.named_modules()}
    stack: list = []

    def pre(mod, _args):
        if id(mod) in names:
            stack.append((names[id(mod)], mod))

    def post(mod, _args, _out):
        if id(mod) in names and stack and stack[-1][1] is mod:
            stack.pop()
    h1 = torch.nn.modules.module.register_module_forward_pre_hook(pre)
    h2 = torch.nn.modules.module.register_module_forward_hook(post)
    rec = _Recorder(names, stack)
    was = model.training
    model.eval()
    try:
        with torch.no_grad(), rec:
            model(torch.zeros((1, *shape)))
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        raise ValueError(f"model {name}: does not run on input shape {','.join(map(str, (1, *shape)))} "
                         f"({str(e).splitlines()[0][:160]})") from None
    finally:
        h1.remove()
        h2.remove()
        model.train(was)
    merged, index = [], {}
    for e in rec.entries:
        key = e["name"]
        if key in index:
            first = merged[index[key]]
            if {k: v for k, v in first.items() if k != "repeat"} == e:
                first["repeat"] = first.get("repeat", 1) + 1
                continue
            k = 2
            while f"{key}#{k}" in index:
                k += 1
            e = {**e, "name": f"{key}#{k}"}
        index[e["name"]] = len(merged)
        merged.append(e)
    if not merged:
        raise ValueError(f"model {name}: no matrix product (Linear, Conv, matmul) ran on input "
                         f"{','.join(map(str, (1, *shape)))}")
    return Census(merged, rec.ops, rec.uncovered, rec.no_macs)


def summarize_ops(ops: dict, limit: int = 12) -> str:
    """'layer_norm x5 (1.2k elements), softmax x2, ...' grouped by operation, largest first."""
    items = sorted(ops.items(), key=lambda kv: (-kv[1]["elements"], kv[0]))
    parts = [f"{op} ×{v['count']} ({v['elements']:,} el.)" for op, v in items[:limit]]
    if len(items) > limit:
        parts.append(f"... {len(items) - limit} more")
    return ", ".join(parts) or "none"
