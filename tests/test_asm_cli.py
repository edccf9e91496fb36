"""`ecomac asm` (encode, values, measure pieces), the asm designs' parameters and errors,
and the synthesized netlists (no multiplier anywhere)."""
import json

import numpy as np
import pytest

from ecomac import cmd_asm
from ecomac.cli import main
from golden import asm
from rtl.asm import AsmLane, AsmMul, AsmPeRow, AsmPrecomputeBank
from rtl.export import generate
from synth import asm as asm_synth
from synth.yosys import coarse_cells


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *argv) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ecomac: error: ") and "Traceback" not in err
    return lines[0]


# ---------------------------------------------------------------- encode / values

def test_encode_json_roundtrips_through_the_documented_layout(capsys):
    ws = ["0", "1", "-1", "12", "-204", "0x11"]
    code, out, _ = run(capsys, "asm", "encode", "--alphabet", "1,3", "--w-bits", "8", "--json", *ws)
    assert code == 0
    res = json.loads(out)
    assert res["encoded_bits"] == 9 and res["alphabet"] == [1, 3]
    weights = [r["weight"] for r in res["weights"]]
    enc = [r["encoded"] for r in res["weights"]]
    assert weights == [0, 1, -1, 12, -204, 17]
    assert np.array_equal(asm.decode(enc, (1, 3), 8), weights)
    # by hand from the layout (F = 4 bits per quartet: s, idx, nz; sign at bit 8):
    # 1 -> quartet 0 = 1*2^0: nz=1 -> 0b1000; -1 adds the sign bit 256; 12 = 3*2^2 -> 0b1110
    assert enc[:4] == [0, 0b1000, 0b1000 + 256, 0b1110]


def test_encode_table_prints_every_weight(capsys):
    code, out, _ = run(capsys, "asm", "encode", "--alphabet", "1", "-2", "8")
    assert code == 0
    assert "alphabet {1}, w_bits=8: 7-bit words" in out
    assert out.splitlines()[-2].split()[:2] == ["-2", str(int(asm.encode(-2, (1,), 8)))]


def test_values_lists_the_representable_set(capsys):
    code, out, _ = run(capsys, "asm", "values", "--alphabet", "1,3", "--w-bits", "8", "--json")
    assert code == 0
    res = json.loads(out)
    assert res["values"] == asm.representable((1, 3), 8).tolist()
    assert res["count"] == 64 and res["quartets"] == [0, 1, 2, 3, 4, 6, 8, 12]
    code, out, _ = run(capsys, "asm", "values", "--alphabet", "1", "--w-bits", "4")
    assert code == 0 and "5 of 16 magnitudes" in out and out.split()[-5:] == ["0", "1", "2", "4", "8"]


@pytest.mark.parametrize("argv,msg", [
    (["encode", "--alphabet", "1,3", "11"],
     "weight 11 is not representable with alphabet {1,3} (w_bits=8); nearest representable: 12"),
    (["encode", "--alphabet", "1,3", "5", "-300"], "weight -300 is outside the 8-bit sign-magnitude range"),
    (["encode", "abc"], "weight 'abc' is not an integer"),
    (["encode", "--alphabet", "3,5", "1"], "alphabet must contain 1, got {3,5}"),
    (["values", "--alphabet", "1,4"], "alphabet members must be odd integers in 1..15, got 4"),
    (["values", "--alphabet", "1,17"], "alphabet members must be odd integers in 1..15, got 17"),
    (["values", "--alphabet", "1,1"], "alphabet has duplicate member 1"),
    (["values", "--w-bits", "6"], "w_bits must be a multiple of 4 in 4..12 (4, 8 or 12), got 6"),
    (["values", "--w-bits", "16"], "w_bits must be a multiple of 4 in 4..12 (4, 8 or 12), got 16"),
    (["values", "--w-bits", "eight"], "--w-bits must be 4, 8 or 12, got 'eight'"),
    (["encode"], "the following arguments are required: W"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, msg):
    assert msg in one_line_error(capsys, "asm", *argv)


# ---------------------------------------------------------------- designs: parameters and errors

def test_list_shows_the_asm_designs(capsys):
    code, out, _ = run(capsys, "list", "--json")
    designs = {d["name"]: d for d in json.loads(out)}
    assert [p["name"] for p in designs["asm-mul"]["params"]] == ["x_bits", "w_bits", "alphabet"]
    assert [p["name"] for p in designs["asm-pe-row"]["params"]] == ["x_bits", "w_bits", "alphabet", "lanes",
                                                                   "acc_bits"]
    assert designs["asm-mul"]["params"][2]["default"] == [1, 3, 5, 7]


def test_verilog_with_alphabet_param_and_datasheet(tmp_path, capsys):
    out = tmp_path / "m.v"
    code, _, _ = run(capsys, "verilog", "asm-mul", "-p", "alphabet=1,3", "-o", str(out))
    assert code == 0
    sheet = json.loads((tmp_path / "m.json").read_text())
    ports = {p["name"]: p for p in sheet["ports"]}
    assert ports["w"]["width"] == 9 and ports["x"] == {"name": "x", "direction": "in", "width": 8, "signed": True}
    assert ports["p"]["width"] == 16 and ports["p"]["signed"]
    assert sheet["bank_plan"] == ["3x = (x<<1) + x"] and sheet["encoded_bits"] == 9
    assert sheet["encoded_weight_layout"][-1] == "bit 8: sign"


@pytest.mark.parametrize("argv,msg", [
    (["asm-mul", "-p", "alphabet=1,2"], "alphabet members must be odd integers in 1..15, got 2"),
    (["asm-mul", "-p", "alphabet=3"], "alphabet must contain 1, got {3}"),
    (["asm-mul", "-p", "alphabet=1,x"], "alphabet must be a comma-separated list of integers"),
    (["asm-mul", "-p", "w_bits=10"], "w_bits must be a multiple of 4 in 4..12"),
    (["asm-mul", "-p", "x_bits=1"], "x_bits must be in 2..24, got 1"),
    (["asm-pe-row", "-p", "lanes=0"], "lanes must be in 1..64, got 0"),
    (["asm-pe-row", "-p", "acc_bits=15"], "acc_bits must be in 16..64, got 15"),
])
def test_bad_design_params_exit_2(tmp_path, capsys, argv, msg):
    assert msg in one_line_error(capsys, "verilog", *argv, "-o", str(tmp_path / "x.v"))


@pytest.mark.parametrize("build,exc,msg", [
    (lambda: AsmMul(alphabet=(1, 3, 3)), ValueError, "duplicate member 3"),
    (lambda: AsmMul(w_bits=8.0), TypeError, "w_bits must be an integer"),
    (lambda: AsmPeRow(lanes="4"), TypeError, "lanes must be an integer in 1..64"),
    (lambda: AsmLane(x_bits=25), ValueError, "x_bits must be in 2..24"),
    (lambda: AsmPrecomputeBank(alphabet=(1, 16)), ValueError, "got 16"),
])
def test_constructors_validate(build, exc, msg):
    with pytest.raises(exc, match=msg):
        build()


# ---------------------------------------------------------------- synthesis

@pytest.mark.parametrize("name,params", [
    ("asm-mul", {"alphabet": (1,)}),
    ("asm-mul", {"alphabet": (1, 3, 5, 7, 9, 11, 13, 15)}),
    ("asm-pe-row", {"alphabet": (1, 3), "lanes": 2}),
    ("asm-pe-row", {"alphabet": (1, 3, 5, 7, 9, 11, 13, 15), "lanes": 3, "w_bits": 12}),
])
def test_no_multiplier_in_the_netlist(name, params):
    text, sheet = generate(name, params)
    cells = coarse_cells(text, sheet["module"])
    assert not any("mul" in c for c in cells), cells
    assert cells.get("$add", 0) + cells.get("$sub", 0) > 0      # it does add


def test_weight_stats_are_consistent_with_the_golden_sets():
    full = asm_synth.weight_stats(asm.ALPHABETS[-1])
    assert full["fraction"] == 1.0 and full["proj_lsb"] == 0.0 and full["proj_exact_pct"] == 100.0
    prev = None
    for a in asm.ALPHABETS:
        s = asm_synth.weight_stats(a)
        assert s["representable"] == asm.representable(a, 8).size
        if prev is not None:      # a superset of an alphabet never projects worse
            assert s["proj_lsb"] <= prev["proj_lsb"] and s["fraction"] > prev["fraction"]
        prev = s


def test_activity_run_checks_the_gate_netlist_and_shares_the_bank():
    one = asm_synth.asm_activity({"alphabet": (1, 3), "lanes": 1})
    four = asm_synth.asm_activity({"alphabet": (1, 3), "lanes": 4})
    assert one["netlist_checked"] and four["netlist_checked"]
    # four lanes cost less than four single-lane rows: the bank is shared
    assert four["units_per_cycle"] < 4 * one["units_per_cycle"]
    assert four["energy_pj"] < one["energy_pj"]


def test_small_measure_sweep_tables_and_plot(tmp_path):
    calls = []
    res = asm_synth.measure(alphabets=((1,), (1, 3)), lanes=(1, 2), progress=lambda *a: calls.append(a))
    # int-mac, four rows, two banks: announced before the work, then one call per point
    assert calls[0] == (0, 7, "") and [c[0] for c in calls] == list(range(8))
    rows = {(tuple(r["alphabet"]), r["lanes"]): r for r in res["rows"]}
    assert set(rows) == {((1,), 1), ((1,), 2), ((1, 3), 1), ((1, 3), 2)}
    for (a, n), r in rows.items():
        assert r["ops"] == n and r["encoded_bits"] == asm.encoded_bits(a, 8)
        assert r["static_pj"] > 0 and r["activity_pj"] > 0
    # {1} has no bank; {1,3} has one adder, whose cost two lanes share
    assert rows[((1,), 1)]["bank_transistors"] == 0 and rows[((1, 3), 1)]["bank_adders"] == 1
    assert rows[((1, 3), 2)]["transistors"] < 2 * rows[((1, 3), 1)]["transistors"]
    hw, ws = cmd_asm.tables(res)
    assert hw.splitlines()[2].split()[0] == "int-mac" and len(hw.splitlines()) == 3 + 4
    assert "{1,3}" in ws and len(ws.splitlines()) == 2 + 2
    assert cmd_asm._plot(res, tmp_path / "p.png") and (tmp_path / "p.png").stat().st_size > 1000
    assert json.loads(cmd_asm._write(res, tmp_path).read_text())["baseline"]["design"] == "int-mac"
