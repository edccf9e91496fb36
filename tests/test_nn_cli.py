"""`ecomac nn train` / `nn eval`: a tiny run end to end (rows consistent with the library's own
accuracy and energy), and every bad input as one line, exit 2, nothing on stdout, no file written."""
import json

import numpy as np
import pytest
import torch

from ecomac.cli import main
from net import data, evaluate, importer, loader, models
from synth.network import net_energy, parse_net


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("nn")
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    x = (rng.random((60, 1, 4, 4)) * 0.3 + y[:, None, None, None] / 3).astype(np.float32)   # learnable
    np.savez(d / "tiny.npz", x=x, y=y)
    np.savez(d / "labels.npz", x=x, y=np.where(y == 2, 7, y))           # 8 classes: the model has 3
    np.savez(d / "empty.npz", x=np.zeros((0, 1, 4, 4), np.float32), y=np.zeros(0, int))
    np.savez(d / "wide.npz", x=np.zeros((30, 1, 6, 6), np.float32), y=np.arange(30) % 3)
    torch.manual_seed(0)
    m = models.build("mlp", (1, 4, 4), 3)
    models.save(m, d / "mlp.pt")
    bad = {"arch": "lenet", "input_shape": [1, 4, 4], "num_classes": 3, "state_dict": m.state_dict()}
    torch.save(bad, d / "arch.pt")
    (d / "junk.pt").write_text("not a model")
    (d / "map.json").write_text(json.dumps({"fc1": "mfmac", "fc3": "int8"}))
    (d / "map_layer.json").write_text(json.dumps({"fc9": "int8"}))
    (d / "map_spec.json").write_text(json.dumps({"fc1": "int9"}))
    (d / "map_bad.json").write_text("{not json")
    return d


def test_train_writes_a_checkpoint(files, capsys, tmp_path):
    out_pt = tmp_path / "t.pt"
    code, out, _ = run(capsys, "nn", "train", "--arch", "mlp", "--data", files / "tiny.npz", "--epochs", "2",
                       "--seed", "1", "--json", "-o", out_pt)
    assert code == 0
    res = json.loads(out)
    model, meta = loader.load(out_pt)
    ds = data.load(str(files / "tiny.npz"))
    assert meta["arch"] == "mlp" and meta["seed"] == 1 and meta["epochs"] == 2
    assert res["test_accuracy_pct"] == pytest.approx(evaluate.accuracy(model, ds.x_test, ds.y_test))


def test_eval_rows_match_the_library(files, capsys, tmp_path):
    plot = tmp_path / "p.png"
    code, out, err = run(capsys, "nn", "eval", "--model", files / "mlp.pt", "--data", files / "tiny.npz",
                         "--datapath", "int8", "--datapath", "fp32", "--mapping", files / "map.json",
                         "--json", "--plot", plot)
    assert code == 0, err
    rows = json.loads(out)
    assert [r["datapath"] for r in rows] == ["int8", "fp32", "mapping:map.json"]
    assert all(set(r) == set(evaluate.ROW_KEYS) for r in rows)
    model, _ = loader.load(files / "mlp.pt")
    ds = data.load(str(files / "tiny.npz"))
    fp32 = evaluate.accuracy(model, ds.x_test, ds.y_test)
    net = parse_net(importer.from_torch(model, (1, 1, 4, 4)).net)
    e = {s: net_energy(net, s) for s in ("fp32", "int8", "mfmac")}
    by = {r["datapath"]: r for r in rows}
    assert by["fp32"]["accuracy_pct"] == fp32 and by["fp32"]["drop_pp"] == 0
    for r in rows:
        assert r["drop_pp"] == pytest.approx(fp32 - r["accuracy_pct"])
        assert r["macs"] == 16 * 128 + 128 * 64 + 64 * 3
        assert r["energy_pj"] == pytest.approx(r["arithmetic_pj"] + r["memory_pj"])
    assert by["int8"]["energy_pj"] == pytest.approx(e["int8"]["energy_pj"])
    assert by["int8"]["saving_vs_int8_pct"] == pytest.approx(0.0, abs=1e-9)
    assert by["fp32"]["saving_vs_fp32_pct"] == pytest.approx(0.0, abs=1e-9)
    # the mapping's energy is the sum of its layers, each on its own datapath (fc2 unnamed: fp32)
    layer = {s: {x["name"]: x["energy_pj"] for x in e[s]["layers"]} for s in e}
    want = layer["mfmac"]["fc1"] + layer["fp32"]["fc2"] + layer["int8"]["fc3"]
    assert by["mapping:map.json"]["energy_pj"] == pytest.approx(want)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("model,data_,extra,msg", [
    ("junk.pt", "tiny.npz", (), "model {d}/junk.pt: not a model file"),
    ("arch.pt", "tiny.npz", (), "architecture mismatch"),
    ("mlp.pt", "wide.npz", (), "data wide.npz has samples of shape (1, 6, 6), the model takes (1, 4, 4)"),
    ("mlp.pt", "labels.npz", (), "labels out of range: label 7 but the model has 3 classes (labels 0..2)"),
    ("mlp.pt", "empty.npz", (), "empty data set"),
    ("mlp.pt", "tiny.npz", ("--mapping", "map_spec.json"), "layer 'fc1': unknown datapath 'int9'"),
    ("mlp.pt", "tiny.npz", ("--mapping", "map_layer.json"), "unknown layer 'fc9' (products: fc1, fc2, fc3)"),
    ("mlp.pt", "tiny.npz", ("--mapping", "map_bad.json"), "not valid JSON"),
    ("mlp.pt", "tiny.npz", ("--mapping", "none.json"), "does not exist"),
    ("mlp.pt", "tiny.npz", ("--datapath", "bogus"), "unknown datapath 'bogus'"),
    ("mlp.pt", "cifar", (), "unknown data 'cifar'"),
])
def test_eval_bad_input_is_one_line(files, capsys, tmp_path, model, data_, extra, msg):
    plot = tmp_path / "p.png"
    extra = [files / e if e.endswith(".json") else e for e in extra]
    if "--datapath" not in extra:
        extra = ["--datapath", "int8", *extra]
    dpath = data_ if data_ == "cifar" else files / data_
    code, out, err = run(capsys, "nn", "eval", "--model", files / model, "--data", dpath, *extra, "--plot", plot)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("ecomac: error: ") and "Traceback" not in err
    assert msg.format(d=files) in err
    assert not plot.exists()


def test_train_bad_input_is_one_line(files, capsys, tmp_path):
    out_pt = tmp_path / "m.pt"
    code, out, err = run(capsys, "nn", "train", "--arch", "lenet", "--data", files / "empty.npz", "-o", out_pt)
    assert code == 2 and out == "" and "empty data set" in err and not out_pt.exists()
    code, out, err = run(capsys, "nn", "train", "--arch", "mlp", "--data", "digits", "-o", tmp_path)
    assert code == 2 and "is a folder" in err


def test_summarize_means_and_sample_std():
    def rows(acc):
        return [{"datapath": "fp32", "accuracy_pct": acc[0], "drop_pp": 0.0, "macs": 10, "energy_pj": 4.0,
                 "arithmetic_pj": 1.0, "memory_pj": 3.0, "saving_vs_fp32_pct": 0.0, "saving_vs_int8_pct": -1.0,
                 "eval_s": 1.0},
                {"datapath": "int8", "accuracy_pct": acc[1], "drop_pp": acc[0] - acc[1], "macs": 10,
                 "energy_pj": 2.0, "arithmetic_pj": 0.5, "memory_pj": 1.5, "saving_vs_fp32_pct": 50.0,
                 "saving_vs_int8_pct": 0.0, "eval_s": 3.0}]
    s = evaluate.summarize([rows((90.0, 89.0)), rows((92.0, 90.0)), rows((94.0, 94.0))])
    assert [r["datapath"] for r in s] == ["fp32", "int8"]
    assert s[0]["accuracy_pct_mean"] == pytest.approx(92.0) and s[0]["accuracy_pct_std"] == pytest.approx(2.0)
    assert s[1]["drop_pp_mean"] == pytest.approx(1.0) and s[1]["drop_pp_std"] == pytest.approx(1.0)
    assert s[1]["energy_pj"] == 2.0 and s[1]["eval_s_mean"] == 3.0


def test_experiments_refuses_unknown_only(capsys, tmp_path):
    code, out, err = run(capsys, "nn", "experiments", "--only", "vgg:cifar", "-o", tmp_path / "e")
    assert code == 2 and out == "" and "--only 'vgg:cifar': not an experiment" in err
    assert not (tmp_path / "e").exists()


def test_report_section_includes_experiment_files(tmp_path, monkeypatch):
    from ecomac.cmd_nn import report_sections
    from net import experiments
    row = {"datapath": "int8", "accuracy_pct": 90.0, "drop_pp": 1.0, "macs": 7, "energy_pj": 2000.0,
           "arithmetic_pj": 500.0, "memory_pj": 1500.0, "saving_vs_fp32_pct": 50.0, "saving_vs_int8_pct": 0.0,
           "eval_s": 2.0}
    # no experiment files: `make`'s quick run (one seed, its table without a spread), the full run named
    quick = {"arch": "mlp", "data": "digits", "seeds": [0], "epochs": 10, "train_samples": 8, "test_samples": 2,
             "runs": [{"fp32_test_accuracy_pct": 91.0}], "wall_s": 3.0, "summary": evaluate.summarize([[row]])}
    seen = {}
    monkeypatch.setattr(experiments, "expand_datapaths", lambda given: ["int8"])
    monkeypatch.setattr(experiments, "quick_eval", lambda specs, log=None: seen.setdefault("specs", specs) and quick)
    (_, title, body), = report_sections(tmp_path / "report")
    assert seen["specs"] == ["int8"] and "quick run" in title
    assert "**Quick run**" in body and "`make experiments" in body and "mlp on digits" in body
    assert "90.00" in body and "90.00 ±" not in body and "seed 0 (FP32 91.00%)" in body
    assert json.loads((tmp_path / "report" / "nn_eval_quick.json").read_text())["epochs"] == 10
    res = {"arch": "mlp", "data": "digits", "seeds": [0, 1], "epochs": 3, "train_samples": 8, "test_samples": 2,
           "runs": [{"fp32_test_accuracy_pct": 91.0}, {"fp32_test_accuracy_pct": 93.0}], "wall_s": 12.0,
           "summary": evaluate.summarize([[row], [{**row, "accuracy_pct": 92.0, "drop_pp": 3.0}]])}
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "nn_eval_mlp_digits.json").write_text(json.dumps(res))
    (_, title, body), = report_sections(tmp_path / "report")
    assert "Made by `make experiments" in body and "mlp on digits" in body
    assert "91.00 ± 1.41" in body and "+2.00 ± 1.41" in body and "FP32 92.00%" in body


def test_all_specs_are_the_fixed_set_then_each_familys_best_points():
    best = [{"design": "mul-drum", "limit": 2.0, "row": {"design": "mul-drum", "params": {"bits": 8, "k": 6}}},
            {"design": "mul-drum", "limit": 5.0, "row": {"design": "mul-drum", "params": {"bits": 8, "k": 6}}},
            {"design": "mul-trunc", "limit": 2.0,
             "row": {"design": "mul-trunc", "params": {"bits": 8, "k": 4, "correction": True}}},
            {"design": "mul-bam", "limit": 2.0, "row": None}]
    specs = evaluate.standard_specs(best)
    assert specs == ["fp32", "int8", "mfmac", "asm,alphabet=1", "asm,alphabet=1/3", "asm,alphabet=1/3/5/7",
                     "approx:mul-drum,k=6", "approx:mul-trunc,k=4,correction=1"]
    from net.datapath import parse
    assert [parse(s).kind for s in specs[-2:]] == ["approx", "approx"]
