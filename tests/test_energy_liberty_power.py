"""Energy from a real cell library (synth/liberty.py): Liberty functions, the mapped-netlist
simulator against golden models, the energy's parts, the rank correlation, and the CLI.
The sky130 tests are skipped when ../shared/pdk is absent."""
import json
from pathlib import Path

import numpy as np
import pytest

from ecomac.cli import main
from golden import pot as gp
from synth import energy as E
from synth.gatesim import pack_values, unpack_values
from synth.liberty import (MappedNetlist, eval_function, function_pins, library, liberty_energy, mapped_netlist,
                           parse_function, spearman)

LIB = Path(__file__).resolve().parent.parent.parent / "shared/pdk/sky130_fd_sc_hd__tt_025C_1v80.lib.gz"
needs_lib = pytest.mark.skipif(not LIB.is_file(), reason=f"{LIB} not present")
ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


@pytest.mark.parametrize("expr,truth", [
    ("(!A) | (!B)", lambda a, b, c: ~(a & b)),
    ("A B' + C", lambda a, b, c: (a & ~b) | c),
    ("A^B^C", lambda a, b, c: a ^ b ^ c),
    ("(A&B) | (A&C) | (B&C)", lambda a, b, c: (a & b) | (a & c) | (b & c)),
    ("!(A * (B + C))", lambda a, b, c: ~(a & (b | c))),
    ("(A)'", lambda a, b, c: ~a),
])
def test_liberty_functions(expr, truth):
    a, b, c = (np.array([0, ONES, 0x00FF, 0x0F0F], np.uint64) for _ in range(3))
    a, b, c = a, np.roll(b, 1), np.roll(c, 2)
    assert np.array_equal(eval_function(parse_function(expr), {"A": a, "B": b, "C": c}), truth(a, b, c))


def test_function_errors_and_pins():
    assert function_pins(parse_function("(A1&A2) | !B1")) == {"A1", "A2", "B1"}
    with pytest.raises(ValueError, match="unbalanced parentheses"):
        parse_function("(A & B")
    with pytest.raises(ValueError, match="cannot read"):
        parse_function("A % B")


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3, 4])[0, 1])
    with pytest.raises(ValueError, match="at least two points"):
        spearman([1], [2])


def _mapped(design, params):
    import gzip
    text, top, ops, _ = E._design_verilog(design, params)
    lib = library(gzip.decompress(LIB.read_bytes()).decode())
    return MappedNetlist(mapped_netlist(text, top, str(LIB)), top, lib)


@needs_lib
def test_mapped_mul_array_exhaustive():
    g = _mapped("mul-array", {"bits": 4})
    a, b = (x.ravel() for x in np.meshgrid(np.arange(16), np.arange(16)))
    res = g.run_lanes(lambda t: {"a": pack_values(a, 4), "b": pack_values(b, 4)}, 1, a.size)
    assert np.array_equal(unpack_values(res["outputs"]["p"][:, 0], a.size).astype(np.int64), a * b)


@needs_lib
def test_mapped_mfmac_pe_against_golden():
    g = _mapped("mfmac-pe", {})
    assert g.flip_flops == 24 and g.clock_ports == ["clk"]
    rng = np.random.default_rng(5)
    lanes, T = 70, 30
    x, w = rng.integers(0, 16, (2, lanes, T))
    valid, clear = rng.integers(0, 2, (2, lanes, T))

    def words(t):
        return {"x": pack_values(x[:, t], 4), "w": pack_values(w[:, t], 4), "valid": pack_values(valid[:, t], 1),
                "clear": pack_values(clear[:, t], 1), "rst": pack_values(np.zeros(lanes, np.int64), 1)}
    out = g.run_lanes(words, T, lanes)["outputs"]["acc"]
    for lane in range(0, lanes, 7):
        got = np.array([unpack_values(out[:, t], lanes, signed=True)[lane] for t in range(1, T)])
        assert np.array_equal(got, gp.mac(x[lane], w[lane], valid[lane], clear[lane])[:-1]), lane


@needs_lib
def test_liberty_energy_parts_add_up():
    text, top, ops, _ = E._design_verilog("mfmac-pe", {})
    r = liberty_energy(text, top, str(LIB))
    parts = sum(r[k] for k in ("internal_pj", "switching_pj", "input_pin_pj", "clock_pj", "leakage_pj"))
    assert r["energy_per_cycle_pj"] == pytest.approx(parts)
    assert r["clock_pj"] > 0 and r["switching_pj"] > 0 and r["leakage_pj"] > 0
    slow = liberty_energy(text, top, str(LIB), clock_mhz=1.0)
    assert slow["leakage_pj"] == pytest.approx(100 * r["leakage_pj"])       # leakage x cycle time


@needs_lib
def test_cli_op_liberty(capsys):
    assert main(["energy", "op", "int-add", "--param", "bits=4", "--liberty", str(LIB), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    lib = res["liberty"]
    assert lib["energy_pj"] > 0 and lib["voltage"] == 1.8 and lib["clock_pj"] == 0


def test_cli_clock_needs_liberty(capsys):
    assert main(["energy", "op", "int-add", "--param", "bits=4", "--clock-mhz", "50"]) == 2
    assert capsys.readouterr().err.strip() == "ecomac: error: --clock-mhz applies with --liberty only"


def test_liberty_energy_bad_clock():
    with pytest.raises(ValueError, match="clock must be > 0 MHz, got 0"):
        liberty_energy("module m(input a, output y); assign y = a; endmodule\n", "m", str(LIB), clock_mhz=0)


@needs_lib
def test_timed_sweep_with_library_delays_settles_and_counts_more():
    from synth.liberty import DELAY_STEP_NS, NOMINAL_SLEW_NS, net_loads
    g = _mapped("mul-array", {"bits": 4})
    rng = np.random.default_rng(8)
    lanes = 100

    def words(t):
        return {n: rng.integers(0, 2**64, size=(len(b), 2), dtype=np.uint64) for n, b in g.inputs.items()}
    r = g.run_lanes(words, 12, lanes, timed=(net_loads(g), NOMINAL_SLEW_NS, DELAY_STEP_NS))
    assert np.array_equal(r["outputs_timed"]["p"], r["outputs"]["p"])
    assert (r["timed_toggles"] >= r["toggles"]).all() and ((r["timed_toggles"] - r["toggles"]) % 2 == 0).all()
    assert r["timed_toggles"].sum() > r["toggles"].sum()


@needs_lib
def test_cli_op_liberty_timed(capsys):
    assert main(["energy", "op", "mul-array", "--param", "bits=4", "--mode", "timed", "--liberty", str(LIB),
                 "--json"]) == 0
    lib = json.loads(capsys.readouterr().out)["liberty"]
    assert lib["timed"] and lib["toggles_per_cycle"] > lib["zero_delay_toggles_per_cycle"]
