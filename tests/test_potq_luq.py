"""The LUQ error quantizer (golden/luq.py) and ALS-POTQ on torch tensors (net/potq_quant.py,
net/potq_products.py, net/potq.py): unbiasedness (exactly over every random word, and
statistically for the training path's generator), valid PoT codes, nothing clipped, the torch
quantizers equal to the golden ones given the same random words, the integer (hardware) form,
the LFSR's leap-forward network, grouped/dilated convolution and batched products equal to their
definitions, and the quantizer priced in the training energy."""
import numpy as np
import pytest
import torch
from torch import nn

from golden import luq, pot
from net import potq
from net import potq_products as P
from net import potq_quant as Q
from net.datapath import parse
from net.train import make_mode, training_energy

torch.set_num_threads(1)


def _values_grid():
    """Magnitudes across the range at scale 1 (top 64 for E = 3): underflow, exact powers, between."""
    v = np.array([0.0, 1e-3, 0.2, 0.5, 0.99, 1.0, 1.25, 1.5, 3.0, 5.9, 7.99, 12.0, 33.0, 47.5, 63.9, 64.0])
    return np.concatenate([v, -v[1:]])


def test_luq_is_unbiased_exactly_over_every_random_word():
    """R = 8: E[q(x)] over all 256 words is within the truncation bound below x (and x when the
    fraction fits in R bits); every output is a valid PoT code and nothing is clipped."""
    x = _values_grid()
    R, E = 8, 3
    words = np.arange(1 << R)
    codes = np.stack([luq.luq(x, np.full(x.shape, r), E, R)[0] for r in words])
    k = luq.luq(x, np.zeros(x.shape, np.int64), E, R)[1]
    assert k == 0                                                  # max 64 = 2^6 on the top level
    v = pot.dequantize(codes, k, E)
    mean = v.mean(axis=0)
    b = luq.bias_bound(x, E, R)
    err = np.abs(x) - np.abs(mean)
    assert np.all(err >= 0) and np.all(err < b + 1e-15)
    m, ex = np.frexp(np.abs(x))
    g = np.where(np.abs(x) >= 1, 2 * m - 1, np.abs(x))              # the fraction compared with the word
    exact = g * 2**R == np.floor(g * 2**R)                          # fraction within R bits: exact
    assert 0 < exact.sum() < x.size
    assert np.allclose(mean[exact], x[exact], rtol=0, atol=1e-15)
    # valid codes: the sign bit only on nonzero fields, |v| a power of two in 2^k .. 2^(k+top)
    e = codes & 7
    assert not np.any((codes >> 3) & (e == 0))
    nz = v != 0
    lg = np.log2(np.abs(v[nz]))
    assert np.all((lg == np.round(lg)) & (lg >= 0) & (lg <= 6))
    # each output is one of the two neighbours of x (or 0 / alpha below the range)
    lo = np.where(np.abs(x) >= 1, 2.0 ** np.floor(np.log2(np.maximum(np.abs(x), 1))), 0.0)
    hi = np.where(np.abs(x) >= 1, 2 * lo, 1.0)
    assert np.all((np.abs(v) == lo) | (np.abs(v) == hi))


@pytest.mark.parametrize("seed", [0, 1])
def test_luq_on_the_training_path_is_unbiased_statistically(seed):
    """The torch quantizer with its device generator: the mean of N draws is within 5 standard
    errors (from the exact per-element variance p(1-p)(hi-lo)^2 / N) plus the 2^-R bound of x."""
    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy((np.random.default_rng(seed).standard_normal(64) * 3).astype(np.float32))
    x[0] = float(x.abs().max()) * 1.0001                            # a max that is no power of two
    N, R = 3000, 16
    acc = torch.zeros(64, dtype=torch.float64)
    for _ in range(N):
        r = Q.random_words(x.shape, R, g, "cpu")
        codes, k = Q.sr_codes(x, 3, r, R, "luq")
        acc += Q.lookup(Q.code_values(3, "cpu", torch.float64), codes) * 2.0 ** int(k)
        assert int(k) == luq.luq_scale(float(x.abs().max()), 3)
    mean = acc.numpy() / N
    xd = x.double().numpy()
    a = np.abs(xd) / 2.0 ** int(k)
    lo = np.where(a >= 1, 2.0 ** np.floor(np.log2(np.maximum(a, 1))), 0.0)
    hi = np.where(a >= 1, 2 * lo, 1.0)
    p = (a - lo) / (hi - lo)
    se = np.sqrt(p * (1 - p) * ((hi - lo) * 2.0 ** int(k)) ** 2 / N)
    tol = 5 * se + luq.bias_bound(xd, 3, R) + 1e-12
    assert np.all(np.abs(mean - xd) <= tol)
    assert np.max(np.abs(mean - xd) / np.maximum(se, 1e-12)) > 0.5       # the test can fail: spread is real


@pytest.mark.parametrize("exp_bits", [1, 2, 3, 4, 5])
def test_torch_quantizers_equal_golden_given_the_same_words(exp_bits):
    rng = np.random.default_rng(exp_bits)
    for trial in range(40):
        x = (rng.standard_normal((6, 50)) * np.exp(rng.standard_normal((6, 50)) * 2)
             * 10.0 ** rng.integers(-20, 20)).astype(np.float32)
        if trial % 5 == 0:
            x[rng.random(x.shape) < 0.3] = 0
        t = torch.from_numpy(x)
        xd = x.astype(np.float64)
        c, k = Q.pot_codes(t, exp_bits, "log")
        gc, gk = pot.quantize(xd, exp_bits)
        assert np.array_equal(c.numpy(), gc) and int(k) == gk
        c, k = Q.pot_codes(t, exp_bits, "linear")
        gc, gk = luq.nearest(xd, exp_bits)
        assert np.array_equal(c.numpy(), gc) and int(k) == gk
        R = int(rng.integers(1, 24))
        r = rng.integers(0, 1 << R, x.shape)
        c, k = Q.sr_codes(t, exp_bits, torch.from_numpy(r), R, "luq")
        gc, gk = luq.luq(xd, r, exp_bits, R)
        assert np.array_equal(c.numpy(), gc) and int(k) == gk
        c, k = Q.sr_codes(t, exp_bits, torch.from_numpy(r), R, "luq", axis=0)     # per-row scales
        for b in range(6):
            gc, gk = luq.luq(xd[b], r[b], exp_bits, R)
            assert np.array_equal(c[b].numpy(), gc) and int(k[b, 0]) == gk


def test_linear_nearest_picks_the_nearer_power():
    x = np.linspace(-70, 70, 2801)
    codes, k = luq.nearest(x, 3)
    v = pot.dequantize(codes, k, 3)
    a = np.abs(x)
    inside = (a >= 1) & (a <= 64)
    lo = 2.0 ** np.floor(np.log2(np.maximum(a, 1)))
    assert np.all(np.abs(a - np.abs(v))[inside] <= np.minimum(a - lo, 2 * lo - a)[inside] + 1e-12)
    assert np.all(np.abs(v[(a > 0) & (a < 0.5)]) == 0)
    # the log-rounding quantizer differs exactly between sqrt(2) 2^n and 1.5 2^n
    gl = pot.dequantize(*pot.quantize(x, 3), 3)
    frac = a / lo
    differs = inside & (frac >= np.sqrt(2)) & (frac < 1.5) & (a < 64)
    assert np.array_equal(gl != v, differs)


def test_integer_form_equals_luq_and_lfsr_leap_equals_stepping():
    from rtl.luq import leap_matrix
    rng = np.random.default_rng(5)
    for E, R in ((3, 16), (2, 5), (1, 1)):
        x = rng.integers(-(1 << 23), 1 << 23, 400) >> rng.integers(0, 23, 400)
        kmax = int(np.ceil(np.log2(np.abs(x).max())))
        r = rng.integers(0, 1 << R, x.shape)
        assert np.array_equal(luq.luq_fixed(x, kmax, r, E, R), luq.luq(x.astype(float), r, E, R, k=kmax - pot.max_exp(E))[0])
    for bits, steps in ((24, 16), (8, 3), (16, 16)):
        rows = leap_matrix(bits, steps)
        s = 0xACE1 & ((1 << bits) - 1)
        for _ in range(50):
            want = s
            for _ in range(steps):
                want = luq.lfsr_step(want, bits)
            got = sum((sum((s >> i) & 1 for i in row) & 1) << j for j, row in enumerate(rows))
            assert got == want
            s = want
    w = luq.lfsr_words(1, 5000, 16, 8)
    assert abs(w.mean() - 127.5) < 5 and len(set(w.tolist())) == 256


def _defn_conv_bwd(dp, eq, wq, stride, padding, dilation, groups, in_shape):
    """dX by its definition: every product is a power of two, so float64 sums of the golden values
    are exact; then wrapped at acc_bits."""
    from golden.fixed import wrap
    e = torch.from_numpy(dp.values(eq).astype(np.float64))
    w = torch.from_numpy(dp.values(wq).astype(np.float64))
    d = torch.nn.grad.conv2d_input(in_shape, w, e, stride=stride, padding=padding, dilation=dilation, groups=groups)
    return wrap(d.numpy().astype(np.int64), dp.acc_bits)


@pytest.mark.parametrize("groups,dilation,stride,padding", [(3, 1, 1, 1), (6, 2, 2, 2), (1, 2, 1, 0), (2, (1, 2), (2, 1), (1, 0))])
def test_grouped_dilated_conv_products_equal_their_definitions(groups, dilation, stride, padding):
    from golden.fixed import wrap
    from net import kernels
    dp = parse("mfmac,acc_bits=16")
    rng = np.random.default_rng(groups)
    x = rng.integers(0, 16, (2, 6, 9, 8))
    w = rng.integers(0, 16, (6, 6 // groups, 3, 3))
    y = kernels.conv2d_definition(dp, x, w, stride, padding, dilation, groups)
    assert np.array_equal(P.conv_forward(dp, torch.from_numpy(x), torch.from_numpy(w), stride, padding, dilation,
                                         groups).numpy(), y)
    e = rng.integers(0, 16, y.shape)
    got = P.conv_backward_data(dp, e, w, stride, padding, (9, 8), None, dilation, groups)
    assert np.array_equal(got, _defn_conv_bwd(dp, e, w, stride, padding, dilation, groups, x.shape))
    got = P.conv_weight_grad(dp, e, x, 3, 3, stride, padding, None, dilation, groups)
    xv = torch.from_numpy(dp.values(x).astype(np.float64))
    want = torch.nn.grad.conv2d_weight(xv, w.shape, torch.from_numpy(dp.values(e).astype(np.float64)), stride=stride,
                                       padding=padding, dilation=dilation, groups=groups)
    assert np.array_equal(got, wrap(want.numpy().astype(np.int64), dp.acc_bits))


def test_depthwise_potq_step_gradients_are_the_dequantized_accumulations():
    torch.manual_seed(0)
    mode = make_mode("mfmac", err_rounding="luq", wbc=False, prc=False)
    m = mode.convert(nn.Sequential(nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=4), nn.ReLU(), nn.Flatten(),
                                   nn.Linear(4 * 6 * 6, 3)))
    conv = mode.layers["0"]
    potq.record(conv)
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    nn.functional.cross_entropy(m(x), torch.tensor([0, 2])).backward()
    r = conv.core.last
    assert np.array_equal(r["eq"], luq.luq(r["e_float"], r["r_err"], 3, 16)[0])          # golden LUQ codes
    assert r["se"] == 2.0 ** luq.luq_scale(np.abs(r["e_float"]).max(), 3)
    assert np.allclose(conv.weight.grad.numpy(), r["dw_int"] * r["se_w"] * r["sx"], rtol=1e-6, atol=0)
    assert np.allclose(x.grad.numpy(), r["dx_int"] * r["se"] * r["sw"], rtol=1e-6, atol=1e-30)


def test_pot_matmul_three_products_on_the_mfmac():
    torch.manual_seed(1)
    mode = make_mode("mfmac")
    mm = mode.make("matmul", name="attn")
    potq.record(mm)
    a = torch.randn(2, 3, 5, 4, requires_grad=True)
    b = torch.randn(3, 4, 6, requires_grad=True)                  # broadcast over the first batch dim
    y = mm(a, b)
    g = torch.randn(y.shape)
    y.backward(g)
    r = mm.core.last
    dp = mode.dp
    assert np.array_equal(r["y_int"], np.stack([[dp.matmul_definition(r["xq"][i, j], r["wq"][j]) for j in range(3)]
                                                for i in range(2)]))
    assert np.allclose(y.detach().numpy(), r["y_int"] * r["sx"] * r["sw"], rtol=1e-6)
    eq = r["eq"]
    want_a = np.stack([[dp.matmul_definition(eq[i, j], r["wq"][j].T) for j in range(3)] for i in range(2)])
    assert np.array_equal(r["dx_int"], want_a)
    assert np.allclose(a.grad.numpy(), want_a * r["se"] * r["sw"], rtol=1e-6)
    want_b = sum(np.stack([dp.matmul_definition(r["xq"][i, j].T, eq[i, j]) for j in range(3)]) for i in range(2))
    assert np.allclose(b.grad.numpy(), want_b * r["sx"] * r["se"], rtol=1e-6)
    assert set(mode.end_epoch()["error_underflow_pct"]) == {"attn"}
    with pytest.raises(ValueError, match="ALS-POTQ products are linear, conv2d, matmul; got kind 'pool'"):
        mode.make("pool")
    with pytest.raises(ValueError, match="ALS-POTQ kind linear needs an nn.Linear, got Conv2d"):
        mode.make("linear", nn.Conv2d(1, 1, 1))


def test_luq_options_one_line():
    with pytest.raises(ValueError, match="fwd_rounding must be one of log, linear, fp32, got 'up'"):
        make_mode("mfmac", fwd_rounding="up")
    with pytest.raises(ValueError, match="err_rounding=luq rounds PoT errors: it needs an mfmac error datapath"):
        make_mode("mfmac", "fp32", err_rounding="luq")
    with pytest.raises(ValueError, match="rand_bits must be an integer in 1..30, got 0"):
        make_mode("mfmac", rand_bits=0)
    with pytest.raises(ValueError, match="fwd_rounding=fp32 .* with float errors is FP32 training"):
        make_mode("mfmac", "fp32", fwd_rounding="fp32")


def test_training_energy_prices_the_stochastic_quantizer_and_still_saves(digits_shape=(1, 8, 8)):
    from net import models
    from synth.luq import quantizer_energy
    model = models.build("mlp", digits_shape, 10)
    fp = training_energy(model, digits_shape, None, None, 64, 23)
    near = training_energy(model, digits_shape, "mfmac", None, 64, 23)
    lq = training_energy(model, digits_shape, "mfmac", None, 64, 23, err_rounding="luq")
    per = quantizer_energy(3)["energy_pj"]
    outputs = 64 * sum(m.out_features for m in model.modules() if isinstance(m, nn.Linear))
    assert near["error_quantizer_pj"] == 0 and lq["error_quantizer_pj"] == pytest.approx(outputs * per)
    assert lq["energy_per_step_pj"] == pytest.approx(near["energy_per_step_pj"] + lq["error_quantizer_pj"])
    assert lq["energy_per_step_pj"] == pytest.approx(lq["forward_pj"] + lq["backward_data_pj"] + lq["weight_grad_pj"]
                                                     + lq["error_quantizer_pj"])
    assert 1 - lq["energy_per_step_pj"] / fp["energy_per_step_pj"] >= 0.85


def test_wrapped_accumulations_are_counted():
    """A 14-bit accumulator and 2048 equal top products: every forward output wraps (counted against
    a 62-bit accumulation), and the output is the wrapped sum the MAC holds."""
    torch.manual_seed(0)
    mode = make_mode("mfmac,acc_bits=14", wbc=False, prc=False)
    m = mode.convert(nn.Sequential(nn.Linear(2048, 3, bias=False)))
    layer = mode.layers["0"]
    potq.record(layer)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    m(torch.ones(2, 2048))
    r = layer.core.last
    assert np.array_equal(r["y_int"], parse("mfmac,acc_bits=14").matmul_definition(r["xq"], r["wq"].T))
    assert mode.end_epoch()["acc_overflows"] == 6
