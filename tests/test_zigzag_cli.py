"""`ecomac energy net --arch/--batch` and `nn eval --arch/--batch`: results name the architecture and
batch, --json rows keep energy_pj/arithmetic_pj/memory_pj and add the per-level breakdown, the CLI's
figures are the library's, and bad input is one line, exit 2."""
import json

import numpy as np
import pytest
import torch

pytest.importorskip("zigzag")

from ecomac.cli import main  # noqa: E402
from net import importer, loader, models  # noqa: E402
from synth.network import load_net, parse_net  # noqa: E402
from synth.zigzag import network_energy  # noqa: E402

ARCH = "tile-in,lanes=8,depth=16,parallel=2"
NET = {"name": "tiny", "layers": [{"kind": "linear", "name": "fc", "in": 32, "out": 16, "tokens": 2},
                                  {"kind": "conv", "name": "c", "in_ch": 4, "out_ch": 8, "kernel": 3, "H": 6,
                                   "W": 6, "padding": 1}]}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("zz")
    (d / "net.json").write_text(json.dumps(NET))
    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    np.savez(d / "tiny.npz", x=(rng.random((30, 1, 4, 4)) + y[:, None, None, None]).astype(np.float32), y=y)
    torch.manual_seed(0)
    models.save(models.build("mlp", (1, 4, 4), 3), d / "mlp.pt")
    return d


def test_energy_net_json_on_a_tile(files, capsys):
    code, out, err = run(capsys, "energy", "net", "--net", files / "net.json", "--datapath", "int8",
                         "--arch", ARCH, "--batch", "4", "--json")
    assert code == 0, err
    res = json.loads(out)
    want = network_energy(load_net(files / "net.json"), "int8", ARCH, 4)
    assert res["arch"] == ARCH and res["batch"] == 4
    assert res["energy_pj"] == pytest.approx(want["energy_pj"])
    for r in res["layers"]:
        assert {"energy_pj", "arithmetic_pj", "memory_pj", "levels"} <= set(r)
        assert sum(r["levels"].values()) == pytest.approx(r["memory_pj"])


def test_energy_net_text_names_arch_and_batch(files, capsys):
    code, out, err = run(capsys, "energy", "net", "--net", files / "net.json", "--datapath", "int8", "--arch", ARCH)
    assert code == 0, err
    assert f"arch {ARCH}, batch 1" in out and "wmem" in out and "bank" in out
    code, out, err = run(capsys, "energy", "net", "--net", files / "net.json", "--datapath", "int8")
    assert code == 0, err
    assert "arch stream, batch 1" in out


def test_nn_eval_prices_on_the_architecture(files, capsys):
    code, out, err = run(capsys, "nn", "eval", "--model", files / "mlp.pt", "--data", files / "tiny.npz",
                         "--datapath", "int8", "--arch", ARCH, "--batch", "2", "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["energy_arch"] == ARCH and row["energy_batch"] == 2
    model, _ = loader.load(files / "mlp.pt")
    net = parse_net(importer.from_torch(model, (1, 1, 4, 4)).net)
    assert row["energy_pj"] == pytest.approx(network_energy(net, "int8", ARCH, 2)["energy_pj"])


@pytest.mark.parametrize("extra,msg", [
    (("--arch", "bogus"), "unknown architecture 'bogus'"),
    (("--arch", "tile-in", "--batch", "0"), "must be a positive integer (1 or more), got 0"),
    (("--arch", "tile-near,bus_bits=8"), "bus_bits and bus_mm apply to tile-vn only"),
    (("--arch", "tile-in", "--training"), "--training is priced on --arch stream only"),
    (("--arch", "none.yaml"), "architecture file none.yaml does not exist"),
])
def test_bad_arch_is_one_line(files, capsys, extra, msg):
    code, out, err = run(capsys, "energy", "net", "--net", files / "net.json", "--datapath", "int8", *extra)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and msg in err


def test_list_and_hardware_commands_do_not_import_zigzag():
    import subprocess
    import sys
    code = ("import sys\nfrom ecomac.cli import main\nmain(['list'])\n"
            "sys.exit(3 if any(m.split('.')[0] == 'zigzag' for m in sys.modules) else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
