"""`ecomac nn hwsim`: products on the generated hardware equal the emulator's, the whole network
runs on it with zero mismatches, and a broken cell is caught at the first layer it corrupts.

Golden first: the array engines are proven against net.kernels.matmul (itself proven against
Datapath.matmul_definition) on random codes with edge tiles; the network runs compare against
nn eval's own conversion and accuracy. Small arrays (2x3) and a handful of samples keep each
test within seconds (netlists are cached after their first synthesis)."""
import json

import numpy as np
import pytest
import torch

from ecomac.cli import main
from net import data, evaluate, graph, hwsim, kernels, models
from net.datapath import parse
from synth import hwsim as shw

SPECS = ["int8", "mfmac", "asm,alphabet=1/3", "approx:mul-drum,k=4"]


def _codes(dp, rng, shape, role):
    if dp.kind == "asm" and role == "w":
        from golden.asm import representable
        reps = representable(dp.params["alphabet"], dp.params["w_bits"])
        signed = np.concatenate([-reps[:0:-1], reps])
        return signed[rng.integers(0, signed.size, shape)]
    lo, hi = dp.code_range(role)
    return rng.integers(lo, hi + 1, shape)


@pytest.mark.parametrize("spec", SPECS)
def test_gate_array_equals_the_kernel(spec):
    """Random codes over edge tiles (M, N not multiples of the array; K = 1 and longer), products
    back to back (state and toggles carried): every accumulation equals net.kernels.matmul's."""
    dp = parse(spec)
    rng = np.random.default_rng(1)
    eng = shw.GateEngine(shw.array_for(dp, 2, 3))
    for G, M, K, N in ((3, 5, 7, 4), (2, 1, 1, 7), (1, 4, 30, 3)):
        X = _codes(dp, rng, (G, M, K), "x")
        W = _codes(dp, rng, (K, N), "w")
        want = np.stack([kernels.matmul(dp, X[g], W) for g in range(G)])
        assert np.array_equal(eng.product(X, W), want)
    s = eng.stats
    assert s.products == 3 and s.toggle_units > 0 and s.clock_units > 0
    # cycles: tiles x K + 1 per product (per lane group)
    assert s.cycles == (3 * 2 * 7 + 1) + (1 * 3 * 1 + 1) + (2 * 1 * 30 + 1)


@pytest.mark.parametrize("spec", ["int8", "asm,alphabet=1/3"])
def test_batched_products_with_their_own_weights(spec):
    """W per lane group (G x K x N: activation x activation products): each group its own kernel product."""
    dp = parse(spec)
    rng = np.random.default_rng(3)
    X = _codes(dp, rng, (4, 3, 6), "x")
    W = _codes(dp, rng, (4, 6, 5), "w")
    eng = shw.GateEngine(shw.array_for(dp, 2, 2))
    want = np.stack([kernels.matmul(dp, X[g], W[g]) for g in range(4)])
    assert np.array_equal(eng.product(X, W), want)


def test_timed_run_equals_and_sees_glitches():
    """The unit-delay sweep settles to the same accumulations and counts at least the zero-delay toggles."""
    dp = parse("int8")
    rng = np.random.default_rng(4)
    X = _codes(dp, rng, (2, 3, 9), "x")
    W = _codes(dp, rng, (9, 4), "w")
    plain, timed = shw.GateEngine(shw.array_for(dp, 2, 2)), shw.GateEngine(shw.array_for(dp, 2, 2), timed=True)
    want = np.stack([kernels.matmul(dp, X[g], W) for g in range(2)])
    assert np.array_equal(plain.product(X, W), want) and np.array_equal(timed.product(X, W), want)
    assert timed.stats.toggle_units == plain.stats.toggle_units
    assert timed.stats.timed_toggle_units > timed.stats.toggle_units          # a multiplier glitches
    assert shw.energy_pj(timed.stats, timed=True) > 0


def test_rtl_array_equals_the_kernel(tmp_path):
    """The generated Verilog of the whole array (int-mac PEs wired by array_verilog) under cocotb."""
    dp = parse("int8")
    rng = np.random.default_rng(2)
    X = _codes(dp, rng, (2, 3, 5), "x")
    W = _codes(dp, rng, (5, 4), "w")
    eng = shw.RtlEngine(shw.array_for(dp, 2, 3), build_dir=tmp_path)
    want = np.stack([kernels.matmul(dp, X[g], W) for g in range(2)])
    assert np.array_equal(eng.product(X, W), want)


def test_array_refuses_what_it_cannot_build():
    with pytest.raises(ValueError, match="hwsim runs"):
        shw.array_for(parse("fp32"))
    with pytest.raises(ValueError, match="serial accumulator"):
        shw.array_for(parse("mfmac,accumulator=tree4"))
    for bad in ("4", "0x4", "4x65", "axb", ""):
        with pytest.raises(ValueError, match="--array"):
            shw.parse_array(bad)
    assert shw.parse_array("8X2") == (8, 2)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", seed=0)


def _mlp(ds):
    """The shipped MLP with small hidden layers (64 -> 16 -> 8 -> 10): every mapping case, few cycles.
    Untrained: bit-exactness needs no training."""
    torch.manual_seed(0)
    return models.MLP(ds.input_shape, ds.num_classes, hidden=(16, 8))


def _cnn(ds):
    """conv (padded) -> ReLU -> max-pool -> linear: a convolution as im2col products, pooling on the host."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 10))


MLP_MACS = 64 * 16 + 16 * 8 + 8 * 10
MLP_OUTPUTS = 16 + 8 + 10


@pytest.mark.parametrize("spec,batch", [("int8", 1), ("mfmac", 3), ("asm,alphabet=1/3", 2),
                                        ("approx:mul-drum,k=4", 1)])
def test_mlp_on_the_gates(digits, spec, batch):
    model = _mlp(digits)
    res = hwsim.run(model, digits, spec, samples=7, array=(2, 3), batch=batch)
    assert res["mismatched_accumulations"] == 0 and res["mismatched_logits"] == 0
    assert res["mismatched_predictions"] == 0
    assert res["compared_accumulations"] == 7 * MLP_OUTPUTS
    assert [r["layer"] for r in res["layers"]] == ["fc1", "fc2", "fc3"]
    # the accuracy is nn eval's on the same samples (its own conversion and accuracy function)
    q = graph.convert(evaluate.prepare(model, digits), spec, calib=evaluate.calibration_batch(digits))
    assert res["accuracy_pct"] == evaluate.accuracy(q, digits.x_test[:7], digits.y_test[:7])
    # cycles: ceil(batch rows / 2) x ceil(N / 3) tiles x K + 1, per batch; utilization from them
    rows = -(-batch // 2)
    want = sum(rows * -(-n // 3) * k + 1 for k, n in ((64, 16), (16, 8), (8, 10))) / batch
    assert res["cycles_per_inference"] == pytest.approx(want)
    assert res["utilization_pct"] == pytest.approx(100 * MLP_MACS / (want * 6))
    assert res["energy_pj_real_data"] > 0 and res["energy_pj_random_operands"] > 0
    assert res["energy_pj_real_data"] == pytest.approx(sum(r["energy_pj_real_data"] for r in res["layers"]))


@pytest.mark.parametrize("spec", ["int8", "mfmac"])
def test_cnn_on_the_gates(digits, spec):
    res = hwsim.run(_cnn(digits), digits, spec, samples=3, array=(4, 4))
    assert res["mismatched_accumulations"] == 0 and res["mismatched_logits"] == 0
    by = {r["layer"]: r for r in res["layers"]}
    assert by["0"]["product"] == "64x9 . 9x4" and by["0"]["kind"] == "conv" and by["4"]["kind"] == "linear"
    assert res["compared_accumulations"] == 3 * (64 * 4 + 10)
    # conv: 16 row tiles of the 64 positions x 1 column tile x K = 9, + 1
    assert by["0"]["cycles_per_inference"] == 16 * 9 + 1


class _Attention(torch.nn.Module):
    """A token projection and an activation x activation product (lifted to a Matmul module, run as
    EmuMatmul: kernels.bmm)."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(64, 32)
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        t = self.proj(x.flatten(1)).reshape(-1, 4, 8)                 # 4 tokens of 8
        return self.head(torch.matmul(t, t.transpose(1, 2)).reshape(-1, 16))


@pytest.mark.parametrize("spec", ["int8", "asm,alphabet=1/3"])
def test_activation_products_on_the_gates(digits, spec):
    torch.manual_seed(0)
    res = hwsim.run(_Attention(), digits, spec, samples=3, array=(2, 2))
    assert res["mismatched_accumulations"] == 0 and res["mismatched_logits"] == 0
    mm = next(r for r in res["layers"] if r["kind"] == "matmul (batched)")
    assert mm["product"] == "4x8 . 8x4" and mm["macs_per_inference"] == 4 * 8 * 4
    assert mm["cycles_per_inference"] == 2 * 2 * 8 + 1      # one product per sample: 2x2 tiles x K
    assert res["compared_accumulations"] == 3 * (32 + 16 + 10)


def test_grouped_dilated_conv_on_the_gates(digits):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 10))
    res = hwsim.run(model, digits, "mfmac", samples=2, array=(4, 4))
    assert res["mismatched_accumulations"] == 0 and res["mismatched_logits"] == 0
    by = {r["layer"]: r for r in res["layers"]}
    assert by["2"]["kind"] == "conv groups=2" and by["2"]["macs_per_inference"] == 64 * 18 * 4
    assert by["2"]["cycles_per_inference"] == 2 * (16 * 18 + 1)     # two group products of 16 x 1 tiles


def test_a_broken_cell_is_caught_at_the_first_layer(digits):
    """One gate of the int-mac netlist inverted (the one feeding accumulator bit 0): the run stops
    at fc1 with the tile, sample and both values."""
    arr = shw.array_for(parse("int8"), 2, 2)
    broken, cell = shw.fault_netlist(shw.unit_netlist(arr))
    with pytest.raises(hwsim.HwMismatch) as e:
        hwsim.run(_mlp(digits), digits, "int8", samples=3, array=(2, 2), netlist=broken)
    info = e.value.info
    assert info["layer"] == "fc1" and info["hardware"] != info["emulator"]
    assert info["sample"] == 0 and info["tile"] == [0, 0] and info["mismatched_accumulations"] > 0
    assert e.value.result["mismatch"] is info and cell


def test_mlp_on_the_rtl(digits):
    """Two products (one Icarus simulation each) with a ReLU on the host between them."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8), torch.nn.ReLU(), torch.nn.Linear(8, 10))
    res = hwsim.run(model, digits, "mfmac", samples=2, engine="rtl", array=(2, 4), batch=2)
    assert res["mismatched_accumulations"] == 0 and res["mismatched_logits"] == 0
    assert res["compared_accumulations"] == 2 * 18 and res["energy_pj_real_data"] is None


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def model_file(digits, tmp_path_factory):
    path = tmp_path_factory.mktemp("hwsim") / "mlp.pt"
    torch.save(_mlp(digits), path)                  # a whole nn.Module (its hidden sizes are not the shipped ones)
    return path


def test_cli(model_file, capsys):
    code, out, err = run(capsys, "nn", "hwsim", "--model", model_file, "--data", "digits", "--datapath",
                         "int8", "--samples", "3", "--array", "2x2", "--json")
    assert code == 0, err
    res = json.loads(out)
    for k in ("samples", "compared_accumulations", "mismatched_accumulations", "mismatched_predictions",
              "cycles_per_inference", "accuracy_pct", "energy_pj_real_data", "energy_pj_random_operands", "layers"):
        assert k in res
    assert res["samples"] == 3 and res["mismatched_accumulations"] == 0 and len(res["layers"]) == 3
    code, out, err = run(capsys, "nn", "hwsim", "--model", model_file, "--data", "digits", "--datapath",
                         "int8", "--samples", "2", "--array", "2x2")
    assert code == 0 and "0 mismatched" in out and "fc1" in out


@pytest.mark.parametrize("argv,msg", [
    (["--datapath", "fp32"], "fp32"),
    (["--datapath", "int8", "--array", "0x4"], "--array"),
    (["--datapath", "mfmac,accumulator=tree2"], "serial"),
    (["--datapath", "int8", "--samples", "100000"], "test split"),
    (["--datapath", "int8", "--engine", "spice"], "engine"),
    (["--datapath", "int8", "--engine", "rtl", "--timed"], "--timed"),
])
def test_cli_refuses_bad_input(model_file, capsys, argv, msg):
    code, out, err = run(capsys, "nn", "hwsim", "--model", model_file, "--data", "digits", *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and msg in err
