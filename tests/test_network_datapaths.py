"""The asm and approx:FAMILY network datapaths: per-MAC energies, the streams that feed them
(checked against the golden encoders and the gate netlists), the report's comparison table,
and one-line errors for bad datapath specs (API and CLI)."""
import json
from pathlib import Path

import numpy as np
import pytest

from ecomac import energy_report
from ecomac.cli import main
from golden import asm
from synth import network as N
from synth.network_comparison import datapath_comparison

ROOT = Path(__file__).resolve().parent.parent
RESNET = ROOT / "examples/nets/resnet18.json"


@pytest.mark.parametrize("mode", ["activity", "static"])
@pytest.mark.parametrize("spec", ["asm", "approx:mul-drum,k=6"])
def test_per_mac_energies_are_positive_and_add_up(spec, mode):
    per = N.mac_energy(spec, mode)
    assert per["datapath"] == spec and per["operand_bits"] == 8
    assert per["multiply_pj"] > 0 and per["accumulate_pj"] > 0
    assert per["multiply_pj"] + per["accumulate_pj"] == pytest.approx(per["mac_pj"])


def test_asm_and_approx_cost_less_per_mac_than_int8():
    int8 = N.mac_energy("int8", "activity")["mac_pj"]
    for spec in ("asm", "approx:mul-drum,k=4", "approx:mul-mitchell,frac_bits=7"):
        assert N.mac_energy(spec, "activity")["mac_pj"] < int8, spec


def test_asm_row_amortizes_its_bank():
    """The multiply share of one asm MAC (a lane + 1/16 bank) is below one asm-mul (a lane + a whole bank)."""
    from synth.energy import design_energy
    per = N.mac_energy("asm", "static")
    mul = design_energy("asm-mul", {"x_bits": 8, "w_bits": 8, "alphabet": N.ASM_ALPHABET}, mode="static")
    assert per["multiply_pj"] < mul["energy_pj"]
    assert per["mac_params"]["lanes"] == N.ASM_LANES


def test_asm_streams_encode_the_quantized_weights():
    rng = np.random.default_rng(0)
    x = N._gaussian_int(8)(rng, (4, 5))
    w = N._asm_weights(rng, (4, 5))
    assert w.shape == (4, 5, N.ASM_LANES)
    assert asm.is_representable(w, N.ASM_ALPHABET, 8).all()
    word = N._asm_mac_stream(x, w)["w"]
    eb = asm.encoded_bits(N.ASM_ALPHABET, 8)
    for i in range(N.ASM_LANES):        # lane i's field of the 176-bit word decodes to lane i's weight
        field = np.array([(int(v) >> (i * eb)) & ((1 << eb) - 1) for v in word.ravel()])
        assert np.array_equal(asm.decode(field, N.ASM_ALPHABET, 8), w[..., i].ravel())


def test_asm_lane_stream_drives_the_lane_netlist_to_the_product():
    """The multiply share's lane netlist, fed the stream mac_energy builds, computes x * w."""
    from synth.gatesim import GateNetlist, pack_values, unpack_values
    from synth.yosys import synthesize
    (lane_v, top, weight, feed), (_, bank_top, bank_weight, _) = N._asm_multiply_parts()
    assert weight == 1 and bank_top == "asm_bank" and bank_weight == 1 / N.ASM_LANES
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (8, 33))
    w = N._asm_weights(rng, (8, 33))
    s = feed(x, w)
    g = GateNetlist(synthesize(lane_v, top, netlist=True)["netlist"], top)
    n = x.size
    res = g.run_time_packed({k: pack_values(v, len(g.inputs[k])) for k, v in s.items()}, n)
    p = unpack_values(res["V"][g.outputs["p"]], n, signed=True)
    assert np.array_equal(p, x.ravel() * w[..., 0].ravel())


def test_comparison_rows_are_consistent():
    rows = {r["datapath"]: r for r in datapath_comparison(
        str(RESNET), ("fp32", "int8", "asm", "approx:mul-array", "approx:mul-drum,k=6"))}
    int8, fp32 = rows["int8"], rows["fp32"]
    for r in rows.values():
        assert r["mac_vs_int8_pct"] == pytest.approx(100 * (1 - r["mac_pj"] / int8["mac_pj"]))
        assert r["total_vs_fp32_pct"] == pytest.approx(100 * (1 - r["energy_pj"] / fp32["energy_pj"]))
    assert rows["approx:mul-array"]["product_mre_pct"] == 0 and rows["approx:mul-drum,k=6"]["product_mre_pct"] > 0
    assert rows["int8"]["product_mre_pct"] is None
    assert rows["asm"]["memory_pj"] == pytest.approx(int8["memory_pj"])      # both store 8-bit tensors
    table = energy_report.comparison_table(list(rows.values()))
    assert len(table.splitlines()) == 2 + len(rows) and "approx:mul-drum,k=6" in table


@pytest.mark.parametrize("spec", ["asm", "approx:mul-drum,k=6"])
def test_cli_net_on_new_datapaths(spec, capsys):
    assert main(["energy", "net", "--net", str(RESNET), "--datapath", spec, "--training", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["datapath"] == spec and res["energy_pj"] > res["arithmetic_pj"] > 0
    assert res["arithmetic_pj"] == pytest.approx(res["macs"] * res["per_mac"]["mac_pj"])


BAD = [
    ("approx:", "needs a multiplier family after 'approx:'"),
    ("approx:mul-foo", "unknown multiplier family 'mul-foo' (families: mul-array, mul-exact"),
    ("approx:mul-drum,k=99", "k must be in 1..8, got 99"),
    ("approx:mul-drum,vbl=3", "vbl does not apply to multiplier mul-drum (its parameters: k, acc_bits)"),
    ("approx:mul-drum,bits=4", "bits is fixed by the datapath"),
    ("approx:mul-drum,k", "expected NAME=VALUE after 'approx:mul-drum', got 'k'"),
    ("approx:mul-drum,", "expected NAME=VALUE after 'approx:mul-drum', got ''"),
    ("approx:mul-drum,q=1", "unknown parameter 'q' (parameters: k, acc_bits)"),
    ("approx:mul-drum,k=six", "k must be an integer, got 'six'"),
]


@pytest.mark.parametrize("spec,msg", BAD, ids=[b[0] for b in BAD])
def test_bad_specs_one_line(spec, msg, capsys):
    with pytest.raises(ValueError) as e:
        N.mac_energy(spec)
    assert msg in str(e.value) and repr(spec) in str(e.value) and "\n" not in str(e.value)
    assert main(["energy", "net", "--net", str(RESNET), "--datapath", spec]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1


def test_unknown_datapath_name(capsys):
    with pytest.raises(ValueError, match=r"unknown datapath 'int4' \(datapaths: fp32, int8, mfmac, asm, approx:"):
        N.datapath("int4")
    assert main(["energy", "net", "--net", str(RESNET), "--datapath", "int4"]) == 2
    assert "argument --datapath: unknown datapath 'int4' (datapaths: fp32, int8" in capsys.readouterr().err
