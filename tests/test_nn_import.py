"""net/importer.py and `ecomac net show`: PyTorch and ONNX models become the layer list the energy
model prices; MAC counts equal the hand count from the shapes; ONNX import equals the torch import;
unsupported operators are listed."""
import json
import warnings

import pytest
import torch
from torch import nn

from ecomac.cli import main
from net import importer, loader, models
from synth.network import parse_net


def _conv_macs(cin, cout, k, h, pad):
    ho = h + 2 * pad - k + 1
    return cout * cin * k * k * ho * ho, ho


def _lenet_macs(h):
    """The hand count of LeNet's layer list on a 1 x h x h input (see net/models.py)."""
    m1, h1 = _conv_macs(1, 6, 5, h, 2)
    h1 //= 2
    pad2 = 0 if h1 >= 6 else 2
    m2, h2 = _conv_macs(6, 16, 5, h1, pad2)
    h2 //= 2
    return [m1, m2, 16 * h2 * h2 * 120, 120 * 84, 84 * 10]


def _onnx(model, shape, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(shape),), str(path), dynamo=False)
    return str(path)


def _shape_only(net):
    return [{k: v for k, v in layer.items() if k != "name"} for layer in net["layers"]]


@pytest.mark.parametrize("h", [28, 8])
def test_lenet_macs_are_the_hand_count(h):
    imp = importer.from_torch(models.build("lenet", (1, h, h), 10), (1, 1, h, h))
    net = parse_net(imp.net)
    assert [layer.macs for layer in net.layers] == _lenet_macs(h)
    assert [layer.name for layer in net.layers] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert imp.unsupported == []
    assert ("pool1", "MaxPool2d") in imp.no_macs and ("relu1", "ReLU") in imp.no_macs


def test_mlp_macs_and_batch():
    imp = importer.from_torch(models.build("mlp", (1, 8, 8), 10), (4, 1, 8, 8))
    net = parse_net(imp.net)
    assert net.batch == 4
    assert [layer.macs for layer in net.layers] == [4 * 64 * 128, 4 * 128 * 64, 4 * 64 * 10]


@pytest.mark.parametrize("arch,shape", [("lenet", (1, 1, 28, 28)), ("mlp", (1, 1, 8, 8))])
def test_onnx_import_equals_torch_import(tmp_path, arch, shape):
    m = models.build(arch, shape[1:], 10)
    path = _onnx(m, shape, tmp_path / "m.onnx")
    a, b = importer.from_torch(m, shape), importer.from_onnx(path)
    assert _shape_only(a.net) == _shape_only(b.net)
    assert b.unsupported == []
    assert {op for _, op in b.no_macs} >= {"Relu", "Flatten"}
    # a fixed input shape re-infers every shape (batch 3)
    c = importer.from_onnx(path, (3, *shape[1:]))
    assert parse_net(c.net).macs == 3 * parse_net(a.net).macs


class Unusual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, groups=8)
        self.fc = nn.Linear(8 * 4 * 4, 4)

    def forward(self, x):
        return self.fc(torch.flatten(self.dw(self.bn(self.conv(x))), 1))


def test_grouped_conv_and_batchnorm_are_counted(tmp_path):
    m = Unusual().eval()
    imp = importer.from_torch(m, (1, 3, 6, 6))
    assert [layer["name"] for layer in imp.net["layers"]] == ["conv", "dw", "fc"]     # bn folded into conv
    assert imp.unsupported == [] and imp.net["layers"][1]["groups"] == 8
    net = parse_net(imp.net)
    assert [layer.macs for layer in net.layers] == [8 * 3 * 9 * 36, 8 * 1 * 9 * 16, 128 * 4]
    o = importer.from_onnx(_onnx(m, (1, 3, 6, 6), tmp_path / "u.onnx"))
    assert o.unsupported == [] and parse_net(o.net).macs == net.macs


def test_importer_bad_input(tmp_path):
    m = models.build("lenet", (1, 28, 28), 10)
    with pytest.raises(ValueError, match="does not run on input shape 1,1,4,4"):
        importer.from_torch(m, (1, 1, 4, 4))
    with pytest.raises(ValueError, match="input shape must be comma-separated positive integers"):
        importer.parse_input_shape("1,a")
    (tmp_path / "x.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        importer.from_onnx(str(tmp_path / "x.onnx"))
    with pytest.raises(ValueError, match="no matrix product"):
        importer.from_torch(nn.Sequential(nn.ReLU()), (1, 4))


def test_net_show_json_lists_layers_with_macs(tmp_path, capsys):
    m = models.build("lenet", (1, 28, 28), 10)
    models.save(m, tmp_path / "l.pt")
    assert main(["net", "show", str(tmp_path / "l.pt"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [layer["macs"] for layer in out["layers"]] == _lenet_macs(28)
    assert out["macs"] == sum(_lenet_macs(28)) and out["unsupported"] == []
    onnx_path = _onnx(m, (1, 1, 28, 28), tmp_path / "l.onnx")
    assert main(["net", "show", onnx_path, "--input-shape", "2,1,28,28", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["macs"] == 2 * sum(_lenet_macs(28))
    assert main(["net", "show", str(tmp_path / "l.pt"), "--input-shape", "1,1,4,4"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("ecomac: error: model l.pt: does not run on input shape 1,1,4,4")


def test_energy_net_accepts_model_files(tmp_path, capsys):
    m = models.build("mlp", (1, 8, 8), 10)
    models.save(m, tmp_path / "m.pt")
    onnx_path = _onnx(m, (1, 1, 8, 8), tmp_path / "m.onnx")
    (tmp_path / "m.json").write_text(json.dumps(importer.from_torch(m, (1, 1, 8, 8)).net))
    got = []
    for f in (tmp_path / "m.json", tmp_path / "m.pt", onnx_path):
        assert main(["energy", "net", "--net", str(f), "--datapath", "int8", "--json"]) == 0
        got.append(json.loads(capsys.readouterr().out))
    assert got[0]["macs"] == 64 * 128 + 128 * 64 + 64 * 10
    assert got[1]["energy_pj"] == got[0]["energy_pj"] == got[2]["energy_pj"]
    assert main(["energy", "net", "--net", str(tmp_path / "m.json"), "--input-shape", "1,4",
                 "--datapath", "int8"]) == 2
    assert "--input-shape applies to model files" in capsys.readouterr().err


def test_onnx_model_runs_and_converts_like_the_torch_model(tmp_path):
    from net import layers
    torch.manual_seed(2)
    m = models.build("lenet", (1, 8, 8), 10).eval()
    path = _onnx(m, (1, 1, 8, 8), tmp_path / "l.onnx")
    o, meta = loader.load(path)
    assert meta["input_shape"] == [1, 8, 8] and list(o.layers) == ["conv1_Conv", "conv2_Conv", "fc1_Gemm",
                                                                    "fc2_Gemm", "fc3_Gemm"]
    x = torch.rand(6, 1, 8, 8)
    assert torch.allclose(o(x), m(x), atol=1e-6)
    # the same weights and calibration give the same codes, hence the same emulated outputs
    qo, qm = layers.convert(o, "int8", calib=x), layers.convert(m, "int8", calib=x)
    assert torch.allclose(qo(x), qm(x), atol=1e-6)
    assert ("/relu1/Relu_output_0", "Relu") in layers.uncovered_layers(qo)
    mapped = layers.convert(o, {"layers.fc1_Gemm": "mfmac"}, calib=x)
    assert list(layers.emulated_layers(mapped)) == ["layers.fc1_Gemm"]
