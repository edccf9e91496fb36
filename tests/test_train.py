"""Training on the arithmetic (net/train.py, net/potq.py, net/qat.py): the three ALS-POTQ products of
one real training step equal the golden MF-MAC definition, error underflow is counted as the
quantizer defines it, WBC/PRC do what they say, the table gradient equals a finite-difference brute
force, divergence names layer and step, and every bad option is one line at the CLI."""
import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from ecomac.cli import main
from golden import pot
from net import data, kernels, loader, models, potq
from net.datapath import parse
from net.train import TrainingDiverged, make_mode, pow2_lr, to_float, train

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def _tiny(ds, n=96):
    return type(ds)(ds.name, ds.x_train[:n], ds.y_train[:n], ds.x_test[:64], ds.y_test[:64], ds.num_classes,
                    ds.input_shape)


def _conv_definition(dp, xq, wq, stride, padding):
    """Y[n, co, ho, wo] = wrap(sum_{c,i,j} product(x, w)) over the zero-padded input (no kernels)."""
    x = np.pad(xq, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, c, h, w = x.shape
    co, _, kh, kw = wq.shape
    ho, wo = (h - kh) // stride + 1, (w - kw) // stride + 1
    acc = np.zeros((n, co, ho, wo), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]       # n c ho wo
            acc += dp.product(patch[:, None], wq[None, :, :, i, j, None, None]).sum(axis=2)
    return acc


def _conv_backward_definition(dp, eq, wq, stride, padding, hw):
    """dX[n, c, h, w] = sum over (co, i, j) with h = ho*s - p + i of product(e[n,co,ho,wo], w[co,c,i,j])."""
    n, co, ho, wo = eq.shape
    _, c, kh, kw = wq.shape
    H, W = hw
    out = np.zeros((n, c, H + 2 * padding + kh, W + 2 * padding + kw), np.int64)
    for i in range(kh):
        for j in range(kw):
            p = dp.product(eq[:, :, None], wq[None, :, :, i, j, None, None]).sum(axis=1)   # n c ho wo
            out[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += p
    return out[:, :, padding:padding + H, padding:padding + W]


def _conv_wgrad_definition(dp, eq, xq, kh, kw, stride, padding):
    x = np.pad(xq, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, co, ho, wo = eq.shape
    out = np.zeros((co, xq.shape[1], kh, kw), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]       # n c ho wo
            out[:, :, i, j] = dp.product(eq[:, :, None], patch[:, None]).sum(axis=(0, 3, 4))
    return out


def _wrap(a, bits):
    from golden.fixed import wrap
    return wrap(a, bits).astype(np.int64)


@pytest.mark.parametrize("errors,err_scale,err_rounding", [(None, "tensor", "nearest"), ("mfmac,exp_bits=4", "tensor", "nearest"),
                                                          (None, "sample", "nearest"), (None, "tensor", "luq"),
                                                          ("mfmac,exp_bits=4", "sample", "luq")])
def test_potq_three_products_of_a_real_step_equal_golden(digits, errors, err_scale, err_rounding):
    """One training step of LeNet on real digits: conv2 and fc1 products vs the golden MF-MAC (per-sample
    error scales: the weight gradient on its wider MF-MAC, on the rescaled codes the step used); LUQ
    errors: the codes are golden.luq.luq's on the step's error and random words."""
    from golden import luq
    torch.manual_seed(0)
    model = models.build("lenet", digits.input_shape, digits.num_classes)
    mode = make_mode("mfmac", errors, err_scale=err_scale, err_rounding=err_rounding)
    m = mode.convert(model)
    conv, fc = mode.layers["conv2"], mode.layers["fc1"]
    for layer in (conv, fc):
        potq.record(layer)
    x = torch.from_numpy(digits.x_train[:8])
    loss = nn.functional.cross_entropy(m(x), torch.from_numpy(digits.y_train[:8]))
    loss.backward()
    dp, dpe = mode.dp, mode.dp_err
    dpw = mode.dp_wgrad or dpe
    acc, acce, accw = dp.acc_bits, dpe.acc_bits, dpw.acc_bits
    r = fc.core.last
    assert r["dp_wgrad"] is dpw
    assert np.array_equal(r["y_int"], dp.matmul_definition(r["xq"], r["wq"].T))
    assert np.array_equal(r["dx_int"], dpe.matmul_definition(r["eq"], r["wq_e"]))
    assert np.array_equal(r["dw_int"], dpw.matmul_definition(r["ew"].T, r["xq_e"]))
    assert np.array_equal(r["dx_int"], pot.matmul(r["eq"], r["wq_e"], dpe.params["exp_bits"], acce))
    assert np.count_nonzero(r["dw_int"]) > 0 and np.count_nonzero(r["dx_int"]) > 0
    r = conv.core.last
    s, p = conv.stride[0], conv.padding[0]
    assert np.array_equal(r["y_int"], _wrap(_conv_definition(dp, r["xq"], r["wq"], s, p), acc))
    assert np.array_equal(r["dx_int"], _wrap(_conv_backward_definition(dpe, r["eq"], r["wq_e"], s, p,
                                                                       r["xq"].shape[2:]), acce))
    assert np.array_equal(r["dw_int"], _wrap(_conv_wgrad_definition(dpw, r["ew"], r["xq_e"], 5, 5, s, p), accw))
    if err_rounding == "luq":
        for rr in (r, fc.core.last):
            if err_scale == "tensor":
                codes, k = luq.luq(rr["e_float"], rr["r_err"], dpe.params["exp_bits"], 16)
                assert np.array_equal(rr["eq"], codes) and rr["se"] == 2.0 ** k
    if err_scale == "sample":
        # one power of two per sample, each sample's codes the golden quantizer's on that sample alone
        assert r["se"].shape == (8, 1, 1, 1) and len(np.unique(r["se"])) > 1
        for b in range(8):
            codes, k = (pot.quantize(r["e_float"][b], dpe.params["exp_bits"]) if err_rounding == "nearest" else
                        luq.luq(r["e_float"][b], r["r_err"][b], dpe.params["exp_bits"], 16))
            assert np.array_equal(r["eq"][b], codes) and r["se"][b].item() == 2.0 ** k
        # the weight gradient's codes hold the same values at the common scale, except the flushed ones
        v_e = dpe.values(r["eq"]) * r["se"]
        v_w = dpw.values(r["ew"]) * r["se_w"]
        kept = v_w != 0
        assert np.array_equal(v_w[kept], v_e[kept]) and (np.abs(v_e[~kept & (v_e != 0)]) < r["se_w"]).all()
    # the float gradient the optimizer sees is the dequantized weight-gradient accumulation
    assert np.allclose(fc.weight.grad.numpy(), fc.core.last["dw_int"] * fc.core.last["se_w"] * fc.core.last["sx"],
                       rtol=1e-6, atol=0)


def test_per_sample_error_scales_backward_data_is_the_row_scaled_mac():
    """dX row b = dX_int row b * se_b * sw (no WBC): the input gradient torch sees."""
    torch.manual_seed(3)
    mode = make_mode("mfmac", err_scale="sample", wbc=False, prc=False)
    m = mode.convert(nn.Sequential(nn.Linear(6, 5)))
    layer = mode.layers["0"]
    potq.record(layer)
    x = torch.randn(4, 6, requires_grad=True)
    g = torch.randn(4, 5) * torch.tensor([1.0, 1e-3, 1e-9, 3.0])[:, None]
    m(x).backward(g)
    r = layer.core.last
    gn = g.numpy().astype(np.float64)
    for b in range(4):                                                # the golden quantizer, row by row
        codes, k = pot.quantize(gn[b], 3)
        assert np.array_equal(r["eq"][b], codes) and r["se"][b, 0] == 2.0 ** k
    assert layer.core.stats.err_underflow == 0 and layer.core.stats.err_nonzero == 20
    want = mode.dp_err.matmul_definition(r["eq"], r["wq_e"]) * r["se"] * r["sw"]
    assert np.allclose(x.grad.numpy(), want, rtol=1e-6, atol=0)
    # the rows' scales span about 2^31 > slack 30 - 6 = 24: the smallest row's codes are flushed, and counted
    assert layer.core.stats.wgrad_flushed > 0
    rec = mode.end_epoch()
    assert rec["error_underflow_pct"]["0"] == 0.0
    assert rec["wgrad_error_lost_pct"]["0"] == pytest.approx(100.0 * layer.core.stats.wgrad_flushed / 20)


def test_rescale_rows_is_an_exponent_add_to_one_common_scale():
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 16, (6, 9))
    ks = np.array([-3, -40, 0, -10, -25, -2])
    for exp_to in (3, 4, 5):
        out, k_ref, flushed = potq.rescale_rows(codes, ks, 3, exp_to)
        slack = pot.max_exp(exp_to) - pot.max_exp(3)
        assert k_ref == max(ks.min(), ks.max() - slack)
        assert out.min() >= 0 and out.max() < 1 << (exp_to + 1)           # every field fits exp_to bits
        v_in = pot.decode(codes, 3) * 2.0 ** ks[:, None]
        v_out = pot.decode(out, exp_to) * 2.0 ** k_ref
        kept = v_out != 0
        assert np.array_equal(v_out[kept], v_in[kept])
        lost = (v_in != 0) & ~kept
        assert flushed == lost.sum() and (np.abs(v_in[lost]) < 2.0 ** k_ref).all()
    assert potq.rescale_rows(codes, ks, 3, 5)[2] < potq.rescale_rows(codes, ks, 3, 4)[2]
    with pytest.raises(ValueError, match="rescale_rows: 6 rows but 2 scales"):
        potq.rescale_rows(codes, ks[:2], 3, 5)


def test_per_sample_training_energy_prices_the_weight_gradient_on_its_datapath(digits):
    from net.train import training_energy
    model = models.build("mlp", digits.input_shape, 10)
    t = training_energy(model, digits.input_shape, "mfmac", None, 64, 23)
    s = training_energy(model, digits.input_shape, "mfmac", None, 64, 23, err_scale="sample", wbc=False)
    w4 = training_energy(model, digits.input_shape, "mfmac", None, 64, 23, err_scale="sample", wgrad_exp_bits=4)
    assert t["weight_grad_datapath"] == t["error_datapath"] == parse("mfmac").canonical
    assert s["weight_grad_datapath"] == parse("mfmac,exp_bits=5").canonical
    assert s["error_datapath"] == t["error_datapath"] and w4["weight_grad_datapath"] == parse("mfmac,exp_bits=4").canonical
    for e in (t, s, w4):
        assert e["energy_per_step_pj"] == pytest.approx(e["forward_pj"] + e["backward_data_pj"] + e["weight_grad_pj"])
    assert s["forward_pj"] == pytest.approx(t["forward_pj"]) and s["backward_data_pj"] == pytest.approx(t["backward_data_pj"])
    assert s["weight_grad_pj"] > w4["weight_grad_pj"] > t["weight_grad_pj"]


def test_per_sample_error_scale_options_one_line():
    with pytest.raises(ValueError, match="err_scale must be one of tensor, sample, got 'row'"):
        make_mode("mfmac", err_scale="row")
    with pytest.raises(ValueError, match="err_scale=sample scales PoT errors: it needs an mfmac error datapath, not fp32"):
        make_mode("mfmac", "fp32", err_scale="sample")
    with pytest.raises(ValueError, match=r"wgrad_exp_bits must be an integer in 4\.\.5 \(at least the errors' exp_bits\), got 3"):
        make_mode("mfmac", "mfmac,exp_bits=4", err_scale="sample", wgrad_exp_bits=3)
    with pytest.raises(ValueError, match="wgrad_exp_bits applies to err_scale=sample only"):
        make_mode("mfmac", wgrad_exp_bits=5)
    assert make_mode("mfmac", err_scale="sample").describe()["weight_grad_datapath"] == parse("mfmac,exp_bits=5").canonical


@pytest.mark.parametrize("stride,padding,hw", [(2, 1, 7), (2, 0, 8), (1, 0, 5)])
def test_potq_conv_products_with_stride(stride, padding, hw):
    dp = parse("mfmac")
    rng = np.random.default_rng(stride * 10 + padding)
    xq = rng.integers(0, 16, (2, 3, hw, hw))
    wq = rng.integers(0, 16, (4, 3, 3, 3))
    ho = kernels.conv_out_size(hw, 3, stride, padding)
    eq = rng.integers(0, 16, (2, 4, ho, ho))
    got = potq.conv_backward_data(dp, eq, wq, stride, padding, (hw, hw))
    assert np.array_equal(got, _wrap(_conv_backward_definition(dp, eq, wq, stride, padding, (hw, hw)), 24))
    got = potq.conv_weight_grad(dp, eq, xq, 3, 3, stride, padding)
    assert np.array_equal(got, _wrap(_conv_wgrad_definition(dp, eq, xq, 3, 3, stride, padding), 24))


def test_error_underflow_is_counted_as_the_quantizer_defines_it():
    torch.manual_seed(1)
    mode = make_mode("mfmac", prc=False, wbc=False)
    m = mode.convert(nn.Sequential(nn.Linear(6, 5)))
    layer = mode.layers["0"]
    x = torch.randn(4, 6)
    g = torch.randn(4, 5) * torch.logspace(-4, 0, 20).reshape(4, 5)
    g[0, 0] = 0.0                                                     # a zero is not an underflow
    m(x).backward(g)
    gn = g.numpy().astype(np.float64)
    k = round(math.log2(np.abs(gn).max())) - pot.max_exp(3)           # golden/pot.py's per-tensor scale
    want = int(((gn != 0) & (np.abs(gn) / 2.0 ** k < 0.5)).sum())
    assert 0 < want < 19
    assert layer.core.stats.err_underflow == want and layer.core.stats.err_nonzero == 19
    assert mode.end_epoch()["error_underflow_pct"]["0"] == pytest.approx(100.0 * want / 19)


def test_history_reports_underflow_per_layer_and_epoch(digits):
    torch.manual_seed(0)
    model, hist = train(models.build("mlp", digits.input_shape, 10), _tiny(digits), datapath="mfmac",
                        epochs=2, progress=False, lr_pow2=True, lr=3e-3)
    assert hist["lr"] == 2.0 ** -8 == pow2_lr(3e-3)
    for rec in hist["epochs"]:
        assert set(rec["error_underflow_pct"]) == {"fc1", "fc2", "fc3"}
        assert all(0.0 <= v <= 100.0 for v in rec["error_underflow_pct"].values())
        assert rec["acc_overflows"] == 0
        assert set(rec["prc_ratio"]) == {"fc1", "fc2", "fc3"}
    plain = to_float(model)
    assert all(type(mod) in (nn.Linear, nn.ReLU, nn.Flatten, type(plain)) for mod in plain.modules())
    assert torch.equal(plain.fc1.weight, model.fc1.weight)


def _fwd(mode_kw, w, x):
    mode = make_mode("mfmac", **mode_kw)
    lin = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        lin.weight.copy_(w)
        lin.bias.zero_()
    m = mode.convert(nn.Sequential(lin))
    layer = mode.layers["0"]
    potq.record(layer)
    return m(x), layer


def test_wbc_restores_each_channels_weight_mean_and_off_leaves_pot_weights():
    torch.manual_seed(2)
    w = torch.randn(6, 40) * 0.1 + 0.02
    x = torch.rand(3, 40)
    y_on, on = _fwd({"wbc": True, "prc": False}, w, x)
    y_off, off = _fwd({"wbc": False, "prc": False}, w, x)
    r = on.core.last
    dp = parse("mfmac")
    wq = dp.values(r["wq"]) * r["sw"]
    xd = dp.values(r["xq"]) * r["sx"]
    delta = w.double().numpy().mean(axis=1) - wq.mean(axis=1)
    assert np.abs(delta).max() > 1e-4                                 # PoT rounding does bias the means
    eff = wq + delta[:, None]                                        # the weights WBC makes effective
    assert np.allclose(eff.mean(axis=1), w.double().numpy().mean(axis=1), rtol=0, atol=1e-12)
    assert np.allclose(y_on.detach().numpy(), xd @ eff.T, rtol=1e-5, atol=1e-6)
    assert np.allclose(y_off.detach().numpy(), xd @ wq.T, rtol=1e-5, atol=1e-6)
    assert np.array_equal(on.core.last["y_int"], off.core.last["y_int"])   # the MAC part is the same


def test_prc_clips_at_ratio_times_max_and_learns_the_ratio():
    torch.manual_seed(3)
    w = torch.randn(4, 32) * 0.1
    x = torch.rand(5, 32) ** 4                                       # a long tail
    _, off = _fwd({"wbc": False, "prc": False}, w, x)
    assert not hasattr(off, "prc_ratio")
    mode = make_mode("mfmac", wbc=False, prc=True)
    m = mode.convert(nn.Sequential(nn.Linear(32, 4)))
    layer = mode.layers["0"]
    potq.record(layer)
    with torch.no_grad():
        layer.prc_ratio.fill_(0.25)
    m(x).sum().backward()
    r = layer.core.last
    c = 0.25 * float(x.abs().max())
    codes, scale = parse("mfmac").quantize(np.clip(x.numpy(), -c, c), "x")
    assert np.array_equal(r["xq"], codes) and r["sx"] == scale
    assert math.log2(scale) == round(math.log2(scale))               # still a power of two
    assert scale < off.core.last["sx"]
    assert layer.prc_ratio.grad is not None and layer.prc_ratio.grad.item() != 0.0
    layer.prc_ratio.data.fill_(7.0)
    mode.after_step(m)
    assert layer.prc_ratio.item() == 1.0


def _qat_layer(spec, grad, w, x):
    mode = make_mode(spec, grad=grad)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    m = mode.convert(nn.Sequential(lin))
    xr = x.clone().requires_grad_(True)
    return m, xr, mode.layers["0"]


@pytest.mark.parametrize("spec", ["approx:mul-drum,k=4", "approx:mul-mitchell,frac_bits=3"])
def test_table_gradient_equals_finite_difference_brute_force(spec):
    dp = parse(spec)
    torch.manual_seed(4)
    w = torch.randn(3, 5)
    x = torch.randn(4, 5)
    g = torch.randn(4, 3)
    m, xr, layer = _qat_layer(spec, "table", w, x)
    m(xr).backward(g)
    xq, sx = dp.quantize(x.numpy(), "x")
    wq, sw = dp.quantize(w.numpy().T, "w")                            # K x N codes, as the layer runs them
    gn = g.double().numpy()

    def y(xc, wc):
        return dp.matmul_definition(xc, wc).astype(np.float64)
    dx = np.zeros(xq.shape)
    for mi in range(xq.shape[0]):
        for k in range(xq.shape[1]):
            up, dn = xq.copy(), xq.copy()
            up[mi, k] = min(xq[mi, k] + 1, 127)
            dn[mi, k] = max(xq[mi, k] - 1, -127)
            dx[mi, k] = sw * (gn * (y(up, wq) - y(dn, wq))).sum() / (up[mi, k] - dn[mi, k])
    dw = np.zeros(wq.shape)
    for k in range(wq.shape[0]):
        for n in range(wq.shape[1]):
            up, dn = wq.copy(), wq.copy()
            up[k, n] = min(wq[k, n] + 1, 127)
            dn[k, n] = max(wq[k, n] - 1, -127)
            dw[k, n] = sx * (gn * (y(xq, up) - y(xq, dn))).sum() / (up[k, n] - dn[k, n])
    assert np.allclose(xr.grad.numpy(), dx, rtol=1e-5, atol=1e-6)
    assert np.allclose(layer.weight.grad.numpy(), dw.T, rtol=1e-5, atol=1e-6)


def test_ste_is_the_exact_products_gradient_and_the_table_gradient_of_an_exact_multiplier():
    torch.manual_seed(5)
    w = torch.randn(3, 6)
    x = torch.randn(4, 6) * 0.5
    g = torch.randn(4, 3)
    grads = {}
    for spec, grad in (("approx:mul-exact", "ste"), ("approx:mul-exact", "table"), ("int8", "ste")):
        m, xr, layer = _qat_layer(spec, grad, w, x)
        m(xr).backward(g)
        grads[spec, grad] = (xr.grad.numpy(), layer.weight.grad.numpy())
    dp = parse("int8")
    xq, sx = dp.quantize(x.numpy(), "x")
    wq, sw = dp.quantize(w.numpy(), "w")
    want_x = g.double().numpy() @ (wq * sw)
    want_w = g.double().numpy().T @ (xq * sx)
    for key in grads:
        # the largest code sits at +-127, where the finite difference is one-sided: exact for a*w too
        assert np.allclose(grads[key][0], want_x, rtol=1e-5, atol=1e-6), key
        assert np.allclose(grads[key][1], want_w, rtol=1e-5, atol=1e-6), key


def test_qat_conv_forward_is_the_datapath_and_ste_gradient_is_the_float_conv_of_quantized_operands():
    spec = "asm,alphabet=1/3"
    dp = parse(spec)
    torch.manual_seed(6)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.rand(2, 2, 5, 5)
    mode = make_mode(spec)
    m = mode.convert(nn.Sequential(conv))
    xr = x.clone().requires_grad_(True)
    y = m(xr)
    xq, sx = dp.quantize(x.numpy(), "x")
    wq, sw = dp.quantize(conv.weight.detach().numpy().reshape(3, -1).T, "w")
    want = kernels.conv2d(dp, xq, wq.T.reshape(3, 2, 3, 3), 1, 1) * (sx * sw) + conv.bias.detach().numpy()[None, :, None, None]
    assert np.allclose(y.detach().numpy(), want, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(y)
    y.backward(g)
    wdq = torch.from_numpy(wq.T.reshape(3, 2, 3, 3) * sw)
    want_x = torch.nn.grad.conv2d_input(x.shape, wdq, g.double(), padding=1)
    assert np.allclose(xr.grad.numpy(), want_x.numpy(), rtol=1e-5, atol=1e-6)


class _Bomb(nn.Module):
    """Identity until its `at`-th training call, then NaN."""

    def __init__(self, at):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls >= self.at:
                return x * float("nan")
        return x


def test_divergence_names_layer_and_step_and_keeps_the_last_good_state(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), _Bomb(at=4), nn.Linear(16, 10))
    saved = []
    with pytest.raises(TrainingDiverged) as e:
        train(model, _tiny(digits, 48), epochs=3, batch_size=16, progress=False, checkpoint=saved.append)
    msg = str(e.value)
    assert "\n" not in msg and "step 4 (epoch 2)" in msg and "layer 3" in msg
    assert len(saved) == 1 and torch.isfinite(saved[0][1].weight).all()


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv,msg", [
    (["--datapath", "int8", "--wbc"], "option wbc does not apply to datapath int8 (int8 training takes: grad, anneal)"),
    (["--datapath", "asm", "--grad", "table"], "grad=table is the gradient of an approximate product's table "
                                              "(approx:... or lut:...), not of asm"),
    (["--prc"], "option(s) prc need a datapath (fp32 training takes none)"),
    (["--datapath", "mfmac", "--errors", "int8"], "errors 'int8': ALS-POTQ errors are fp32 or an mfmac datapath "
                                                  "(mfmac[,exp_bits=E][,acc_bits=N]), got kind int8"),
    (["--datapath", "mfmac,exp_bits=4", "--errors", "mfmac"], "errors 'mfmac': exp_bits must be at least the "
                                                              "forward datapath's (4), got 3"),
    (["--datapath", "mfmac", "--errors", "fp32", "--anneal"], "option anneal does not apply to datapath mfmac "
                                                              "(mfmac training takes: wbc, prc, prc_min, err_rounding, "
                                                              "err_scale, wgrad_exp_bits, fwd_rounding, rand_bits)"),
    (["--datapath", "mfmac", "--errors", "fp32", "--err-scale", "sample"], "err_scale=sample scales PoT errors: it "
                                                                          "needs an mfmac error datapath, not fp32"),
    (["--datapath", "mfmac", "--err-scale", "row"], "argument --err-scale: invalid choice: 'row' (choose from "),
    (["--datapath", "int8", "--anneal"], "anneal applies to the alphabet projection (asm datapaths) only"),
    (["--lr", "0"], "--lr must be a number in (0, 10], got 0"),
    (["--lr", "nan"], "--lr must be a number in (0, 10], got nan"),
    (["--init", "/nonexistent/m.pt"], "--init /nonexistent/m.pt: no such checkpoint file"),
    (["--datapath", "int9"], "unknown datapath 'int9'"),
])
def test_cli_bad_training_options_one_line(capsys, tmp_path, argv, msg):
    out_file = tmp_path / "m.pt"
    code, out, err = run(capsys, "nn", "train", "--arch", "mlp", "--data", "digits", "-o", out_file, *argv)
    assert code == 2 and out == ""
    assert err.startswith("ecomac: error: ") and msg in err and err.count("\n") == 1
    assert not out_file.exists()


def test_cli_train_mfmac_json_and_plot(capsys, tmp_path):
    import json
    rng = np.random.default_rng(0)
    y = np.arange(48) % 3
    x = (rng.random((48, 1, 4, 4)) * 0.3 + y[:, None, None, None] / 3).astype(np.float32)
    np.savez(tmp_path / "tiny.npz", x=x, y=y)
    code, out, err = run(capsys, "nn", "train", "--arch", "lenet", "--data", tmp_path / "tiny.npz", "--epochs", "2",
                         "--datapath", "mfmac", "--no-wbc", "--err-scale", "sample", "--lr-pow2", "--json", "--plot",
                         tmp_path / "c.png", "-o", tmp_path / "m.pt")
    assert code == 0, err
    res = json.loads(out)
    assert len(res["history"]["epochs"]) == 2 and res["history"]["mode"]["wbc"] is False
    assert res["history"]["mode"]["err_scale"] == "sample" and "wgrad_error_lost_pct" in res["history"]["epochs"][0]
    assert res["energy"]["weight_grad_datapath"] == parse("mfmac,exp_bits=5").canonical
    assert res["test_accuracy_pct"] == res["history"]["epochs"][-1]["test_accuracy_pct"]
    assert res["energy_per_step_pj"] > 0 and res["energy_per_epoch_pj"] == pytest.approx(
        res["energy_per_step_pj"] * res["history"]["steps_per_epoch"])
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    model, meta = loader.load(tmp_path / "m.pt")
    assert type(model.conv1) is nn.Conv2d and meta["options"]["datapath"] == "mfmac"


def test_stochastic_error_rounding_is_unbiased_and_keeps_the_scale():
    rng = np.random.default_rng(0)
    t = np.array([0.3, 1.5, -3.0, 40.0, 64.0, 0.0, -0.01])           # in units of the scale 2^k = 1
    codes = np.stack([potq.stochastic_codes(t, 1.0, 3, rng) for _ in range(4000)])
    v = pot.decode(codes, 3)
    assert set(np.unique(np.abs(v))) <= {0, 1, 2, 4, 8, 16, 32, 64}
    assert np.allclose(v.mean(axis=0), t, atol=0.05 * np.abs(t).clip(1, None))
    assert (v[:, 5] == 0).all() and (v[:, 4] == 64).all()
    with pytest.raises(ValueError, match="err_rounding=stochastic rounds PoT errors: it needs an mfmac error"):
        make_mode("mfmac", "fp32", err_rounding="stochastic")
    with pytest.raises(ValueError, match="err_rounding must be one of nearest, stochastic, luq, got 'up'"):
        make_mode("mfmac", err_rounding="up")


def test_asm_annealing_blends_then_runs_on_the_datapath(digits):
    mode = make_mode("asm,alphabet=1/3", anneal=True)
    torch.manual_seed(7)
    m = mode.convert(nn.Sequential(nn.Linear(8, 3)))
    layer = mode.layers["0"]
    mode.set_epochs(4)
    mode.start_epoch(1)
    x = torch.rand(5, 8)
    dp = parse("asm,alphabet=1/3")
    wq, sw = dp.quantize(layer.weight.detach().numpy(), "w")
    w = layer.weight.detach().numpy()
    blend = w + 0.25 * (wq * sw - w)
    assert np.allclose(m(x).detach().numpy(), x.numpy() @ blend.T + layer.bias.detach().numpy(), atol=1e-6)
    assert mode.end_epoch() == {} and layer.core.lam == 1.0
    xq, sx = dp.quantize(x.numpy(), "x")
    want = kernels.matmul(dp, xq, wq.T) * (sx * sw) + layer.bias.detach().numpy()
    assert np.allclose(m(x).detach().numpy(), want, atol=1e-6)
    _, hist = train(models.build("mlp", digits.input_shape, 10), _tiny(digits), datapath="asm,alphabet=1/3",
                    anneal=True, epochs=2, progress=False)
    assert len(hist["epochs"]) == 2 and hist["mode"]["anneal"] is True


def test_report_table_renders_the_measured_summary():
    from ecomac.cmd_train_report import report_sections, train_table
    from net.train_runs import EXPERIMENT_CONFIGS, summarize_runs
    runs = {"0": {"FP32": {"test_accuracy_pct": 90.0, "seconds": 1.0, "energy_per_step_pj": 2e6,
                           "energy_per_epoch_pj": 4e7},
                  "int8 QAT": {"test_accuracy_pct": 89.0, "seconds": 2.0}},
            "1": {"FP32": {"test_accuracy_pct": 92.0, "seconds": 1.0}, "int8 QAT": {"test_accuracy_pct": 92.5,
                                                                                  "seconds": 2.0}}}
    summary = summarize_runs(runs, EXPERIMENT_CONFIGS)
    assert [s["label"] for s in summary] == ["FP32", "int8 QAT"]
    assert summary[1]["drop_pp_mean"] == pytest.approx(((90 - 89) + (92 - 92.5)) / 2)
    res = {"arch": "mlp", "data": "digits", "train_samples": 10, "test_samples": 5, "epochs": 1, "ft_epochs": 1,
           "batch_size": 4, "lr": 0.5, "seeds": [0, 1], "summary": summary}
    text = train_table(res)
    fp32_row = next(line for line in text.splitlines() if line.startswith("FP32 "))
    int8_row = next(line for line in text.splitlines() if line.startswith("int8 QAT"))
    assert fp32_row.split()[1:] == ["91.00", "±", "1.00", "+0.00", "±", "0.00", "2", "40", "1"]
    assert int8_row.split()[2:] == ["90.75", "±", "1.75", "+0.25", "±", "0.75", "-", "-", "2"]
    (order, title, body), = report_sections("/nonexistent/report")
    assert title == "Training on the arithmetic" and "make experiments" in body


def test_cli_fine_tune_approximate_from_init_with_table_gradient(capsys, tmp_path):
    import json
    rng = np.random.default_rng(1)
    y = np.arange(48) % 3
    x = (rng.random((48, 1, 4, 4)) * 0.3 + y[:, None, None, None] / 3).astype(np.float32)
    np.savez(tmp_path / "tiny.npz", x=x, y=y)
    code, _, err = run(capsys, "nn", "train", "--arch", "mlp", "--data", tmp_path / "tiny.npz", "--epochs", "2",
                       "-o", tmp_path / "fp32.pt")
    assert code == 0, err
    code, out, err = run(capsys, "nn", "train", "--arch", "mlp", "--data", tmp_path / "tiny.npz", "--epochs", "1",
                         "--datapath", "approx:mul-drum,k=4", "--grad", "table", "--init", tmp_path / "fp32.pt",
                         "--json", "-o", tmp_path / "ft.pt")
    assert code == 0, err
    res = json.loads(out)
    assert res["history"]["mode"] == {"kind": "qat", "datapath": parse("approx:mul-drum,k=4").canonical,
                                      "grad": "table", "anneal": False}
    assert res["energy"]["error_datapath"] == "fp32" and res["energy_per_step_pj"] > 0
    code, _, err = run(capsys, "nn", "train", "--arch", "lenet", "--data", tmp_path / "tiny.npz", "--epochs", "1",
                       "--datapath", "int8", "--init", tmp_path / "fp32.pt", "-o", tmp_path / "bad.pt")
    assert code == 2 and "init does not fit the model" in err and err.count("\n") == 1


def test_recalibrate_bn_estimates_the_statistics_of_the_current_weights():
    """recalibrate_bn: running mean / variance become the statistics of `samples` inputs drawn by
    its fixed generator through the current weights (cumulative over its batches; not the first
    rows, which are one class in a data set stored by class), other layers stay in eval mode,
    momentum and the training flag are restored; a model without BatchNorm is untouched."""
    from net.train import recalibrate_bn
    torch.manual_seed(0)
    lin = nn.Linear(6, 4)
    drop = nn.Dropout(0.5)
    bn = nn.BatchNorm1d(4, momentum=0.3)
    model = nn.Sequential(lin, drop, bn).train()
    bn.running_mean.fill_(5.0)
    bn.running_var.fill_(7.0)
    x = torch.randn(300, 6)
    assert recalibrate_bn(model, x, samples=200, batch=64) == 1
    pick = torch.randperm(300, generator=torch.Generator().manual_seed(0))[:200]
    assert not torch.equal(pick.sort().values, torch.arange(200))      # a draw, not the first rows
    with torch.no_grad():
        h = lin(x[pick])                       # dropout off: eval mode outside BatchNorm
    # torch's momentum=None rule: the cumulative average of each batch's mean and unbiased variance
    ms = [h[i:i + 64].mean(0) for i in range(0, 200, 64)]
    assert torch.allclose(bn.running_mean, torch.stack(ms).mean(0), atol=1e-5)
    vs = [h[i:i + 64].var(0, unbiased=True) for i in range(0, 200, 64)]
    assert torch.allclose(bn.running_var, torch.stack(vs).mean(0), atol=1e-5)
    assert bn.momentum == 0.3 and model.training and drop.training
    plain = nn.Sequential(nn.Linear(6, 4))
    before = copy.deepcopy(plain.state_dict())
    assert recalibrate_bn(plain, x) == 0
    assert all(torch.equal(before[k], v) for k, v in plain.state_dict().items())
