"""`ecomac prove` (synth/prove.py): the cheap formal proofs, a counterexample from a wrong
reference, bad input. The expensive proofs (16-bit multipliers, N=12 families) are `make prove`."""
import json
import re

import pytest

from ecomac.cli import main
from synth import prove


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ECOMAC_CACHE", str(tmp_path / "cache"))   # every proof really runs


@pytest.mark.parametrize("design,params", [
    ("mfmac-pe", {"exp_bits": 1, "acc_bits": 4}),
    ("mfmac-pe", {"exp_bits": 4, "acc_bits": 32}),
    ("mfmac-pe", {"exp_bits": 3, "pipeline": True}),
    ("int-mac", {"bits": 4, "acc_bits": 12}),
    ("mul-trunc", {"bits": 8, "k": 8, "correction": True}),
    ("mul-drum", {"bits": 8, "k": 4}),
    ("mul-mitchell", {"bits": 8, "frac_bits": 5}),
])
def test_cheap_proofs_hold(design, params):
    r = prove.prove(design, params, timeout=120)
    assert r["result"] == "proven", r
    assert all(p["result"] == "proven" for p in r["proofs"])
    if design == "mfmac-pe":   # the PoT product and the whole MAC are both proven
        assert len(r["proofs"]) == 2 and "PoT product" in r["proofs"][0]["property"]


def test_wrong_reference_gives_counterexample_with_inputs(monkeypatch):
    """A reference off by one for one pair must be caught, with that pair as the inputs."""
    good = prove._mul_reference

    def broken(design, p, form="sum"):
        text = good(design, p, form)
        return text.replace("  end\nendmodule", "    if (a == 8'd77 && b == 8'd201) p = p + 1;\n  end\nendmodule")
    monkeypatch.setattr(prove, "_mul_reference", broken)
    r = prove.prove("mul-mitchell", {"bits": 8, "frac_bits": 7}, timeout=120)
    assert r["result"] == "counterexample"
    (p,) = r["proofs"]
    assert p["inputs"] == {"a": "77", "b": "201"}


def test_cli_prints_proven_and_exit_codes(capsys, monkeypatch):
    code, out, _ = run(capsys, "prove", "mfmac-pe", "-p", "exp_bits=2", "-p", "acc_bits=8")
    assert code == 0 and out.splitlines()[-1] == "proven"
    code, out, _ = run(capsys, "prove", "mfmac-pe", "-p", "exp_bits=2", "-p", "acc_bits=8", "--json")
    assert code == 0 and json.loads(out)["result"] == "proven"
    monkeypatch.setattr(prove, "_pot_product_reference", _pot_off_by_one)
    code, out, _ = run(capsys, "prove", "mfmac-pe", "-p", "exp_bits=2", "-p", "acc_bits=8")
    assert code == 1 and out.splitlines()[-1] == "counterexample"
    assert re.search(r"inputs: w=\d+, x=\d+", out)


_GOOD_POT = prove._pot_product_reference


def _pot_off_by_one(e):
    # the magnitude one position too high: wrong for every non-zero product
    return _GOOD_POT(e).replace("- 2;", "- 1;")


@pytest.mark.parametrize("argv,msg", [
    (["prove"], "a design name is required (one of mul-array, mul-exact, mul-trunc, mul-bam, mul-drum, "
                "mul-mitchell, mfmac-pe, int-mac, asm-mul; or --all)"),
    (["prove", "fp32-mul"], "no formal proof for fp32-mul (provable: mul-array, mul-exact, mul-trunc, mul-bam, "
                            "mul-drum, mul-mitchell, mfmac-pe, int-mac, asm-mul)"),
    (["prove", "mul-array", "--all"], "give a design or --all, not both"),
    (["prove", "mul-array", "--timeout", "0"], "--timeout must be a positive number of seconds, got 0"),
])
def test_prove_bad_input_is_one_line(capsys, argv, msg):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err == f"ecomac: error: {msg}\n"


def test_undecided_when_the_solver_runs_out_of_time():
    r = prove.prove("mul-array", {"bits": 8}, timeout=1)
    assert r["result"] == "undecided" and "did not finish within 1 s" in r["proofs"][0]["note"]
