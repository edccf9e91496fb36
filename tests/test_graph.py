"""net/graph.py: every product of a model lifted to a module, converted, counted.

Proofs: the lifted model (BatchNorm folded) and its fp32 conversion reproduce the float model; on
int8, a hand-built graph of each covered product (functional grouped/dilated conv, F.linear, a matmul
of two activations, scaled_dot_product_attention, nn.MultiheadAttention, BatchNorm folded into a conv)
equals a plain reference: the golden quantizer's codes (per-channel weights, the calibrated
activation scales) multiplied in float64, the rest of the graph in float32."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from golden.datapath import parse
from net import graph, models
from synth.network import parse_net


def _randomize_bn(m: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(5)
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.running_mean.copy_(torch.rand(mod.running_mean.shape, generator=g) - 0.5)
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
            if mod.affine:
                mod.weight.data.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
                mod.bias.data.copy_(torch.rand(mod.bias.shape, generator=g) - 0.5)
    return m.eval()


class GroupedConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 2, 3, 3) * 0.3)
        self.b = nn.Parameter(torch.randn(4) * 0.1)

    def forward(self, x):
        return F.conv2d(x, self.w, self.b, stride=2, padding=1, dilation=2, groups=2)


class FunctionalLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 144) * 0.1)
        self.b = nn.Parameter(torch.randn(5) * 0.1)

    def forward(self, x):
        return F.linear(x.flatten(1), self.w, self.b)


class ActMatmul(nn.Module):
    def forward(self, x):
        t = x.flatten(2)                       # N x C x HW
        return t @ t.transpose(-2, -1)


class Sdpa(nn.Module):
    def forward(self, x):
        t = x.flatten(2)
        return F.scaled_dot_product_attention(t, t * 0.5, t + 1.0)


class Mha(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(self, x):
        t = x.flatten(2)                       # N x 4 tokens x 16
        return self.attn(t, t, t, need_weights=False)[0]


class ConvBn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


OPS = {"grouped_conv": GroupedConv, "linear": FunctionalLinear, "matmul": ActMatmul, "sdpa": Sdpa, "mha": Mha,
       "conv_bn": ConvBn}
KINDS = {"grouped_conv": ["conv"], "linear": ["linear"], "matmul": ["matmul"], "sdpa": ["matmul", "matmul"],
         "mha": ["linear"] * 4 + ["matmul"] * 2, "conv_bn": ["conv"]}


def _quant(dp, t: torch.Tensor, amax: float, role: str) -> torch.Tensor:
    """The golden quantizer's values * scale of t at the calibrated max-abs (float64)."""
    flat = np.clip(t.detach().double().numpy().reshape(-1), -amax, amax)
    codes, scale = dp.quantize(np.append(flat, amax), role)
    return torch.from_numpy(dp.values(codes[:-1], role).astype(np.float64) * float(scale)).reshape(t.shape)


def _quant_weight(dp, w: torch.Tensor) -> torch.Tensor:
    codes, scale = dp.quantize(w.detach().double().numpy(), "w", axis=0)
    s = np.asarray(scale, np.float64).reshape((-1,) + (1,) * (w.dim() - 1))
    return torch.from_numpy(dp.values(codes, "w").astype(np.float64) * s)


class _Ref(nn.Module):
    """A product on quantized operands, multiplied in float64 (the reference)."""

    def __init__(self, dp, mod, amax):
        super().__init__()
        self.dp, self.mod, self.amax = dp, mod, amax

    def forward(self, a, b=None):
        dp, m = self.dp, self.mod
        if isinstance(m, graph.Matmul):
            return (_quant(dp, a, self.amax[0], "x") @ _quant(dp, b, self.amax[1], "w")).float()
        x = _quant(dp, a, self.amax[0], "x")
        w = _quant_weight(dp, m.weight)
        bias = None if m.bias is None else m.bias.detach().double()
        if isinstance(m, nn.Linear):
            return F.linear(x, w, bias).float()
        return F.conv2d(x, w, bias, m.stride, m.padding, m.dilation, m.groups).float()


def _reference(lifted: nn.Module, converted: nn.Module, dp) -> nn.Module:
    import copy
    ref = copy.deepcopy(lifted)
    conv_mods = dict(converted.named_modules())
    for name, (_kind, mod) in graph.products(lifted).items():
        emu = conv_mods[name]
        amax = [float(o.amax) for o in emu.observers()]
        parent, _, leaf = name.rpartition(".")
        setattr(ref.get_submodule(parent) if parent else ref, leaf, _Ref(dp, mod, amax))
    return ref


@pytest.mark.parametrize("op", sorted(OPS))
def test_int8_product_equals_reference(op):
    torch.manual_seed(3)
    m = _randomize_bn(OPS[op]())
    x = torch.randn(6, 4, 2, 8) if op in ("matmul", "sdpa", "mha") else torch.randn(6, 4, 6, 6)
    lifted = graph.lift(m, x)
    assert [k for k, _ in graph.products(lifted).values()] == KINDS[op]
    with torch.no_grad():
        assert torch.allclose(lifted(x), m(x), atol=1e-5)
    q = graph.convert(lifted, "int8", calib=x)
    ref = _reference(lifted, q, parse("int8"))
    with torch.no_grad():
        got, want = q(x), ref(x)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max())), (got - want).abs().max()
    assert (got - m(x)).abs().max() > 0          # int8 is not float: the product really ran quantized


def test_batchnorm_is_folded_into_the_conv():
    m = _randomize_bn(ConvBn())
    lifted = graph.lift(m, torch.randn(2, 4, 5, 5))
    conv = graph.products(lifted)["conv"][1]
    bn = m.bn
    k = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    assert torch.allclose(conv.weight, m.conv.weight * k[:, None, None, None], atol=1e-6)
    assert torch.allclose(conv.bias, bn.bias - bn.running_mean * k, atol=1e-6)
    kept = graph.lift(m, torch.randn(2, 4, 5, 5), fold_bn=False)          # training keeps float BatchNorm
    assert any(isinstance(x, nn.BatchNorm2d) for x in kept.modules())


@pytest.mark.parametrize("arch", ["resnet", "mobilenet", "vit"])
def test_shipped_fp32_conversion_reproduces_the_float_model(arch):
    torch.manual_seed(0)
    m = _randomize_bn(models.build(arch, (1, 8, 8), 10))
    x = torch.randn(3, 1, 8, 8)
    lifted = graph.lift(m, x)
    same = graph.convert(lifted, "fp32")
    with torch.no_grad():
        assert torch.allclose(lifted(x), m(x), atol=1e-5)
        assert torch.equal(same(x), lifted(x))
    kinds = graph.census(lifted, (1, 8, 8)).macs_by_kind()
    assert kinds["conv"] > 0
    assert (kinds["grouped_conv"] > 0) == (arch == "mobilenet") and (kinds["matmul"] > 0) == (arch == "vit")


def test_census_counts_every_mac_by_hand():
    torch.manual_seed(0)
    m = models.build("vit", (1, 8, 8), 10).eval()        # 2x2 patches: 16 tokens + class token, dim 32
    cen = graph.census(graph.lift(m, torch.zeros(1, 1, 8, 8)), (1, 8, 8))
    n, d, h = 17, 32, 2
    per_block = n * d * 3 * d + 2 * (h * n * n * (d // h)) + n * d * d + 2 * n * d * 64
    want = 16 * 4 * d + 2 * per_block + d * 10
    assert parse_net(cen.net).macs == want
    assert cen.macs_by_kind()["matmul"] == 2 * 2 * h * n * n * (d // h)
    assert {"softmax", "layer_norm", "gelu"} <= set(cen.ops)


def test_unlifted_product_is_counted_as_float():
    class Dynamic(nn.Module):               # data-dependent control flow: neither fx nor export lifts it
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 4))

        def forward(self, x):
            if float(x.sum()) > 1e9:
                return x
            return x @ self.w @ x.transpose(-2, -1)

    m = Dynamic()
    lifted = graph.lift(m, torch.zeros(1, 3, 4))
    cen = graph.census(lifted, (3, 4))
    assert all(e.get("float") for e in cen.layers) and parse_net(cen.net).macs == 3 * 4 * 4 + 3 * 4 * 3
    net = parse_net(cen.net)
    from synth.network import net_energy
    e = net_energy(net, "int8")
    assert {r["datapath"] for r in e["layers"]} == {"fp32"}        # priced at fp32, never dropped


def test_einsum_lifted_equals_einsum():
    class E(nn.Module):
        def forward(self, x):
            return torch.einsum("bij,bkj->bik", x, x * 2)
    x = torch.randn(2, 3, 5)
    lifted = graph.lift(E(), x)
    assert [k for k, _ in graph.products(lifted).values()] == ["matmul"]
    assert torch.allclose(lifted(x), E()(x), atol=1e-5)
