"""The --liberty path (sky130 typical corner, skipped without it) and `ecomac netlist` on a
user's Verilog, including every bad-input case."""
import gzip
import json
from pathlib import Path

import pytest

from ecomac.cli import main
from synth.liberty import parse_cells, sequential_cells

LIB = Path(__file__).resolve().parent.parent.parent / "shared/pdk/sky130_fd_sc_hd__tt_025C_1v80.lib.gz"
needs_lib = pytest.mark.skipif(not LIB.is_file(), reason=f"{LIB} not present")

ADDER_V = "module add4(input [3:0] a, input [3:0] b, output [4:0] y);\n  assign y = a + b;\nendmodule\n"
REG_V = """module acc8(input clk, input rst, input [7:0] d, output reg [7:0] q);
  initial q = 0;
  always @(posedge clk) q <= q + d;
endmodule
"""


@pytest.fixture
def vfile(tmp_path):
    def make(text, name="d.v"):
        p = tmp_path / name
        p.write_text(text)
        return str(p)
    return make


@pytest.fixture(scope="module")
def lib_text():
    return gzip.decompress(LIB.read_bytes()).decode()


@needs_lib
def test_synth_liberty_int_mac(capsys):
    assert main(["synth", "int-mac", "--json"]) == 0
    generic = json.loads(capsys.readouterr().out)
    assert main(["synth", "int-mac", "--liberty", str(LIB), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["target"] == "liberty"
    assert all(c.startswith("sky130_fd_sc_hd__") for c in res["cells"])
    assert res["flip_flops"] == generic["flip_flops"] == 24      # the 24-bit accumulator
    assert res["area_um2"] > res["sequential_area_um2"] > 0
    assert 0 < res["depth"] <= generic["depth"]                   # library cells are bigger than 2-input gates


@needs_lib
def test_liberty_reader_on_sky130(lib_text):
    seq = sequential_cells(lib_text)
    assert "sky130_fd_sc_hd__dfxtp_1" in seq and "sky130_fd_sc_hd__nand2_1" not in seq
    cells = parse_cells(lib_text, ["sky130_fd_sc_hd__nand2_1", "sky130_fd_sc_hd__nand2_4",
                                   "sky130_fd_sc_hd__dfxtp_1"])
    n1, n4 = cells["sky130_fd_sc_hd__nand2_1"], cells["sky130_fd_sc_hd__nand2_4"]
    assert n4["area"] > n1["area"] > 0
    assert n4["internal_pj"] > n1["internal_pj"] > 0           # the x4 drive switches more internal charge
    assert cells["sky130_fd_sc_hd__dfxtp_1"]["sequential"]


@needs_lib
def test_netlist_stats_liberty_reports_library_energy(vfile, capsys):
    assert main(["netlist", "stats", "--verilog", vfile(REG_V), "--top", "acc8", "--liberty", str(LIB), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    lib = res["library"]
    assert res["flip_flops"] == 8
    assert lib["units"]["voltage_unit"] == "1V" and lib["units"]["capacitive_load_unit"] == "1pf"
    assert sum(c["count"] for c in lib["cells"]) == res["cells_total"]
    assert sum(c["area_um2"] * c["count"] for c in lib["cells"]) == pytest.approx(res["area_um2"], rel=1e-6)
    assert lib["internal_pj_all_toggle"] > 0 and not lib["cells_without_power_tables"]
    assert main(["netlist", "stats", "--verilog", vfile(REG_V), "--top", "acc8", "--liberty", str(LIB)]) == 0
    assert "internal pJ/transition" in capsys.readouterr().out


def test_netlist_stats_generic(vfile, capsys):
    assert main(["netlist", "stats", "--verilog", vfile(REG_V), "--top", "acc8", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["flip_flops"] == 8 and res["cells"]["$_DFF_P_"] == 8
    assert res["transistors"] > 8 * 16 and res["depth"] > 0


def test_netlist_energy_both_modes(vfile, capsys):
    f = vfile(ADDER_V)
    out = {}
    for mode in ("static", "activity"):
        assert main(["netlist", "energy", "--verilog", f, "--top", "add4", "--mode", mode, "--json"]) == 0
        out[mode] = json.loads(capsys.readouterr().out)
    assert out["static"]["transistors"] == out["activity"]["transistors"]
    assert 0 < out["activity"]["energy_pj"]
    # static mode prices transistors with the constant that makes the 8-bit array multiplier 0.2 pJ
    from rtl.export import generate
    from synth.reference import MUL8_PJ
    from synth.yosys import synthesize
    text, sheet = generate("mul-array", {"bits": 8})
    ref = synthesize(text, sheet["module"])["transistors"]
    assert out["static"]["energy_pj"] == pytest.approx(MUL8_PJ * out["static"]["transistors"] / ref)
    assert main(["netlist", "energy", "--verilog", f, "--top", "add4", "--ops-per-cycle", "2", "--json"]) == 0
    half = json.loads(capsys.readouterr().out)
    assert half["energy_pj"] == pytest.approx(out["activity"]["energy_pj"] / 2)


BAD_LIB_CASES = [
    ("missing", None, "does not exist"),
    ("garbage", "this is not a liberty file\n", "does not parse: no library(...) group"),
    ("broken", "library (x) { cell ( {\n", "does not parse"),
]


@pytest.mark.parametrize("case,content,msg", BAD_LIB_CASES)
def test_bad_liberty(tmp_path, vfile, capsys, case, content, msg):
    lib = tmp_path / f"{case}.lib"
    if content is not None:
        lib.write_text(content)
    for argv in (["netlist", "stats", "--verilog", vfile(ADDER_V), "--top", "add4", "--liberty", str(lib)],
                 ["synth", "int-mac", "--liberty", str(lib)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"liberty file {lib}" in err and msg in err and err.count("\n") == 1


@pytest.mark.parametrize("text,top,msg", [
    ("module m(input a, output y);\n  assign y = a &;\nendmodule\n", "m", "syntax error"),
    (ADDER_V, "nothere", "top module 'nothere' not found"),
])
def test_bad_verilog(vfile, capsys, text, top, msg):
    f = vfile(text)
    for cmd in ("stats", "energy"):
        assert main(["netlist", cmd, "--verilog", f, "--top", top]) == 2
        err = capsys.readouterr().err
        assert msg in err and f in err and err.count("\n") == 1


def test_missing_verilog_file(tmp_path, capsys):
    missing = tmp_path / "no.v"
    assert main(["netlist", "stats", "--verilog", str(missing), "--top", "x"]) == 2
    assert capsys.readouterr().err == f"ecomac: error: Verilog file {missing} does not exist\n"
