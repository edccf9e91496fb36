"""approx-mac: the sign-magnitude golden model against scalar references from its definition,
the accumulator contract, the RTL's multiply part on small N for every family, and the
one-line errors of bad parameters (Python API and CLI)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ecomac.cli import main
from golden import approx_mac
from rtl.approx_mac import ApproxSignedMul
from rtl.registry import build


def ref_drum(a, b, k):
    """DRUM on Python ints, straight from the definition (issue 5)."""
    def seg(x):
        n = x.bit_length()
        if n <= k:
            return x, 0
        return (x >> (n - k)) | 1, n - k
    (va, sa), (vb, sb) = seg(a), seg(b)
    return (va * vb) << (sa + sb)


def ref_signed(x, w, unsigned_mul):
    m = unsigned_mul(abs(x), abs(w))
    return -m if (x < 0) != (w < 0) else m


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 12).flatmap(lambda b: st.tuples(
    st.just(b), st.integers(1, b), st.lists(st.tuples(st.integers(-(1 << (b - 1)), (1 << (b - 1)) - 1),
                                                      st.integers(-(1 << (b - 1)), (1 << (b - 1)) - 1)),
                                            min_size=1, max_size=20))))
def test_drum_signed_product_matches_definition(case):
    bits, k, pairs = case
    x, w = (np.array(v) for v in zip(*pairs))
    got = approx_mac.product(x, w, "mul-drum", bits, k=k)
    want = [ref_signed(a, b, lambda p, q: ref_drum(p, q, k)) for a, b in pairs]
    assert got.tolist() == want


@pytest.mark.parametrize("multiplier", ["mul-array", "mul-exact"])
def test_exact_families_give_the_signed_product_for_every_pair(multiplier):
    g = np.arange(-128, 128)
    x, w = (a.ravel() for a in np.meshgrid(g, g, indexing="ij"))
    assert np.array_equal(approx_mac.product(x, w, multiplier, 8), x * w)   # |-128| = 128 is exact


@pytest.mark.parametrize("multiplier,params", [("mul-drum", {"k": 3}), ("mul-mitchell", {"frac_bits": 4}),
                                               ("mul-trunc", {"k": 8, "correction": True}),
                                               ("mul-bam", {"vbl": 6, "hbl": 1})])
def test_error_is_odd_in_each_operand(multiplier, params):
    # -(-128) is out of range; 0 has no sign to flip (mul-trunc's correction makes M(0, w) != 0)
    g = np.r_[-127:0, 1:128]
    x, w = (a.ravel() for a in np.meshgrid(g, g, indexing="ij"))
    p = approx_mac.product(x, w, multiplier, 8, **params)
    assert np.array_equal(approx_mac.product(-x, w, multiplier, 8, **params), -p)
    assert np.array_equal(approx_mac.product(x, -w, multiplier, 8, **params), -p)
    assert not np.array_equal(p, x * w)            # these points do approximate


def test_mac_follows_the_valid_clear_contract():
    r = np.random.default_rng(3)
    n = 500
    x, w = r.integers(-128, 128, n), r.integers(-128, 128, n)
    valid, clear = r.random(n) < 0.7, r.random(n) < 0.05
    p = approx_mac.product(x, w, "mul-drum", 8, k=4)
    acc, want = 0, []
    for i in range(n):        # the register, one clock at a time, wrapping at 18 bits
        if clear[i]:
            acc = int(p[i]) if valid[i] else 0
        elif valid[i]:
            acc += int(p[i])
        acc = (acc + (1 << 17)) % (1 << 18) - (1 << 17)
        want.append(acc)
    got = approx_mac.mac(x, w, valid, clear, multiplier="mul-drum", bits=8, acc_bits=18, k=4)
    assert got.tolist() == want


SMALL = [("mul-array", {}), ("mul-exact", {}), ("mul-trunc", {"k": 3, "correction": True}),
         ("mul-bam", {"vbl": 3, "hbl": 1}), ("mul-drum", {"k": 2}), ("mul-mitchell", {"frac_bits": 2})]


@pytest.mark.parametrize("multiplier,params", SMALL, ids=[m for m, _ in SMALL])
def test_rtl_multiply_part_equals_golden_all_pairs_n4(multiplier, params, comb_sweep):
    dut = ApproxSignedMul(multiplier, 4, **params)
    g = np.arange(-8, 8)
    x, w = (a.ravel() for a in np.meshgrid(g, g, indexing="ij"))
    got = comb_sweep(dut, {"x": x, "w": w}, "p")
    assert np.array_equal(got, approx_mac.product(x, w, multiplier, 4, **params))


@pytest.mark.parametrize("params,exc,msg", [
    ({"multiplier": "mul-foo"}, ValueError, "multiplier must be one of mul-array, mul-exact, mul-trunc"),
    ({"multiplier": "mul-drum", "k": 9}, ValueError, "k must be in 1..8, got 9"),
    ({"multiplier": "mul-trunc", "k": 17}, ValueError, "k must be in 0..16, got 17"),
    ({"multiplier": "mul-drum", "vbl": 3}, ValueError, "vbl does not apply to multiplier mul-drum (its parameters: k)"),
    ({"multiplier": "mul-array", "k": 5}, ValueError, "k does not apply to multiplier mul-array (its parameters: none"),
    ({"multiplier": "mul-mitchell", "frac_bits": 8}, ValueError, "frac_bits must be in 1..7, got 8"),
    ({"bits": 13}, ValueError, "bits must be in 2..12, got 13"),
    ({"acc_bits": 16}, ValueError, "acc_bits must be in 17..64, got 16"),
    ({"k": "6"}, TypeError, "k must be an integer in 1..8, not '6'"),
])
def test_bad_parameters_one_line_errors(params, exc, msg):
    with pytest.raises(exc) as e:
        build("approx-mac", params)
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_bad_operands_and_cli_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"operands must be signed 8-bit integers in -128\.\.127"):
        approx_mac.product(np.array([128]), np.array([1]), "mul-drum", 8)
    out = tmp_path / "m.v"
    assert main(["verilog", "approx-mac", "-p", "multiplier=mul-bam", "-p", "k=3", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "k does not apply to multiplier mul-bam (its parameters: vbl, hbl)" in err and err.count("\n") == 1
    assert not out.exists()
    assert main(["verilog", "approx-mac", "-p", "multiplier=mul-bam", "-p", "vbl=7", "-o", str(out)]) == 0
    assert "module approx_mac" in out.read_text()


@pytest.mark.parametrize("multiplier,has_mul", [("mul-drum", False), ("mul-exact", True)])
def test_only_mul_exact_leaves_a_multiplier_to_yosys(multiplier, has_mul):
    from rtl.export import generate
    from synth.yosys import coarse_cells
    text, sheet = generate("approx-mac", {"multiplier": multiplier})
    cells = coarse_cells(text, sheet["module"])
    assert any("mul" in c for c in cells) == has_mul, cells
