"""The census of a model: every matrix product it runs (shape, MACs, kind, covered or float) and every
float element-wise operation, traced on one sample with a torch function mode (net.graph's entry).

    census(model, input_shape) -> Census   layers (synth.network entries), ops, unsupported, no_macs
    layer_macs(entry), kind_of_entry(entry), macs_by_kind(entries), summarize_ops(ops)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from .products import product_kind

__all__ = ["Census", "census", "layer_macs", "kind_of_entry", "macs_by_kind", "summarize_ops", "matmul_entry"]


def _pair(v, n):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * n


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


def matmul_entry(name, a_shape, b_shape) -> dict:
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
                entries.append(matmul_entry(name, a.shape, b.shape))
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
            entries.append({**matmul_entry(f"{name}.scores", q.shape, k.transpose(-2, -1).shape)})
            entries.append({**matmul_entry(f"{name}.context", (*q.shape[:-1], k.shape[-2]), v.shape)})
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
