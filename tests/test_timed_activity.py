"""Timed (unit-delay, glitch-counting) activity: the sweep settles to the zero-delay values,
counts at least as many transitions on every net (and the same parity), sees the glitch of
a hand-made hazard, and the energy/CLI layer reports it."""
import json

import numpy as np
import pytest

from ecomac.cli import main
from rtl.export import generate
from synth import energy as E
from synth.gatesim import GateNetlist, pack_values
from synth.yosys import synthesize


def _netlist(design, params=None):
    text, sheet = generate(design, params or {})
    r = synthesize(text, sheet["module"], netlist=True)
    return GateNetlist(r["netlist"], sheet["module"])


def _check_counts(zero, timed):
    assert (timed >= zero).all()
    assert ((timed - zero) % 2 == 0).all()      # a net ends each cycle where zero-delay puts it
    assert timed.sum() > zero.sum()            # real arithmetic glitches


@pytest.mark.parametrize("design,params", [("mul-array", {"bits": 8}), ("int-add", {"bits": 8})])
def test_timed_time_packed_settles_and_counts_more(design, params):
    g = _netlist(design, params)
    rng = np.random.default_rng(3)
    n = 1000                                   # a partial last word
    words = {name: pack_values(rng.integers(0, 1 << len(b), n), len(b)) for name, b in g.inputs.items()}
    res = g.run_time_packed(words, n, timed=True)
    assert np.array_equal(res["V_timed"], res["V"])
    _check_counts(res["toggles"], res["timed_toggles"])


def test_timed_lanes_settle_and_count_more_on_mfmac_pe():
    g = _netlist("mfmac-pe", {})
    rng = np.random.default_rng(4)
    lanes, T = 100, 12
    x, w = rng.integers(0, 16, (2, lanes, T))
    valid, clear = rng.integers(0, 2, (2, lanes, T))

    def words(t):
        return {"x": pack_values(x[:, t], 4), "w": pack_values(w[:, t], 4), "valid": pack_values(valid[:, t], 1),
                "clear": pack_values(clear[:, t], 1), "rst": pack_values(np.zeros(lanes, np.int64), 1)}
    res = g.run_lanes(words, T, lanes, timed=True)
    for name, out in res["outputs"].items():
        assert np.array_equal(res["outputs_timed"][name], out), name
    _check_counts(res["toggles"], res["timed_toggles"])


def test_timed_sees_a_static_hazard():
    # y = a AND (NOT a): zero-delay y is always 0; with one unit per gate a rising a
    # reaches the AND one step before NOT a falls, so y pulses 0 -> 1 -> 0
    net = {"modules": {"hazard": {"attributes": {"top": "1"},
           "ports": {"a": {"direction": "input", "bits": [2]}, "y": {"direction": "output", "bits": [4]}},
           "cells": {"n": {"type": "$_NOT_", "connections": {"A": [2], "Y": [3]}},
                     "g": {"type": "$_AND_", "connections": {"A": [2], "B": [3], "Y": [4]}}}}}}
    g = GateNetlist(net)
    a = np.array([0, 1, 1, 0, 1, 0, 0, 1])       # three rising edges, two falling ones
    res = g.run_time_packed({"a": pack_values(a, 1)}, a.size, timed=True)
    zero = dict(zip(g.cost_rows.tolist(), res["toggles"].tolist()))
    timed = dict(zip(g.cost_rows.tolist(), res["timed_toggles"].tolist()))
    y = g.outputs["y"][0]
    assert zero[y] == 0 and timed[y] == 2 * 3
    n_row = [r for r in g.cost_rows.tolist() if r != y][0]
    assert zero[n_row] == timed[n_row] == 5


def test_timed_energy_reports_glitch_share():
    r = E.design_energy("mul-array", {"bits": 4}, mode="timed")
    a = E.design_energy("mul-array", {"bits": 4}, mode="activity")
    assert r["zero_delay_toggles_per_cycle"] == pytest.approx(a["toggles_per_cycle"])
    assert r["toggles_per_cycle"] > r["zero_delay_toggles_per_cycle"]
    assert r["glitch_share"] == pytest.approx(
        1 - r["zero_delay_toggle_units_per_cycle"] / r["toggle_units_per_cycle"])
    assert 0 < r["glitch_share"] < 1
    assert r["energy_pj"] == pytest.approx(r["pj_per_unit"] * r["units_per_cycle"])


def test_cli_op_timed(capsys):
    assert main(["energy", "op", "mul-array", "--param", "bits=4", "--mode", "timed", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["mode"] == "timed" and 0 < res["glitch_share"] < 1


def test_cli_stream_needs_a_simulating_mode(tmp_path, capsys):
    p = tmp_path / "s.npz"
    np.savez(p, a=np.arange(8), b=np.arange(8))
    assert main(["energy", "op", "mul-array", "--param", "bits=4", "--mode", "static", "--stream", str(p)]) == 2
    assert capsys.readouterr().err.strip() == "ecomac: error: --stream needs --mode activity or --mode timed"


def test_cli_timed_with_a_stream(tmp_path, capsys):
    p = tmp_path / "s.npz"
    np.savez(p, a=np.arange(100) % 16, b=(np.arange(100) * 7) % 16)
    assert main(["energy", "op", "mul-array", "--param", "bits=4", "--mode", "timed", "--stream", str(p), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["stream"] == "caller's" and res["cycles"] == 100
    assert res["toggles_per_cycle"] >= res["zero_delay_toggles_per_cycle"]
