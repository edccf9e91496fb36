"""net/layers.py: convert (whole-model spec and per-layer mapping) leaves the original and the
float layers untouched; an emulated layer's integer accumulations are the kernels' (and the
golden definition's) on the same codes; dequantization; straight-through gradients; scales."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from golden.datapath import parse as golden_parse
from net import kernels, layers

SPECS = ("int8", "mfmac", "asm,alphabet=1/3", "approx:mul-drum,k=4", "int8,acc_bits=16")


class Small(nn.Module):
    """conv -> BatchNorm -> ReLU -> pool -> flatten -> linear -> ReLU -> linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, stride=1)
        self.bn = nn.BatchNorm2d(3)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 3 * 3, 8), nn.ReLU(), nn.Linear(8, 4))

    def forward(self, x):
        return self.head(self.pool(self.act(self.bn(self.conv(x)))))


@pytest.fixture(scope="module")
def model_and_data():
    torch.manual_seed(1)
    m = Small()
    with torch.no_grad():                    # a BatchNorm with non-trivial state to compare
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
    m.eval()
    x = torch.rand(16, 2, 6, 6) * 2 - 0.5
    return m, x


def test_convert_copies_and_leaves_float_layers_untouched(model_and_data):
    m, x = model_and_data
    before = {k: v.clone() for k, v in m.state_dict().items()}
    q = layers.convert(m, "int8", calib=x)
    # the original is unchanged (same module types, same tensors) and still a float model
    assert type(m.conv) is nn.Conv2d and type(m.head[1]) is nn.Linear
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    # in the copy only Linear/Conv2d are swapped; the other layers are equal copies
    assert set(layers.emulated_layers(q)) == {"conv", "head.1", "head.3"}
    for name in ("bn", "act", "pool", "head.0", "head.2"):
        a, b = m.get_submodule(name), q.get_submodule(name)
        assert type(a) is type(b) and a is not b
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)
    assert layers.uncovered_layers(q) == [("bn", "BatchNorm2d"), ("act", "ReLU"), ("pool", "MaxPool2d"),
                                          ("head.2", "ReLU")]
    assert torch.allclose(q(x), m(x), atol=0.05)        # int8 stays close to float


def test_mapping_converts_only_named_layers(model_and_data):
    m, x = model_and_data
    q = layers.convert(m, {"conv": "mfmac", "head.3": "approx:mul-drum,k=4", "head.1": "fp32"}, calib=x)
    assert q.conv.spec == "mfmac" and q.head[3].spec == "approx:mul-drum,k=4"
    assert type(q.head[1]) is nn.Linear
    with pytest.raises(ValueError, match=r"mapping names unknown layer\(s\) 'fc9' \(Linear/Conv2d layers: conv, "
                                         r"head.1, head.3\)"):
        layers.convert(m, {"fc9": "int8"}, calib=x)
    with pytest.raises(ValueError, match="mapping layer 'conv': unknown datapath 'int9'"):
        layers.convert(m, {"conv": "int9"}, calib=x)
    with pytest.raises(ValueError, match="need a calibration batch"):
        layers.convert(m, "int8")
    assert type(layers.convert(m, "fp32").conv) is nn.Conv2d      # fp32 keeps the float layer


@pytest.mark.parametrize("spec", SPECS)
def test_linear_accumulations_are_the_kernel_and_the_definition(model_and_data, spec):
    m, x = model_and_data
    q = layers.convert(m, spec, calib=x)
    y = q(x)
    lin = q.head[1]
    X, W, acc = lin.last_x_codes, lin.last_w_codes, lin.last_accumulations
    dp = golden_parse(spec)
    dp.check_codes(X, "x")
    dp.check_codes(W, "w")
    assert np.array_equal(acc, kernels.matmul(spec, X, W))
    assert np.array_equal(acc, dp.matmul_definition(X, W))
    # dequantization of the last layer: acc * s_x * s_w + bias
    out = q.head[3]
    _, sw = out._weight_codes()
    sx = float(out.observer.scale)
    want = out.last_accumulations.numpy() * sx * sw.numpy()[None, :] + out.bias.detach().numpy()[None, :]
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", SPECS)
def test_conv_accumulations_are_the_definition(model_and_data, spec):
    m, x = model_and_data
    q = layers.convert(m, spec, calib=x)
    q(x[:4])
    c = q.conv
    assert np.array_equal(c.last_accumulations,
                          kernels.conv2d_definition(spec, c.last_x_codes, c.last_w_codes, c.stride, c.padding))


def test_weights_per_channel_scales(model_and_data):
    m, x = model_and_data
    for spec in ("mfmac", "asm,alphabet=1"):
        q = layers.convert(m, spec, calib=x)
        sw = q.conv._weight_codes()[1].numpy()
        assert len(sw) == 3 and np.all(np.log2(sw) == np.round(np.log2(sw)))      # powers of two per channel
    q = layers.convert(m, "int8", calib=x, per_channel=False)
    sw = q.conv._weight_codes()[1].numpy()
    assert np.all(sw == sw[0]) and sw[0] == pytest.approx(float(m.conv.weight.detach().abs().max()) / 127)
    q = layers.convert(m, "int8", calib=x)
    sw = q.conv._weight_codes()[1].numpy()
    np.testing.assert_allclose(sw, m.conv.weight.detach().abs().amax(dim=(1, 2, 3)).numpy() / 127, rtol=1e-6)
    # the activation scale is the calibration batch's max |input| / 127
    assert float(q.conv.observer.amax) == pytest.approx(float(x.abs().max()))
    assert float(q.conv.observer.scale) == pytest.approx(float(x.abs().max()) / 127)


@pytest.mark.parametrize("spec", ("int8", "approx:mul-drum,k=4"))
def test_ste_gradients_are_the_float_layer_with_quantized_weights(model_and_data, spec):
    m, x = model_and_data
    q = layers.convert(m, spec, calib=x)
    torch.manual_seed(3)
    for layer, inp in ((q.head[1], torch.randn(5, 27)), (q.conv, torch.randn(2, 2, 6, 6))):
        xi = inp.clone().requires_grad_(True)
        y = layer(xi)
        g = torch.randn_like(y)
        y.backward(g)
        wq = layer.quantized_weight().requires_grad_(True)
        b = layer.bias.detach().clone().requires_grad_(True)
        xr = inp.clone().requires_grad_(True)
        ref = F.linear(xr, wq, b) if wq.ndim == 2 else F.conv2d(xr, wq, b, layer.stride, layer.padding)
        ref.backward(g)
        assert torch.allclose(xi.grad, xr.grad, atol=1e-5)
        assert torch.allclose(layer.weight.grad, wq.grad, atol=1e-5)
        assert torch.allclose(layer.bias.grad, b.grad, atol=1e-5)
        assert layer.weight.grad.abs().sum() > 0


def test_weight_update_requantizes(model_and_data):
    m, x = model_and_data
    q = layers.convert(m, "int8", calib=x)
    lin = q.head[3]
    c0, _ = lin._weight_codes()
    with torch.no_grad():
        lin.weight.mul_(-1)
    c1, _ = lin._weight_codes()
    assert torch.equal(c1, -c0)


def test_uncalibrated_layer_refuses(model_and_data):
    m, x = model_and_data
    layer = layers.EmuLinear(m.head[1], "int8")
    with pytest.raises(ValueError, match="is not calibrated: pass calib= to convert"):
        layer(torch.zeros(1, 27))
    with pytest.raises(ValueError, match="the fp32 datapath keeps the plain float layer"):
        layers.EmuLinear(m.head[1], "fp32")
    with pytest.raises(ValueError, match="emulated conv pads with zeros"):
        layers.EmuConv2d(nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), "int8")
    with pytest.raises(ValueError, match=r"padding='same' with kernel \(2, 2\) and dilation \(1, 1\) pads one side"):
        layers.EmuConv2d(nn.Conv2d(4, 4, 2, padding="same"), "int8")


@pytest.mark.parametrize("spec", ("int8", "mfmac", "approx:mul-drum,k=4"))
def test_accumulations_equal_ecomac_emulate(model_and_data, spec, tmp_path, capsys):
    from ecomac.cli import main
    m, x = model_and_data
    q = layers.convert(m, spec, calib=x)
    q(x[:3])
    for layer, conv in ((q.head[1], False), (q.conv, True)):
        np.save(tmp_path / "x.npy", layer.last_x_codes.numpy())
        np.save(tmp_path / "w.npy", layer.last_w_codes.numpy())
        argv = ["emulate", "--datapath", spec, "--x", str(tmp_path / "x.npy"), "--w", str(tmp_path / "w.npy"),
                "-o", str(tmp_path / "y.npy")]
        if conv:
            argv += ["--conv", "--stride", str(layer.stride[0]), "--padding", str(layer.padding[0])]
        assert main(argv) == 0, capsys.readouterr().err
        assert np.array_equal(np.load(tmp_path / "y.npy"), layer.last_accumulations.numpy())
    capsys.readouterr()
