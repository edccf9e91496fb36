"""A user's .pt2 model (depthwise conv, BatchNorm, attention written as q @ k^T and a @ v) through
every network command: net show, energy net, nn eval, nn train, alwann search; bad inputs one line."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from ecomac.cli import main


class Tiny(nn.Module):
    """Depthwise-separable conv with BatchNorm, then one attention over the 4x4 positions."""

    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(2, 2, 3, padding=1, groups=2, bias=False)
        self.bn = nn.BatchNorm2d(2)
        self.pw = nn.Conv2d(2, 8, 1)
        self.qkv = nn.Linear(8, 24)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        t = self.pw(F.relu(self.bn(self.dw(x)))).flatten(2).transpose(1, 2)     # N x 16 x 8
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        a = (q @ k.transpose(-2, -1) * 8 ** -0.5).softmax(-1)
        return self.fc((a @ v).mean(1))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("graphcli")
    rng = np.random.default_rng(0)
    x = rng.random((90, 2, 4, 4)).astype(np.float32)
    y = (x[:, 0].mean((1, 2)) * 3).astype(np.int64).clip(0, 2)
    np.savez(d / "d.npz", x=x, y=y)
    torch.manual_seed(0)
    m = Tiny().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.export(m, (torch.zeros(2, 2, 4, 4),), dynamic_shapes=({0: torch.export.Dim("b")},))
    torch.export.save(ep, d / "tiny.pt2")
    return d


MACS = {"grouped_conv": 2 * 9 * 16, "conv": 2 * 8 * 16, "linear": 16 * 8 * 24 + 8 * 3, "matmul": 2 * 16 * 16 * 8}


def test_net_show_and_energy_count_every_product(files, capsys):
    assert main(["net", "show", str(files / "tiny.pt2"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["macs_by_kind"] == MACS and out["macs"] == sum(MACS.values()) and out["float_macs"] == 0
    assert {"softmax", "relu"} <= set(out["ops"])
    assert main(["energy", "net", "--net", str(files / "tiny.pt2"), "--datapath", "int8", "--json"]) == 0
    e = json.loads(capsys.readouterr().out)
    assert e["macs"] == out["macs"] and {r["datapath"] for r in e["layers"]} == {"int8"}


def test_nn_eval_train_and_alwann_on_a_pt2(files, capsys, tmp_path):
    model, npz = str(files / "tiny.pt2"), str(files / "d.npz")
    assert main(["nn", "eval", "--model", model, "--data", npz, "--datapath", "int8", "--json",
                 "--calib-size", "32"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["macs"] == sum(MACS.values()) and rows[0]["float_macs"] == 0
    out = tmp_path / "t.pt2"
    assert main(["nn", "train", "--model", model, "--data", npz, "--epochs", "1", "--datapath", "int8",
                 "--batch-size", "32", "-o", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["model"] == str(out) and out.is_file()
    assert main(["nn", "eval", "--model", str(out), "--data", npz, "--datapath", "fp32", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["accuracy_pct"] == pytest.approx(res["test_accuracy_pct"])
    assert main(["alwann", "search", "--model", model, "--data", npz, "--pop", "4", "--gens", "1", "--no-sweep",
                 "--mult", "approx:mul-drum,k=4", "--tuning", "none", "--workers", "1", "--no-energy",
                 "-o", str(tmp_path / "al"), "--json"]) == 0
    doc = json.loads((tmp_path / "al" / "front.json").read_text())
    assert sum("matmul" in n for n in doc["setup"]["histograms"]) == 2       # both attention products are layers
    capsys.readouterr()


def test_bad_inputs_are_one_line_and_write_nothing(files, capsys, tmp_path):
    (tmp_path / "junk.pt2").write_bytes(b"garbage")
    (tmp_path / "m.py").write_text("X = 3\n")
    out = tmp_path / "o.pt2"
    for argv, msg in (
            (["net", "show", str(tmp_path / "junk.pt2")], "not a model file"),
            (["net", "show", f"{tmp_path}/m.py:Y"], "has no 'Y'"),
            (["net", "show", f"{tmp_path}/m.py:X"], "not a module class or a factory"),
            (["nn", "eval", "--model", str(files / "tiny.pt2"), "--weights", str(tmp_path / "junk.pt2"),
              "--data", str(files / "d.npz"), "--datapath", "int8"], "--weights"),
            (["nn", "train", "--model", f"{tmp_path}/m.py:X", "--data", str(files / "d.npz"), "-o", str(out)],
             "not a module class"),
            (["nn", "train", "--arch", "vit", "--model", str(files / "tiny.pt2"), "--data", "digits", "-o",
              str(out)], "one of them")):
        assert main(argv) == 2, argv
        o, err = capsys.readouterr()
        assert o == "" and len(err.strip().splitlines()) == 1 and msg in err, (argv, err)
    assert not out.exists()


def test_onnx_operator_that_cannot_be_evaluated_is_named(tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Hardmax", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(g), tmp_path / "h.onnx")
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 4), np.float32), y=np.zeros(10, np.int64))
    assert main(["nn", "eval", "--model", str(tmp_path / "h.onnx"), "--data", str(tmp_path / "d.npz"),
                 "--datapath", "int8"]) == 2
    err = capsys.readouterr().err
    assert "operator Hardmax" in err and "evaluated operators: Conv, Gemm, MatMul" in err
