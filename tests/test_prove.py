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
    ("mfmac-pe", {"exp_bits": 3, "pipeline": 2}),
    ("int-mac", {"bits": 4, "acc_bits": 12}),
    ("mul-trunc", {"bits": 8, "k": 8, "correction": True}),
    ("mul-drum", {"bits": 8, "k": 4}),
    ("mul-mitchell", {"bits": 8, "frac_bits": 5}),
    ("luq-quant", {"rng": "input"}),
    ("luq-quant", {"rng": "input", "exp_bits": 1, "in_bits": 6, "rand_bits": 3}),
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
                "mul-mitchell, mfmac-pe, int-mac, asm-mul, luq-quant; or --all)"),
    (["prove", "fp32-mul"], "no formal proof for fp32-mul (provable: mul-array, mul-exact, mul-trunc, mul-bam, "
                            "mul-drum, mul-mitchell, mfmac-pe, int-mac, asm-mul, luq-quant)"),
    (["prove", "mul-array", "--all"], "give a design or --all, not both"),
    (["prove", "mul-array", "--timeout", "0"], "--timeout must be a number > 0, got 0"),
])
def test_prove_bad_input_is_one_line(capsys, argv, msg):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err == f"ecomac: error: {msg}\n"


def test_undecided_when_the_solver_runs_out_of_time():
    r = prove.prove("mul-drum", {"bits": 12, "k": 6}, timeout=1)   # ~17 s as a whole unit
    assert r["result"] == "undecided" and "did not finish within 1 s" in r["proofs"][0]["note"]


# ---- white-box proofs: the widths SAT cannot take as whole units ----------------------------
@pytest.mark.parametrize("design,params,lemmas", [
    ("mul-array", {"bits": 16}, 16),
    ("mul-trunc", {"bits": 12, "k": 12, "correction": True}, 12),
    ("mul-bam", {"bits": 12, "vbl": 10, "hbl": 2}, 12),
    ("asm-mul", {"w_bits": 12}, 3),
    ("asm-mul", {"w_bits": 12, "alphabet": "1,3,5"}, 3),   # index 3 names no member: excluded
])
def test_row_by_row_proofs_hold_at_wide_operands(design, params, lemmas):
    r = prove.prove(design, params, timeout=120)
    assert r["result"] == "proven", r
    (p,) = r["proofs"]
    assert f"{lemmas} {'quartet' if design == 'asm-mul' else 'carry-save row'} lemmas" in p["property"]


def test_narrow_array_is_also_proven_whole_and_linked_to_a_times_b():
    r = prove.prove("mul-array", {"bits": 6}, timeout=120)
    assert r["result"] == "proven" and len(r["proofs"]) == 2
    assert r["proofs"][1]["property"] == "reference: sum_j b_j (a << j) == a*b for all a, b (N=6)"
    r = prove.prove("mul-bam", {"bits": 6, "vbl": 4, "hbl": 1}, timeout=120)
    assert r["result"] == "proven" and r["proofs"][1]["property"].endswith("whole unit")


def test_a_wrong_row_is_caught(monkeypatch):
    """One partial-product bit missing from row 5 of the reference: that row's lemma fails."""
    good = prove._array_rows

    def broken(design, p):
        masks, const = good(design, p)
        return [m ^ (1 << 3) if j == 5 else m for j, m in enumerate(masks)], const
    monkeypatch.setattr(prove, "_array_rows", broken)
    r = prove.prove("mul-array", {"bits": 12}, timeout=120)
    assert r["result"] == "counterexample" and "lemma failed" in r["proofs"][0]["note"]
    assert set(r["proofs"][0]["inputs"]) >= {"a", "b"}


def test_a_wrong_alphabet_multiple_is_caught(monkeypatch):
    """The reference's multiple 5x taken as 4x: a quartet lemma fails."""
    good = prove._asm_lanes_case

    def broken(*args):
        case = good(*args)
        assert "= x * 5;" in case["harness"]
        case["harness"] = case["harness"].replace("= x * 5;", "= x * 4;")
        return case
    monkeypatch.setattr(prove, "_asm_lanes_case", broken)
    r = prove.prove("asm-mul", {"w_bits": 8}, timeout=120)
    assert r["result"] == "counterexample"


def test_every_cut_signal_must_exist(monkeypatch):
    """A cut naming no wire of the netlist is an error, never a proof of something else."""
    good = prove._array_rows_case

    def renamed(*args):
        case = good(*args)
        (name, width), *rest = case["cuts"]
        case["cuts"] = [("no_such_wire", width)] + rest
        case["harness"] = case["harness"].replace(f"\\{name} ", "\\no_such_wire ").replace(
            f"\\{name}__i ", "\\no_such_wire__i ")
        return case
    monkeypatch.setattr(prove, "_array_rows_case", renamed)
    with pytest.raises(Exception, match="did not run"):
        prove.prove("mul-array", {"bits": 4}, timeout=60)


def test_a_wrong_luq_rounding_is_caught(monkeypatch):
    """Rounding up when r <= g (a bias of one word) is found, with the inputs that show it."""
    good = prove._luq_reference
    monkeypatch.setattr(prove, "_luq_reference", lambda p: good(p).replace("up = r < g", "up = r <= g"))
    r = prove.prove("luq-quant", {"rng": "input", "in_bits": 8, "rand_bits": 4}, timeout=120)
    assert r["result"] == "counterexample" and {"x", "kmax", "r"} <= set(r["proofs"][0]["inputs"])
    with pytest.raises(ValueError, match="luq-quant is proven with rng=input"):
        prove.prove("luq-quant", {})
