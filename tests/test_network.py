"""Network energy: MAC counts against closed forms, training = 3 products, the memory model,
the datapath table's extensibility, the ALS-POTQ headline, and bad net files."""
import json
from pathlib import Path

import pytest

from ecomac.cli import main
from synth import network as N
from synth import reference

ROOT = Path(__file__).resolve().parent.parent
RESNET = ROOT / "examples/nets/resnet18.json"
BLOCK = ROOT / "examples/nets/transformer_block.json"


def test_resnet18_macs_match_the_published_count():
    # ResNet-18 at 224x224: 1.82 G multiply-accumulates (He et al. 2016, Table 1: 1.8e9 FLOPs)
    net = N.load_net(RESNET)
    assert net.macs == pytest.approx(1.82e9, rel=0.01)


def test_transformer_block_macs_closed_form():
    # per token: Q, K, V, O (4 d^2) + FFN (2 d * 4d) = 12 d^2; attention: 2 L d per token
    d, L = 768, 128
    assert N.load_net(BLOCK).macs == L * (12 * d * d + 2 * L * d)


def test_conv_shapes():
    net = N.parse_net({"layers": [
        {"kind": "conv", "in_ch": 3, "out_ch": 8, "kernel": [3, 5], "H": 10, "W": 12, "stride": 2, "padding": 1}]})
    (layer,) = net.layers
    Ho, Wo = (10 + 2 - 3) // 2 + 1, (12 + 2 - 5) // 2 + 1
    assert layer.macs == 8 * 3 * 3 * 5 * Ho * Wo
    assert (layer.weights, layer.inputs, layer.outputs) == (8 * 3 * 15, 3 * 10 * 12, 8 * Ho * Wo)


def test_batch_and_repeat_scale_the_right_tensors():
    base = {"kind": "linear", "in": 16, "out": 8, "tokens": 4}
    one = N.parse_net({"layers": [base]}).layers[0]
    b = N.parse_net({"batch": 3, "layers": [base]}).layers[0]
    r = N.parse_net({"layers": [{**base, "repeat": 5}]}).layers[0]
    assert b.macs == 3 * one.macs and b.weights == one.weights and b.inputs == 3 * one.inputs
    assert (r.macs, r.weights, r.outputs) == (5 * one.macs, 5 * one.weights, 5 * one.outputs)


@pytest.mark.parametrize("mode", ["static", "activity"])
def test_training_is_three_products(mode):
    net = N.load_net(BLOCK)
    inf = N.net_energy(net, "int8", training=False, mode=mode)
    tr = N.net_energy(net, "int8", training=True, mode=mode)
    assert tr["macs"] == 3 * inf["macs"] == 3 * net.macs
    for k in ("arithmetic_pj", "memory_pj", "energy_pj"):
        assert tr[k] == pytest.approx(3 * inf[k])
    assert tr["energy_pj"] == pytest.approx(tr["arithmetic_pj"] + tr["memory_pj"])
    assert tr["arithmetic_pj"] == pytest.approx(tr["multiply_pj"] + tr["accumulate_pj"])
    assert sum(r["energy_pj"] for r in tr["layers"]) == pytest.approx(tr["energy_pj"])


def test_memory_model_closed_form():
    net = N.parse_net({"memory": {"sram_bytes": 8192, "pe_rows": 4, "pe_cols": 8},
                       "layers": [{"kind": "linear", "in": 64, "out": 32, "tokens": 10}]})
    res = N.net_energy(net, "int8", mode="static")
    (row,) = res["layers"]
    macs, tensors = 64 * 32 * 10, 64 * 32 + 64 * 10 + 32 * 10
    assert row["dram_pj"] == pytest.approx(tensors * 8 / 64 * reference.DRAM_USED_PJ)
    sram_bits = (macs * (1 / 4 + 1 / 8) + 2 * tensors) * 8
    assert row["sram_pj"] == pytest.approx(sram_bits / 64 * reference.SRAM_8KB_PJ)


def test_mfmac_per_mac_parts():
    per = N.mac_energy("mfmac", "activity")
    assert per["mac_design"] == "mfmac-pe" and per["operand_bits"] == 4
    assert 0 < per["multiply_pj"] < per["accumulate_pj"]      # the PoT product is tiny next to the 24-bit adder
    assert per["multiply_pj"] + per["accumulate_pj"] == pytest.approx(per["mac_pj"])


def test_datapaths_are_extensible_by_name(monkeypatch):
    """A new datapath (here a 4-bit int MAC with the unsigned array multiplier as its
    multiply) is one entry in the table; nothing else changes."""
    dp = N.Datapath("int4", "test", 4, ("int-mac", {"bits": 4, "acc_bits": 12}), ("mul-array", {"bits": 4}),
                    N._gaussian_int(4), ("a", "b"))
    monkeypatch.setitem(N.DATAPATHS, "int4", dp)
    net = N.load_net(BLOCK)
    e4 = N.net_energy(net, "int4", mode="static")
    e8 = N.net_energy(net, "int8", mode="static")
    assert e4["per_mac"]["mac_design"] == "int-mac"
    assert e4["arithmetic_pj"] < e8["arithmetic_pj"] and e4["memory_pj"] == pytest.approx(e8["memory_pj"] / 2)


def test_headline_mfmac_vs_fp32(capsys):
    assert main(["energy", "headline", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["net"] for r in rows] == ["resnet18", "transformer_block"]
    for r in rows:
        e = r["energy"]
        assert e["mfmac"]["arithmetic_pj"] < e["int8"]["arithmetic_pj"] < e["fp32"]["arithmetic_pj"]
        assert r["mfmac_vs_fp32_arithmetic_pct"] == pytest.approx(
            100 * (1 - e["mfmac"]["arithmetic_pj"] / e["fp32"]["arithmetic_pj"]))
        assert 0 < r["mfmac_vs_fp32_total_pct"] < 100
        assert r["paper_arithmetic_pct"] == 95.8


def test_cli_net_json_and_plot(tmp_path, capsys):
    png = tmp_path / "out" / "r18.png"
    assert main(["energy", "net", "--net", str(RESNET), "--datapath", "mfmac", "--training",
                 "--mode", "static", "--json", "--plot", str(png)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert {"energy_pj", "arithmetic_pj", "memory_pj", "layers"} <= set(res)
    net = N.load_net(RESNET)
    assert len(res["layers"]) == len(net.layers) and res["training"] is True
    assert sum(r["energy_pj"] for r in res["layers"]) == pytest.approx(res["energy_pj"])
    assert res["energy_pj"] == pytest.approx(N.net_energy(net, "mfmac", training=True, mode="static")["energy_pj"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_net_text(capsys):
    assert main(["energy", "net", "--net", str(BLOCK), "--datapath", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "ffn.up" in out and "inference" in out and "total" in out


def _write(tmp_path, obj, name="net.json"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


@pytest.mark.parametrize("net,msg", [
    ({"layers": [{"kind": "pool", "in": 3}]}, "layer 0 (layer0): unknown kind \"pool\" (kinds: conv, linear, matmul)"),
    ({"layers": [{"kind": "linear", "name": "fc", "in": 0, "out": 3}]}, "layer 0 (fc): in must be a positive integer, got 0"),
    ({"layers": [{"kind": "conv", "in_ch": 3, "out_ch": -1, "kernel": 3, "H": 8, "W": 8}]},
     "out_ch must be a positive integer, got -1"),
    ({"layers": [{"kind": "conv", "in_ch": 3, "out_ch": 4, "kernel": 9, "H": 8, "W": 8}]}, "does not fit the 8x8 input"),
    ({"layers": [{"kind": "linear", "in": 2.5, "out": 3}]}, "in must be a positive integer, got 2.5"),
    ({"layers": [{"kind": "linear", "in": 2, "out": 3, "heads": 2}]}, "unknown key 'heads' for a linear layer"),
    ({"layers": [{"kind": "linear", "in": 2}]}, "linear layer needs 'out'"),
    ({"layers": []}, "\"layers\" must be a non-empty list"),
    ({"batch": 0, "layers": [{"kind": "linear", "in": 2, "out": 2}]}, "batch must be a positive integer, got 0"),
    ("{not json", "not valid JSON"),
])
def test_bad_net_files(tmp_path, capsys, net, msg):
    p = _write(tmp_path, net)
    png = tmp_path / "plot.png"
    assert main(["energy", "net", "--net", str(p), "--datapath", "int8", "--plot", str(png)]) == 2
    err = capsys.readouterr().err
    assert msg in err and str(p) in err and err.count("\n") == 1
    assert not png.exists()                       # nothing half-written


def test_missing_net_file_and_bad_datapath(tmp_path, capsys):
    assert main(["energy", "net", "--net", str(tmp_path / "no.json"), "--datapath", "int8"]) == 2
    assert "net file" in capsys.readouterr().err
    assert main(["energy", "net", "--net", str(BLOCK), "--datapath", "fp64"]) == 2
    assert "argument --datapath: unknown datapath 'fp64' (datapaths: fp32, int8" in capsys.readouterr().err
