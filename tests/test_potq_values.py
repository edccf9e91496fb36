"""net/potq_values.py (ALS-POTQ's products on PoT values: one exact float product each) against
the code kernels (net/potq_products.py over net.kernels, themselves proven against
Datapath.matmul_definition and the convolution definitions in tests/test_train.py and
tests/test_potq_luq.py): equal accumulations and equal wrap counts on random codes, on every path
(float32 by the static bound, float64 + wrap, the code kernels for wide exponents, the batch-chunked
float32 weight gradient), and on codes at the top of the range where the accumulator wraps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from golden import pot
from net import potq_products as P
from net import potq_values as V
from net.datapath import parse
from net.potq_core import LayerStats

torch.set_num_threads(1)


def _codes(rng, shape, E, top_only=False):
    if top_only:                    # the largest magnitude, random signs: every product is the top one
        return torch.from_numpy(((rng.integers(0, 2, shape) << E) | ((1 << E) - 1)).astype(np.int64))
    return torch.from_numpy(rng.integers(0, 1 << (E + 1), shape).astype(np.int64))


def _both(dp, fv, fc, *codes):
    """(values path as int64, its wraps, code path, its wraps)."""
    E = dp.params["exp_bits"]
    sv, sc = LayerStats(), LayerStats()
    got = fv(*[V.values(c, E) for c in codes], sv)
    want = fc(*codes, sc)
    return got.to(torch.int64), sv.overflows, want, sc.overflows


def test_values_and_codes_round_trip():
    for E in (3, 4, 5):
        c = torch.arange(1 << (E + 1))
        v = V.values(c, E)
        assert np.array_equal(v.numpy(), pot.decode(c.numpy(), E).astype(np.float32))
        back = V.codes(v, E)
        assert np.array_equal(pot.decode(back.numpy(), E), pot.decode(c.numpy(), E))     # -0 becomes 0


def test_path_follows_the_exact_ranges():
    assert V.path(parse("mfmac"), 2047) == "f32" and V.path(parse("mfmac"), 2048) == "f64"
    assert V.path(parse("mfmac,acc_bits=14"), 1) == "f32" and V.path(parse("mfmac,acc_bits=14"), 2) == "f64"
    assert V.path(parse("mfmac,exp_bits=4,acc_bits=40"), 2 ** 24) == "f64"
    assert V.path(parse("mfmac,exp_bits=5,acc_bits=62"), 1) == "codes"


SPECS = ["mfmac", "mfmac,acc_bits=14", "mfmac,exp_bits=4,acc_bits=32", "mfmac,exp_bits=5,acc_bits=62"]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("top", [False, True])
def test_matmuls_equal_the_code_kernels(spec, top):
    dp = parse(spec)
    E = dp.params["exp_bits"]
    rng = np.random.default_rng(len(spec) + top)
    for m, k, n in [(5, 7, 3), (3, 2500, 4)]:
        a, b = _codes(rng, (m, k), E, top), _codes(rng, (k, n), E, top)
        got, gw, want, ww = _both(dp, lambda x, y, s: V.mm(dp, x, y, s), lambda x, y, s: P.mm(dp, x, y, s), a, b)
        assert torch.equal(got, want) and gw == ww
    a, b = _codes(rng, (2, 3, 4, 2100), E, top), _codes(rng, (3, 2100, 5), E, top)
    got, gw, want, ww = _both(dp, lambda x, y, s: V.bmm(dp, x, y, s), lambda x, y, s: P.bmm(dp, x, y, s), a, b)
    assert torch.equal(got, want) and gw == ww
    if top and dp.acc_bits == 14:
        assert gw > 0                                      # the wrapping branch ran


GEOS = [(1, 1, 1, 1), (2, 1, 1, 1), (1, 0, 2, 1), (2, 1, 1, 3), (7, 0, 1, 1), (3, 1, 1, 1), (1, 1, 1, 2),
        (2, (1, 0), (1, 2), 6)]


@pytest.mark.parametrize("spec", ["mfmac", "mfmac,acc_bits=16", "mfmac,exp_bits=4,acc_bits=32"])
@pytest.mark.parametrize("stride,padding,dilation,groups", GEOS)
def test_convolutions_equal_the_code_kernels(spec, stride, padding, dilation, groups):
    dp = parse(spec)
    E = dp.params["exp_bits"]
    rng = np.random.default_rng(groups * 7 + (stride if isinstance(stride, int) else 5))
    k = 7 if stride == 7 else 3
    x = _codes(rng, (3, 6, 15, 14), E)
    w = _codes(rng, (12, 6 // groups, k, k), E)
    geo = (stride, padding, dilation, groups)
    got, gw, want, ww = _both(dp, lambda a, b, s: V.conv_forward(dp, a, b, *geo, s),
                              lambda a, b, s: P.conv_forward(dp, a, b, *geo, s), x, w)
    assert torch.equal(got, want) and gw == ww
    e = _codes(rng, tuple(want.shape), E)
    got, gw, want, ww = _both(dp, lambda a, b, s: V.conv_backward_data(dp, a, b, stride, padding, (15, 14), s, dilation, groups),
                              lambda a, b, s: P.conv_backward_data(dp, a, b, stride, padding, (15, 14), s, dilation, groups),
                              e, w)
    assert torch.equal(got, want) and gw == ww and got.shape == x.shape
    got, gw, want, ww = _both(dp, lambda a, b, s: V.conv_weight_grad(dp, a, b, k, k, stride, padding, s, dilation, groups),
                              lambda a, b, s: P.conv_weight_grad(dp, a, b, k, k, stride, padding, s, dilation, groups),
                              e, x)
    assert torch.equal(got, want) and gw == ww and got.shape == w.shape


@pytest.mark.parametrize("spec", ["mfmac", "mfmac,acc_bits=30"])
def test_weight_gradient_of_one_sample_past_float32_takes_float64(spec):
    """One sample of 66 x 66 top products per weight (17.8M > 2^24): no batch range fits float32."""
    dp = parse(spec)
    x = torch.full((1, 2, 66, 66), 7)
    e = torch.full((1, 3, 66, 66), 7 | 8)                  # -64
    assert V._batch_chunks(V.values(e, 3), V.values(x, 3), 1 << 24) == (None, None)
    got, gw, want, ww = _both(dp, lambda a, b, s: V.conv_weight_grad(dp, a, b, 3, 3, 1, 1, s),
                              lambda a, b, s: P.conv_weight_grad(dp, a, b, 3, 3, 1, 1, s), e, x)
    assert torch.equal(got, want) and gw == ww and (gw > 0) == (dp.acc_bits == 24)


@pytest.mark.parametrize("spec,top", [("mfmac", True), ("mfmac", False), ("mfmac,acc_bits=20", True),
                                      ("mfmac,acc_bits=30", True)])
def test_weight_gradient_over_batch_chunks_is_exact_and_counts_wraps(spec, top):
    """N*Ho*Wo = 2 * 46 * 46 = 4232 products per weight: past float32's exact range at the top
    codes, so the batch splits into ranges (and wraps at acc_bits are counted), or past the static
    bound only (random codes: the data bound keeps one float32 range)."""
    dp = parse(spec)
    rng = np.random.default_rng(3)
    x = _codes(rng, (2, 3, 46, 46), 3, top)
    e = _codes(rng, (2, 4, 46, 46), 3, top)
    if top:
        x = x.abs() & 7                                    # positive activations: every product the same sign
        e = e & 7
    got, gw, want, ww = _both(dp, lambda a, b, s: V.conv_weight_grad(dp, a, b, 3, 3, 1, 1, s),
                              lambda a, b, s: P.conv_weight_grad(dp, a, b, 3, 3, 1, 1, s), e, x)
    assert torch.equal(got, want) and gw == ww
    if top and dp.acc_bits <= 24:
        assert gw > 0
    ranges, bound = V._batch_chunks(V.values(e, 3), V.values(x, 3), 1 << 24)
    assert len(ranges) == (2 if top else 1) and bound >= (4232 * 4096 if top else 0)


def _edge_tensor(rng, scale):
    """Random magnitudes over many octaves, plus every threshold pot_codes compares against and
    its float32 neighbours: sqrt(2) 2^n and 1.5 2^n (rounding up), 2^(k-1) (the zero code)."""
    t = rng.standard_normal(3000) * np.exp(rng.standard_normal(3000) * 4)
    n = np.arange(-12, 8, dtype=np.float64)
    edges = np.concatenate([np.float32(np.sqrt(2)) * 2.0 ** n, 1.5 * 2.0 ** n, 2.0 ** n])
    edges = np.concatenate([edges, np.nextafter(edges.astype(np.float32), np.float32(0)),
                            np.nextafter(edges.astype(np.float32), np.float32(np.inf))])
    t = np.concatenate([t, edges, -edges, [0.0, -0.0, 64.0]]).astype(np.float32) * np.float32(scale)
    return torch.from_numpy(t)


@pytest.mark.parametrize("exp_bits", [3, 4, 5])
@pytest.mark.parametrize("rounding", ["log", "linear"])
@pytest.mark.parametrize("scale", [1.0, 2.0 ** -20, 2.0 ** 30, 2.0 ** -118, 2.0 ** -135])
def test_pot_values_equal_pot_codes_values(exp_bits, rounding, scale):
    """The bit path of pot_values (and its fallbacks: tiny tensors, float64) is pot_codes + a lookup,
    element for element, with no negative zeros; k is pot_codes' k."""
    from net.potq_quant import pot_codes, pot_values
    t = _edge_tensor(np.random.default_rng(exp_bits), scale)
    for x in (t, t.double(), t[:0], torch.zeros(5)):
        v, k = pot_values(x, exp_bits, rounding)
        q, k2 = pot_codes(x, exp_bits, rounding)
        assert int(k) == int(k2)
        assert torch.equal(v, V.values(q, exp_bits)) and v.dtype == torch.float32
        assert not (torch.signbit(v) & (v == 0)).any()
    if rounding == "log" and scale == 1.0:
        codes, s = pot.quantize(t.numpy(), exp_bits)          # the golden quantizer
        assert np.array_equal(pot_values(t, exp_bits)[0].numpy(), pot.decode(codes, exp_bits).astype(np.float32))


def test_host_scale_exponent_equals_scale_exp_at_every_threshold():
    from net.potq_quant import _SQRT2_F32, _host_scale_exp, scale_exp
    n = np.arange(-130, 127, dtype=np.float64)
    base = np.concatenate([2.0 ** n, 1.5 * 2.0 ** n, float(np.float32(np.sqrt(2))) * 2.0 ** n, _SQRT2_F32 * 2.0 ** n])
    f = base.astype(np.float32)
    f = np.concatenate([f, np.nextafter(f, np.float32(0)), np.nextafter(f, np.float32(np.inf)), [0.0, 1e-45]])
    for E in (3, 5):
        for how in ("log", "linear"):
            want = scale_exp(torch.from_numpy(f.astype(np.float32)), E, how).tolist()
            assert [_host_scale_exp(float(v), E, how) for v in f.astype(np.float32)] == want


def test_prc_clip_gradients_equal_torchs_minimum_maximum_composite():
    """PrcClipFn: the same output and the same gradients (x and the ratio, bit for bit) as
    max(min(x, c), -c) under autograd, with ties at +c and -c (ratio 1: the max element ties) and
    all-zero inputs (c = 0: every element ties twice)."""
    from net.potq_core import PrcClipFn
    torch.manual_seed(0)
    for trial in range(60):
        x = torch.randn(4, 3, 5, 5) * 3
        r = torch.tensor(1.0) if trial % 3 == 0 else torch.rand(()) * 0.9 + 0.1
        x[0, 0, 0, :3] = x.abs().max()
        x[1, 0, 0, 0] = -x.abs().max()
        if trial % 7 == 0:
            x.zero_()
        g = torch.randn(x.shape)
        got = []
        for fn in (lambda a, c: torch.maximum(torch.minimum(a, c), -c), PrcClipFn.apply):
            xx, rr = x.clone().requires_grad_(True), r.clone().requires_grad_(True)
            y = fn(xx, rr * xx.detach().abs().max())
            y.backward(g)
            got.append((y.detach(), xx.grad, rr.grad))
        assert all(torch.equal(a, b) for a, b in zip(*got)), trial
