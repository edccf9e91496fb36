"""The canonical product modules net.graph lifts every matrix product of a model to, and how to find
them (one definition of each kind: nn.Linear, nn.Conv1d/Conv2d and Matmul).

    Matmul                 a @ b of two activations
    Einsum                 a two-operand einsum as one batched Matmul
    Attention              F.scaled_dot_product_attention with its scores / context Matmuls
    MultiheadAttention     nn.MultiheadAttention with explicit projections and Attention
    BatchNorm              a batch norm of any rank (a torch.export batch_norm op as a module)
    product_kind(module)   'linear' | 'conv' | 'matmul' | None;  products(model) {name: (kind, module)}
    keep(model, name, v)   an attribute that survives copy.deepcopy of a GraphModule
"""
from __future__ import annotations

import math

import torch
import torch.fx as fx
from torch import nn
from torch.nn import functional as F

__all__ = ["PRODUCT_KINDS", "Matmul", "Einsum", "Attention", "MultiheadAttention", "BatchNorm", "product_kind",
           "products", "keep"]

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


class BatchNorm(nn.modules.batchnorm._BatchNorm):
    """A batch norm of any rank: what a torch.export program's batch_norm op becomes, so that it trains
    with batch statistics and folds like nn.BatchNorm2d."""

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"batch norm needs (N, C, ...) input, got {input.dim()}-D")


def keep(model: nn.Module, name: str, value) -> None:
    """setattr that survives copy.deepcopy of a GraphModule (which keeps only its graph and modules)."""
    setattr(model, name, value)
    if isinstance(model, fx.GraphModule):
        from torch.fx.graph_module import _USER_PRESERVED_ATTRIBUTES_KEY
        model.meta.setdefault(_USER_PRESERVED_ATTRIBUTES_KEY, {})[name] = value


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
