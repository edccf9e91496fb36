"""Energy model: the gate simulator against golden models, toggle counting against direct
NumPy counts, both energy modes, the calibration table, and the CLI's messages."""
import json

import numpy as np
import pytest

from ecomac.cli import main
from golden import intmac as gi
from golden import pot as gp
from rtl.export import generate
from synth import energy as E
from synth import reference
from synth.gatesim import CMOS_TRANSISTORS, GateNetlist, pack_values, unpack_values
from synth.yosys import synthesize


def _netlist(design, params=None):
    text, sheet = generate(design, params or {})
    r = synthesize(text, sheet["module"], netlist=True)
    return GateNetlist(r["netlist"], sheet["module"]), r


def _verilog_netlist(text, top):
    r = synthesize(text, top, netlist=True)
    return GateNetlist(r["netlist"], top), r


# ---- netlist statistics ------------------------------------------------------------------
@pytest.mark.parametrize("design,params", [("int-mac", {}), ("mfmac-pe", {}), ("mul-array", {"bits": 8})])
def test_cost_table_reproduces_yosys_transistor_count(design, params):
    g, r = _netlist(design, params)
    assert sum(CMOS_TRANSISTORS[t] * n for t, n in r["cells"].items()) == r["transistors"]
    assert g.transistors == r["transistors"]
    assert g.cell_types == r["cells"]
    assert g.flip_flops == r["flip_flops"]
    assert g.depth == r["depth"]          # our levelization agrees with Yosys ltp -noff


# ---- gate simulation against golden models ------------------------------------------------
def test_int_add_exhaustive_time_packed():
    g, _ = _netlist("int-add", {"bits": 8})
    a, b = np.meshgrid(np.arange(256), np.arange(256))
    a, b = a.ravel(), b.ravel()
    res = g.run_time_packed({"a": pack_values(a, 8), "b": pack_values(b, 8)}, a.size)
    assert np.array_equal(unpack_values(res["V"][g.outputs["s"]], a.size), a + b)


def test_mul_array_exhaustive_time_packed():
    g, _ = _netlist("mul-array", {"bits": 8})
    a, b = np.meshgrid(np.arange(256), np.arange(256))
    a, b = a.ravel(), b.ravel()
    res = g.run_time_packed({"a": pack_values(a, 8), "b": pack_values(b, 8)}, a.size)
    assert np.array_equal(unpack_values(res["V"][g.outputs["p"]], a.size).astype(np.int64), a * b)


def _run_mac_lanes(g, x, w, valid, clear, xbits):
    lanes, T = x.shape

    def words(t):
        return {"x": pack_values(x[:, t], xbits), "w": pack_values(w[:, t], xbits),
                "valid": pack_values(valid[:, t], 1), "clear": pack_values(clear[:, t], 1),
                "rst": pack_values(np.zeros(lanes, np.int64), 1)}
    out = g.run_lanes(words, T, lanes)["outputs"]["acc"]
    return np.stack([unpack_values(out[:, t], lanes, signed=True) for t in range(T)], axis=1)


def test_int_mac_lanes_carry_flip_flop_state():
    g, _ = _netlist("int-mac", {})
    rng = np.random.default_rng(7)
    lanes, T = 130, 40                    # 130 lanes: a partial last word
    x, w = rng.integers(-128, 128, (2, lanes, T))
    valid, clear = rng.integers(0, 2, (2, lanes, T))
    acc = _run_mac_lanes(g, x, w, valid, clear, 8)
    for lane in range(lanes):
        gold = np.asarray(gi.mac(x[lane], w[lane], valid[lane], clear[lane], acc_bits=24))
        assert np.array_equal(acc[lane, 1:], gold[:-1]), f"lane {lane}"   # acc shows last cycle's update


def test_mfmac_pe_lanes_against_golden():
    g, _ = _netlist("mfmac-pe", {})
    rng = np.random.default_rng(8)
    lanes, T = 64, 30
    x, w = rng.integers(0, 16, (2, lanes, T))
    valid, clear = rng.integers(0, 2, (2, lanes, T))
    acc = _run_mac_lanes(g, x, w, valid, clear, 4)
    for lane in range(lanes):
        gold = np.asarray(gp.mac(x[lane], w[lane], valid[lane], clear[lane], exp_bits=3, acc_bits=24))
        assert np.array_equal(acc[lane, 1:], gold[:-1])


def test_fp32_add_random_against_golden():
    from golden import fp32
    g, _ = _netlist("fp32-add", {})
    rng = np.random.default_rng(9)
    n = 4096
    a = fp32.to_bits(rng.standard_normal(n) * 2.0 ** rng.integers(-20, 20, n)).astype(np.int64)
    b = fp32.to_bits(rng.standard_normal(n) * 2.0 ** rng.integers(-20, 20, n)).astype(np.int64)
    res = g.run_time_packed({"a": pack_values(a, 32), "b": pack_values(b, 32)}, n)
    y = unpack_values(res["V"][g.outputs["y"]], n).astype(np.uint32)
    assert np.array_equal(y, fp32.add(a.astype(np.uint32), b.astype(np.uint32)))


# ---- toggle counting -----------------------------------------------------------------------
XOR_V = "module x1(input a, input b, output y); assign y = a ^ b; endmodule\n"
COUNTER_V = """module cnt(input clk, input rst, input en, output reg [3:0] q);
  initial q = 0;
  always @(posedge clk) if (en) q <= q + 1;
endmodule
"""


def test_toggles_time_packed_equal_direct_count():
    g, r = _verilog_netlist(XOR_V, "x1")
    assert r["cells"] == {"$_XOR_": 1}
    rng = np.random.default_rng(1)
    n = 1000                                  # not a multiple of 64: tail masking
    a, b = rng.integers(0, 2, (2, n))
    res = g.run_time_packed({"a": pack_values(a, 1), "b": pack_values(b, 1)}, n)
    y = a ^ b
    assert res["toggles"].sum() == np.count_nonzero(y[1:] != y[:-1])
    assert res["transitions"] == n - 1


def test_toggles_lanes_counter_bits():
    """A free-running 4-bit counter: bit i of q toggles every 2^i cycles."""
    g, _ = _verilog_netlist(COUNTER_V, "cnt")
    assert g.flip_flops == 4 and g.clock_ports == ["clk"]
    lanes, T = 100, 33
    res = g.run_lanes(lambda t: {"en": np.full((1, 2), np.uint64(2**64 - 1)),
                                 "rst": np.zeros((1, 2), np.uint64)}, T, lanes)
    q = np.arange(T) % 16                         # counter value at cycle t (starts at 0)
    expect_q = sum(np.count_nonzero(((q[1:] >> i) & 1) != ((q[:-1] >> i) & 1)) for i in range(4))
    q_rows = [list(g.cost_rows).index(r) for r in g.dff_q]
    assert res["toggles"][q_rows].sum() == expect_q * lanes


# ---- energy modes ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", E.MODES)
def test_calibration_point(mode):
    cal = E.calibration(mode)
    assert cal["design"] == "mul-array" and cal["reference_pj"] == reference.MUL8_PJ
    e = E.design_energy("mul-array", {"bits": 8}, mode=mode)
    assert e["energy_pj"] == pytest.approx(reference.MUL8_PJ)


def test_static_energy_is_proportional_to_yosys_transistors():
    a = E.design_energy("int-mac", {}, mode="static")
    ref = synthesize(*_text_top("mul-array", {"bits": 8}))["transistors"]
    assert a["energy_pj"] == pytest.approx(reference.MUL8_PJ * a["transistors"] / ref)


def _text_top(design, params):
    text, sheet = generate(design, params)
    return text, sheet["module"]


def test_energy_per_op_divides_by_op_count():
    one = E.design_energy("mfmac-array", {"rows": 2, "cols": 2}, mode="static")
    assert one["ops_per_cycle"] == 4
    assert one["energy_pj"] == pytest.approx(one["energy_per_cycle_pj"] / 4)


def test_activity_constant_stream_costs_only_the_clock():
    lanes, T = 64, 10
    zeros = np.zeros((lanes, T), np.int64)
    e = E.design_energy("int-mac", {}, mode="activity", stream={"x": zeros, "w": zeros})
    assert e["toggles_per_cycle"] == 0
    k = E.calibration("activity")["pj_per_unit"]
    assert e["energy_pj"] == pytest.approx(k * 24 * E.CLOCK_UNITS_PER_FF)   # 24 accumulator flip-flops


def test_activity_follows_operand_statistics():
    rng = np.random.default_rng(3)
    n = 4096
    small = {"a": rng.integers(0, 4, n), "b": rng.integers(0, 4, n)}      # 2 active bits of 8
    low = E.design_energy("mul-array", {"bits": 8}, mode="activity", stream=small)["energy_pj"]
    full = E.design_energy("mul-array", {"bits": 8}, mode="activity")["energy_pj"]
    assert low < 0.25 * full
    assert low > 0


def test_activity_lanes_and_single_stream_agree_for_combinational():
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 256, (2, 16, 512))
    lanes = E.design_energy("int-add", {"bits": 8}, mode="activity", stream={"a": a, "b": b})
    # the same 16 streams back to back in one time-packed stream (15 extra seams of 8191 transitions)
    one = E.design_energy("int-add", {"bits": 8}, mode="activity", stream={"a": a.ravel(), "b": b.ravel()})
    assert lanes["lanes"] == 16 and one["lanes"] == 1
    assert lanes["energy_pj"] == pytest.approx(one["energy_pj"], rel=0.02)


def test_stream_errors_are_one_line():
    with pytest.raises(ValueError, match="port 'q', which is not an input"):
        E.design_energy("int-add", {"bits": 8}, mode="activity", stream={"q": np.zeros(10, int)})
    with pytest.raises(ValueError, match="disagree on the number of cycles"):
        E.design_energy("int-add", {"bits": 8}, mode="activity",
                        stream={"a": np.zeros(10, int), "b": np.zeros(12, int)})
    with pytest.raises(ValueError, match="only applies to --mode activity"):
        E.design_energy("int-add", {"bits": 8}, mode="static", stream={"a": np.zeros(10, int)})
    wide = "module w70(input [69:0] a, output y); assign y = ^a; endmodule\n"
    with pytest.raises(TypeError, match="stream for port a must hold integers"):
        E.netlist_energy(wide, "w70", mode="activity", stream={"a": np.array([1, "x"], dtype=object)})
    with pytest.raises(ValueError, match="mode must be one of static, activity"):
        E.design_energy("int-add", {"bits": 8}, mode="dynamic")


def test_streams_on_ports_wider_than_64_bits():
    """Python-int streams reach every bit of a 70-bit port: flipping only bit 69 toggles the
    parity output every cycle, a constant word toggles nothing."""
    wide = "module w70(input [69:0] a, output y); assign y = ^a; endmodule\n"
    top = 1 << 69
    flip = E.netlist_energy(wide, "w70", mode="activity", stream={"a": np.array([0, top] * 8, dtype=object)})
    still = E.netlist_energy(wide, "w70", mode="activity", stream={"a": np.array([top | 5] * 16, dtype=object)})
    assert still["toggles_per_cycle"] == 0 and flip["toggles_per_cycle"] >= 1
    # two's complement modulo 2^70: -2^69 is the same word as 2^69
    neg = E.netlist_energy(wide, "w70", mode="activity", stream={"a": np.array([0, -top] * 8, dtype=object)})
    assert neg["toggles_per_cycle"] == flip["toggles_per_cycle"]
    assert E.netlist_energy(wide, "w70", mode="activity")["energy_pj"] > 0   # default stream: any width
    # 2-D (lanes, cycles) object streams go through the lane-packed path
    lanes = E.netlist_energy(wide, "w70", mode="activity",
                             stream={"a": np.array([[0, top] * 4, [top, 0] * 4], dtype=object)})
    assert lanes["lanes"] == 2 and lanes["toggles_per_cycle"] == pytest.approx(flip["toggles_per_cycle"])


def test_calibration_table_is_complete_and_honest():
    rows = E.calibration_table("activity")
    assert [r["op"] for r in rows] == [p[0] for p in E.CALIBRATION_POINTS]
    for r in rows:
        assert r["ratio"] == pytest.approx(r["predicted_pj"] / r["reference_pj"])
        assert 0.1 < r["ratio"] < 10, r          # the same order of magnitude as the 45 nm table
    # a 32-bit add costs more than an 8-bit add, a 32-bit multiply more than an 8-bit one
    by = {r["op"]: r["predicted_pj"] for r in rows}
    assert by["32-bit add"] > by["8-bit add"] and by["32-bit multiply"] > 10 * by["8-bit multiply"]


# ---- CLI ---------------------------------------------------------------------------------------
def test_cli_calibration_json(capsys):
    assert main(["energy", "calibration", "--mode", "static", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    # the CLI prints the model's table: every calibration point, the same predictions
    api = E.calibration_table("static")
    assert [r["op"] for r in rows] == [r["op"] for r in api] == [p[0] for p in E.CALIBRATION_POINTS]
    for r, a in zip(rows, api):
        assert r["predicted_pj"] == pytest.approx(a["predicted_pj"]) and r["reference_pj"] == a["reference_pj"]
        assert r["ratio"] == pytest.approx(r["predicted_pj"] / r["reference_pj"])


def test_cli_op_json_and_text(capsys):
    assert main(["energy", "op", "int-mac", "--param", "bits=4", "--param", "acc_bits=12", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["mode"] == "activity" and res["energy_pj"] > 0 and res["params"] == {"bits": 4, "acc_bits": 12}
    # a 4-bit MAC with a 12-bit accumulator costs less than the default 8-bit one
    assert res["energy_pj"] < E.design_energy("int-mac", {}, mode="activity")["energy_pj"]
    assert main(["energy", "op", "mfmac-pe", "--mode", "static"]) == 0
    text = capsys.readouterr().out
    static = E.design_energy("mfmac-pe", {}, mode="static")
    shown = dict(line.split()[:2] for line in text.splitlines()[1:] if line.strip())
    assert float(shown["energy_pj"]) == pytest.approx(static["energy_pj"], abs=1e-4)
    assert int(shown["transistors"]) == static["transistors"]


def test_cli_op_stream_file(tmp_path, capsys):
    rng = np.random.default_rng(5)
    f = tmp_path / "s.npz"
    np.savez(f, a=rng.integers(0, 2, 2000), b=rng.integers(0, 2, 2000))
    assert main(["energy", "op", "mul-array", "--stream", str(f), "--json"]) == 0
    low = json.loads(capsys.readouterr().out)
    assert low["stream"] == "caller's" and low["energy_pj"] < 0.1 * reference.MUL8_PJ


@pytest.mark.parametrize("argv,msg", [
    (["energy", "op", "nope"], "unknown design 'nope'"),
    (["energy", "op", "int-mac", "--param", "bits=99"], "bits must be in 2..32, got 99"),
    (["energy", "op", "int-mac", "--mode", "static", "--stream", "x.npz"], "stream file x.npz does not exist"),
    (["energy", "calibration", "--mode", "warm"], "invalid choice: 'warm'"),
])
def test_cli_errors(argv, msg, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1


def test_cli_bad_stream_file(tmp_path, capsys):
    f = tmp_path / "s.npz"
    f.write_text("not numpy")
    assert main(["energy", "op", "mul-array", "--stream", str(f)]) == 2
    assert "not a NumPy .npz archive" in capsys.readouterr().err
