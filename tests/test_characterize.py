"""synth/characterize.py: any N x N multiplier in Verilog -- signed, several files, bad input.
The wide bit-by-bit netlist's time is `make bench` (ecomac/bench_characterize.py), not a test."""
import numpy as np
import pytest

from ecomac.cli import main
from golden import approx
from synth import characterize as ch

SIGNED = """
// a hand-written signed 4x4 multiplier: Baugh-Wooley, partial products with the sign rows
// complemented and the two correction ones, ports declared b first
module bw4(input [3:0] b, input [3:0] a, output [7:0] p);
  wire [7:0] r0 = {4'b0, ~(a[3] & b[0]), a[2] & b[0], a[1] & b[0], a[0] & b[0]};
  wire [7:0] r1 = {3'b0, ~(a[3] & b[1]), a[2] & b[1], a[1] & b[1], a[0] & b[1], 1'b0};
  wire [7:0] r2 = {2'b0, ~(a[3] & b[2]), a[2] & b[2], a[1] & b[2], a[0] & b[2], 2'b0};
  wire [7:0] r3 = {1'b0, a[3] & b[3], ~(a[2] & b[3]), ~(a[1] & b[3]), ~(a[0] & b[3]), 3'b0};
  assign p = r0 + r1 + r2 + r3 + 8'b1001_0000;
endmodule
"""

CELLS = """
module AND2X1(input A, input B, output Y); assign Y = A & B; endmodule
module XOR2X1(input A, input B, output Y); assign Y = A ^ B; endmodule
module OR2X1(input A, input B, output Y); assign Y = A | B; endmodule
"""

NETLIST = """
// a 2x2 multiplier mapped to the cells of cells.v (their models live in the other file)
module m2(input [1:0] a, input [1:0] b, output [3:0] p);
  wire p01, p10, p11, c;
  AND2X1 g0(.A(a[0]), .B(b[0]), .Y(p[0]));
  AND2X1 g1(.A(a[1]), .B(b[0]), .Y(p10));
  AND2X1 g2(.A(a[0]), .B(b[1]), .Y(p01));
  AND2X1 g3(.A(a[1]), .B(b[1]), .Y(p11));
  XOR2X1 x0(.A(p10), .B(p01), .Y(p[1]));
  AND2X1 c0(.A(p10), .B(p01), .Y(c));
  XOR2X1 x1(.A(p11), .B(c), .Y(p[2]));
  AND2X1 c1(.A(p11), .B(c), .Y(p[3]));
endmodule
"""


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _signed(v, bits):
    v = np.asarray(v, np.int64)
    return np.where(v >= 1 << (bits - 1), v - (1 << bits), v)


def test_hand_written_signed_multiplier(tmp_path):
    v = tmp_path / "bw4.v"
    v.write_text(SIGNED)
    r = ch.characterize_verilog([v], signed=True)
    grid = _signed(np.arange(16), 4)
    assert r["table"].dtype == np.int64 and r["table"].shape == (16, 16)
    assert np.array_equal(r["table"], np.outer(grid, grid))          # T[a, b] by bit pattern
    assert r["params"] == {"bits": 4, "signed": True} and r["top"] == "bw4"
    assert r["ep_pct"] == 0 and r["wce"] == 0 and r["energy_pj"] > 0
    # read unsigned, the same circuit is wrong wherever an operand is negative
    t, n, info = ch.read_verilog_table([v])
    assert n == 4 and info["a"] == "a" and info["b"] == "b"
    assert np.array_equal(_signed(t, 8), np.outer(grid, grid))


def test_signed_metrics_definition():
    """signed_metrics against the definition written out by hand on a 2-bit table."""
    grid = np.array([0, 1, -2, -1])
    exact = np.outer(grid, grid)
    t = exact.copy()
    t[3, 3] = 3            # (-1)*(-1) = 1 computed as 3: error 2
    m = ch.signed_metrics(t, 2)
    assert m["wce"] == 2 and m["mae"] == 2 / 16 and m["ep_pct"] == 100 / 16 and m["bias"] == 2 / 16
    assert m["mre_pct"] == pytest.approx(100 * 2 / np.count_nonzero(exact))
    assert m["wce_pct"] == 100 * 2 / 16 and m["mse"] == 4 / 16


def test_two_files_netlist_and_cell_models(tmp_path, capsys):
    (tmp_path / "net.v").write_text(NETLIST)
    (tmp_path / "cells.v").write_text(CELLS)
    code, out, _ = run(capsys, "approx", "characterize", "--verilog", str(tmp_path / "net.v"),
                       "--verilog", str(tmp_path / "cells.v"), "--json")
    assert code == 0
    import json
    r = json.loads(out)
    assert r["top"] == "m2" and r["files"] == [str(tmp_path / "net.v"), str(tmp_path / "cells.v")]
    assert r["ep_pct"] == 0 and r["cells"] > 0 and "table" not in r
    t, n, _ = ch.read_verilog_table([tmp_path / "net.v", tmp_path / "cells.v"], "m2")
    assert np.array_equal(t, approx.table("mul-array", bits=2))


def test_port_order_does_not_move_energy(tmp_path):
    a = tmp_path / "ab.v"
    b = tmp_path / "ba.v"
    body = "  assign p = a * b;\nendmodule\n"
    a.write_text("module m(input [3:0] a, input [3:0] b, output [7:0] p);\n" + body)
    b.write_text("module m(output [7:0] p, input [3:0] b, input [3:0] a);\n" + body)
    ra, rb = ch.characterize_verilog([a]), ch.characterize_verilog([b])
    assert ra["energy_activity_pj"] == rb["energy_activity_pj"] and ra["transistors"] == rb["transistors"]


def test_wide_bit_by_bit_netlist_is_exact(tmp_path):
    """The bench's netlist generator (small here) computes a*b; its time is measured in make bench."""
    v = tmp_path / "wide.v"
    v.write_text(ch.bit_by_bit_netlist(bits=4, wire_bits=200))
    t, n, _ = ch.read_verilog_table([v])
    assert n == 4 and np.array_equal(t, approx.table("mul-array", bits=4))


@pytest.mark.parametrize("text,argv_top,msg", [
    ("module m(input [3:0] A, input [3:0] B, output [7:0] O);\n  assign O = A * B;\nendmodule\n"
     "module q(input a, output b); assign b = a; endmodule\n", [],
     "give --top: {f} hold several top-level modules (m, q)"),
    ("module m(input [3:0] A, input [3:0] B, output [7:0] O);\n  assign O = A * B;\nendmodule\n",
     ["--top", "zz"], "module zz not found in {f} (modules: m)"),
    ("module e(); endmodule\n", [],
     "module e must have two N-bit inputs and one 2N-bit output, has no ports (in {f})"),
    ("module lp(input [1:0] a, input [1:0] b, output [3:0] p);\n  wire x;\n  assign x = ~x ^ a[0];\n"
     "  assign p = {3'b0, x};\nendmodule\n", [], "module lp ({f}): combinational loop in the netlist"),
    ("module m(input [3:0] A, input [3:0] B, output [7:0] O);\n\n  assign O = A *;\nendmodule\n", [],
     "{f}:3: cannot read module (top): syntax error, unexpected ';'"),
    ("", [], "no module in {f}"),
])
def test_bad_verilog_is_one_line_naming_the_file(tmp_path, capsys, text, argv_top, msg):
    f = tmp_path / "user.v"
    f.write_text(text)
    code, out, err = run(capsys, "approx", "characterize", "--verilog", str(f), *argv_top)
    assert code == 2 and out == "" and err == f"ecomac: error: {msg.format(f=f)}\n"


def test_directory_and_endless_loop(tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, "approx", "characterize", "--verilog", str(tmp_path))
    assert code == 2 and err == f"ecomac: error: Verilog file {tmp_path} is a directory\n"
    f = tmp_path / "inf.v"
    f.write_text("module inf(input [1:0] a, input [1:0] b, output reg [3:0] p);\n  integer i;\n"
                 "  always @* begin p = 0; for (i = 0; i >= 0; i = i + 1) p = p + a; end\nendmodule\n")
    monkeypatch.setenv("ECOMAC_TOOL_TIMEOUT", "3")
    code, _, err = run(capsys, "approx", "characterize", "--verilog", str(f))
    assert code == 2 and err == f"ecomac: error: yosys reading {f} did not finish within 3 s and was stopped\n"


def test_simulation_and_synthesis_disagreeing_is_an_error(tmp_path, capsys):
    """Yosys synthesizes a*b whatever the sensitivity list; Icarus re-evaluates only when a
    changes, so its p goes stale along a row of the corner pairs: the run stops there."""
    f = tmp_path / "sens.v"
    f.write_text("module s(input [3:0] a, input [3:0] b, output reg [7:0] p);\n  always @(a) p = a * b;\nendmodule\n")
    code, out, err = run(capsys, "approx", "characterize", "--verilog", str(f))
    assert code == 2 and out == ""
    assert err == (f"ecomac: error: Yosys's netlist of s disagrees with the Icarus simulation of {f} at a=1, b=1: "
                   "1 vs 0 (the energy would price another circuit)\n")


def test_yosys_reading_is_simulated_when_the_files_run_is_cut_short(tmp_path, monkeypatch):
    """Where Icarus cannot get through the sample on the user's files in its budget, it simulates
    Yosys's flattened reading (one wire per bit) on the whole sample, and a slip between that and
    the evaluated gate netlist (injected here into the table) still stops the run."""
    v = tmp_path / "wide.v"
    v.write_text(ch.bit_by_bit_netlist(bits=4, wire_bits=200))
    monkeypatch.setattr(ch, "CROSS_CHECK_S", 0.001)          # the files' vvp is stopped at once
    sample = len(ch._sample_pairs(4)[0])
    t, n, info = ch.read_verilog_table([v])
    assert np.array_equal(t, approx.table("mul-array", bits=4))
    assert info["icarus_checked_pairs"] < sample and info["icarus_reading_checked_pairs"] == sample
    exact = ch._netlist_table

    def slipped(*args):
        t = exact(*args)
        t[15, 15] ^= 1                                        # one corner pair computed wrong
        return t
    monkeypatch.setattr(ch, "_netlist_table", slipped)
    with pytest.raises(ValueError) as e:
        ch.read_verilog_table([v])
    assert str(e.value) == (f"Yosys's netlist of wide_mul disagrees with the Icarus simulation of Yosys's reading "
                            f"of {v} at a=15, b=15: 224 vs 225 (the energy would price another circuit)")
