"""net/qat.py on torch: the derivative-table gradients' torch formulation (CUDA's) equals the numba
loops; grouped / dilated / strided QAT convolutions run on the datapath and their table gradient
through the patches and the fold equals the float conv's gradient for an exact multiplier."""
import numpy as np
import pytest
import torch
from torch import nn

from golden.datapath import parse as golden_parse
from net import kernels, qat
from net.train import make_mode


@pytest.mark.parametrize("spec", ["approx:mul-mitchell", "approx:mul-drum,k=3"])
def test_table_grads_torch_equal_numba(spec):
    dp = golden_parse(spec)
    tables = qat.derivative_tables(dp)
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.integers(-127, 128, (2, 9, 13)))
    W = torch.from_numpy(rng.integers(-127, 128, (2, 13, 5)))
    G = torch.from_numpy(rng.standard_normal((2, 9, 5)))
    tx, tw = qat.table_grads(tables, X, W, G, backend="torch")
    for i in range(2):
        nx, nw = qat.table_grads(tables, X[i], W[i], G[i], backend="numba")
        assert torch.allclose(tx[i], nx, rtol=1e-12, atol=1e-9) and torch.allclose(tw[i], nw, rtol=1e-12, atol=1e-9)
    # and a brute-force pair sum
    Da, Dw = tables
    want = sum(G[0, :, n].numpy()[:, None] * Da[X[0].numpy() + 127, W[0, :, n].numpy()[None, :] + 127] for n in range(5))
    assert np.allclose(tx[0].numpy(), want)


@pytest.mark.parametrize("conv", [dict(groups=2, dilation=2, padding=2), dict(stride=(2, 1), padding=(1, 0), groups=4)])
def test_qat_conv_groups_dilation_forward_and_gradients(conv):
    torch.manual_seed(1)
    c = nn.Conv2d(4, 8, 3, **conv)
    x = torch.randn(2, 4, 7, 6)
    g = None
    grads = {}
    for spec, grad in (("approx:mul-exact", "table"), ("approx:mul-exact", "ste"), ("int8", "ste")):
        mode = make_mode(spec, grad=grad)
        m = mode.convert(nn.Sequential(c))
        xr = x.clone().requires_grad_(True)
        y = m(xr)
        dp = golden_parse(spec)
        xq, sx = dp.quantize(x.numpy(), "x")
        wq, sw = dp.quantize(c.weight.detach().numpy(), "w")
        want = kernels.conv2d_definition(dp, xq, wq, **conv) * (sx * sw) + c.bias.detach().numpy()[None, :, None, None]
        assert np.allclose(y.detach().numpy(), want, rtol=1e-5, atol=1e-6)
        g = torch.randn_like(y) if g is None else g
        y.backward(g)
        grads[spec, grad] = (xr.grad.clone(), mode.layers["0"].weight.grad.clone())
        if spec == "int8":
            wd = torch.from_numpy(wq * sw).float()
            xd = torch.from_numpy(xq * sx).float()
            args = (c.stride, c.padding, c.dilation, c.groups)
            assert torch.allclose(xr.grad, torch.nn.grad.conv2d_input(x.shape, wd, g, *args), atol=1e-5)
            assert torch.allclose(grads[spec, grad][1], torch.nn.grad.conv2d_weight(xd, wd.shape, g, *args), atol=1e-4)
    # an exact multiplier's table gradient is the STE (codes at +-127: one-sided differences, exact too)
    for a, b in zip(grads["approx:mul-exact", "table"], grads["approx:mul-exact", "ste"]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)
