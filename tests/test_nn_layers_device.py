"""Emulated layers on a device (CPU here; CUDA where present): a model with grouped, depthwise,
dilated and strided convolutions gives, layer by layer, the accumulations of the NumPy reference
(golden quantizers + matmul_definition / conv2d_definition) on the same inputs; EmuMatmul against
a loop of definitions, its scales, its straight-through gradients; fp32 stays float; results do
not depend on the thread count; a saved calibrated model loads calibrated."""
import numpy as np
import pytest
import torch
from torch import nn

from golden.datapath import parse as golden_parse
from net import kernels, layers

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


class Sep(nn.Module):
    """conv (stride 2, padding (1, 2)) -> depthwise (dilation 2) -> grouped 1x1 -> linear."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, stride=2, padding=(1, 2))
        self.dw = nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=4, bias=False)
        self.pw = nn.Conv2d(8, 6, 1, groups=2)
        self.fc = nn.Linear(6 * 4 * 6, 5)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.pw(self.dw(x)))
        return self.fc(x.flatten(1))


def _reference(dp, layer, x_in):
    """The NumPy reference of one emulated layer on its float input: golden codes and the
    definition's accumulations."""
    xc, _ = layers.quantize_activation(dp, x_in.detach().cpu().numpy(), float(layer.observer.amax))
    wc, _ = dp.quantize(layer.weight.detach().cpu().numpy(), "w", axis=0)
    if isinstance(layer, layers.EmuConv2d):
        return xc, wc, kernels.conv2d_definition(dp, xc, wc, layer.stride, layer.padding, layer.dilation, layer.groups)
    return xc, wc.T, dp.matmul_definition(xc.reshape(-1, xc.shape[-1]), wc.T)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", ["int8,acc_bits=20", "mfmac", "asm,alphabet=1/3", "approx:mul-mitchell",
                                  "approx:mul-trunc,k=4"])
def test_device_layers_equal_the_numpy_reference(spec, device):
    torch.manual_seed(0)
    m = Sep().eval()
    x = torch.randn(3, 2, 7, 9)
    q = layers.convert(m, spec, calib=x).to(device)
    inputs = {}
    hooks = [mod.register_forward_hook(lambda mod, i, o, n=n: inputs.__setitem__(n, i[0]))
             for n, mod in layers.emulated_layers(q).items()]
    y = q(x.to(device))
    for h in hooks:
        h.remove()
    assert y.device.type == device and y.dtype == torch.float32
    dp = golden_parse(spec)
    for name, layer in layers.emulated_layers(q).items():
        assert layer.last_accumulations.device.type == device
        xc, wc, want = _reference(dp, layer, inputs[name])
        assert np.array_equal(layer.last_x_codes.cpu().numpy().reshape(xc.shape), xc), name
        assert np.array_equal(layer.last_w_codes.cpu().numpy(), wc), name
        assert np.array_equal(layer.last_accumulations.cpu().numpy(), want), name


def test_results_do_not_depend_on_threads():
    """Calibrated once, the emulated forward (integer products, elementwise float64 dequantization)
    is bitwise the same with 1 and 2 threads. (The float calibration pass itself runs torch's
    float convolutions, whose rounding may change with the thread count: docs/emulation.md.)"""
    torch.manual_seed(1)
    m = Sep().eval()
    x = torch.randn(4, 2, 7, 9)
    q = layers.convert(m, "approx:mul-mitchell", calib=x)
    outs = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            outs.append((q(x), q.dw.last_accumulations))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


class Attn(nn.Module):
    def __init__(self, spec, per_channel=False):
        super().__init__()
        self.mm = layers.EmuMatmul(spec, per_channel=per_channel)

    def forward(self, qk):
        q, k = qk[:, :2], qk[:, 2:]                       # (N, 2, T, D) each: heads 2
        return self.mm(q, k.transpose(-1, -2))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spec", ["int8", "mfmac", "asm,alphabet=1/3", "approx:mul-mitchell"])
def test_emu_matmul_equals_a_loop_of_definitions(spec, device):
    torch.manual_seed(2)
    x = torch.randn(3, 4, 5, 6)
    mod = layers.calibrate(Attn(spec), x).to(device)
    mm = mod.mm
    assert set(layers.emulated_layers(mod)) == {"mm"} and layers.uncovered_layers(mod) == []
    y = mod(x.to(device))
    dp = golden_parse(spec)
    a, b = x[:, :2].numpy(), x[:, 2:].transpose(-1, -2).numpy()
    flat_a = np.clip(a.reshape(-1), -float(mm.observer_a.amax), float(mm.observer_a.amax))
    ac, sa = dp.quantize(np.append(flat_a, float(mm.observer_a.amax)), "x")
    flat_b = np.clip(b.reshape(-1), -float(mm.observer_b.amax), float(mm.observer_b.amax))
    bc, sb = dp.quantize(np.append(flat_b, float(mm.observer_b.amax)), "w")
    ac, bc = ac[:-1].reshape(a.shape), bc[:-1].reshape(b.shape)
    dp.check_codes(bc, "w")                         # asm: b's codes are the alphabet's
    assert np.array_equal(mm.last_x_codes.cpu().numpy(), ac) and np.array_equal(mm.last_w_codes.cpu().numpy(), bc)
    acc = mm.last_accumulations.cpu().numpy()
    assert acc.shape == (3, 2, 5, 5)
    for i in range(3):
        for h in range(2):
            assert np.array_equal(acc[i, h], dp.matmul_definition(ac[i, h], bc[i, h]))
    np.testing.assert_allclose(y.cpu().numpy(), (acc * sa * sb).astype(np.float32), rtol=1e-6)
    assert float(mm.observer_a.scale) == sa and float(mm.observer_b.scale) == sb


@pytest.mark.parametrize("device", DEVICES)
def test_emu_matmul_ste_gradients_and_broadcast(device):
    """grad_a = g . b_q^T, grad_b = a_q^T . g with the dequantized codes; b broadcast over a's
    batch dim receives the summed gradient."""
    torch.manual_seed(3)
    mm = layers.EmuMatmul("int8")
    a = torch.randn(4, 3, 5, device=device, requires_grad=True)
    b = torch.randn(1, 5, 2, device=device, requires_grad=True)
    mm.observer_a.amax.fill_(float(a.detach().abs().max()))
    mm.observer_b.amax.fill_(float(b.detach().abs().max()))
    for o in mm.observers():
        o.freeze()
    mm.to(device)
    y = mm(a, b)
    g = torch.randn_like(y)
    y.backward(g)
    aq = (mm.last_x_codes.double() * mm.observer_a.scale).float()
    bq = (mm.last_w_codes.double() * mm.observer_b.scale).float()
    assert torch.allclose(a.grad, g @ bq.transpose(-1, -2), atol=1e-6)
    assert b.grad.shape == (1, 5, 2) and torch.allclose(b.grad, (aq.transpose(-1, -2) @ g).sum(0, keepdim=True), atol=1e-5)


def test_emu_matmul_per_channel_and_refusals():
    torch.manual_seed(4)
    a, b = torch.randn(2, 3, 8), torch.randn(2, 8, 4)
    mm = layers.EmuMatmul("mfmac", per_channel=True)
    with pytest.raises(ValueError, match="EmuMatmul operand a on mfmac is not calibrated"):
        mm(a, b)
    for o, t in ((mm.observer_a, a), (mm.observer_b, b)):
        o.observe(t)
        o.freeze()
    mm(a, b)
    # b: one power-of-two scale per column (last dim), from b itself
    from net import quant
    bc, _ = quant.quantize("mfmac", b, "w", axis=-1)
    assert torch.equal(mm.last_w_codes, bc)
    with pytest.raises(ValueError, match=r"EmuMatmul multiplies \(\.\.\., M, K\) by \(\.\.\., K, N\)"):
        mm(a[0, 0], b)
    f = layers.EmuMatmul("fp32")                     # fp32 keeps the float product
    assert torch.equal(f(a, b), torch.matmul(a, b))


def test_calibrated_state_loads(tmp_path):
    torch.manual_seed(5)
    m = Sep().eval()
    x = torch.randn(2, 2, 7, 9)
    q = layers.convert(m, "int8", calib=x)
    torch.save(q.state_dict(), tmp_path / "q.pt")
    fresh = layers.convert(m, "int8", calib=x * 3)
    fresh.load_state_dict(torch.load(tmp_path / "q.pt"))
    assert torch.equal(fresh(x), q(x))
    blank = layers.EmuLinear(m.fc, "int8")
    blank.load_state_dict(q.fc.state_dict())
    assert blank.observer.ready
