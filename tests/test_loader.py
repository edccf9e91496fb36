"""net/loader.py: every model format gives the same model; the classic ONNX graphs count right.

* The same small trained model saved as an ecomac checkpoint, a torch.export program (dynamic batch
  and fixed batch), ONNX, TorchScript, a torch.save'd module and FILE.py:NAME + --weights gives the
  same `nn eval` accuracy on fp32 and int8.
* The classic graphs shipped in the onnx package (AlexNet, VGG-19, ResNet-50, Inception v1/v2,
  DenseNet-121, ShuffleNet, SqueezeNet, ZFNet; weights computed by ConstantOfShape) have MAC totals
  within 0.5% of an independent count from onnx.shape_inference and one formula per operator.
* Bad model inputs are one line each.
"""
from __future__ import annotations

import glob
import os
import warnings

import numpy as np
import pytest
import torch

from net import data, evaluate, importer, loader, models
from net.train import train
from synth.network import parse_net

PY_MODEL = '''
from net import models

class Lenet8(models.LeNet):
    def __init__(self):
        super().__init__((1, 8, 8), 10)

def make():
    return models.build("lenet", (1, 8, 8), 10)

NOT_A_MODULE = 3

def broken():
    return [1, 2]
'''


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A LeNet trained one epoch on digits, in every format."""
    d = tmp_path_factory.mktemp("formats")
    full = data.load("digits")
    np.savez(d / "small.npz", x=full.x_train[:500], y=full.y_train[:500])
    ds = data.load(str(d / "small.npz"))
    torch.manual_seed(0)
    m, _ = train(models.build("lenet", ds.input_shape, 10), ds, epochs=3, lr=1e-2, progress=False)
    m = m.eval()
    x = torch.zeros(2, 1, 8, 8)
    models.save(m, d / "ckpt.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(torch.export.export(m, (x,), dynamic_shapes=({0: torch.export.Dim("b")},)), d / "dyn.pt2")
        torch.export.save(torch.export.export(m, (x[:1],)), d / "fixed.pt2")
        torch.onnx.export(m, (x,), d / "m.onnx", dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "b"}})
        torch.jit.save(torch.jit.trace(m, x), d / "ts.pt")
    torch.save(m, d / "whole.pt")
    torch.save(m.state_dict(), d / "w.pt")
    (d / "user.py").write_text(PY_MODEL)
    return d, ds


def test_every_format_gives_the_same_accuracy(trained):
    d, ds = trained
    sources = [(d / "ckpt.pt", None), (d / "dyn.pt2", None), (d / "fixed.pt2", None), (d / "m.onnx", None),
               (d / "ts.pt", None), (d / "whole.pt", None), (f"{d}/user.py:make", d / "w.pt"),
               (f"{d}/user.py:Lenet8", d / "w.pt")]
    got = {}
    for src, w in sources:
        model, meta = loader.load(src, w)
        rows = evaluate.evaluate(model, ds, ["fp32", "int8"], meta=meta, progress=False, calib_size=64)
        got[str(src)] = [(r["accuracy_pct"], r["macs"]) for r in rows]
    first = next(iter(got.values()))
    assert first[0][0] > 30                       # trained: far above chance
    for src, rows in got.items():
        assert rows == first, (src, rows, first)


def test_bad_model_sources_are_one_line(trained, tmp_path):
    d, _ds = trained
    (tmp_path / "junk.pt2").write_bytes(b"PK\x03\x04junk")
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "w_bad.pt")
    cases = [((tmp_path / "junk.pt2", None), "not a model file"),
             ((f"{d}/user.py:Nope", None), "has no 'Nope' (nn.Module classes there: Lenet8)"),
             ((f"{d}/user.py:NOT_A_MODULE", None), "not a module class or a factory"),
             ((f"{d}/user.py:broken", None), "returned a list, not an nn.Module"),
             ((f"{tmp_path}/none.py:X", None), "does not exist"),
             ((f"{d}/user.py:make", tmp_path / "w_bad.pt"), "does not fit the model"),
             ((f"{d}/user.py:make", tmp_path / "none.pt"), "--weights"),
             ((d / "m.onnx", d / "w.pt"), "--weights applies to")]
    for (src, w), msg in cases:
        with pytest.raises(ValueError) as e:
            loader.load(src, w)
        assert msg in str(e.value) and "\n" not in str(e.value), (src, str(e.value))


def test_pickled_module_of_an_unknown_class_says_what_to_use(tmp_path):
    import subprocess
    import sys
    code = ("import torch\nclass Gone(torch.nn.Linear):\n    pass\n"
            f"torch.save(Gone(2, 2), {str(tmp_path / 'gone.pt')!r})\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(ValueError, match=r"class cannot be imported here .*\.pt2\) or give FILE\.py:NAME"):
        loader.load(tmp_path / "gone.pt")


def test_onnx_absent_external_weights_give_shapes_not_accuracy(tmp_path):
    import onnx
    m = models.build("mlp", (1, 4, 4), 3).eval()
    p = tmp_path / "ext.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.zeros(1, 1, 4, 4),), p, dynamo=False)
    proto = onnx.load(p)
    onnx.save_model(proto, p, save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin",
                    size_threshold=0)
    os.unlink(tmp_path / "w.bin")
    imp = importer.from_onnx(p)
    assert parse_net(imp.net).macs == 16 * 128 + 128 * 64 + 64 * 3
    assert "accuracy needs the weights" in imp.needs_weights
    with pytest.raises(ValueError, match="absent .* accuracy needs the weights"):
        loader.load(p)


CLASSIC = sorted(glob.glob(os.path.join(os.path.dirname(__import__("onnx").__file__),
                                        "backend/test/data/light/*.onnx")))


def _independent_macs(path) -> int:
    """MACs from onnx.shape_inference alone: Conv = output elements x (C_in / group) x kernel area,
    Gemm = M x K x N, MatMul = output elements x K."""
    import onnx
    from onnx import shape_inference
    m = shape_inference.infer_shapes(onnx.load(path), data_prop=True)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output)}
    shapes.update({i.name: list(i.dims) for i in m.graph.initializer})
    total = 0
    for n in m.graph.node:
        if n.op_type == "Conv":
            w, y = shapes[n.input[1]], shapes[n.output[0]]
            total += int(np.prod(y)) * w[1] * int(np.prod(w[2:]))
        elif n.op_type == "Gemm":
            a = shapes[n.input[0]]
            trans_a = any(x.name == "transA" and x.i for x in n.attribute)
            total += int(np.prod(shapes[n.output[0]])) * (a[0] if trans_a else a[1])
        elif n.op_type == "MatMul":
            total += int(np.prod(shapes[n.output[0]])) * shapes[n.input[0]][-1]
    return total


@pytest.mark.parametrize("path", CLASSIC, ids=[os.path.basename(p) for p in CLASSIC])
def test_classic_onnx_macs_equal_an_independent_count(path):
    imp = importer.from_onnx(path)
    got = parse_net(imp.net).macs
    want = _independent_macs(path)
    assert want > 0 and abs(got - want) <= 0.005 * want, (got, want)
    assert imp.unsupported == []
    if "resnet50" in path:
        assert abs(got / 1e9 - 4.09) < 0.01


def test_classic_onnx_summary_is_grouped(capsys):
    from ecomac.cli import main
    path = [p for p in CLASSIC if "resnet50" in p][0]
    assert main(["net", "show", path]) == 0
    out = capsys.readouterr().out
    assert "ConstantOfShape ×239" in out and out.count("ConstantOfShape") == 1
